"""setup.py's minimum versions and constraints.txt's pins cannot drift apart."""
from __future__ import annotations

import ast
import pathlib
import re

import pytest
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


def _dockerfile(path: str) -> str:
  return (ROOT / path).read_text()


def test_the_worker_image_is_beams_sdk_image_at_the_pinned_versions():
  text = _dockerfile('worker_image/Dockerfile')
  (image,) = re.findall(r'^FROM (\S+)', text, flags=re.M)
  match = re.fullmatch(r'apache/beam_python(\d+)\.(\d+)_sdk:(\S+)', image)
  assert match, image
  assert Version(match.group(3)) == _pins()['apache-beam']
  launcher = re.search(r'^FROM \S+python(\d)(\d+)-template-launcher', _dockerfile(
      'flex_template/Dockerfile'), flags=re.M)
  assert match.group(1, 2) == launcher.group(1, 2), 'launcher and workers run one Python'
  python = tuple(int(v) for v in match.group(1, 2))
  minimum = re.search(r"python_requires='>=(\d+)\.(\d+)'", _dockerfile('setup.py'))
  assert python >= tuple(int(v) for v in minimum.group(1, 2))


@pytest.mark.parametrize('path', ['worker_image/Dockerfile', 'flex_template/Dockerfile'])
def test_images_install_the_shipped_packages_from_the_pins(path):
  text = _dockerfile(path).split('\nFROM ')[-1]  # the image itself: its last stage
  assert 'constraints.txt' in re.search(r'^COPY .*$', text, flags=re.M).group(0)
  assert re.search(r'^RUN pip install --no-cache-dir -c constraints.txt \.', text, flags=re.M)
  copied = set(re.findall(r'^COPY (\w+) \1$', text, flags=re.M))
  shipped = ast.literal_eval(re.search(r"find_packages\(include=(\[.*?\])\)",
                                       _dockerfile('setup.py')).group(1))
  assert copied == set(shipped) and 'model_building' not in copied
