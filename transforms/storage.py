"""Reading and writing whole files through Beam's FileSystems, for any scheme (local, gs://, ...).

Transient failures (connection resets, timeouts, HTTP 408/429/5xx) are retried with exponential
backoff, a bounded number of times; anything else (missing file, permission, bad request) fails at
once, to become a dead letter.
"""
from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import re
import stat
import threading
import time
import uuid

import requests
from apache_beam.io.filesystem import BeamIOError, CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.utils import retry
from google.api_core.exceptions import GoogleAPICallError, PreconditionFailed
from google.cloud import storage as gcs

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


HEAD_BYTES = 64 * 1024
_CLIENTS = threading.local()


def client() -> gcs.Client:
  """This thread's Cloud Storage client: made once, not per request (clients are not shared
  between threads, and a forked process or another emulator gets a new one)."""
  key = (os.getpid(), os.environ.get('STORAGE_EMULATOR_HOST'))
  if getattr(_CLIENTS, 'key', None) != key:
    _CLIENTS.key, _CLIENTS.client = key, gcs.Client()
  return _CLIENTS.client


class FileTooLarge(ValueError):
  """A file over the size the caller accepts (--max-bytes for pictures)."""


@_with_retries
def read_bytes(uri: str, max_bytes: int | None = None, check_head=None) -> bytes:
  """The file's bytes. A local path that is not a regular file is refused before it is opened.

  `check_head(first bytes)` may raise to refuse the file before the rest is read, and a file over
  `max_bytes` is refused having read no more than that: junk costs a little reading, not memory.
  """
  check_regular_file(uri)
  with FileSystems.open(uri, compression_type=CompressionTypes.UNCOMPRESSED) as f:
    if max_bytes is None and check_head is None:
      return f.read()
    head = f.read(HEAD_BYTES)
    if check_head is not None:
      check_head(head)
    rest = f.read() if max_bytes is None else f.read(max_bytes + 1 - len(head))
  if max_bytes is not None and len(head) + len(rest) > max_bytes:
    raise FileTooLarge(f'the file is over {max_bytes} bytes (--max-bytes)')
  return head + rest


@_with_retries
def write_bytes(uri: str, data: bytes, mime_type: str = 'application/octet-stream',
                cache_control: str | None = None, metadata: dict[str, str] | None = None) -> None:
  """Writes `data` so that no partial file ever shows at `uri`.

  An object store makes an object visible only once its upload completes: on gs:// one request,
  with the client, which also sets `Cache-Control` and custom `metadata` (Beam's FileSystems
  cannot; other filesystems have neither). A local file is written under a temporary name in the
  same folder and renamed into place (atomic on POSIX).
  """
  scheme = FileSystems.get_scheme(uri)
  if scheme == 'gs':
    bucket, name = uri[len('gs://'):].split('/', 1)
    blob = client().bucket(bucket).blob(name)
    blob.cache_control, blob.metadata = cache_control, metadata
    blob.upload_from_string(data, content_type=mime_type)
    return
  if scheme not in (None, 'file'):
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
def exists(uri: str) -> bool:
  """Whether a file is there: on gs:// one request (Beam's FileSystems makes three or four)."""
  if FileSystems.get_scheme(uri) == 'gs':
    bucket, name = uri[len('gs://'):].split('/', 1)
    return client().bucket(bucket).blob(name).exists()
  return FileSystems.exists(uri)


@dataclasses.dataclass(frozen=True)
class Found:
  """A file a pattern matched: its version (size@mtime), or why it cannot be read as a file."""
  path: str
  version: str | None = None
  problem: str | None = None  # e.g. a FIFO, a dangling link: the picture's dead letter says so


def is_pattern(uri: str) -> bool:
  return any(c in uri for c in '*?[')


def fixed_folder(pattern: str) -> str:
  """The folder of the part of `pattern` before its first glob character: all it can match lies
  below it ('' for a relative pattern in the current folder)."""
  return os.path.dirname(re.match(r'[^[*?]*', pattern).group(0))


