"""Hostile inputs, round 2: typos, reserved names, damaged state, leftovers and a run that loses
its output, each checked where it is handled (launch, a step, or the whole job)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from conftest import ROOT, gradient_picture

from pipeline import options
from pipeline import run as job
from pipeline.launch import LaunchError
from transforms import incremental, leftovers, storage

BASE = ['--content', 'c/*', '--styles', 's/*', '--output', '/tmp/out']


@pytest.mark.parametrize('typo, hint', [
    (['--strenght', '0.5'], '--strength'), (['--max_szie=10'], '--max_size'),
    (['--runer', 'DirectRunner'], '--runner'),
    (['--direct_num_worker', '2'], '--direct_num_workers'),
    (['stray'], "unexpected value 'stray'")])
def test_an_unknown_argument_stops_the_job_with_a_suggestion(typo, hint, capsys):
  with pytest.raises(SystemExit) as stopped:
    options.parse(BASE + typo)
  assert stopped.value.code == 2
  assert hint in capsys.readouterr().err


def test_every_beam_option_still_passes_through():
  beam = ['--runner', 'DirectRunner', '--direct_num_workers', '2', '--temp_location', 'gs://b/t',
          '--experiments=use_runner_v2', '--sdk_container_image', 'img', '--dry_run', 'true']
  _, beam_args = options.parse(BASE + beam)
  assert beam_args == beam


@pytest.mark.parametrize('style_file', ['index.html.png', 'INDEX.HTML.jpg'])
def test_a_style_named_like_the_jobs_own_files_stops_the_launch(pictures, tiny_models, tmp_path,
                                                                 style_file):
  gradient_picture(300, 300).save(tmp_path / style_file)
  out = tmp_path / 'out'
  with pytest.raises(LaunchError, match='is a name the job keeps for its own files'):
    job.run(['--content', str(pictures / 'content' / '**'), '--styles', str(tmp_path / style_file),
             '--output', str(out), '--model', tiny_models])
  assert not (out / 'index.html').exists()


def test_a_listed_style_id_in_the_jobs_namespace_stops_the_launch(pictures, tiny_models, tmp_path):
  listed = tmp_path / 'styles.csv'
  listed.write_text(f'uri,id\n{pictures / "styles" / "warm.png"},_manifest\n')
  with pytest.raises(LaunchError, match="'_manifest'"):
    job.run(['--content', str(pictures / 'content' / '**'), '--styles-list', str(listed),
             '--output', str(tmp_path / 'out'), '--model', tiny_models])


class _Readable:
  """What fileio.ReadMatches hands on: the file's metadata and its bytes."""

  def __init__(self, path, data=None, error=None):
    self.metadata = storage.Found(path)
    self._data, self._error = data, error

  def read(self):
    if self._error:
      raise self._error
    return self._data


def test_a_damaged_manifest_costs_counted_lines_not_the_run(caplog):
  good = {'content_uri': '/in/a.jpg', 'content_id': 'a-1', 'status': 'written',
          'output_uri': '/out/s/a-1.jpg', 'fingerprint': 'f1', 'run_id': 'r1',
          'recorded_at': 't1'}
  failed = {**good, 'status': 'failed', 'fingerprint': None}
  data = (json.dumps(good) + '\n' + json.dumps(failed) + '\n{"status": "writ\xff\n').encode(
      'utf-8', 'surrogateescape') + b'\x80\x81 not json\n\n'
  rows = list(incremental._manifest_lines(_Readable('/out/_manifest/results-r1.jsonl', data)))
  assert [incremental.for_planning(row) for row in rows] == [
      (b'id:a-1', ('/out/s/a-1.jpg', 'f1', ('t1', 'r1')))]
  assert 'results-r1.jsonl: 2 damaged lines passed over' in caplog.text
  unreadable = _Readable('/out/_manifest/results-r2.jsonl', error=PermissionError('denied'))
  assert list(incremental._manifest_lines(unreadable)) == []
  assert 'results-r2.jsonl passed over: PermissionError' in caplog.text


