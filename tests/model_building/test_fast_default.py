"""The default model, `magenta-fast`: built once per machine from the published fp16 file, cached
and verified, named in fingerprints by its source and recipe (not its bytes), and a clear stop at
launch where it cannot be built."""
from __future__ import annotations

import importlib.util
import json
import pathlib
import shutil

import numpy as np
import pytest
from conftest import read_manifest
from PIL import Image
from tensorflow.lite.tools import flatbuffer_utils

from model_building import quality
from models import contract, exports, fetch, imaging, registry, style_bank
from pipeline import launch, options
from pipeline import run as job

FP16 = registry.REGISTRY['magenta-fp16'].transfer


@pytest.fixture(scope='module')
def cache(tmp_path_factory):
  return tmp_path_factory.mktemp('model-cache')


def _args(shared, magenta_dir, out):
  content = shared / 'images' / 'content'
  return ['--content', str(content / 'coffee.png'), '--content', str(content / 'lion.jpg'),
          '--styles', str(shared / 'images' / 'style' / 'munch_the_scream.jpg'),
          '--output', str(out), '--model-dir', magenta_dir, '--max-size', '256',
          '--gallery-rows', '0']


def test_the_default_is_built_once_from_the_fp16_file_cached_and_verified(
    shared, magenta_dir, cache, tmp_path, monkeypatch):
  monkeypatch.setenv(fetch.CACHE_ENV, str(cache))
  assert registry.DEFAULT_MODEL == 'magenta-fast'
  settings, _ = options.parse(_args(shared, magenta_dir, tmp_path / 'out'))
  plan = launch.prepare(settings)
  built = pathlib.Path(plan.transfer.uri)
  assert built.is_file() and cache in built.parents
  assert plan.transfer.identity == f'{registry.FAST_RECIPE}@{FP16.sha256}'
  assert plan.transfer.sha256 == fetch.sha256_of(str(built))
  # Close to the fp16 file it is made from, on a real photo and a real painting.
  with open(shared / 'images' / 'content' / 'grace_hopper.jpg', 'rb') as f:
    content = imaging.content_input(imaging.decode(f.read()).image)[0]
  bottleneck = style_bank.load()['great_wave'].bottleneck
  fp16 = contract.StyleTransfer(str(pathlib.Path(magenta_dir) / FP16.name))
  assert quality.ssim(contract.StyleTransfer(str(built)).stylize(content, bottleneck),
                      fp16.stylize(content, bottleneck)) > 0.95

  made = built.stat().st_mtime_ns
  settings, _ = options.parse(_args(shared, magenta_dir, tmp_path / 'out'))
  assert launch.prepare(settings).transfer.uri == str(built)
  assert built.stat().st_mtime_ns == made  # cached: not built again
  built.write_bytes(built.read_bytes()[:4096])  # damaged: built again, the same
  settings, _ = options.parse(_args(shared, magenta_dir, tmp_path / 'out'))
  assert launch.prepare(settings).transfer.sha256 == plan.transfer.sha256


def test_a_rebuild_with_other_bytes_renders_nothing_again(
    shared, magenta_dir, cache, tmp_path, monkeypatch):
  """Another TensorFlow patch release may write other bytes for the same pixels: fingerprints
  name the model by its source and recipe, so the catalog is not rendered again."""
  monkeypatch.setenv(fetch.CACHE_ENV, str(cache))
  out = tmp_path / 'out'
  first = job.run(_args(shared, magenta_dir, out)).summary
  assert (first['pairs_written'], first['pairs_failed']) == (2, 0)
  assert {row['model_sha256'] for row in read_manifest(out)} == {
      f'{registry.FAST_RECIPE}@{FP16.sha256}'}
  with Image.open(out / 'munch_the_scream' / next(
      p.name for p in (out / 'munch_the_scream').iterdir())) as picture:
    assert np.asarray(picture).std() > 10  # a picture, not a flat field

  (built,) = (cache / 'built').glob(f'*/{exports.BUILT_NAME}')
  model = flatbuffer_utils.convert_bytearray_to_object(bytearray(built.read_bytes()))
  model.description = b'rebuilt elsewhere'
  built.write_bytes(bytes(flatbuffer_utils.convert_object_to_bytearray(model)))
  record = built.parent / 'built.json'
  record.write_text(json.dumps({**json.loads(record.read_text()),
                                'sha256': fetch.sha256_of(str(built))}))
  again = job.run(_args(shared, magenta_dir, out)).summary
  assert (again['pairs_written'], again['pairs_skipped']) == (0, 2)


