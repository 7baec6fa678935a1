"""Naming model files (`--model`), and fetching them into a verified local cache."""
from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import hashlib
import http.server
import multiprocessing
import os
import threading

import pytest

from models import fetch, registry
from models.registry import ModelFile


def test_registered_set_points_at_published_urls():
  chosen = registry.resolve_model_set('magenta-int8', model_dir='')
  assert chosen.transfer.uri.startswith(registry.PUBLISHED_BASE_URL)
  assert chosen.transfer.uri.endswith('int8_transfer_1.tflite')
  assert len(chosen.prediction.sha256) == 64


def test_model_dir_replaces_the_download(tmp_path, monkeypatch):
  monkeypatch.setenv(registry.MODEL_DIR_ENV, str(tmp_path))
  chosen = registry.resolve_model_set('magenta-fp16')
  assert chosen.transfer.uri == str(tmp_path / (
      'magenta_arbitrary-image-stylization-v1-256_fp16_transfer_1.tflite'))
  assert chosen.transfer.sha256 == registry.REGISTRY['magenta-fp16'].transfer.sha256


def test_folder_and_pair_specs(tiny_models):
  chosen = registry.resolve_model_set(tiny_models, model_dir='')
  assert chosen.prediction.uri.endswith('tiny_prediction.tflite')
  assert chosen.transfer.uri.endswith('tiny_transfer.tflite')
  pair = registry.resolve_model_set('a/p.tflite, gs://b/t.tflite', model_dir='')
  assert (pair.prediction.uri, pair.transfer.uri) == ('a/p.tflite', 'gs://b/t.tflite')


def test_unknown_spec_says_what_is_accepted(tmp_path):
  with pytest.raises(registry.ModelSpecError, match='not a registered model set'):
    registry.resolve_model_set(str(tmp_path), model_dir='')


def test_published_files_in_shared_match_the_registry(magenta_dir):
  for model_set in registry.REGISTRY.values():
    for named in (model_set.prediction, model_set.transfer):
      if named.embedded:  # ships in the package, not in ../shared
        continue
      model = named.built_from or named  # a built one: its published source
      path = os.path.join(magenta_dir, model.in_model_dir or model.name)
      assert fetch.local_copy(ModelFile(path, model.sha256)) == (path, model.sha256)


class _CountingHandler(http.server.SimpleHTTPRequestHandler):
  requests: list[str] = []

  def do_GET(self):
    self.requests.append(self.path)
    super().do_GET()

  def log_message(self, *args):
    pass


@pytest.fixture
def http_folder(tmp_path):
  """A folder served over HTTP on 127.0.0.1, standing in for the model download site."""
  folder = tmp_path / 'served'
  folder.mkdir()
  _CountingHandler.requests = []
  handler = functools.partial(_CountingHandler, directory=str(folder))
  server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  yield folder, f'http://127.0.0.1:{server.server_address[1]}'
  server.shutdown()


def test_processes_of_one_machine_download_a_model_once(tmp_path, http_folder):
  folder, url = http_folder
  (folder / 'm.tflite').write_bytes(b'm' * 5_000_000)
  model = ModelFile(f'{url}/m.tflite', hashlib.sha256(b'm' * 5_000_000).hexdigest())
  context = multiprocessing.get_context('fork')
  with concurrent.futures.ProcessPoolExecutor(4, mp_context=context) as pool:
    results = list(pool.map(fetch.local_copy, [model] * 4, [str(tmp_path / 'cache')] * 4))
  assert len(set(results)) == 1
  assert _CountingHandler.requests == ['/m.tflite']


def test_remote_file_is_fetched_once_into_the_cache(tmp_path, http_folder):
  folder, url = http_folder
  (folder / 'm.tflite').write_bytes(b'model bytes')
  digest = hashlib.sha256(b'model bytes').hexdigest()
  model = ModelFile(f'{url}/m.tflite', digest)
  cached, got = fetch.local_copy(model, cache_dir=str(tmp_path / 'cache'))
  assert got == digest and open(cached, 'rb').read() == b'model bytes'
  (folder / 'm.tflite').unlink()  # a second call must not need the download any more
  assert fetch.local_copy(model, cache_dir=str(tmp_path / 'cache')) == (cached, digest)


def test_download_with_wrong_checksum_leaves_nothing_in_the_cache(tmp_path, http_folder):
  folder, url = http_folder
  (folder / 'm.tflite').write_bytes(b'not the published model')
  with pytest.raises(fetch.ModelUnavailable, match='expected 0000'):
    fetch.local_copy(ModelFile(f'{url}/m.tflite', '0' * 64), cache_dir=str(tmp_path / 'cache'))
  assert [f for _, _, files in os.walk(tmp_path / 'cache') for f in files
          if not f.endswith('.lock')] == []


def test_wrong_checksum_is_refused_with_advice(tmp_path):
  path = tmp_path / 'm.tflite'
  path.write_bytes(b'truncated')
  with pytest.raises(fetch.ModelUnavailable, match='--model-dir'):
    fetch.local_copy(ModelFile(str(path), '0' * 64))


def test_unreachable_url_is_refused_with_advice(tmp_path):
  model = ModelFile('https://127.0.0.1:9/m.tflite', '0' * 64)
  with pytest.raises(fetch.ModelUnavailable, match='Cannot fetch.*--model-dir'):
    fetch.local_copy(model, cache_dir=str(tmp_path))


def test_the_default_is_built_from_the_fp16_file_and_named_by_source_and_recipe():
  fp16 = registry.REGISTRY['magenta-fp16'].transfer
  chosen = registry.resolve_model_set(registry.DEFAULT_MODEL, model_dir='/m')
  assert chosen.name == 'magenta-fast'
  assert chosen.transfer.built_from == ModelFile(f'/m/{fp16.name}', fp16.sha256)
  assert chosen.transfer.identity == f'{registry.FAST_RECIPE}@{fp16.sha256}'
  rebuilt = dataclasses.replace(chosen.transfer, uri='/cache/x.tflite', sha256='other bytes')
  assert rebuilt.identity == chosen.transfer.identity  # the bytes do not name it
  published = registry.REGISTRY['magenta-int8'].transfer
  assert published.identity == published.sha256  # every other file: its sha256, as before
