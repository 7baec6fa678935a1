"""Where the pictures come from: glob patterns and list files, turned into `ImageRef`s.

Output names come from ids, so ids are made deterministic and safe here: a matched file's id is its
file stem plus a short hash of its full URI (two `photo.jpg` in different folders never collide),
and an id given in a list file must be a plain relative path that cannot leave the output folder.
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import os
import re
import typing

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from models import style_bank
from transforms import storage
from transforms.records import ImageRef

_UNSAFE = re.compile(r'[^\w.-]+')
_SAFE_ID = re.compile(r'^\w[\w.-]*(/\w[\w.-]*)*$')
SAFE_NAME = re.compile(r'^\w[\w.-]*$')  # one path part: a style's own name
_MAX_ID_LENGTH = 200


def file_stem(uri: str) -> str:
  name = uri.rstrip('/').rsplit('/', 1)[-1]
  stem = name.rsplit('.', 1)[0] if '.' in name[1:] else name
  return _UNSAFE.sub('_', stem).strip('._') or 'image'


def uri_hash(uri: str) -> str:
  return hashlib.sha1(uri.encode('utf-8', 'surrogateescape')).hexdigest()[:8]


def content_ref(uri: str, given_id: str | None = None, version: str | None = None,
                problem: str | None = None) -> ImageRef:
  """The ref of a content picture; a bad `given_id` (or row) is recorded, to fail that picture
  alone."""
  if problem:
    return ImageRef(uri, None, problem)
  if given_id is None or given_id == '':
    return ImageRef(uri, f'{file_stem(uri)}-{uri_hash(uri)}', version=version)
  if len(given_id) > _MAX_ID_LENGTH or not _SAFE_ID.match(given_id):
    return ImageRef(uri, None, f'id {given_id!r} is not a safe relative name (letters, digits, '
                               f'"_", "-", "." and "/" between parts; no "..", no leading "/")')
  return ImageRef(uri, given_id, version=version)


def style_refs(uris_and_ids: list[tuple[str, str | None]]) -> list[ImageRef]:
  """Distinct styles in first-seen order; a style's id is its given id or its file stem,
  with a hash of its URI added where two different styles would share a name."""
  distinct: dict[str, tuple[str | None, str | None]] = {}
  for uri, given, *problem in uris_and_ids:
    distinct.setdefault(uri, (given or None, problem[0] if problem else None))
  refs = [content_ref(uri, given, problem=problem) if given or problem
          else ImageRef(uri, file_stem(uri)) for uri, (given, problem) in distinct.items()]
  names = [ref.id for ref in refs]
  # Every style needs a distinct, usable key: an unusable one keeps its problem (its pairs are
  # dead-lettered), and names used twice get a hash of their URI.
  return [ref if ref.id and names.count(ref.id) == 1 else dataclasses.replace(
      ref, id=f'{ref.id or "invalid"}-{uri_hash(ref.uri)}') for ref in refs]


class ListRow(typing.NamedTuple):
  uri: str
  id: str | None
  problem: str | None = None
  version: str | None = None


def read_list_file(list_uri: str):
  """Yields a `ListRow` (uri, id, problem, version; None where absent) for each row of a list file.

  `.csv`: a header with a `uri` column and optional `id` and `version` columns; `.jsonl`/`.json`:
  one object per line with the same keys; anything else: one URI per line (blank lines and `#`
  comments skipped). A `version` (the catalog's own: an updated-at time, an etag, a hash) stands
  for the file's state, so a re-run needs no request to see whether the picture changed.
  Relative paths are taken relative to the list file's folder. A row that cannot be read is
  yielded with its problem (it becomes one dead letter), never raised: the other rows go on.
  A CSV file without a `uri` column raises ValueError.
  """
  folder = list_uri.rstrip('/').rsplit('/', 1)[0] if '/' in list_uri else '.'
  storage.check_regular_file(list_uri)  # a FIFO would be waited on forever
  with FileSystems.open(list_uri, compression_type=CompressionTypes.UNCOMPRESSED) as raw:
    text = io.TextIOWrapper(raw, encoding='utf-8-sig', errors='replace')
    lower = list_uri.lower()
    if lower.endswith('.csv'):
      reader = csv.DictReader(text)
      if 'uri' not in (reader.fieldnames or []):
        raise ValueError(f'{list_uri}: a CSV list needs a "uri" column, found {reader.fieldnames}')
      rows = ((row.get('uri'), row.get('id'), row.get('version')) for row in reader)
    elif lower.endswith(('.jsonl', '.json')):
      rows = map(_json_row, filter(str.strip, text))
    else:
      rows = ((line.strip(), None, None) for line in text
              if line.strip() and not line.lstrip().startswith('#'))
    for number, (uri, given_id, version) in enumerate(rows, 1):
      if not isinstance(uri, str) or '\ufffd' in uri:
        yield ListRow(f'{list_uri}#row{number}', None,
                      f'row {number} has no usable "uri": {uri!r:.100}')
      elif uri.strip():
        given = str(given_id).strip() if given_id not in (None, '') else None
        listed = f'listed:{str(version).strip()}' if version not in (None, '') else None
        yield ListRow(_relative_to(folder, uri.strip()), given, None, listed)


def _json_row(line: str):
  try:
    row = json.loads(line)
  except ValueError:
    return None, None, None
  if not isinstance(row, dict):
    return None, None, None
  return row.get('uri'), row.get('id'), row.get('version')


def _relative_to(folder: str, uri: str) -> str:
  if (FileSystems.get_scheme(uri) is not None or os.path.isabs(uri)
      or style_bank.is_builtin(uri)):
    return uri
  return FileSystems.join(folder, uri)


class ContentRefs(beam.PTransform):
  """Content pictures named by glob patterns and list files, as `ImageRef`s.

  Matching runs inside the job, so a glob over a million files is listed by the runner, not by
  the launcher: a gs:// glob in name-range slices, one worker each, streamed into the join
  (`storage.listing_shards`). The caller fans the result out so reading spreads over all workers.
  A matched file's version comes with its match; a listed one's is its list file's `version`, or
  looked up after the fan-out.
  """

  def __init__(self, patterns: list[str], list_files: list[str]):
    super().__init__()
    self._patterns = patterns
    self._list_files = list_files

  def expand(self, pbegin):
    matched = (
        pbegin
        | 'Patterns' >> beam.Create(self._patterns)
        | 'Shards' >> beam.FlatMap(storage.listing_shards)
        | 'SpreadListing' >> beam.Reshuffle()
        | 'Match' >> beam.FlatMap(storage.match_shard)
        | 'RefOfMatch' >> beam.Map(
            lambda found: content_ref(found.path, version=found.version, problem=found.problem)))
    listed = (
        pbegin
        | 'ListFiles' >> beam.Create(self._list_files)
        | 'ReadListFile' >> beam.FlatMap(read_list_file)
        | 'RefOfRow' >> beam.Map(
            lambda row: content_ref(row.uri, row.id, row.version, problem=row.problem)))
    return (matched, listed) | 'All' >> beam.Flatten()
