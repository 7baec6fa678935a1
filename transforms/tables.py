"""The run's own tables (manifest JSON lines, state Parquet), written a shard per bundle and
committed by one step.

Beam's WriteToText and WriteToParquet each add a dozen transforms and four stages to the graph,
and the job writes three tables: most of the fixed cost a small run paid beyond Beam's own. Here
each bundle streams its rows of each table to a file of its own in a temp folder and outputs the
file's name; the commit step sees only the names of bundles the runner committed (a failed
attempt's file stays behind, unread, and goes with the folder), renames them to
`PREFIX-00000-of-00002SUFFIX` as Beam's sinks name them, and removes the folder. A table no bundle
wrote to gets one empty file, so every run has each of its tables. (Beam's `fileio.WriteToFiles`
is smaller than the sinks too, but logs and passes over a failed move: the run would end with a
summary and no manifest.)
"""
from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import uuid

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystem import BeamIOError, CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindows

from transforms import storage

PARQUET_BATCH_ROWS = 4096  # rows a Parquet shard holds as dicts before it makes them columns
PARQUET_GROUP_ROWS = 131072  # rows of a Parquet row group: a few MB of columns, held until full


@dataclasses.dataclass(frozen=True)
class Table:
  """Files `PREFIX-NNNNN-of-MMMMMSUFFIX`: Parquet rows (dicts) when `schema` is set, else lines
  (str, one per row)."""
  prefix: str
  suffix: str
  schema: pa.Schema | None = None

  def file_name(self, index: int, count: int) -> str:
    return f'{self.prefix}-{index:05d}-of-{count:05d}{self.suffix}'


class WriteTables(beam.PTransform):
  """(table name, row) -> every table's files, in place together; returns a one-element
  PCollection: `then(files, **side_inputs)`, called once the files are in place with each
  table's final file names (name -> list)."""

  def __init__(self, tables: dict[str, Table], temp_dir: str, then=None, **side_inputs):
    super().__init__()
    self._tables = tables
    self._temp_dir = temp_dir
    self._then = then
    self._side_inputs = side_inputs

  def expand(self, rows):
    shards = rows | 'WriteShards' >> beam.ParDo(_WriteShards(self._tables, self._temp_dir))
    return (rows.pipeline
            | 'Once' >> beam.Create([None])
            | 'Commit' >> beam.Map(self._commit, shards=beam.pvalue.AsList(shards),
                                   **self._side_inputs))

  def _commit(self, _, shards, **side_inputs):
    files = commit(self._tables, self._temp_dir, shards)
    return self._then(files, **side_inputs) if self._then else files


class _WriteShards(beam.DoFn):
  """Streams each bundle's rows of each table to a temp file; outputs (table name, its path)
  when the bundle ends."""

  def __init__(self, tables: dict[str, Table], temp_dir: str):
    self._tables = tables
    self._temp_dir = temp_dir
    self._open: dict[str, _Shard] = {}

  def start_bundle(self):
    self._abandon()

  def teardown(self):
    self._abandon()

  def _abandon(self) -> None:
    """Closes what a failed bundle left open: its files are never committed."""
    for shard in self._open.values():
      try:
        shard.close()
      except Exception:  # noqa: BLE001 - a failed attempt's file is never read
        pass
    self._open = {}

  def process(self, element):
    name, row = element
    shard = self._open.get(name)
    if shard is None:
      path = FileSystems.join(self._temp_dir, f'{name}-{uuid.uuid4().hex}')
      shard = self._open[name] = _Shard(self._tables[name], path)
    shard.add(row)

  def finish_bundle(self):
    for name, shard in self._open.items():
      shard.close()
      yield GlobalWindows.windowed_value((name, shard.path))
    self._open = {}


class _Shard:
  """One bundle's rows of one table, streamed to one file."""

  def __init__(self, table: Table, path: str):
    self.path = path
    self._file = FileSystems.create(path, 'application/octet-stream',
                                    CompressionTypes.UNCOMPRESSED)
    self._schema = table.schema
    self._names = set(table.schema.names) if table.schema is not None else set()
    self._parquet = (pq.ParquetWriter(self._file, table.schema, compression='snappy')
                     if table.schema is not None else None)
    self._batch: list[dict] = []
    self._columns: list[pa.Table] = []  # the row group being gathered
    self._rows = 0

  def add(self, row) -> None:
    if self._parquet is None:
      self._file.write(row.encode('utf-8') + b'\n')
      return
    if row.keys() != self._names:  # pyarrow would fill a missing column with null, silently
      raise ValueError(f'a row for {self.path} has columns {sorted(row)}, the table '
                       f'{sorted(self._names)}')
    self._batch.append(row)
    if len(self._batch) >= PARQUET_BATCH_ROWS:
      self._to_columns()
      if self._rows >= PARQUET_GROUP_ROWS:
        self._write_group()

  def _to_columns(self) -> None:
    if self._batch:
      self._columns.append(pa.Table.from_pylist(self._batch, schema=self._schema))
      self._rows += len(self._batch)
      self._batch = []

  def _write_group(self) -> None:
    if self._columns:
      self._parquet.write_table(pa.concat_tables(self._columns), row_group_size=self._rows)
      self._columns, self._rows = [], 0

  def close(self) -> None:
    if self._parquet is not None:
      self._to_columns()
      self._write_group()
      self._parquet.close()
    self._file.close()


def commit(tables: dict[str, Table], temp_dir: str, shards) -> dict[str, list[str]]:
  """Moves the committed `shards` ((table name, temp path)s) to their final names, writes an
  empty file for a table without any, removes `temp_dir`; returns each table's files. Run again
  (a retried commit), it finds its files moved and carries on."""
  files, sources, targets = {}, [], []
  for name, table in tables.items():
    temps = sorted(path for table_name, path in shards if table_name == name)
    count = max(len(temps), 1)
    files[name] = [table.file_name(i, count) for i in range(count)]
    if not temps:
      storage.write_bytes(files[name][0], _empty(table))
    sources += temps
    targets += files[name][:len(temps)]
  for folder in {os.path.dirname(target) for target in targets
                 if FileSystems.get_scheme(target) is None}:
    os.makedirs(folder, exist_ok=True)
  try:
    if sources:
      FileSystems.rename(sources, targets)
  except BeamIOError as e:
    if not e.exception_details:
      raise
    for (source, target), error in e.exception_details.items():
      if storage.exists(source) or not storage.exists(target):
        raise OSError(f'cannot move {source} to {target}: {error!r}') from None
  _remove(temp_dir)
  return files


def _empty(table: Table) -> bytes:
  if table.schema is None:
    return b''
  sink = pa.BufferOutputStream()
  pq.write_table(table.schema.empty_table(), sink, compression='snappy')
  return sink.getvalue().to_pybytes()


def _remove(temp_dir: str) -> None:
  """What is left in the temp folder is failed attempts' files: they cost space, never the run."""
  try:
    left = [found.path for found in storage.match(FileSystems.join(temp_dir, '**'))]
    if left:
      FileSystems.delete(left)
    if FileSystems.get_scheme(temp_dir) is None:
      shutil.rmtree(temp_dir, ignore_errors=True)
  except Exception as e:  # noqa: BLE001 - the next launch removes it (transforms.leftovers)
    logging.warning('temp folder %s not removed: %s: %s', temp_dir, type(e).__name__, e)
