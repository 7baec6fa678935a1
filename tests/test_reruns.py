"""Nightly re-runs, whole jobs one after another over one output: skip what is done, redo exactly
what changed, recover from a killed run.

The rules behind them (fingerprints, the latest record deciding, a changed option redoing
everything) are tested step by step in tests/transforms/test_incremental.py; --overwrite, in the
runs of tests/test_pipeline_gcs.py."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT, gradient_picture, make_pictures
from PIL import Image

from models import style_bank
from pipeline import run as job


def _run(pictures, models, out, *extra, run_id):
  return job.run(['--content', str(pictures / 'content' / '**'),
                  '--styles', str(pictures / 'styles' / '*'), '--output', str(out),
                  '--model', models, '--runner', 'DirectRunner', '--run-id', run_id, *extra])


def _rows(out, run_id):
  rows = []
  for path in sorted((out / '_manifest').glob(f'results-{run_id}-*.jsonl')):
    rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
  assert rows and {r['run_id'] for r in rows} == {run_id}
  return rows


def _status(out, run_id):
  return sorted((r['status'], r['content_uri'].rsplit('content/')[1], r['style_id'])
                for r in _rows(out, run_id))


@pytest.fixture(scope='module')
def reruns(tiny_models, tmp_path_factory):
  """Three nightly runs over one output: r1 renders everything; r2 finds it all done from the
  manifests alone (the state removed, as in an output folder from before snapshots, and an
  earlier manifest damaged meanwhile) and publishes a snapshot; r3 reads that snapshot and follows
  a deleted output and a rewritten source."""
  pictures = make_pictures(tmp_path_factory.mktemp('reruns'))
  out = pictures / 'out'
  first = _run(pictures, tiny_models, out, run_id='r1')
  mtimes = {r['output_uri']: os.stat(r['output_uri']).st_mtime_ns for r in _rows(out, 'r1')}
  (out / '_manifest' / 'results-r0-00000-of-00001.jsonl').write_text('{"status": "writ\nnot json\n')
  assert json.loads((out / '_state' / 'CURRENT.json').read_text())['snapshot'] == 'snapshots/r1'
  shutil.rmtree(out / '_state')
  second = _run(pictures, tiny_models, out, run_id='r2')
  assert json.loads((out / '_state' / 'CURRENT.json').read_text())['snapshot'] == 'snapshots/r2'
  mtimes_after_r2 = {r['output_uri']: os.stat(r['output_uri']).st_mtime_ns
                     for r in _rows(out, 'r2')}

  by_pair = {(r['content_uri'], r['style_id']): r['output_uri'] for r in _rows(out, 'r1')}
  os.remove(by_pair[(str(pictures / 'content' / 'a' / 'photo.jpg'), 'warm')])
  time.sleep(0.01)
  gradient_picture(150, 150, seed=99).save(pictures / 'content' / 'b' / 'square.png')
  third = _run(pictures, tiny_models, out, run_id='r3')
  assert third.summary['manifest_lines_unreadable'] == 0, 'r3 reads the snapshot, not manifests'
  return out, (first, second, third), (mtimes, mtimes_after_r2)


def test_rerun_skips_everything_without_inference(reruns):
  out, (first, second, _), (mtimes, mtimes_after_r2) = reruns
  assert first.summary['pairs_written'] == 6
  assert second.summary['pairs_skipped'] == 6
  assert second.summary['pairs_written'] == second.summary['pairs_stylized'] == 0
  assert 'inference_ms_mean' not in second.summary  # no interpreter invocation at all
  assert second.summary['images_read'] == 0  # not even a content picture read
  assert second.summary['accounted']
  assert {r['status'] for r in _rows(out, 'r2')} == {'skipped'}
  assert mtimes_after_r2 == mtimes


def test_a_damaged_manifest_line_is_passed_over(reruns):
  _, (_, second, _), _ = reruns
  assert second.summary['pairs_skipped'] == 6 and second.summary['pairs_written'] == 0
  assert second.summary['manifest_lines_unreadable'] == 2


def test_deleted_outputs_and_changed_sources_are_redone_exactly(reruns):
  out, (_, _, third), _ = reruns
  assert third.summary['pairs_stylized'] == third.summary['pairs_written'] == 3
  assert third.summary['pairs_skipped'] == 3 and third.summary['accounted']
  assert [s for s in _status(out, 'r3') if s[0] == 'written'] == [
      ('written', 'a/photo.jpg', 'warm'), ('written', 'b/square.png', 'cool'),
      ('written', 'b/square.png', 'warm')]


def _signal_part_way(argv, glob, pattern: str, count: int, sig) -> subprocess.Popen:
  """The command, started in a process group of its own, sent `sig` as a group (as a terminal's
  Ctrl-C or a kill reaches it) once `count` files match `pattern`."""
  process = subprocess.Popen([sys.executable, '-m', 'pipeline.run', *argv], cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
  deadline = time.monotonic() + 120
  while time.monotonic() < deadline and process.poll() is None:
    if len(list(glob(pattern))) >= count:
      break
    time.sleep(0.05)
  os.killpg(process.pid, sig)
  return process


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
  base = job.run([argv[0], str(content / 'p00.jpg'), *argv[2:], '--run-id', 'base'])
  assert base.summary['pairs_written'] == 3
  current = out / '_state' / 'CURRENT.json'
  assert json.loads(current.read_text())['snapshot'] == 'snapshots/base'

  _signal_part_way(argv + ['--run-id', 'killed'], out.glob, 's*/*.png', 5,
                   signal.SIGKILL).communicate()
  written_before = len(list(out.glob('s*/*.png')))
  assert 0 < written_before < 72, 'the run should be killed part way'
  assert not list((out / '_manifest').glob('results-killed-*.jsonl'))
  assert json.loads(current.read_text())['snapshot'] == 'snapshots/base', 'the last whole state'

  outcome = job.run(argv + ['--run-id', 'after'])
  assert outcome.summary['accounted'] and outcome.summary['pairs_failed'] == 0
  rows = _rows(out, 'after')
  assert len(rows) == 72 and sorted(r['status'] for r in rows) == ['skipped'] * 3 + ['written'] * 69
  for row in rows:
    with Image.open(row['output_uri']) as picture:
      picture.load()  # every output decodes whole
      assert picture.size == (640, 480)
  finals = list(out.glob('s*/*'))
  assert len(finals) == 72



def test_ctrl_c_ends_the_command_in_one_line_and_the_next_run_completes(tiny_models, tmp_path):
  """Ctrl-C reaches the whole foreground process group: the command (worker threads, its local
  default) ends with one line and the shell's status for it, no traceback."""
  content = tmp_path / 'content'
  content.mkdir()
  for i in range(24):
    gradient_picture(320, 240, seed=i).save(content / f'p{i:02d}.jpg', quality=90)
  pairs = 24 * len(style_bank.names('builtin:all'))
  out = tmp_path / 'out'
  argv = ['--content', str(content / '*.jpg'), '--styles', 'builtin:all', '--output', str(out),
          '--model', tiny_models]
  process = _signal_part_way(argv + ['--run-id', 'stopped'], out.glob, '*/*.jpg', 3,
                             signal.SIGINT)
  _, err = process.communicate(timeout=120)
  assert process.returncode == 130, err[-2000:]
  assert err.rstrip().splitlines()[-1].startswith('Interrupted. What was written before is kept')
  assert 'Traceback' not in err, err[-2000:]
  assert not list((out / '_manifest').glob('results-stopped-*.jsonl'))
  assert len(list(out.glob('*/*.jpg'))) < pairs, 'the run should be stopped part way'

  outcome = job.run(argv + ['--run-id', 'after'])
  assert outcome.summary['accounted'] and outcome.summary['pairs_failed'] == 0
  assert len(list(out.glob('*/*.jpg'))) == len(_rows(out, 'after')) == pairs
