"""The run's record: every (content, style) pair as one JSONL row, and the dead letters apart.

Files go to `{output}/_manifest/results-{run_id}-*.jsonl` and `failures-{run_id}-*.jsonl`, so a
night's run never overwrites the record of an earlier one.
"""
from __future__ import annotations

import dataclasses

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from transforms import layout
from transforms.records import FAILED, METRICS_NAMESPACE, ManifestRow


def manifest_dir(output: str) -> str:
  return FileSystems.join(output, layout.MANIFEST_DIR)


class WriteManifest(beam.PTransform):
  """(written ManifestRows, skipped ManifestRows, Failures) -> the results and failures JSONL
  files; returns every pair's ManifestRow.

  Every row is stamped with the run id and the run's start time (UTC), so a later run can tell
  which record is the newest."""

  def __init__(self, output: str, run_id: str, model_sha256: str, started_at: str):
    super().__init__()
    self._prefix = FileSystems.join(manifest_dir(output), '{}-' + run_id)
    self._run_id = run_id
    self._started_at = started_at
    self._model_sha256 = model_sha256

  def expand(self, outputs):
    written, skipped, failures = outputs
    failed = Metrics.counter(METRICS_NAMESPACE, 'pairs_failed')

    def failure_row(failure):
      failed.inc()
      return failure.row(self._model_sha256)

    def stamped(row: ManifestRow) -> ManifestRow:
      return dataclasses.replace(row, run_id=self._run_id, recorded_at=self._started_at)

    failed_rows = failures | 'FailureRows' >> beam.Map(failure_row)
    rows = ((written, skipped, failed_rows)
            | 'AllPairs' >> beam.Flatten()
            | 'Stamp' >> beam.Map(stamped))
    (rows
     | 'OnlyFailures' >> beam.Filter(lambda row: row.status == FAILED)
     | 'FailuresToJson' >> beam.Map(ManifestRow.to_json)
     | 'WriteFailures' >> beam.io.WriteToText(self._prefix.format('failures'), '.jsonl'))
    (rows
     | 'ToJson' >> beam.Map(ManifestRow.to_json)
     | 'WriteResults' >> beam.io.WriteToText(self._prefix.format('results'), '.jsonl'))
    return rows
