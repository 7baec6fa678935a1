"""Progress of a local run: worker tallies added up, and lines printed while the job runs."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from conftest import ROOT, gradient_picture

from pipeline import summary
from transforms import progress


def test_tallies_of_every_worker_are_added_up(tmp_path, monkeypatch):
  (tmp_path / '11.json').write_text(json.dumps({'planned': 10, 'written': 3}))
  (tmp_path / '12.json').write_text(json.dumps({'planned': 6, 'skipped': 2, 'failed': 1}))
  (tmp_path / '13.json.tmp').write_text('{"planned": 1')  # being written: not read
  assert progress.totals(str(tmp_path)) == {
      'planned': 16, 'written': 3, 'skipped': 2, 'failed': 1}
  monkeypatch.setenv(progress.ENV, str(tmp_path))
  monkeypatch.setattr(progress, '_last_write', [0.0])
  progress.tally('written', 4)
  assert json.loads((tmp_path / f'{os.getpid()}.json').read_text())['written'] >= 4


def test_a_progress_line_says_what_is_done_the_rate_and_the_time_left():
  line = summary.progress_line({'planned': 1000, 'written': 90, 'skipped': 400, 'failed': 10},
                               seconds=20)
  assert line == ('progress: 500 of 1000 pairs planned so far (90 written, 400 skipped, '
                  '10 failed); 5.0 pairs/s rendered; about 1 min 40 s left')


def test_a_local_run_prints_its_progress_while_it_runs(tiny_models, tmp_path):
  (tmp_path / 'in').mkdir()
  for i in range(150):
    gradient_picture(48, 32, i).save(tmp_path / 'in' / f'{i:03d}.png')
  gradient_picture(64, 64, 999).save(tmp_path / 'style.png')
  done = subprocess.run(
      [sys.executable, '-m', 'pipeline.run', '--content', str(tmp_path / 'in' / '*.png'),
       '--styles', str(tmp_path / 'style.png'), '--output', str(tmp_path / 'out'),
       '--model', tiny_models, '--strength', '0.5,1', '--gallery-rows', '0',
       '--direct_running_mode=multi_processing', '--direct_num_workers=2'],
      check=False, cwd=ROOT, capture_output=True, text=True, timeout=600,
      env={**os.environ, 'STYLIZE_PROGRESS_SECONDS': '0.5'})
  assert done.returncode == 0, done.stderr[-3000:]
  lines = re.findall(r'progress: (\d+) of (\d+) pairs planned so far \((\d+) written', done.stderr)
  assert lines, done.stderr[-3000:]
  for finished, planned, written in lines:  # from the worker processes' own tallies
    assert int(written) <= int(finished) <= int(planned) <= 300
  assert 'run ' in done.stdout and '300 written' in done.stdout
