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
import math
import os
import re
import typing

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from models import style_bank
from transforms import storage
from transforms.records import BLEND_PREFIX, METRICS_NAMESPACE, ImageRef

_UNSAFE = re.compile(r'[^\w.-]+')
_SAFE_ID = re.compile(r'^\w[\w.-]*(/\w[\w.-]*)*$')
SAFE_NAME = re.compile(r'^\w[\w.-]*$')  # one path part: a style's own name
_MAX_ID_LENGTH = 200
# What `write.output_uri` appends to a content id for a strength below 1 or one of several
# widths: a content id that already ends so would share a file name with another id's output.
_OUTPUT_SUFFIX = re.compile(r'\.(s0\.\d\d|w[1-9]\d*)$')


def absolute(uri: str) -> str:
  """A local path absolute and normalized, so one file has one URI however it is spelled
  (`a/../b.jpg`, `./b.jpg`, from another folder): ids hash URIs. Other URIs (`gs://`,
  `builtin:`, `blend:`) as they are."""
  if FileSystems.get_scheme(uri) is not None or ':' in uri.split('/', 1)[0]:
    return uri
  return os.path.normpath(os.path.abspath(uri))


def file_stem(uri: str) -> str:
  name = uri.rstrip('/').rsplit('/', 1)[-1]
  stem = name.rsplit('.', 1)[0] if '.' in name[1:] else name
  return _UNSAFE.sub('_', stem).strip('._') or 'image'


def uri_hash(uri: str) -> str:
  return hashlib.sha1(uri.encode('utf-8', 'surrogateescape')).hexdigest()[:8]


def content_ref(uri: str, given_id: str | None = None, version: str | None = None,
                problem: str | None = None, styles: tuple[str, ...] | None = None,
                mask: str | None = None, *, names_files: bool = True) -> ImageRef:
  """The ref of a content picture; a bad `given_id` (or row) is recorded, to fail that picture
  alone. `styles`: the style references its row assigns (None: the job's --styles); `mask`:
  its row's mask picture. `names_files`: the id names output files (a content's), not a folder
  (a style's)."""
  more = {'styles': styles, 'mask': mask}
  if problem:
    return ImageRef(uri, None, problem, **more)
  if given_id is None or given_id == '':
    return ImageRef(uri, f'{file_stem(uri)}-{uri_hash(uri)}', version=version, **more)
  if len(given_id) > _MAX_ID_LENGTH or not _SAFE_ID.match(given_id):
    return ImageRef(uri, None, f'id {given_id!r} is not a safe relative name (letters, digits, '
                               f'"_", "-", "." and "/" between parts; no "..", no leading "/")',
                    **more)
  if names_files and _OUTPUT_SUFFIX.search(given_id):
    return ImageRef(uri, None, f'id {given_id!r} ends like the name of another id\'s output at '
                               f'a strength or width (".s0.50", ".w480"), whose file it could '
                               f'overwrite', **more)
  return ImageRef(uri, given_id, version=version, **more)


