"""Delivering outputs: sizes, fit/fill boxes, colour preservation, transparency, encodings."""
from __future__ import annotations

import io
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import ROOT, gradient_picture
from PIL import Image

from models import imaging
from models.rendering import Rendering, encode, finish, output_size


@pytest.mark.parametrize('full, render, size, crop', [
    ((2000, 1000), Rendering(), (1024, 512), None),
    ((2000, 1000), Rendering(max_size=0), (2000, 1000), None),
    ((300, 200), Rendering(), (300, 200), None),  # never upscaled past the source by default
    ((3, 5000), Rendering(), (1, 1024), None),
    ((800, 600), Rendering(frame='square'), (600, 600), None),
    ((2000, 1000), Rendering(box=(500, 500)), (500, 250), None),
    ((2000, 1000), Rendering(box=(500, 500), box_mode='fill'), (1000, 500), (250, 0, 750, 500)),
    ((1000, 2000), Rendering(box=(300, 200), box_mode='fill'), (300, 600), (0, 200, 300, 400)),
    ((2000, 1000), Rendering(sizes=(480, 1600)), (1600, 800), None),  # the widest width
    ((300, 900), Rendering(sizes=(480,), frame='square'), (480, 480), None),
])
def test_output_size(full, render, size, crop):
  assert output_size(full, render) == (size, crop)


@pytest.mark.parametrize('render, side', [
    (Rendering(), 384),  # every output pixel comes from the network: decode at its size
    (Rendering(box=(2000, 2000)), 384),
    (Rendering(working_size=1024), 1024),  # tiles paint at the working size
    (Rendering(preserve_colour=True), 1024),  # source colours at the output size
    (Rendering(preserve_colour=True, box=(600, 400)), 600),
    (Rendering(preserve_colour=True, max_size=0), None),  # full size: no reduced decode
    (Rendering(sizes=(480, 1600)), 384),
    (Rendering(preserve_colour=True, sizes=(480, 1600)), None),
])
def test_jpegs_are_decoded_only_as_large_as_the_output_needs(render, side):
  assert render.min_decode_side() == side


def test_a_large_jpeg_decodes_at_a_reduced_scale_still_twice_the_network_size():
  data = io.BytesIO()
  Image.new('RGB', (6400, 4800), (90, 120, 200)).save(data, 'JPEG')
  decoded = imaging.decode(data.getvalue(), min_side=Rendering().min_decode_side())
  assert decoded.full_size == (6400, 4800)
  assert decoded.image.size == (1600, 1200)  # 1/4 scale; 1/8 would leave 600 < 2 x 384


def test_preserve_colour_keeps_the_source_chroma_and_the_stylized_luminance():
  source = gradient_picture(64, 48, 1)
  stylized = gradient_picture(64, 48, 2)
  out = finish(stylized.copy(), Rendering(preserve_colour=True), source=source)
  y_out, cb_out, cr_out = (np.asarray(c, np.int16) for c in out.convert('YCbCr').split())
  y_style, cb_style, cr_style = (np.asarray(c, np.int16) for c in stylized.convert('YCbCr').split())
  y_src, cb_src, cr_src = (np.asarray(c, np.int16) for c in source.convert('YCbCr').split())
  # Equal up to rounding and gamut clipping when going back to RGB.
  assert np.abs(y_out - y_style).mean() < 0.25 * np.abs(y_src - y_style).mean()
  assert np.abs(cb_out - cb_src).mean() < 0.25 * np.abs(cb_style - cb_src).mean()
  assert np.abs(cr_out - cr_src).mean() < 0.25 * np.abs(cr_style - cr_src).mean()


def test_fill_crops_to_exactly_the_box():
  picture = gradient_picture(1000, 500)
  out = finish(picture, Rendering(box=(500, 500), box_mode='fill'), crop=(250, 0, 750, 500))
  assert out.size == (500, 500)
  np.testing.assert_array_equal(np.asarray(out), np.asarray(picture)[:, 250:750])


def _alpha():
  alpha = Image.new('L', (20, 10), 0)
  alpha.paste(255, (0, 0, 10, 10))
  return alpha


@pytest.mark.parametrize('fmt', ['png', 'webp', 'avif'])
def test_alpha_is_put_back_for_formats_that_have_it(fmt):
  render = Rendering(fmt=fmt)
  out = finish(gradient_picture(20, 10), render, alpha=_alpha())
  decoded = Image.open(io.BytesIO(encode(out, render)))
  assert decoded.mode == 'RGBA'
  assert decoded.getpixel((15, 5))[3] == 0 and decoded.getpixel((5, 5))[3] == 255


def test_jpeg_is_flattened_on_the_background():
  render = Rendering(background=(0, 0, 255))
  out = finish(gradient_picture(20, 10), render, alpha=_alpha())
  assert out.mode == 'RGB' and out.getpixel((15, 5)) == (0, 0, 255)


