"""The run's record: every (content, style) pair as one JSONL row, and the dead letters apart.

Files go to `{output}/_manifest/results-{run_id}-*.jsonl` and `failures-{run_id}-*.jsonl`, so a
night's run never overwrites the record of an earlier one.
"""
from __future__ import annotations

import json

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from transforms.records import METRICS_NAMESPACE


def manifest_dir(output: str) -> str:
  return FileSystems.join(output, '_manifest')


class WriteManifest(beam.PTransform):
  """(written rows, Failures) -> the results and failures JSONL files."""

  def __init__(self, output: str, run_id: str, model_sha256: str):
    super().__init__()
    self._prefix = FileSystems.join(manifest_dir(output), '{}-' + run_id)
    self._model_sha256 = model_sha256

  def expand(self, outputs):
    written, failures = outputs
    failed = Metrics.counter(METRICS_NAMESPACE, 'pairs_failed')

    def failure_row(failure):
      failed.inc()
      return failure.row(self._model_sha256)

    failed_rows = failures | 'FailureRows' >> beam.Map(failure_row)
    (failed_rows
     | 'FailuresToJson' >> beam.Map(json.dumps, ensure_ascii=False)
     | 'WriteFailures' >> beam.io.WriteToText(self._prefix.format('failures'), '.jsonl'))
    return ((written, failed_rows)
            | 'AllPairs' >> beam.Flatten()
            | 'ToJson' >> beam.Map(json.dumps, ensure_ascii=False)
            | 'WriteResults' >> beam.io.WriteToText(self._prefix.format('results'), '.jsonl'))