def test_abandoned_partials_go_and_fresh_ones_stay(tmp_path):
  old, fresh = tmp_path / '.a.jpg.0123abcd.partial', tmp_path / '.b.jpg.89abcdef.partial'
  keep = tmp_path / '.hidden-but-mine.jpg'
  for path in (old, fresh, keep):
    path.write_bytes(b'x')
  hour_ago = time.time() - leftovers.PARTIAL_STALE_AFTER_S - 5
  os.utime(old, (hour_ago, hour_ago))
  os.utime(keep, (hour_ago, hour_ago))
  removed = [leftovers.remove_if_abandoned_partial(f) for f in storage.match(f'{tmp_path}/*')]
  assert sum(removed) == 1 and not old.exists() and fresh.exists() and keep.exists()


def test_temp_folders_of_finished_or_quiet_runs_go(tmp_path):
  # An output inside a user's folder whose name looks like a temp folder: only the job's own
  # folders under _manifest/ are ever taken for temp folders.
  manifest = tmp_path / 'temp-jobs' / 'out' / '_manifest'
  folders = {name: manifest / f'temp-{name}' for name in ['finished', 'quiet', 'running']}
  # and an earlier release's (Beam's WriteToText) of a finished run
  folders['finished-before'] = manifest / f'beam-temp-results-finished-{"0" * 32}'
  for folder in folders.values():
    folder.mkdir(parents=True)
    (folder / 'shard').write_text('{}')
  (manifest / 'summary-finished.json').write_text('{}')
  day_ago = time.time() - leftovers.TEMP_STALE_AFTER_S - 5
  os.utime(folders['quiet'] / 'shard', (day_ago, day_ago))
  removed = leftovers.remove_abandoned_temp(str(manifest))
  assert sorted(removed) == sorted(f'{folders[name]}/' for name in ('finished', 'quiet',
                                                                     'finished-before'))
  assert [name for name, folder in folders.items() if folder.exists()] == ['running']
  assert (folders['running'] / 'shard').exists() and manifest.is_dir()


