"""Nightly re-runs: skip what is done, redo exactly what changed, recover from a killed run."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from conftest import ROOT, gradient_picture, read_manifest
from PIL import Image

from pipeline import run as job


def _run(pictures, models, out, *extra, run_id):
  return job.run(['--content', str(pictures / 'content' / '**'),
                  '--styles', str(pictures / 'styles' / '*'), '--output', str(out),
                  '--model', models, '--runner', 'DirectRunner', '--run-id', run_id, *extra])


def _rows(out, run_id):
  return [r for r in read_manifest(out) if r['run_id'] == run_id]


def _status(out, run_id):
  return sorted((r['status'], r['content_uri'].rsplit('content/')[1], r['style_id'])
                for r in _rows(out, run_id))


def test_rerun_skips_everything_without_inference(pictures, tiny_models, tmp_path):
  out = tmp_path / 'out'
  first = _run(pictures, tiny_models, out, run_id='r1')
  mtimes = {r['output_uri']: os.stat(r['output_uri']).st_mtime_ns for r in _rows(out, 'r1')}
  second = _run(pictures, tiny_models, out, run_id='r2')

  assert first.summary['pairs_written'] == 6
  assert second.summary['pairs_skipped'] == 6
  assert second.summary['pairs_written'] == second.summary['pairs_stylized'] == 0
  assert 'inference_ms_mean' not in second.summary  # no interpreter invocation at all
  assert second.summary['images_read'] == 0  # not even a content picture read
  assert second.summary['accounted']
  assert {r['status'] for r in _rows(out, 'r2')} == {'skipped'}
  assert {r['output_uri']: os.stat(r['output_uri']).st_mtime_ns for r in _rows(out, 'r2')} == mtimes


def test_deleted_outputs_and_changed_sources_are_redone_exactly(pictures, tiny_models, tmp_path):
  out = tmp_path / 'out'
  _run(pictures, tiny_models, out, run_id='r1')
  by_pair = {(r['content_uri'], r['style_id']): r['output_uri'] for r in _rows(out, 'r1')}
  square = str(pictures / 'content' / 'b' / 'square.png')
  os.remove(by_pair[(str(pictures / 'content' / 'a' / 'photo.jpg'), 'warm')])
  time.sleep(0.01)
  gradient_picture(150, 150, seed=99).save(square)  # a new version of one source

  rerun = _run(pictures, tiny_models, out, run_id='r2')
  assert rerun.summary['pairs_stylized'] == rerun.summary['pairs_written'] == 3
  assert rerun.summary['pairs_skipped'] == 3 and rerun.summary['accounted']
  assert [s for s in _status(out, 'r2') if s[0] == 'written'] == [
      ('written', 'a/photo.jpg', 'warm'), ('written', 'b/square.png', 'cool'),
      ('written', 'b/square.png', 'warm')]

  third = _run(pictures, tiny_models, out, run_id='r3')  # the newest records now cover all
  assert third.summary['pairs_skipped'] == 6


def test_changed_option_or_overwrite_redoes_everything(pictures, tiny_models, tmp_path):
  out = tmp_path / 'out'
  _run(pictures, tiny_models, out, run_id='r1')
  assert _run(pictures, tiny_models, out, '--jpeg-quality', '70',
              run_id='r2').summary['pairs_written'] == 6
  assert _run(pictures, tiny_models, out, '--jpeg-quality', '70', '--overwrite',
              run_id='r3').summary['pairs_written'] == 6


def test_killed_run_is_completed_by_the_next_with_valid_outputs(tiny_models, tmp_path):
  content = tmp_path / 'content'
  content.mkdir()
  for i in range(24):
    gradient_picture(640, 480, seed=i).save(content / f'p{i:02d}.jpg', quality=90)
  (tmp_path / 'styles').mkdir()
  for i in range(3):
    gradient_picture(300, 300, seed=100 + i).save(tmp_path / 'styles' / f's{i}.png')
  out = tmp_path / 'out'
  argv = ['--content', str(content / '*.jpg'), '--styles', str(tmp_path / 'styles' / '*'),
          '--output', str(out), '--model', tiny_models, '--runner', 'DirectRunner',
          '--max-size', '0', '--format', 'png']

  process = subprocess.Popen([sys.executable, '-m', 'pipeline.run', *argv, '--run-id', 'killed'],
                             cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
  deadline = time.monotonic() + 120
  while time.monotonic() < deadline and process.poll() is None:
    if len(list(out.glob('s*/*.png'))) >= 5:
      break
    time.sleep(0.05)
  os.killpg(process.pid, signal.SIGKILL)
  process.wait()
  written_before = len(list(out.glob('s*/*.png')))
  assert 0 < written_before < 72, 'the run should be killed part way'
  assert not list((out / '_manifest').glob('results-killed-*.jsonl'))

  outcome = job.run(argv + ['--run-id', 'after'])
  assert outcome.summary['accounted'] and outcome.summary['pairs_failed'] == 0
  rows = _rows(out, 'after')
  assert len(rows) == 72 and {r['status'] for r in rows} == {'written'}
  for row in rows:
    with Image.open(row['output_uri']) as picture:
      picture.load()  # every output decodes whole
      assert picture.size == (640, 480)
  finals = list(out.glob('s*/*'))
  assert len(finals) == 72


def test_a_damaged_manifest_line_is_passed_over(pictures, tiny_models, tmp_path):
  out = tmp_path / 'out'
  _run(pictures, tiny_models, out, run_id='r1')
  (out / '_manifest' / 'results-r0-00000-of-00001.jsonl').write_text('{"status": "writ\nnot json\n')
  rerun = _run(pictures, tiny_models, out, run_id='r2')
  assert rerun.summary['pairs_skipped'] == 6 and rerun.summary['pairs_written'] == 0
  assert rerun.summary['manifest_lines_unreadable'] == 2
