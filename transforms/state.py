"""The state a nightly re-run reads: one compact snapshot of every done pair, not the history.

Each run publishes `OUTPUT/_state/snapshots/RUN_ID/part-*.parquet`: one row per output it knows
to be done (written or skipped by this run, or recorded before and still there), with the
fingerprint it was made with. pandas, DuckDB or a BigQuery external table read the files as they
are. A snapshot becomes current only once it is complete: the run writes its files, then
`OUTPUT/_state/CURRENT.json`, one small object naming it, last. A run that dies leaves the
previous snapshot current; the next run reads that one, in parallel, one file per worker.

The per-run JSONL manifests stay the audit log; nothing reads them on the hot path, but for an
output folder with no snapshot yet (its first run under this scheme builds one from them).
Damage costs a counted, named warning and at most a re-render: an unreadable snapshot file is
passed over, an unreadable CURRENT.json falls back to the manifests.
"""
from __future__ import annotations

import io
import json
import logging

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from transforms import layout, storage, tables
from transforms.records import (
  FAILED,
  METRICS_NAMESPACE,
  ManifestRow,
  content_key,
)

CURRENT = 'CURRENT.json'
SCHEMA = pa.schema([
    ('output_uri', pa.string()), ('content_key', pa.binary()), ('content_uri', pa.string()),
    ('content_id', pa.string()), ('style_id', pa.string()), ('strength', pa.float64()),
    ('status', pa.string()), ('fingerprint', pa.string()), ('model_sha256', pa.string()),
    ('run_id', pa.string()), ('recorded_at', pa.string()),
    # every file of a pair with --sizes; null or empty: the output_uri alone (older snapshots
    # lack the column, and are read with it null)
    ('variants', pa.list_(pa.string()))])


def state_dir(output: str) -> str:
  return FileSystems.join(output, layout.STATE_DIR)


def snapshot_dir(output: str, run_id: str) -> str:
  return FileSystems.join(state_dir(output), 'snapshots', run_id)


def current_snapshot(output: str) -> str | None:
  """The folder of the current snapshot, or None: none published yet, or CURRENT.json unreadable
  (then a warning, and the manifests are read instead)."""
  uri = FileSystems.join(state_dir(output), CURRENT)
  try:
    if not storage.match(uri, limit=1):
      return None
    pointer = json.loads(storage.read_bytes(uri))
    return FileSystems.join(state_dir(output), pointer['snapshot'])
  except Exception as e:  # noqa: BLE001 - damaged state costs a warning and a slower start
    logging.warning('%s is unreadable (%s: %s): the earlier manifests are read instead', uri,
                    type(e).__name__, e)
    return None


def to_record(row: ManifestRow) -> dict:
  """A done pair as a snapshot row. Parquet strings are UTF-8: a URI that is not keeps its exact
  bytes in `content_key` and shows with replacement characters."""
  readable = row.content_uri.encode('utf-8', 'surrogateescape').decode('utf-8', 'replace')
  return {'output_uri': row.output_uri, 'content_key': content_key(row.content_id,
                                                                  row.content_uri),
          'content_uri': readable, 'content_id': row.content_id, 'style_id': row.style_id,
          'strength': row.strength, 'status': row.status, 'fingerprint': row.fingerprint,
          'model_sha256': row.model_sha256, 'run_id': row.run_id,
          'recorded_at': row.recorded_at, 'variants': list(row.variants)}


def read_snapshot_file(readable_file):
  """The records of one snapshot file; a damaged file is passed over with a warning."""
  path = readable_file.metadata.path
  try:
    table = pq.read_table(io.BytesIO(readable_file.read()), schema=SCHEMA)
  except Exception as e:  # noqa: BLE001 - damaged state costs a warning, never the run
    Metrics.counter(METRICS_NAMESPACE, 'state_files_unreadable').inc()
    logging.warning('snapshot file %s passed over: %s: %s (its pairs may be rendered again)',
                    path, type(e).__name__, e)
    return
  yield from table.to_pylist()


class ReadSnapshot(beam.PTransform):
  """-> the records of a snapshot folder, each file read by whichever worker takes it."""

  def __init__(self, folder: str):
    super().__init__()
    self._folder = folder

  def expand(self, pbegin):
    return (pbegin
            | 'SnapshotGlob' >> beam.Create([FileSystems.join(self._folder, '*.parquet')])
            | 'MatchSnapshot' >> fileio.MatchAll(fileio.EmptyMatchTreatment.ALLOW)
            | 'SpreadFiles' >> beam.Reshuffle()
            | 'ReadFiles' >> fileio.ReadMatches()
            | 'Records' >> beam.FlatMap(read_snapshot_file))


def _newest(output_and_groups):
  """This run's record of an output if it has one, else the newest earlier one."""
  _, groups = output_and_groups
  records = list(groups['now']) or list(groups['before'])
  if records:
    yield max(records, key=lambda r: (r['recorded_at'] or '', r['run_id'] or ''))


TABLE = 'snapshot'


def table(output: str, run_id: str) -> tables.Table:
  """The snapshot's files, as `tables.WriteTables` writes them."""
  return tables.Table(FileSystems.join(snapshot_dir(output, run_id), 'part'), '.parquet', SCHEMA)


class SnapshotRecords(beam.PTransform):
  """This run's ManifestRows -> the records of its snapshot: the newest of each done output, from
  them and `before`, the earlier records still there (None: none)."""

  def __init__(self, before=None):
    super().__init__()
    self._before = before

  def expand(self, rows):
    before = self._before
    now = (rows
           | 'DoneOnly' >> beam.Filter(lambda row: row.status != FAILED)
           | 'AsRecord' >> beam.Map(to_record))
    if before is None:
      return now
    return ({'before': before | 'BeforeByOutput' >> beam.Map(lambda r: (r['output_uri'], r)),
             'now': now | 'NowByOutput' >> beam.Map(lambda r: (r['output_uri'], r))}
            | 'JoinOnOutput' >> beam.CoGroupByKey()
            | 'Newest' >> beam.FlatMap(_newest))


def publish(output: str, run_id: str, files: list[str]) -> str:
  """Makes a complete snapshot current: written last, after every one of its `files`."""
  pointer = {'snapshot': f'snapshots/{run_id}', 'run_id': run_id, 'files': len(files)}
  uri = FileSystems.join(state_dir(output), CURRENT)
  storage.write_bytes(uri, json.dumps(pointer).encode(), 'application/json')
  return uri