def style_refs(uris_and_ids: list[tuple[str, str | None]]) -> list[ImageRef]:
  """Distinct styles in first-seen order; a style's id is its given id or its file stem,
  with a hash of its URI added where two different styles would share a name."""
  distinct: dict[str, tuple[str | None, str | None]] = {}
  for uri, given, *problem in uris_and_ids:
    distinct.setdefault(uri, (given or None, problem[0] if problem else None))
  refs = [content_ref(uri, given, problem=problem, names_files=False) if given or problem
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
  styles: tuple[str, ...] | None = None  # the row's own style references; None: --styles
  mask: str | None = None  # the row's mask picture


COLUMNS = ('uri', 'id', 'version', 'styles', 'mask')  # what a list file's rows may hold
STYLE_SEPARATOR = ';'


def read_list_file(list_uri: str, blend_names: frozenset[str] = frozenset()):
  """Yields a `ListRow` for each row of a list file.

  `.csv`: a header with a `uri` column and optional `id`, `version` and `styles` columns;
  `.jsonl`/`.json`: one object per line with the same keys; `.parquet`: a table with the same
  columns (what a warehouse export is); anything else: one URI per line (blank lines and `#`
  comments skipped). A `version` (the catalog's own: an updated-at time, an etag, a hash) stands
  for the file's state, so a re-run needs no request to see whether the picture changed.
  `styles`: the row's style references separated by ";" (style pictures, `builtin:NAME`, or the
  name of a --style-blend, one of `blend_names`); empty or absent: the job's --styles.
  Relative paths are taken relative to the list file's folder. A row that cannot be read is
  yielded with its problem (it becomes one dead letter), never raised: the other rows go on.
  A CSV or Parquet file without a `uri` column raises ValueError.
  """
  folder = list_uri.rstrip('/').rsplit('/', 1)[0] if '/' in list_uri else '.'
  storage.check_regular_file(list_uri)  # a FIFO would be waited on forever
  with FileSystems.open(list_uri, compression_type=CompressionTypes.UNCOMPRESSED) as raw:
    lower = list_uri.lower()
    if lower.endswith('.parquet'):
      rows = _parquet_rows(raw, list_uri)
    else:
      text = io.TextIOWrapper(raw, encoding='utf-8-sig', errors='replace')
      if lower.endswith('.csv'):
        reader = csv.DictReader(text)
        if 'uri' not in (reader.fieldnames or []):
          raise ValueError(f'{list_uri}: a CSV list needs a "uri" column, found '
                           f'{reader.fieldnames}')
        rows = ([row.get(column) for column in COLUMNS] for row in reader)
      elif lower.endswith(('.jsonl', '.json')):
        rows = map(_json_row, filter(str.strip, text))
      else:
        rows = ((line.strip(), None, None, None, None) for line in text
                if line.strip() and not line.lstrip().startswith('#'))
    for number, (uri, given_id, version, styles, mask_cell) in enumerate(rows, 1):
      assigned = _style_refs(folder, styles, blend_names)
      mask = _cell(mask_cell)
      mask = _relative_to(folder, mask) if mask else None
      if not isinstance(uri, str) or '\ufffd' in uri:
        yield ListRow(f'{list_uri}#row{number}', None,
                      f'row {number} has no usable "uri": {uri!r:.100}', styles=assigned)
      elif uri.strip():
        listed = f'listed:{_cell(version)}' if _cell(version) else None
        yield ListRow(_relative_to(folder, uri.strip()), _cell(given_id), None, listed, assigned,
                      mask)
      elif assigned or any(map(_cell, (given_id, version, mask_cell))):  # not a blank row
        yield ListRow(f'{list_uri}#row{number}', None, f'row {number} has an empty "uri"',
                      styles=assigned)


def _cell(value) -> str | None:
  """A cell as text; None when empty. What exports make of missing values (NaN, blanks) is
  empty, and a whole number a float column holds (`123.0`, pandas' way with gaps) is `123`."""
  if value is None or (isinstance(value, float) and math.isnan(value)):
    return None
  if isinstance(value, float) and value.is_integer():
    value = int(value)
  return str(value).strip() or None


def named_styles(list_uri: str, blend_names: frozenset[str] = frozenset()) -> set[str]:
  """The distinct style references a list file's rows name: one pass over its "styles" column,
  none where it has no such column (a CSV header or a Parquet schema says so)."""
  lower = list_uri.lower()
  with FileSystems.open(list_uri, compression_type=CompressionTypes.UNCOMPRESSED) as raw:
    if lower.endswith('.parquet'):
      columns = pq.ParquetFile(raw).schema_arrow.names
    elif lower.endswith('.csv'):
      columns = next(csv.reader(io.TextIOWrapper(raw, encoding='utf-8-sig', errors='replace')),
                     [])
    else:
      columns = COLUMNS if lower.endswith(('.jsonl', '.json')) else ()
  if 'styles' not in columns:
    return set()
  return {style for row in read_list_file(list_uri, blend_names) for style in row.styles or ()}


def _parquet_rows(raw, list_uri: str):
  """Rows of a Parquet list file, one record batch in memory at a time."""
  table = pq.ParquetFile(raw)
  names = table.schema_arrow.names
  if 'uri' not in names:
    raise ValueError(f'{list_uri}: a Parquet list needs a "uri" column, found {names}')
  present = [column for column in COLUMNS if column in names]
  for batch in table.iter_batches(columns=present):
    values = batch.to_pydict()
    for i in range(batch.num_rows):
      row = [values[column][i] if column in values else None for column in COLUMNS]
      yield ['' if row[0] is None else row[0], *row[1:]]  # a null uri: an empty cell, as in CSV


def _style_refs(folder: str, styles, blend_names: frozenset[str]) -> tuple[str, ...] | None:
  """A row's `styles` cell as style references: blend names as `blend:NAME`, the rest as
  `--styles` takes them, relative paths relative to the list file."""
  if isinstance(styles, (list, tuple)):  # an array column (BigQuery's ARRAY<STRING>)
    styles = STYLE_SEPARATOR.join(str(s) for s in styles if _cell(s))
  if _cell(styles) is None:
    return None
  refs = []
  for part in map(str.strip, str(styles).split(STYLE_SEPARATOR)):
    if part and part in blend_names:
      refs.append(BLEND_PREFIX + part)
    elif part and not part.startswith(BLEND_PREFIX):
      refs.append(_relative_to(folder, part))
    elif part:
      refs.append(part)
  return tuple(dict.fromkeys(refs)) or None


def _json_row(line: str):
  try:
    row = json.loads(line)
  except ValueError:
    return (None,) * len(COLUMNS)
  if not isinstance(row, dict):
    return (None,) * len(COLUMNS)
  return [row.get(column) for column in COLUMNS]


def _relative_to(folder: str, uri: str) -> str:
  if not (FileSystems.get_scheme(uri) is not None or os.path.isabs(uri)
          or style_bank.is_builtin(uri)):
    uri = FileSystems.join(folder, uri)
  return absolute(uri)


_IN_OUTPUT = Metrics.counter(METRICS_NAMESPACE, 'contents_in_output_left_out')


def _outside(found: storage.Found, output: str | None) -> bool:
  """Whether a matched file lies outside the job's output (counted when it does not)."""
  if output is None or not found.path.startswith(output.rstrip('/') + '/'):
    return True
  _IN_OUTPUT.inc()
  return False


class ContentRefs(beam.PTransform):
  """Content pictures named by glob patterns and list files, as `ImageRef`s.

  Matching runs inside the job, so a glob over a million files is listed by the runner, not by
  the launcher: a gs:// glob in name-range slices, one worker each, streamed into the join
  (`storage.listing_shards`). The caller fans the result out so reading spreads over all workers.
  A matched file's version comes with its match; a listed one's is its list file's `version`, or
  looked up after the fan-out. Files a pattern matches under `output` are the job's own (outputs,
  manifests, thumbnails, when the output lies inside the catalog's folder): they are left out,
  and counted, so a nightly run never stylizes what an earlier one wrote.
  """

  def __init__(self, patterns: list[str], list_files: list[str],
               blend_names: frozenset[str] = frozenset(), output: str | None = None):
    super().__init__()
    self._patterns = patterns
    self._list_files = list_files
    self._blend_names = blend_names
    self._output = output

  def expand(self, pbegin):
    branches = []  # only those there is something for: every step costs each run time
    if self._patterns or not self._list_files:
      branches.append(
          pbegin
          | 'Patterns' >> beam.Create(self._patterns)
          | 'Shards' >> beam.FlatMap(storage.listing_shards)
          | 'SpreadListing' >> beam.Reshuffle()
          | 'Match' >> beam.FlatMap(storage.match_shard)
          | 'NotTheJobsOwn' >> beam.Filter(_outside, self._output)
          | 'RefOfMatch' >> beam.Map(
              lambda found: content_ref(found.path, version=found.version, problem=found.problem)))
    if self._list_files:
      branches.append(
          pbegin
          | 'ListFiles' >> beam.Create(self._list_files)
          | 'ReadListFile' >> beam.FlatMap(read_list_file, self._blend_names)
          | 'RefOfRow' >> beam.Map(
              lambda row: content_ref(row.uri, row.id, row.version, row.problem, row.styles,
                                      row.mask)))
    return tuple(branches) | 'All' >> beam.Flatten()
