"""Responsive sizes (--sizes): every width of a pair from one inference, recorded together, and
skipped or made again as a whole."""
from __future__ import annotations

import pytest
from conftest import read_manifest
from PIL import Image

from pipeline import options
from pipeline import run as job

WIDTHS = (96, 160, 256)


def test_each_pair_is_written_at_each_width_and_rerun_as_a_whole(shared, tiny_models, tmp_path):
  images, out = shared / 'images', tmp_path / 'out'
  args = ['--content', str(images / 'content' / 'coffee.png'),
          '--content', str(images / 'content' / 'lion.jpg'),
          '--styles', str(images / 'style' / 'munch_the_scream.jpg'), '--output', str(out),
          '--model', tiny_models, '--sizes', ','.join(map(str, WIDTHS)), '--gallery-rows', '0']
  first = job.run(args).summary
  assert (first['pairs_expected'], first['pairs_written'], first['pairs_stylized']) == (2, 2, 2)
  rows = read_manifest(out)
  assert len(rows) == 2
  for row in rows:
    assert [path.rsplit('.', 2)[1] for path in row['variants']] == [f'w{w}' for w in WIDTHS]
    assert row['output_uri'] == row['variants'][-1]
    for width, path in zip(WIDTHS, row['variants']):
      with Image.open(path) as picture:
        assert picture.width == width and picture.format == 'JPEG'
    with Image.open(row['variants'][0]) as small, Image.open(row['variants'][-1]) as large:
      # Same picture, same aspect ratio, at every width.
      assert abs(small.height / small.width - large.height / large.width) < 0.02

  assert job.run(args).summary['pairs_skipped'] == 2
  # One file of a pair deleted: that pair is made again, whole; the other is skipped.
  lost = next(row for row in rows if 'coffee' in row['content_id'])
  (tmp_path / lost['variants'][1]).unlink()
  again = job.run(args).summary
  assert (again['pairs_written'], again['pairs_skipped']) == (1, 1)
  assert all((tmp_path / path).is_file() for path in lost['variants'])


def test_sizes_with_a_box_stop_the_job_at_launch(capsys):
  with pytest.raises(SystemExit):
    options.parse(['--content', 'x.jpg', '--styles', 'y.jpg', '--output', 'out',
                   '--sizes', '480,960', '--box', '800x800'])
  assert '--sizes and --box' in capsys.readouterr().err
  for bad in ('0,480', 'wide', '480,,960'):
    with pytest.raises(SystemExit):
      options.parse(['--content', 'x.jpg', '--styles', 'y.jpg', '--output', 'out',
                     '--sizes', bad])
    assert '--sizes' in capsys.readouterr().err
  settings, _ = options.parse(['--content', 'x.jpg', '--styles', 'y.jpg', '--output', 'out',
                               '--sizes', '960,480,960'])
  assert settings.rendering.sizes == (480, 960)
