"""Reading and writing whole files through Beam's FileSystems, for any scheme (local, gs://, ...).

Transient failures (connection resets, timeouts, HTTP 408/429/5xx) are retried with exponential
backoff, a bounded number of times; anything else (missing file, permission, bad request) fails at
once, to become a dead letter.
"""
from __future__ import annotations

import logging
import uuid

import requests
from apache_beam.io.filesystem import BeamIOError, CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.utils import retry
from google.api_core.exceptions import GoogleAPICallError

from transforms.records import METRICS_NAMESPACE

# The HTTP library under google-cloud-storage raises its own kinds of network error.
_LIBRARY_NETWORK_ERRORS = (requests.exceptions.ConnectionError, requests.exceptions.Timeout)

RETRIES = 4
INITIAL_DELAY_SECS = 0.5
_TRANSIENT_CODES = {408, 429}
_PERMANENT = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)


def is_transient(error: BaseException) -> bool:
  if isinstance(error, BeamIOError) and error.exception_details:
    return all(is_transient(e) for e in error.exception_details.values())
  if isinstance(error, _PERMANENT):
    return False
  if isinstance(error, GoogleAPICallError):
    code = error.code or 0
    return code in _TRANSIENT_CODES or code >= 500
  return isinstance(error, (ConnectionError, TimeoutError) + _LIBRARY_NETWORK_ERRORS)


def _count_retry(_template, delay, function, error, _traceback):
  Metrics.counter(METRICS_NAMESPACE, 'io_retries').inc()
  logging.warning('%s: transient error, retrying in %.1f s: %s', function, delay, error.strip())


_with_retries = retry.with_exponential_backoff(
    num_retries=RETRIES, initial_delay_secs=INITIAL_DELAY_SECS, retry_filter=is_transient,
    logger=_count_retry)


@_with_retries
def read_bytes(uri: str) -> bytes:
  with FileSystems.open(uri, compression_type=CompressionTypes.UNCOMPRESSED) as f:
    return f.read()


@_with_retries
def write_bytes(uri: str, data: bytes, mime_type: str = 'application/octet-stream') -> None:
  """Writes `data` so that no partial file ever shows at `uri`.

  An object store (gs://) makes an object visible only once its upload completes; a local file is
  written under a temporary name in the same folder and renamed into place (atomic on POSIX).
  """
  if FileSystems.get_scheme(uri) not in (None, 'file'):
    with FileSystems.create(uri, mime_type, CompressionTypes.UNCOMPRESSED) as f:
      f.write(data)
    return
  folder, name = uri.rsplit('/', 1) if '/' in uri else ('.', uri)
  partial = FileSystems.join(folder, f'.{name}.{uuid.uuid4().hex[:8]}.partial')
  try:
    with FileSystems.create(partial, mime_type, CompressionTypes.UNCOMPRESSED) as f:
      f.write(data)
    FileSystems.rename([partial], [uri])
  finally:
    if FileSystems.exists(partial):
      FileSystems.delete([partial])


@_with_retries
def match(pattern: str, limit: int | None = None) -> list:
  """The FileMetadata of the files matching `pattern` (at most `limit`)."""
  return FileSystems.match([pattern], None if limit is None else [limit])[0].metadata_list


@_with_retries
def version_of(uri: str) -> str | None:
  """A cheap stand-in for the file's content version: size and modification time (None: absent).

  One metadata lookup of exactly this name (no glob), no download; a changed file gets a new
  version."""
  try:
    return version_from(FileSystems.get_filesystem(uri).metadata(uri))
  except (FileNotFoundError, BeamIOError) as e:
    if isinstance(e, BeamIOError) and not all(
        isinstance(x, FileNotFoundError) for x in (e.exception_details or {}).values()):
      raise
    return None


def version_from(metadata) -> str:
  return f'{metadata.size_in_bytes}@{metadata.last_updated_in_seconds}'
