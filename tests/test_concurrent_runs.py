"""Two runs on one output at once: with their own run ids both are recorded in full; with one
run id, the second to claim it stops at launch and the first is recorded in full."""
from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT, make_pictures


def _start(pictures, models, out, *extra):
  return subprocess.Popen(
      [sys.executable, '-m', 'pipeline.run', '--content', str(pictures / 'content' / '**'),
       '--styles', str(pictures / 'styles' / '*'), '--output', str(out), '--model', models,
       '--gallery-rows', '0', *extra], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      text=True)


def _results(out) -> dict[str, list[dict]]:
  by_run = {}
  for path in (out / '_manifest').glob('results-*.jsonl'):
    for line in path.read_text().splitlines():
      row = json.loads(line)
      by_run.setdefault(row['run_id'], []).append(row)
  return by_run


def test_two_runs_at_once_are_both_recorded_in_full(tiny_models, tmp_path):
  pictures, out = make_pictures(tmp_path / 'in'), tmp_path / 'out'
  runs = [_start(pictures, tiny_models, out), _start(pictures, tiny_models, out)]
  finished = [run.communicate(timeout=300) for run in runs]
  assert [run.returncode for run in runs] == [0, 0], [err[-2000:] for _, err in finished]
  by_run = _results(out)
  assert len(by_run) == 2  # unique run ids, to the microsecond and a random suffix
  for rows in by_run.values():
    assert len(rows) == 6 and {r['status'] for r in rows} <= {'written', 'skipped'}
  summaries = sorted(p.name for p in (out / '_manifest').glob('summary-*.json'))
  assert summaries == sorted(f'summary-{run_id}.json' for run_id in by_run)


def test_one_run_id_twice_at_once_stops_the_second(tiny_models, tmp_path):
  pictures, out = make_pictures(tmp_path / 'in'), tmp_path / 'out'
  runs = [_start(pictures, tiny_models, out, '--run-id', 'nightly'),
          _start(pictures, tiny_models, out, '--run-id', 'nightly')]
  finished = [run.communicate(timeout=300) for run in runs]
  codes = sorted(run.returncode for run in runs)
  assert codes == [0, 1], [err[-2000:] for _, err in finished]
  refused = next(err for run, (_, err) in zip(runs, finished) if run.returncode)
  assert "run id 'nightly' is already used on this output" in refused.splitlines()[-1]
  assert len(_results(out)['nightly']) == 6
  again = _start(pictures, tiny_models, out, '--run-id', 'nightly')
  assert again.wait(timeout=300) == 1, 'a run id stays taken once recorded'
