"""The run's record: every (content, style) pair as one JSONL row, and the dead letters apart.

Files go to `{output}/_manifest/results-{run_id}-*.jsonl` and `failures-{run_id}-*.jsonl`, so a
night's run never overwrites the record of an earlier one.
"""
from __future__ import annotations

import dataclasses
import datetime
import json

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from transforms import layout, progress, state, tables
from transforms.records import (
  FAILED,
  METRICS_NAMESPACE,
  PLANNED,
  SKIPPED,
  WRITTEN,
  ManifestRow,
)
from transforms.storage import write_bytes


def manifest_dir(output: str) -> str:
  return FileSystems.join(output, layout.MANIFEST_DIR)


class WriteManifest(beam.PTransform):
  """(written ManifestRows, skipped ManifestRows, Failures, each content's count of planned pairs)
  -> the results and failures JSONL files, then the run's summary and completion marker; returns
  every pair's ManifestRow.

  Every row is stamped with the run id and the run's start time (UTC), so a later run can tell
  which record is the newest. With `with_state`, the rows and `before` (the earlier records still
  there; None: none) also make the run's state snapshot (`transforms.state`), published before
  the summary. All of it is written by the job itself, in one step once the tables are complete,
  so a run nobody waits for (a scheduled Flex Template launch) still says how it ended."""

  def __init__(self, output: str, run_id: str, model_sha256: str, started_at: str,
               with_state: bool = False, before=None):
    super().__init__()
    self._output = output
    self._folder = manifest_dir(output)
    self._run_id = run_id
    self._started_at = started_at
    self._model_sha256 = model_sha256
    self._with_state = with_state
    self._before = before

  def expand(self, outputs):
    written, skipped, failures, planned = outputs
    failed = Metrics.counter(METRICS_NAMESPACE, 'pairs_failed')

    def failure_row(failure):
      failed.inc()
      progress.tally('failed')
      return failure.row(self._model_sha256)

    def stamped(row: ManifestRow) -> ManifestRow:
      return dataclasses.replace(row, run_id=self._run_id, recorded_at=self._started_at)

    failed_rows = failures | 'FailureRows' >> beam.Map(failure_row)
    rows = ((written, skipped, failed_rows)
            | 'AllPairs' >> beam.Flatten()
            | 'Stamp' >> beam.Map(stamped))
    table_rows = rows | 'ToTables' >> beam.FlatMap(_table_rows)
    prefix = FileSystems.join(self._folder, '{}-' + self._run_id)
    run_tables = {name: tables.Table(prefix.format(name), '.jsonl')
                  for name in ('results', 'failures')}
    if self._with_state:
      run_tables[state.TABLE] = state.table(self._output, self._run_id)
      snapshot = (rows
                  | 'State' >> state.SnapshotRecords(self._before)
                  | 'ToSnapshot' >> beam.Map(lambda record: (state.TABLE, record)))
      table_rows = (table_rows, snapshot) | 'AllTables' >> beam.Flatten()
    counts = ((planned | 'Planned' >> beam.Map(lambda n: (PLANNED, n)),
               rows | 'Outcome' >> beam.Map(lambda row: ((row.status, row.stage), 1)))
              | 'ToCount' >> beam.Flatten()
              | 'Count' >> beam.CombinePerKey(sum))
    _ = table_rows | 'Write' >> tables.WriteTables(
        run_tables, FileSystems.join(self._folder, f'temp-{self._run_id}'), then=self._finish,
        counts=beam.pvalue.AsList(counts))
    return rows

  def _finish(self, files, counts) -> None:
    """Runs once, when every table's files are in place: the state is made current, then the
    summary and the marker are written."""
    if self._with_state:
      state.publish(self._output, self._run_id, files[state.TABLE])
    counts = dict(counts)
    summary = run_summary(self._run_id, self._started_at, counts.pop(PLANNED, 0), counts.items())
    folder = self._folder
    write_bytes(FileSystems.join(folder, f'summary-{self._run_id}.json'),
                json.dumps(summary, indent=2).encode(), 'application/json')
    write_bytes(FileSystems.join(folder, f'complete-{self._run_id}.json'),
                json.dumps({'run_id': self._run_id, 'finished_at': summary['finished_at'],
                            'summary': f'summary-{self._run_id}.json'}).encode(),
                'application/json')


def _table_rows(row: ManifestRow):
  """Every row goes to the results; a dead letter goes to the failures as well."""
  line = row.to_json()
  yield 'results', line
  if row.status == FAILED:
    yield 'failures', line


def run_summary(run_id: str, started_at: str, expected: int, outcomes) -> dict:
  """The run's counts from its own rows: by outcome, failures by stage, and whether every
  planned pair ended written, skipped or failed (`accounted`)."""
  counts = {WRITTEN: 0, SKIPPED: 0, FAILED: 0}
  failed_by_stage = {}
  for (status, stage), count in outcomes:
    counts[status] = counts.get(status, 0) + count
    if status == FAILED:
      failed_by_stage[stage] = failed_by_stage.get(stage, 0) + count
  finished = datetime.datetime.now(datetime.timezone.utc)
  seconds = (finished - datetime.datetime.fromisoformat(started_at)).total_seconds()
  return {'run_id': run_id, 'started_at': started_at,
          'finished_at': finished.isoformat(timespec='microseconds'),
          'seconds': round(seconds, 2), 'pairs_expected': expected,
          'pairs_written': counts[WRITTEN], 'pairs_skipped': counts[SKIPPED],
          'pairs_failed': counts[FAILED], 'failed_by_stage': dict(sorted(failed_by_stage.items())),
          'accounted': expected == counts[WRITTEN] + counts[SKIPPED] + counts[FAILED],
          'images_per_second': round(counts[WRITTEN] / seconds, 2) if seconds > 0 else 0.0}
