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

from transforms import layout, progress
from transforms.records import FAILED, METRICS_NAMESPACE, SKIPPED, WRITTEN, ManifestRow
from transforms.storage import write_bytes


def manifest_dir(output: str) -> str:
  return FileSystems.join(output, layout.MANIFEST_DIR)


class WriteManifest(beam.PTransform):
  """(written ManifestRows, skipped ManifestRows, Failures, each content's count of planned pairs)
  -> the results and failures JSONL files, then the run's summary and completion marker; returns
  every pair's ManifestRow.

  Every row is stamped with the run id and the run's start time (UTC), so a later run can tell
  which record is the newest. The summary and the marker are written by the job itself, after
  the manifest files are complete, so a run nobody waits for (a scheduled Flex Template launch)
  still says how it ended."""

  def __init__(self, output: str, run_id: str, model_sha256: str, started_at: str, after=None):
    """`after(rows)`, if given, adds steps on the stamped rows (publishing the state) that the
    summary and the completion marker then wait for."""
    super().__init__()
    self._after = after
    self._folder = manifest_dir(output)
    self._prefix = FileSystems.join(self._folder, '{}-' + run_id)
    self._run_id = run_id
    self._started_at = started_at
    self._model_sha256 = model_sha256

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
    failure_files = (
        rows
        | 'OnlyFailures' >> beam.Filter(lambda row: row.status == FAILED)
        | 'FailuresToJson' >> beam.Map(ManifestRow.to_json)
        | 'WriteFailures' >> beam.io.WriteToText(self._prefix.format('failures'), '.jsonl'))
    result_files = (
        rows
        | 'ToJson' >> beam.Map(ManifestRow.to_json)
        | 'WriteResults' >> beam.io.WriteToText(self._prefix.format('results'), '.jsonl'))
    finished = self._after(rows) if self._after else rows.pipeline | 'NoMore' >> beam.Create([])
    outcomes = (rows
                | 'Outcome' >> beam.Map(lambda row: (row.status, row.stage))
                | 'CountOutcomes' >> beam.combiners.Count.PerElement())
    _ = (planned
         | 'PairsPlanned' >> beam.CombineGlobally(sum)
         | 'WriteSummary' >> beam.Map(
             self._write_summary, outcomes=beam.pvalue.AsList(outcomes),
             files=beam.pvalue.AsList(result_files), more=beam.pvalue.AsList(failure_files),
             after=beam.pvalue.AsList(finished)))
    return rows

  def _write_summary(self, expected: int, outcomes, files, more, after) -> None:
    """Runs once, after both manifest writes and the state (its side inputs): the summary, then
    the marker."""
    del files, more, after  # waited for, not read
    summary = run_summary(self._run_id, self._started_at, expected, outcomes)
    folder = self._folder
    write_bytes(FileSystems.join(folder, f'summary-{self._run_id}.json'),
                json.dumps(summary, indent=2).encode(), 'application/json')
    write_bytes(FileSystems.join(folder, f'complete-{self._run_id}.json'),
                json.dumps({'run_id': self._run_id, 'finished_at': summary['finished_at'],
                            'summary': f'summary-{self._run_id}.json'}).encode(),
                'application/json')


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