def _without_tensorflow(monkeypatch):
  real = importlib.util.find_spec
  monkeypatch.setattr(exports.importlib.util, 'find_spec',
                      lambda name, *a: None if name == 'tensorflow' else real(name, *a))


def test_without_tensorflow_another_build_of_the_same_model_is_used(
    shared, magenta_dir, cache, tmp_path, monkeypatch):
  """A launcher that cannot build this release's revision of the export takes another one it has
  cached (here the first): the same recipe and source, so fingerprints name the same model. A
  build of another recipe, a damaged one or one with a damaged record is never taken, nor is any
  when the tools are there and the build fails."""
  monkeypatch.setenv(fetch.CACHE_ENV, str(cache))
  prepare = lambda: launch.prepare(options.parse(_args(shared, magenta_dir, tmp_path / 'out'))[0])
  current = prepare().transfer
  built = pathlib.Path(current.uri)
  assert built.parent.name.endswith(f'-build{registry.FAST_BUILD}')
  stem = built.parent.name.rsplit('-build', 1)[0]

  def cache_other(suffix: str, record) -> pathlib.Path:
    folder = tmp_path / 'older-cache' / 'built' / (stem + suffix)
    folder.mkdir(parents=True)
    shutil.copy(built, folder / exports.BUILT_NAME)
    (folder / 'built.json').write_text(json.dumps(record))
    return folder / exports.BUILT_NAME
  # As the first revision left it: no suffix, no build in the record.
  first = cache_other('', {'sha256': current.sha256, 'source_sha256': FP16.sha256,
                           'recipe': registry.FAST_RECIPE})
  cache_other('-build3', {'sha256': current.sha256, 'source_sha256': FP16.sha256,
                          'recipe': registry.FAST_RECIPE + '0', 'build': 3})  # another recipe
  cache_other('-build4', None)  # a damaged record
  monkeypatch.setenv(fetch.CACHE_ENV, str(tmp_path / 'older-cache'))

  monkeypatch.setattr(exports.sys, 'executable', '/bin/false')  # the tools are there; it fails
  with pytest.raises(launch.LaunchError, match='failed'):
    prepare()
  monkeypatch.undo()
  monkeypatch.setenv(fetch.CACHE_ENV, str(tmp_path / 'older-cache'))
  _without_tensorflow(monkeypatch)
  plan = prepare()
  assert plan.transfer.uri == str(first)
  assert plan.transfer.identity == current.identity == f'{registry.FAST_RECIPE}@{FP16.sha256}'
  with pytest.raises(exports.BuildToolsMissing):  # benchmarks and image builds: this build only
    exports.local_build(registry.resolve_model_set('magenta-fast', magenta_dir).transfer)

  first.write_bytes(first.read_bytes()[:4096])  # damaged: the launch stops and says why
  with pytest.raises(launch.LaunchError, match='tensorflow missing'):
    prepare()


def test_without_tensorflow_the_launch_says_what_to_install_and_switches_nothing(
    shared, magenta_dir, tmp_path, monkeypatch):
  monkeypatch.setenv(fetch.CACHE_ENV, str(tmp_path / 'empty-cache'))
  _without_tensorflow(monkeypatch)
  settings, _ = options.parse(_args(shared, magenta_dir, tmp_path / 'out'))
  with pytest.raises(launch.LaunchError) as stopped:
    launch.prepare(settings)
  message = str(stopped.value)
  assert 'tensorflow missing' in message and '.[building]' in message
  assert '--model magenta-int8' in message
  assert not (tmp_path / 'out' / 'munch_the_scream').exists()
