"""Per-item styles: a list file (here Parquet, as a warehouse exports it) whose `styles` column
gives each picture its own styles; only assigned pairs exist, in the run and in re-runs."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import read_manifest

from pipeline import launch, options
from pipeline import run as job
from transforms import inputs

CONTENT = ['coffee.png', 'lion.jpg', 'grace_hopper.jpg', 'golden_gate_sq.jpg']


def _list(path, styles):
  pq.write_table(pa.table({'uri': [f'content/{name}' for name in CONTENT],
                           'id': [name.split('.')[0] for name in CONTENT],
                           'styles': styles}), path)
  return str(path)


def _outputs(out):
  return {p.relative_to(out).as_posix() for p in out.rglob('*.png')
          if not p.relative_to(out).parts[0].startswith('_')}


def test_rows_get_their_own_styles_blends_and_built_ins_and_only_those(
    shared, tiny_models, tmp_path):
  images, out = shared / 'images', tmp_path / 'out'
  scream = images / 'style' / 'munch_the_scream.jpg'
  cafe = images / 'style' / 'van_gogh_night_cafe.jpg'
  # Relative references are relative to the list file, as its URIs are.
  (tmp_path / 'lists').mkdir()
  (tmp_path / 'lists' / 'content').symlink_to(images / 'content')
  (tmp_path / 'lists' / 'mine.jpg').symlink_to(scream)
  styles = ['mine.jpg;house', '', f'{tmp_path}/gone.jpg;builtin:great_wave', None]
  args = ['--content-list', _list(tmp_path / 'lists' / 'catalog.parquet', styles),
          '--styles', str(cafe), '--style-blend', f'house={scream}:1,{cafe}:1',
          '--output', str(out), '--model', tiny_models, '--format', 'png', '--max-size', '256']
  mine = f'mine-{inputs.uri_hash(str(tmp_path / "lists" / "mine.jpg"))}'  # named by rows only
  first = job.run(args).summary
  # coffee: mine + house; lion and golden_gate: the defaults (cafe and house); grace_hopper: a
  # style that cannot be read (a dead letter) and a built-in one.
  assert (first['pairs_expected'], first['pairs_written'], first['pairs_failed'],
          first['accounted']) == (8, 7, 1, True)
  assert _outputs(out) == {
      f'{mine}/coffee.png', 'house/coffee.png', 'van_gogh_night_cafe/lion.png', 'house/lion.png',
      'great_wave/grace_hopper.png', 'van_gogh_night_cafe/golden_gate_sq.png',
      'house/golden_gate_sq.png'}
  (failed,) = read_manifest(out, 'failures')
  assert (failed['content_id'], failed['stage']) == ('grace_hopper', 'read_style')
  assert failed['style_id'].startswith('gone-')
  page = (out / 'index.html').read_text()
  # 5 style columns (gone among them) x 4 pictures: 8 pairs, the other cells empty.
  assert page.count('<td class="written">') == 7 and page.count('<td></td>') == 5 * 4 - 8

  again = job.run(args).summary
  assert (again['pairs_expected'], again['pairs_written'], again['pairs_skipped']) == (8, 0, 7)
  # A row given one more style: only that pair is rendered.
  styles[1] = 'mine.jpg'
  args[1] = _list(tmp_path / 'lists' / 'catalog.parquet', styles)
  changed = job.run(args).summary
  assert (changed['pairs_expected'], changed['pairs_written'], changed['pairs_skipped'],
          changed['pairs_failed']) == (7, 1, 5, 1)
  assert f'{mine}/lion.png' in _outputs(out)


def test_a_list_with_a_styles_column_needs_no_styles_flag_and_one_without_is_refused(
    shared, tiny_models, tmp_path):
  images = shared / 'images'
  (tmp_path / 'content').symlink_to(images / 'content')
  scream = images / 'style' / 'munch_the_scream.jpg'
  listed = _list(tmp_path / 'a.parquet', [str(scream), None, str(scream), ''])
  out = tmp_path / 'out'
  summary = job.run(['--content-list', listed, '--output', str(out), '--model', tiny_models,
                     '--format', 'png', '--max-size', '128', '--gallery-rows', '0']).summary
  # The rows without styles have none to take: each is one dead letter, counted.
  assert (summary['pairs_expected'], summary['pairs_written'], summary['pairs_failed'],
          summary['accounted']) == (4, 2, 2, True)
  assert {r['message'] for r in read_manifest(out, 'failures')} == {
      'this row names no styles and the job has no --styles'}
  plain = tmp_path / 'plain.csv'
  plain.write_text('uri\ncontent/coffee.png\n')
  settings, _ = options.parse(['--content-list', str(plain), '--output', str(out),
                               '--model', tiny_models])
  with pytest.raises(launch.LaunchError, match='no styles'):
    launch.prepare(settings)


def test_a_blend_part_a_missing_blend_and_one_file_spelled_two_ways(shared, tiny_models, tmp_path):
  images, out = shared / 'images', tmp_path / 'out'
  (tmp_path / 'lists').mkdir()
  (tmp_path / 'lists' / 'content').symlink_to(images / 'content')
  (tmp_path / 'styles').mkdir()
  cafe = tmp_path / 'styles' / 'cafe.jpg'
  cafe.write_bytes((images / 'style' / 'van_gogh_night_cafe.jpg').read_bytes())
  # coffee: a part of the blend; lion: a blend that does not exist; grace_hopper: --styles'
  # file, spelled another way; golden_gate: the defaults.
  styles = ['builtin:great_wave', 'blend:nope', '../styles/./cafe.jpg', None]
  args = ['--content-list', _list(tmp_path / 'lists' / 'catalog.parquet', styles),
          '--styles', str(cafe), '--style-blend', f'house={cafe}:1,builtin:great_wave:1',
          '--output', str(out), '--model', tiny_models, '--format', 'png', '--max-size', '128',
          '--gallery-rows', '0']
  summary = job.run(args).summary
  assert (summary['pairs_expected'], summary['pairs_written'], summary['pairs_failed'],
          summary['accounted']) == (5, 4, 1, True)
  assert summary['styles_predicted'] == 1  # cafe, once; great_wave comes from the bank
  assert _outputs(out) == {'great_wave/coffee.png', 'cafe/grace_hopper.png',
                           'cafe/golden_gate_sq.png', 'house/golden_gate_sq.png'}
  (failed,) = read_manifest(out, 'failures')
  assert failed['content_id'] == 'lion' and "no --style-blend has this name" in failed['message']


def test_a_damaged_parquet_list_stops_the_job_at_launch(tiny_models, tmp_path):
  damaged = tmp_path / 'catalog.parquet'
  damaged.write_bytes(b'PAR1 this is not a whole Parquet file')
  settings, _ = options.parse(['--content-list', str(damaged), '--styles', 'builtin:great_wave',
                               '--output', str(tmp_path / 'out'), '--model', tiny_models])
  with pytest.raises(launch.LaunchError, match='--content-list .*catalog.parquet'):
    launch.prepare(settings)
  assert not (tmp_path / 'out').exists()
