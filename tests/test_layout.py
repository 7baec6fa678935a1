"""The package layout holds: imports run pipeline -> transforms -> models and
model_building -> models, never back, and nothing workers import needs TensorFlow."""
from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ('pipeline', 'transforms', 'models', 'model_building')
# package -> the project packages it may import
ALLOWED = {
    'models': {'models'},
    'transforms': {'transforms', 'models'},
    'pipeline': {'pipeline', 'transforms', 'models'},
    'model_building': {'model_building', 'models'},
}


def _imports(path: pathlib.Path) -> set[str]:
  """Top-level module names a file imports, wherever in the file the import is."""
  names = set()
  for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'))):
    if isinstance(node, ast.Import):
      names |= {alias.name.split('.')[0] for alias in node.names}
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
      names.add(node.module.split('.')[0])
  return names


@pytest.mark.parametrize('package', PACKAGES)
def test_imports_run_one_way(package):
  for path in sorted((ROOT / package).glob('*.py')):
    wrong = (_imports(path) & set(PACKAGES)) - ALLOWED[package]
    assert not wrong, f'{path.relative_to(ROOT)} imports {sorted(wrong)}'


@pytest.mark.parametrize('package', ['pipeline', 'transforms', 'models'])
def test_what_workers_run_needs_no_tensorflow(package):
  for path in sorted((ROOT / package).glob('*.py')):
    heavy = _imports(path) & {'tensorflow', 'keras', 'skimage'}
    assert not heavy, f'{path.relative_to(ROOT)} imports {sorted(heavy)}'
