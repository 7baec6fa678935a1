"""WriteManifest in a small pipeline: every pair's row in the results file, stamped with the run;
the dead letters alone, again, in the failures file."""
from __future__ import annotations

import dataclasses
import json

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from conftest import fn_api_pipeline, read_manifest

from models.contract import BadModelInput
from transforms.manifest import WriteManifest
from transforms.records import SKIPPED, WRITTEN, Failure, ImageRef, ManifestRow


def _done(status, content_id):
  return ManifestRow(content_uri=f'/in/{content_id}.jpg', content_id=content_id, style_id='warm',
                     strength=1.0, status=status, model_sha256='sha-of-transfer',
                     output_uri=f'/out/warm/{content_id}.jpg', fingerprint=f'fp-{content_id}')


def test_every_row_is_stamped_and_failures_are_also_written_apart(tmp_path):
  failure = Failure.of(BadModelInput('values must\n lie in [0, 1]'), 'stylize',
                       ImageRef('/in/c.jpg', 'c'), 'warm', 0.5)
  p = fn_api_pipeline()
  written = p | 'Written' >> beam.Create([_done(WRITTEN, 'a')])
  skipped = p | 'Skipped' >> beam.Create([_done(SKIPPED, 'b')])
  failures = p | 'Failures' >> beam.Create([failure])
  planned = p | 'Planned' >> beam.Create([1, 2])  # two contents: one with 1 pair, one with 2
  _ = (written, skipped, failures, planned) | WriteManifest(
      str(tmp_path), 'r7', 'sha-of-transfer', '2026-11-28T03:00:00+00:00')
  result = p.run()
  result.wait_until_finish()

  rows = sorted(read_manifest(tmp_path), key=lambda r: r['content_id'])
  stamp = {'run_id': 'r7', 'recorded_at': '2026-11-28T03:00:00+00:00'}
  assert [(r['content_id'], r['status']) for r in rows] == [
      ('a', 'written'), ('b', 'skipped'), ('c', 'failed')]
  assert all(r['run_id'] == 'r7' and r['recorded_at'] == stamp['recorded_at'] for r in rows)
  assert rows[2] == {**dataclasses.asdict(ManifestRow(
      content_uri='/in/c.jpg', content_id='c', style_id='warm', strength=0.5, status='failed',
      model_sha256='sha-of-transfer', stage='stylize', error_type='BadModelInput',
      message='values must lie in [0, 1]')), 'notes': [], 'variants': [], **stamp}
  assert read_manifest(tmp_path, 'failures') == [rows[2]]
  # Named after the run, so a later run never overwrites them.
  assert {p.name.split('-0')[0] for p in (tmp_path / '_manifest').iterdir()} == {
      'results-r7', 'failures-r7', 'summary-r7.json', 'complete-r7.json'}
  # Then the job's own summary of them (3 pairs planned, 3 recorded) and its completion marker.
  summary = json.loads((tmp_path / '_manifest' / 'summary-r7.json').read_text())
  assert (summary['pairs_expected'], summary['pairs_written'], summary['pairs_skipped'],
          summary['pairs_failed'], summary['failed_by_stage'], summary['accounted']) == (
              3, 1, 1, 1, {'stylize': 1}, True)
  assert json.loads((tmp_path / '_manifest' / 'complete-r7.json').read_text())['run_id'] == 'r7'
  failed = result.metrics().query(MetricsFilter().with_name('pairs_failed'))['counters']
  assert sum(c.committed for c in failed) == 1
