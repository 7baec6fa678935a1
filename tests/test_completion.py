"""The job records its own end: the summary and a completion marker are the pipeline's last step,
so a run nobody waits for (a scheduled Flex Template launch) still says how it ended."""
from __future__ import annotations

import json

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from conftest import make_pictures

from pipeline import launch, options
from pipeline import run as job


def test_the_summary_and_marker_are_written_by_the_pipeline_itself(tiny_models, tmp_path):
  pictures, out = make_pictures(tmp_path / 'in'), tmp_path / 'out'
  (pictures / 'content' / 'b' / 'junk.jpg').write_text('not a picture')
  settings, _ = options.parse([
      '--content', str(pictures / 'content' / '**'), '--styles', str(pictures / 'styles' / '*'),
      '--output', str(out), '--model', tiny_models, '--run-id', 'unattended',
      '--gallery-rows', '0'])
  plan = launch.prepare(settings)
  p = beam.Pipeline(options=PipelineOptions([]))
  job.build(p, settings, plan)
  p.run()  # no launcher: nothing but the pipeline writes anything

  summary = json.loads((out / '_manifest' / 'summary-unattended.json').read_text())
  assert (summary['pairs_expected'], summary['pairs_written'], summary['pairs_failed']) == (
      8, 6, 2)
  assert summary['failed_by_stage'] == {'decode': 2} and summary['accounted']
  marker = json.loads((out / '_manifest' / 'complete-unattended.json').read_text())
  assert marker == {'run_id': 'unattended', 'finished_at': summary['finished_at'],
                    'summary': 'summary-unattended.json'}
  results = (out / '_manifest').glob('results-unattended-*.jsonl')
  assert sum(len(path.read_text().splitlines()) for path in results) == 8


def test_a_run_with_nothing_to_do_still_completes(tiny_models, tmp_path):
  pictures, out = make_pictures(tmp_path / 'in'), tmp_path / 'out'
  argv = ['--content', str(pictures / 'content' / '**'), '--styles',
          str(pictures / 'styles' / '*'), '--output', str(out), '--model', tiny_models,
          '--gallery-rows', '0']
  job.run(argv + ['--run-id', 'first'])
  again = job.run(argv + ['--run-id', 'second'])
  assert again.summary['pairs_skipped'] == again.summary['pairs_expected'] == 6
  assert (out / '_manifest' / 'complete-second.json').exists()