def test_a_run_whose_manifest_cannot_be_written_ends_in_one_line(pictures, tiny_models, tmp_path):
  out = tmp_path / 'out'
  # A folder where the run's results file must go: the outputs are written, the manifest is not.
  # (One worker, so that the results are one shard with this name.)
  (out / '_manifest' / 'results-r1-00000-of-00001.jsonl').mkdir(parents=True)
  done = subprocess.run(
      [sys.executable, '-m', 'pipeline.run', '--content', str(pictures / 'content' / '**'),
       '--styles', str(pictures / 'styles' / '*'), '--output', str(out), '--model', tiny_models,
       '--run-id', 'r1', '--gallery-rows', '0', '--direct_num_workers=1'],
      cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
  assert done.returncode == 1
  last = done.stderr.strip().splitlines()[-1]
  assert last.startswith('The job failed: ') and 'IsADirectoryError' in last, done.stderr[-2000:]
  assert 'Traceback' not in done.stderr.split('The job failed')[-1]
  assert not list(out.glob('_manifest/summary-*.json'))


def test_unknown_cause_of_a_wrapped_failure_is_its_innermost_line():
  try:
    try:
      raise NotADirectoryError(20, 'Not a directory', '/out/_manifest')
    except OSError as inner:
      raise RuntimeError('Traceback (most recent call last):\n  File "x"\n'
                         f'{type(inner).__name__}: {inner} [while running \'Write\']') from None
  except RuntimeError as e:
    cause = job._cause(e)
  assert cause.startswith('NotADirectoryError: [Errno 20] Not a directory')


def test_a_hostile_catalog_is_accounted_for_in_one_run(tiny_models, tmp_path):
  """Names that are not UTF-8 or hold glob characters, things that are not files, junk, a
  duplicate id and damaged state, in one catalog: every input ends in the manifest."""
  catalog, out = tmp_path / 'catalog', tmp_path / 'out'
  catalog.mkdir()
  good = ['plain.jpg', 'back\\slash.jpg', 'star*.png', 'q[1].jpg', os.fsdecode(b'caf\xe9.jpg')]
  for name in good:
    gradient_picture(64, 48).save(os.path.join(catalog, name), 'PNG' if '.png' in name else 'JPEG')
  os.mkfifo(catalog / 'fifo.jpg')
  os.symlink(catalog / 'nowhere', catalog / 'dangling.jpg')
  (catalog / 'zeros.jpg').write_bytes(b'\0' * 2_000_000)
  (catalog / 'big.jpg').write_bytes(b'\xff\xd8\xff' + b'\0' * 3_000_000)
  listed = tmp_path / 'list.csv'
  listed.write_text(f'uri,id\n{catalog}/plain.jpg,sku/1\n{catalog}/q[1].jpg,sku/1\n'
                    f'{catalog}/plain.jpg,sku/1\n')
  (out / '_manifest').mkdir(parents=True)
  (out / '_manifest' / 'results-old-00000-of-00001.jsonl').write_bytes(b'{"a": "\xff\n\x80\n')
  gradient_picture(300, 300).save(tmp_path / 'warm.png')
  outcome = job.run(['--content', str(catalog / '*'), '--content-list', str(listed),
                     '--styles', str(tmp_path / 'warm.png'), '--output', str(out),
                     '--model', tiny_models, '--max-bytes', '2500000', '--run-id', 'r1'])
  rows, lines = {}, 0
  for path in (out / '_manifest').glob('results-r1-*.jsonl'):
    for line in path.read_text().splitlines():
      row = json.loads(line)
      rows[row['content_uri'], row['content_id']] = row
      lines += 1
  by_name = {uri.rsplit('/', 1)[1]: r for (uri, given), r in rows.items() if given != 'sku/1'}
  assert {name for name in good} <= set(by_name)
  assert all(by_name[name]['status'] == 'written' for name in good)
  assert by_name['fifo.jpg']['message'] == 'not a regular file: a FIFO'
  assert 'dangling' in by_name['dangling.jpg']['message']
  assert (by_name['zeros.jpg']['stage'], by_name['big.jpg']['error_type']) == ('decode',
                                                                                'FileTooLarge')
  listed_rows = {uri.rsplit('/', 1)[1]: r for (uri, given), r in rows.items() if given == 'sku/1'}
  assert listed_rows['plain.jpg']['status'] == 'written'  # the smaller URI keeps the id
  assert listed_rows['q[1].jpg']['error_type'] == 'DuplicateId'
  assert outcome.summary['accounted'] and outcome.summary['pairs_expected'] == len(rows) == 11
  assert lines == len(rows)  # no pair recorded twice
  assert outcome.summary['manifest_lines_unreadable'] == 2


def test_a_list_file_that_is_a_fifo_stops_the_launch_without_waiting(pictures, tiny_models,
                                                                      tmp_path):
  os.mkfifo(tmp_path / 'list.csv')
  with pytest.raises(LaunchError, match='not a regular file: a FIFO'):
    job.run(['--content-list', str(tmp_path / 'list.csv'), '--styles',
             str(pictures / 'styles' / '*'), '--output', str(tmp_path / 'out'),
             '--model', tiny_models])


def test_outputs_that_cannot_be_written_are_dead_letters_in_a_complete_record(pictures,
                                                                             tiny_models,
                                                                             tmp_path):
  """One style's folder is not writable (here a file stands where the folder goes): its pairs
  fail at `write`, the other style's are written, and the manifest and summary say which."""
  out = tmp_path / 'out'
  out.mkdir()
  (out / 'warm').write_text('not a folder')
  outcome = job.run(['--content', str(pictures / 'content' / '**'), '--styles',
                     str(pictures / 'styles' / '*'), '--output', str(out), '--model', tiny_models,
                     '--run-id', 'r1', '--gallery-rows', '0'])
  summary = json.loads((out / '_manifest' / 'summary-r1.json').read_text())
  assert (summary['pairs_written'], summary['pairs_failed'], summary['failed_by_stage']) == (
      3, 3, {'write': 3})
  assert summary['accounted'] and outcome.summary['pairs_failed'] == 3
  failures = [json.loads(line) for path in (out / '_manifest').glob('failures-r1-*.jsonl')
              for line in path.read_text().splitlines()]
  assert {f['style_id'] for f in failures} == {'warm'} and all(f['message'] for f in failures)
