"""Masks: a list file's `mask` column (white = stylize) and --cutout for cut-outs, on real
pictures: the source is kept where the mask is black, and a missing mask is a dead letter."""
from __future__ import annotations

import numpy as np
from conftest import read_manifest
from PIL import Image

from pipeline import run as job

SIDE = 256  # --max-size: coffee.png is delivered 256 pixels wide


def _pixels(path) -> np.ndarray:
  with Image.open(path) as picture:
    return np.asarray(picture.convert('RGB'), np.float32)


def _source(shared) -> np.ndarray:
  with Image.open(shared / 'images' / 'content' / 'coffee.png') as picture:
    size = (SIDE, round(picture.height * SIDE / picture.width))
    return np.asarray(picture.convert('RGB').resize(size, Image.Resampling.LANCZOS), np.float32)


def test_a_mask_column_stylizes_only_where_white_and_a_missing_mask_is_a_dead_letter(
    shared, tiny_models, tmp_path):
  content = shared / 'images' / 'content'
  mask = Image.new('L', (40, 30), 0)
  mask.paste(255, (0, 0, 20, 30))  # any size: scaled to the output; the left half stylized
  mask.save(tmp_path / 'left.png')
  (tmp_path / 'list.csv').write_text(
      f'uri,id,mask\n{content / "coffee.png"},coffee,left.png\n'
      f'{content / "lion.jpg"},lion,gone.png\n{content / "coffee.png"},plain,\n')
  out = tmp_path / 'out'
  args = ['--content-list', str(tmp_path / 'list.csv'), '--output', str(out),
          '--styles', str(shared / 'images' / 'style' / 'munch_the_scream.jpg'),
          '--model', tiny_models, '--format', 'png', '--max-size', str(SIDE),
          '--gallery-rows', '0']
  summary = job.run(args).summary
  assert (summary['pairs_written'], summary['pairs_failed'], summary['accounted']) == (
      2, 1, True)
  (failed,) = read_manifest(out, 'failures')
  assert (failed['content_id'], failed['stage']) == ('lion', 'read_mask')
  notes = {row['content_id']: row['notes'] for row in read_manifest(out)
           if row['status'] == 'written'}
  assert notes == {'coffee': [f'masked by {tmp_path / "left.png"}'], 'plain': []}
  masked = _pixels(out / 'munch_the_scream' / 'coffee.png')
  plain = _pixels(out / 'munch_the_scream' / 'plain.png')
  source = _source(shared)
  assert masked.shape == source.shape == plain.shape
  half = SIDE // 2
  # Right of the edge: the source itself; left: the stylized picture, as without a mask.
  assert np.abs(masked[:, half + 8:] - source[:, half + 8:]).mean() < 1.0
  assert np.abs(masked[:, :half - 8] - plain[:, :half - 8]).mean() < 1.0
  assert np.abs(plain[:, half + 8:] - source[:, half + 8:]).mean() > 10

  assert job.run(args).summary['pairs_skipped'] == 2
  mask.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(tmp_path / 'left.png')
  again = job.run(args).summary  # a changed mask renders its picture's pairs again, only those
  assert (again['pairs_written'], again['pairs_skipped']) == (1, 1)
  flipped = _pixels(out / 'munch_the_scream' / 'coffee.png')
  assert np.abs(flipped[:, :half - 8] - source[:, :half - 8]).mean() < 1.0


def test_cutout_background_paints_a_backdrop_behind_a_cut_out(shared, tiny_models, tmp_path):
  with Image.open(shared / 'images' / 'content' / 'coffee.png') as picture:
    cut_out = picture.convert('RGBA').resize((SIDE, SIDE * 3 // 4))
  alpha = Image.new('L', cut_out.size, 0)
  alpha.paste(255, (64, 48, 192, 144))  # the "product": an opaque box in the middle
  cut_out.putalpha(alpha)
  (tmp_path / 'in').mkdir()
  cut_out.save(tmp_path / 'in' / 'product.png')
  cut_out.save(tmp_path / 'in' / 'masked.png')
  Image.new('L', (8, 8), 255).save(tmp_path / 'in' / 'all.png')
  # masked.png has a mask of its own, which wins over --cutout: its transparency stays.
  (tmp_path / 'in' / 'list.csv').write_text(
      'uri,id,mask\nproduct.png,product,\nmasked.png,masked,all.png\n')
  out = tmp_path / 'out'
  summary = job.run(['--content-list', str(tmp_path / 'in' / 'list.csv'), '--output', str(out),
                     '--styles', str(shared / 'images' / 'style' / 'munch_the_scream.jpg'),
                     '--model', tiny_models, '--format', 'png', '--max-size', str(SIDE),
                     '--cutout', 'background', '--gallery-rows', '0']).summary
  assert summary['pairs_written'] == 2
  with Image.open(out / 'munch_the_scream' / 'masked.png') as picture:
    assert picture.mode == 'RGBA'
  with Image.open(out / 'munch_the_scream' / 'product.png') as picture:
    assert picture.mode == 'RGB'  # opaque: the backdrop fills what was transparent
    result = np.asarray(picture, np.float32)
  product = np.asarray(cut_out.convert('RGB'), np.float32)
  assert np.abs(result[56:136, 72:184] - product[56:136, 72:184]).mean() < 1.0
  assert np.abs(result[:32] - 255).mean() > 10  # not the flat white the transparency was