def glob_regex(pattern: str) -> re.Pattern:
  """fnmatch's syntax with '/' alone as the separator: `*` and `?` never cross a '/', `**` does.

  Beam's own translation also stops `*` at a backslash, a legal character of POSIX file and
  object names, so such a file would silently go unmatched."""
  out, i = [], 0
  while i < len(pattern):
    c = pattern[i]
    if pattern.startswith('**', i):
      out.append('.*')
      i += 2
      continue
    i += 1
    if c == '*':
      out.append('[^/]*')
    elif c == '?':
      out.append('[^/]')
    elif c == '[' and (end := pattern.find(']', i + (pattern[i:i + 1] in ('!', ']')))) > 0:
      body = pattern[i:end].replace('\\', '\\\\')
      out.append('[' + ('^' + body[1:] if body.startswith('!') else body) + ']')
      i = end + 1
    else:
      out.append(re.escape(c))
  return re.compile('(?s)' + ''.join(out) + r'\Z')


@_with_retries
def match(pattern: str, limit: int | None = None) -> list[Found]:
  """The files matching `pattern` (at most `limit`), each with its version or its problem.

  A pattern that names an existing file is that file, brackets or stars in its name included.
  Folders are never matched. Locally, what is not a regular file (a FIFO, a socket, a device, a
  dangling or looping link) is matched with its problem, so the job can account for it without
  opening it (opening a FIFO would wait forever)."""
  local = FileSystems.get_scheme(pattern) is None
  found = _match_local(pattern) if local else _match_remote(pattern)
  return list(itertools.islice(found, limit))


def _match_local(pattern: str):
  if os.path.lexists(pattern) and not os.path.isdir(pattern):
    yield _local_file(pattern)
    return
  if not is_pattern(pattern):
    return
  root = fixed_folder(pattern)
  regex = glob_regex(pattern)
  depth = None if '**' in pattern else pattern.count('/')
  for folder, subfolders, names in os.walk(root or os.curdir):
    if depth is not None and folder.count('/') + 1 >= depth + (0 if root else 1):
      subfolders[:] = []  # deeper files have too many parts to match
    for name in names:
      path = os.path.join(folder, name) if root else os.path.relpath(os.path.join(folder, name))
      if regex.match(path):
        yield _local_file(path)


def _local_file(path: str) -> Found:
  try:
    info = os.stat(path)
  except OSError as e:
    return Found(path, problem=f'cannot be read: {e.strerror or e} (a dangling or looping link?)')
  if not stat.S_ISREG(info.st_mode):
    kind = _KINDS.get(stat.S_IFMT(info.st_mode), 'a special file')
    return Found(path, problem=f'not a regular file: {kind}')
  return Found(path, f'{info.st_size}@{info.st_mtime}')


_KINDS = {stat.S_IFIFO: 'a FIFO', stat.S_IFSOCK: 'a socket', stat.S_IFCHR: 'a character device',
          stat.S_IFBLK: 'a block device', stat.S_IFDIR: 'a folder'}


def _match_remote(pattern: str):
  if is_pattern(pattern) and FileSystems.exists(pattern):
    yield Found(pattern, version_from(FileSystems.get_filesystem(pattern).metadata(pattern)))
    return
  if FileSystems.get_scheme(pattern) == 'gs':  # streamed, so a `limit` stops the listing early
    yield from _list_gs(pattern)
    return
  regex = glob_regex(pattern)
  # Beam's `*` stops at a backslash; `**` does not: list with `**`, then filter by the pattern.
  listing = FileSystems.match([re.sub(r'\*+', '**', pattern)])[0].metadata_list
  for metadata in listing:
    if regex.match(metadata.path) and not metadata.path.endswith('/'):
      yield Found(metadata.path, version_from(metadata))


