"""Brings a model file to local disk once and proves it is the right file.

Workers and the launcher both call `local_copy`: a local file is used where it lies, anything else
(https://, gs://, any Beam filesystem) is copied once into a cache folder, and every file is checked
against its expected sha256 before an interpreter ever sees it.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
import urllib.request

import fasteners
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from models.registry import MODEL_DIR_ENV, ModelFile

CACHE_ENV = 'STYLIZE_MODEL_CACHE'
_HOW_TO_SUPPLY = (
    'Supply the model files another way: download them where you have internet and pass '
    f'--model-dir FOLDER (or set ${MODEL_DIR_ENV}), or name your own files with '
    '--model PREDICTION_URI,TRANSFER_URI (local or gs://).')


class ModelUnavailable(RuntimeError):
  """A model file that cannot be fetched, or is not the file it claims to be."""


def default_cache_dir() -> str:
  return os.environ.get(CACHE_ENV) or os.path.join(
      os.path.expanduser('~'), '.cache', 'batch-stylize', 'models')


def sha256_of(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      digest.update(block)
  return digest.hexdigest()


_THREADS = threading.Lock()  # a file lock does not keep out the other threads of one process


def local_copy(model: ModelFile, cache_dir: str | None = None,
               fresh: bool = False) -> tuple[str, str]:
  """Returns (local path, sha256) of a verified copy of `model`, fetching it at most once.

  `fresh` fetches it again even if cached: for a file named without a sha256, whose content may
  have changed at the same URI (the launcher does this, and pins workers to what it got)."""
  if os.path.exists(model.uri):
    return model.uri, _verified(model.uri, model)
  cache_dir = cache_dir or default_cache_dir()
  key = model.sha256 or hashlib.sha256(model.uri.encode()).hexdigest()
  cached = os.path.join(cache_dir, key[:16], model.name)
  os.makedirs(os.path.dirname(cached), exist_ok=True)
  # One download per machine: the SDK processes of a worker VM share its disk and wait here.
  with _THREADS, fasteners.InterProcessLock(cached + '.lock'):
    if os.path.exists(cached) and not fresh:
      digest = sha256_of(cached)
      if model.sha256 is None or digest == model.sha256:
        return cached, digest
      os.remove(cached)  # a stale or damaged cache entry: fetch it again
    digest = _download(model, cached)
  return cached, digest


def _download(model: ModelFile, cached: str) -> str:
  # Download beside the final name and rename, so a killed download never looks complete.
  fd, partial = tempfile.mkstemp(dir=os.path.dirname(cached), suffix='.partial')
  try:
    try:
      with os.fdopen(fd, 'wb') as out, _open_remote(model.uri) as src:
        shutil.copyfileobj(src, out, 1 << 20)
    except Exception as e:
      raise ModelUnavailable(f'Cannot fetch model file {model.uri}: {type(e).__name__}: {e}. '
                             f'{_HOW_TO_SUPPLY}') from e
    digest = _verified(partial, model)
    os.replace(partial, cached)
  finally:
    if os.path.exists(partial):
      os.remove(partial)
  return digest


def _open_remote(uri: str):
  if uri.startswith(('http://', 'https://')):
    return urllib.request.urlopen(uri, timeout=30)
  return FileSystems.open(uri, compression_type=CompressionTypes.UNCOMPRESSED)


def _verified(path: str, model: ModelFile) -> str:
  digest = sha256_of(path)
  if model.sha256 and digest != model.sha256:
    raise ModelUnavailable(
        f'Model file {model.uri} has sha256 {digest}, expected {model.sha256}: it is damaged, '
        f'truncated or a different file. {_HOW_TO_SUPPLY}')
  return digest
