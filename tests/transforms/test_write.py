"""WriteOutput, called directly: where each output goes, what it is encoded as, its manifest row,
and the dead letter of a pair that cannot be encoded or written."""
from __future__ import annotations

import apache_beam as beam
import numpy as np
import pytest
from conftest import gradient_picture
from PIL import Image

from models.rendering import Rendering
from transforms import inputs
from transforms.records import FAILED, WRITTEN, ManifestRow, StylizedImage
from transforms.write import WriteOutput, output_uri

DEFAULT = Rendering()


def stylized(content_id='photo-1a2b3c4d', style_id='warm', strength=1.0, picture=None, notes=()):
  ref = inputs.content_ref('/in/photo.jpg', content_id)
  return StylizedImage(ref=ref, style_id=style_id, strength=strength, fingerprint='fp-1',
                       picture=picture or gradient_picture(64, 48), notes=notes)


def write(item: StylizedImage, output, render: Rendering = DEFAULT):
  step = WriteOutput(str(output), render, 'sha-of-transfer')
  step.setup()
  return list(step.process(item))


def test_an_output_is_written_under_its_style_and_content_id_with_its_row(tmp_path):
  (row,) = write(stylized(notes=('first frame of 2',)), tmp_path)
  path = tmp_path / 'warm' / 'photo-1a2b3c4d.jpg'
  assert row == ManifestRow(
      content_uri='/in/photo.jpg', content_id='photo-1a2b3c4d', style_id='warm', strength=1.0,
      status=WRITTEN, model_sha256='sha-of-transfer', output_uri=str(path), fingerprint='fp-1',
      notes=('first frame of 2',))
  with Image.open(path) as picture:
    assert (picture.format, picture.size) == ('JPEG', (64, 48))
  # Written whole under its name: no temporary file is left beside it.
  assert [p.name for p in (tmp_path / 'warm').iterdir()] == ['photo-1a2b3c4d.jpg']


@pytest.mark.parametrize('render, strength, name, pil_format', [
    (Rendering(), 1.0, 'photo-1a2b3c4d.jpg', 'JPEG'),
    (Rendering(), 0.5, 'photo-1a2b3c4d.s0.50.jpg', 'JPEG'),
    (Rendering(fmt='png'), 0.25, 'photo-1a2b3c4d.s0.25.png', 'PNG'),
    (Rendering(fmt='webp'), 1.0, 'photo-1a2b3c4d.webp', 'WEBP'),
    (Rendering(fmt='avif'), 1.0, 'photo-1a2b3c4d.avif', 'AVIF'),
])
def test_the_name_carries_the_strength_below_one_and_the_formats_extension(
    tmp_path, render, strength, name, pil_format):
  (row,) = write(stylized(strength=strength), tmp_path, render)
  assert row.output_uri == str(tmp_path / 'warm' / name) and row.strength == strength
  with Image.open(row.output_uri) as picture:
    assert picture.format == pil_format
  assert output_uri(str(tmp_path), 'warm', 'photo-1a2b3c4d', render.extension, strength) == (
      row.output_uri)


def test_a_list_id_with_folders_writes_into_subfolders_of_the_style(tmp_path):
  (row,) = write(stylized(content_id='shop/sku-7'), tmp_path)
  assert row.output_uri == str(tmp_path / 'warm' / 'shop' / 'sku-7.jpg')
  assert (tmp_path / 'warm' / 'shop' / 'sku-7.jpg').is_file()


def test_a_picture_that_cannot_be_encoded_is_an_encode_dead_letter(tmp_path):
  """JPEG has no alpha channel: an RGBA picture cannot be saved as one."""
  item = stylized(picture=gradient_picture(64, 48).convert('RGBA'), strength=0.5)
  (out,) = write(item, tmp_path)
  assert isinstance(out, beam.pvalue.TaggedOutput) and out.tag == FAILED
  failure = out.value
  assert (failure.stage, failure.error_type) == ('encode', 'OSError')
  assert (failure.content_uri, failure.content_id, failure.style_id, failure.strength) == (
      '/in/photo.jpg', 'photo-1a2b3c4d', 'warm', 0.5)
  assert not (tmp_path / 'warm').exists()


def test_an_output_that_cannot_be_written_is_a_write_dead_letter(tmp_path):
  (tmp_path / 'warm').write_text('a file where the style folder should be')
  (out,) = write(stylized(), tmp_path)
  assert isinstance(out, beam.pvalue.TaggedOutput) and out.tag == FAILED
  assert out.value.stage == 'write' and out.value.message
  assert (tmp_path / 'warm').read_text() == 'a file where the style folder should be'


def test_with_sizes_each_width_is_a_file_made_from_the_widest_and_the_row_names_them_all(
    tmp_path):
  render = Rendering(fmt='png', sizes=(16, 40, 64))
  widest = gradient_picture(64, 48)
  (row,) = write(stylized(picture=widest, strength=0.5), tmp_path, render)
  names = [f'photo-1a2b3c4d.s0.50.w{w}.png' for w in (16, 40, 64)]
  assert row.variants == tuple(str(tmp_path / 'warm' / n) for n in names)
  assert row.output_uri == row.variants[-1]
  assert sorted(p.name for p in (tmp_path / 'warm').iterdir()) == sorted(names)
  sizes = []
  for uri in row.variants:
    with Image.open(uri) as picture:
      sizes.append(picture.size)
  assert sizes == [(16, 12), (40, 30), (64, 48)]
  with Image.open(row.output_uri) as picture:  # the widest is the picture itself, losslessly
    assert (np.asarray(picture.convert('RGB')) == np.asarray(widest)).all()
  with Image.open(row.variants[0]) as picture:  # a smaller one is a downscaled copy
    expected = np.asarray(widest.resize((16, 12), Image.Resampling.LANCZOS), np.float32)
    assert np.abs(np.asarray(picture.convert('RGB'), np.float32) - expected).max() <= 1


def test_a_pair_whose_files_cannot_all_be_written_is_one_dead_letter(tmp_path):
  (tmp_path / 'warm').mkdir()
  (tmp_path / 'warm' / 'photo-1a2b3c4d.w40.jpg').mkdir()  # a folder where a file must go
  (out,) = write(stylized(), tmp_path, Rendering(sizes=(16, 40, 64)))
  assert out.tag == FAILED and out.value.stage == 'write'