# Where a glob over gs:// is cut into name ranges, each listed by one worker.
_SPLITS = ('0', '4', '8', 'A', 'H', 'O', 'V', 'a', 'h', 'o', 'v')


def listing_shards(pattern: str) -> list[tuple[str, str | None, str | None]]:
  """(pattern, first, end) slices of a glob's name range, together covering it all: Cloud Storage
  lists a name range by itself, so a bucket of millions of objects is listed by many workers at
  once. A local pattern stays whole: one walk of the local disk."""
  if FileSystems.get_scheme(pattern) != 'gs' or not is_pattern(pattern):
    return [(pattern, None, None)]
  bounds = [None, *_SPLITS, None]
  return [(pattern, first, end) for first, end in zip(bounds, bounds[1:])]


def match_shard(shard: tuple[str, str | None, str | None]):
  """The files of one slice of `listing_shards`, streamed: a listing is never held whole."""
  pattern, first, end = shard
  if first is None and end is None:
    local = FileSystems.get_scheme(pattern) is None
    yield from _match_local(pattern) if local else match(pattern)
    return
  yield from _list_gs(pattern, first, end)


def _list_gs(pattern: str, first: str | None = None, end: str | None = None):
  """The objects matching a gs:// glob, page by page, within the name range [first, end) of the
  names after its fixed prefix when given."""
  bucket, _, name = pattern[len('gs://'):].partition('/')  # a bare bucket: no name
  fixed = re.match(r'[^[*?]*', name).group(0)
  regex = glob_regex(pattern)
  start, stop = (fixed + first if first else None), (fixed + end if end else None)
  exact = fixed == name  # no glob: the file, if there, is the first object of its own prefix
  for blob in client().list_blobs(bucket, prefix=fixed, start_offset=start, end_offset=stop,
                                  max_results=1 if exact else None):
    if exact and blob.name != fixed:
      return  # names sort after their prefix: the file is not there
    if (start and blob.name < start) or (stop and blob.name >= stop) or blob.name.endswith('/'):
      continue  # outside the slice: for a server that does not honour the offsets
    path = f'gs://{bucket}/{blob.name}'
    if regex.match(path):
      yield Found(path, f'{blob.size}@{_seconds(blob.updated)}')


def _seconds(updated) -> float:
  """An object's update time as Beam's GCS filesystem gives it (`GcsIO._updated_to_seconds`),
  so a version from a listing equals one from a metadata lookup of the same object."""
  return time.mktime(updated.timetuple()) - time.timezone + updated.microsecond / 1000000.0


def check_regular_file(uri: str) -> None:
  """Raises OSError for a local path that is not a regular file, before anyone opens it."""
  if FileSystems.get_scheme(uri) is None and os.path.lexists(uri) and not os.path.isdir(uri):
    problem = _local_file(uri).problem  # a missing file or a folder: open() says so itself
    if problem:
      raise NotARegularFile(problem)


class NotARegularFile(OSError):
  """A FIFO, socket, device or dangling link where a picture was expected."""


def create_exclusive(uri: str, data: bytes) -> bool:
  """Writes `data` to `uri` unless something is there already; False if it was. One writer wins
  however many try at once: locally by O_EXCL, on gs:// by a does-not-exist precondition
  (generation 0) that Cloud Storage enforces."""
  scheme = FileSystems.get_scheme(uri)
  if scheme is None:
    os.makedirs(os.path.dirname(uri) or '.', exist_ok=True)
    try:
      with open(uri, 'xb') as f:
        f.write(data)
    except FileExistsError:
      return False
    return True
  if scheme == 'gs':
    bucket, name = uri[len('gs://'):].split('/', 1)
    blob = client().bucket(bucket).blob(name)
    if blob.exists():
      return False
    try:
      blob.upload_from_string(data, if_generation_match=0)
    except PreconditionFailed:
      return False
    return True
  if FileSystems.exists(uri):  # another filesystem: no atomic test-and-set, a check suffices
    return False
  write_bytes(uri, data)
  return True


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