@pytest.mark.parametrize('render, pil_format', [
    (Rendering(), 'JPEG'), (Rendering(fmt='png'), 'PNG'), (Rendering(fmt='webp'), 'WEBP'),
    (Rendering(fmt='avif'), 'AVIF'), (Rendering(progressive=True), 'JPEG')])
def test_outputs_are_tagged_srgb_and_carry_no_source_metadata(render, pil_format):
  decoded = Image.open(io.BytesIO(encode(gradient_picture(32, 16), render)))
  assert decoded.format == pil_format
  assert decoded.info['icc_profile'] == imaging.SRGB_BYTES
  assert not decoded.getexif()
  assert bool(decoded.info.get('progressive')) == render.progressive


def _with_gps():
  exif = Image.Exif()
  exif[0x010F] = 'CameraMaker'  # Make
  exif[0x8825] = {1: 'N', 2: (52.0, 22.0, 0.0)}  # GPSInfo
  buffer = io.BytesIO()
  gradient_picture(40, 30).save(buffer, 'JPEG', exif=exif)
  assert not imaging.decode(buffer.getvalue()).exif  # not kept unless asked
  return imaging.decode(buffer.getvalue(), keep_exif=True)


@pytest.mark.parametrize('fmt', ['jpeg', 'png', 'webp', 'avif'])
def test_personal_metadata_is_copied_only_when_asked(fmt):
  decoded = _with_gps()
  assert decoded.exif
  plain = Image.open(io.BytesIO(encode(decoded.image, Rendering(fmt=fmt), decoded.exif)))
  assert not plain.getexif()
  kept = Image.open(io.BytesIO(encode(decoded.image, Rendering(fmt=fmt, keep_metadata=True),
                                      decoded.exif)))
  assert kept.getexif()[0x010F] == 'CameraMaker' and 0x8825 in kept.getexif()


def test_an_output_encodes_to_the_same_bytes_in_every_process():
  """The sRGB profile outputs carry is made at import time, stamped with that time by LittleCMS:
  the job pins its date, so re-encoding never differs by a byte."""
  code = ('import hashlib, time; from models import rendering; from conftest import '
          'gradient_picture; print(hashlib.sha256(rendering.encode(gradient_picture(32, 24), '
          'rendering.Rendering())).hexdigest())')
  env = {**os.environ, 'PYTHONPATH': f'{ROOT}{os.pathsep}{ROOT / "tests"}'}
  digests = set()
  for _ in range(2):
    digests.add(subprocess.run([sys.executable, '-c', code], env=env, capture_output=True,
                               text=True, check=True).stdout)
    time.sleep(1.1)  # the profile's stamp has a one-second resolution
  assert len(digests) == 1


def test_a_fingerprint_recipe_covers_the_mask_options_only_when_they_are_used():
  plain = Rendering().recipe()
  assert Rendering(feather=8).recipe() == Rendering(cutout='background').recipe() == plain
  assert ('sizes', (480, 960)) in Rendering(sizes=(480, 960)).recipe()


def test_a_mask_keeps_the_source_where_black_and_feathering_softens_its_edge():
  size = (64, 32)
  stylized, source = Image.new('RGB', size, (250, 0, 0)), Image.new('RGB', size, (0, 0, 250))
  mask = Image.new('L', (32, 16), 0)
  mask.paste(255, (0, 0, 16, 16))  # the left half: stylize
  from models.rendering import mask_at
  sharp = np.asarray(finish(stylized, Rendering(), source=source,
                            mask=mask_at(mask, size, Rendering())))
  assert (sharp[:, :24] == (250, 0, 0)).all() and (sharp[:, 40:] == (0, 0, 250)).all()
  soft = mask_at(mask, size, Rendering(feather=6))
  row = np.asarray(soft)[16]
  assert row[0] == 255 and row[-1] == 0 and 20 < row[32] < 235  # a ramp across the edge
  assert np.count_nonzero((row > 10) & (row < 245)) >= 10


def test_cutout_takes_the_mask_from_the_alpha():
  from models.rendering import cutout_mask
  alpha = Image.new('L', (8, 8), 0)
  alpha.paste(255, (2, 2, 6, 6))
  assert np.asarray(cutout_mask(alpha, Rendering(cutout='foreground')))[4, 4] == 255
  behind = np.asarray(cutout_mask(alpha, Rendering(cutout='background')))
  assert behind[4, 4] == 0 and behind[0, 0] == 255
  with pytest.raises(imaging.ImageError, match='needs a picture with transparency'):
    cutout_mask(None, Rendering(cutout='background'))
  kept = finish(Image.new('RGB', (8, 8)), Rendering(fmt='png', cutout='foreground'),
                source=Image.new('RGB', (8, 8)), alpha=alpha, mask=alpha)
  assert kept.mode == 'RGBA'  # the product stylized, still cut out
