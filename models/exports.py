"""Model files built on the launcher from a published one, as the default `magenta-fast` is.

The build needs TensorFlow (the `building` extra), so it runs in a subprocess
(`python -m model_building.fast_export`), once per machine: the result is cached under the model
cache, keyed by the source's sha256, the recipe and the builder's revision, with a record of its
own sha256 written last (a killed or damaged build is built again). A launcher without the tools
to build its revision uses another revision of the same recipe it has cached: the same model, by
fingerprints. Workers never build: they get the file like any launcher-local model file (staged
under --temp_location for Dataflow).
"""
from __future__ import annotations

import glob
import importlib.util
import json
import logging
import os
import re
import subprocess
import sys

import fasteners

from models import fetch
from models.registry import ModelFile

BUILT_NAME = 'stylize_fast_transfer.tflite'


class BuildUnavailable(fetch.ModelUnavailable):
  """The model must be built here and cannot be: the message says what to install or pass."""


class BuildToolsMissing(BuildUnavailable):
  """TensorFlow or the builder's code is not installed here."""


def local_build(model: ModelFile, cache_dir: str | None = None,
                other_builds: bool = False) -> tuple[str, str]:
  """(path, sha256) of the built model, building it the first time. `other_builds` (launches):
  where the tools to build are missing, another cached build revision of the same recipe and
  source will do; benchmarks and image builds want this revision or nothing."""
  source_path, _ = fetch.local_copy(model.built_from, cache_dir)  # its sha256 checked
  slug = re.sub(r'[^\w.-]+', '_', model.recipe)
  stem = os.path.join(cache_dir or fetch.default_cache_dir(), 'built',
                      f'{model.built_from.sha256[:16]}-{slug}')
  folder = _build_folder(stem, model.build)
  path, record = os.path.join(folder, BUILT_NAME), os.path.join(folder, 'built.json')
  os.makedirs(folder, exist_ok=True)
  with fasteners.InterProcessLock(os.path.join(folder, '.lock')):
    digest = _cached(path, record)
    if digest:
      return path, digest
    try:
      _build(source_path, path, model)
    except BuildToolsMissing:
      other = _other_build(stem, model) if other_builds else None
      if other is None:
        raise
      logging.warning('%s: using the build of the same model cached at %s (this release makes '
                      'build %d where TensorFlow is installed)', model.uri, other[0], model.build)
      return other
    digest = fetch.sha256_of(path)
    with open(record, 'w') as f:
      json.dump({'sha256': digest, 'source_sha256': model.built_from.sha256,
                 'recipe': model.recipe, 'build': model.build}, f)
  return path, digest


def _build_folder(stem: str, build: int) -> str:
  return stem + (f'-build{build}' if build > 1 else '')  # the first was named before revisions


def _cached(path: str, record: str) -> str | None:
  """The sha256 its record gives, when the file has it; None for anything else."""
  try:
    with open(record) as f:
      expected = json.load(f)['sha256']
    return expected if isinstance(expected, str) and fetch.sha256_of(path) == expected else None
  except (OSError, ValueError, KeyError, TypeError):
    return None


def _other_build(stem: str, model: ModelFile) -> tuple[str, str] | None:
  """(path, sha256) of the latest other revision of `model`'s recipe in the cache, if any."""
  found = []
  for folder in [stem, *glob.glob(glob.escape(stem) + '-build*')]:
    path, record_path = os.path.join(folder, BUILT_NAME), os.path.join(folder, 'built.json')
    try:
      with open(record_path) as f:
        record = json.load(f)
    except (OSError, ValueError):
      continue
    if not isinstance(record, dict):
      continue
    build = record.get('build', 1)  # records made before revisions were all the first
    digest = _cached(path, record_path)
    if (isinstance(build, int) and build != model.build and digest
        and folder == _build_folder(stem, build)
        and (record.get('recipe'), record.get('source_sha256')) == (model.recipe,
                                                                   model.built_from.sha256)):
      found.append((build, path, digest))
  return max(found)[1:] if found else None


def _build(source: str, out: str, model: ModelFile) -> None:
  # model_building is found where the launcher finds it (a source checkout), never installed.
  missing = [name for name in ('tensorflow', 'model_building')
             if importlib.util.find_spec(name) is None]
  if missing:
    raise BuildToolsMissing(
        f'the model {model.uri} ({model.recipe}) is built once on this machine from the published '
        f'fp16 file, with TensorFlow, which is not installed here ({", ".join(missing)} missing). '
        "Install the building extra (pip install -c constraints.txt -e '.[building]' in a source "
        'checkout), or pass --model magenta-int8 (the published int8 file as it is: slower), or '
        '--model with a folder holding an export built elsewhere (python -m '
        'model_building.optimize)')
  checkout = os.path.dirname(os.path.dirname(importlib.util.find_spec('model_building').origin))
  done = subprocess.run([sys.executable, '-m', 'model_building.fast_export', source, out],
                        cwd=checkout, capture_output=True, text=True, check=False)
  if done.returncode or not os.path.exists(out):
    raise BuildUnavailable(f'building {model.uri} from {source} failed: '
                           f'{(done.stderr or done.stdout).strip()[-1500:]}')


def main(argv: list[str] | None = None) -> None:
  """`python -m models.exports [MODEL_SET]`: builds a model set's built files now (an image
  build does this, so its launcher never needs TensorFlow) and prints where they are."""
  from models import registry  # noqa: PLC0415 - the command only
  names = (argv if argv is not None else sys.argv[1:]) or [registry.DEFAULT_MODEL]
  for name in names:
    model = registry.resolve_model_set(name).transfer
    if model.built_from is None:
      raise SystemExit(f'{name}: nothing to build (its files are used as published)')
    path, digest = local_build(model)
    print(f'{name}: {path} (sha256 {digest}; identity {model.identity})')


if __name__ == '__main__':
  main()
