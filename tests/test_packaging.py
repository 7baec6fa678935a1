"""setup.py's minimum versions and constraints.txt's pins cannot drift apart."""
from __future__ import annotations

import ast
import pathlib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _setup_lists() -> dict[str, list[str]]:
  """The requirement lists assigned at the top of setup.py (RUNTIME, BUILDING, TEST, DEMO)."""
  tree = ast.parse((ROOT / 'setup.py').read_text())
  lists = {}
  for node in tree.body:
    if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
      value = node.value
      items = []
      for part in ([value.left, value.right] if isinstance(value, ast.BinOp) else [value]):
        if isinstance(part, ast.Name):
          items += lists[part.id]
        elif isinstance(part, ast.List):
          items += [ast.literal_eval(e) for e in part.elts]
      if items:
        lists[node.targets[0].id] = items
  return lists


def _pins() -> dict[str, Version]:
  pins = {}
  for raw in (ROOT / 'constraints.txt').read_text().splitlines():
    line = raw.split('#', 1)[0].strip()
    if line:
      requirement = Requirement(line)
      (spec,) = requirement.specifier
      assert spec.operator == '==', f'constraints.txt pins exact versions: {line}'
      pins[canonicalize_name(requirement.name)] = Version(spec.version)
  return pins


def test_every_requirement_is_pinned_within_its_minimum():
  lists, pins = _setup_lists(), _pins()
  assert {'RUNTIME', 'BUILDING', 'TEST', 'DEMO'} <= set(lists)
  for name in ('RUNTIME', 'TEST', 'DEMO'):
    for line in lists[name]:
      requirement = Requirement(line)
      pinned = pins.get(canonicalize_name(requirement.name))
      assert pinned is not None, f'{requirement.name} ({name}) is not in constraints.txt'
      assert requirement.specifier.contains(pinned), (
          f'constraints.txt pins {requirement.name}=={pinned}, outside setup.py\'s {line}')


def test_workers_install_no_tensorflow():
  runtime = {canonicalize_name(Requirement(r).name) for r in _setup_lists()['RUNTIME']}
  assert not {n for n in runtime if 'tensorflow' in n}
