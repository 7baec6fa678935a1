"""Decoding and the pre/post-processing contract, on generated pictures of every awkward kind."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from conftest import gradient_picture
from models import imaging


def _encoded(picture: Image.Image, fmt: str, **kwargs) -> bytes:
  buffer = io.BytesIO()
  picture.save(buffer, fmt, **kwargs)
  return buffer.getvalue()


def test_decode_gives_upright_rgb_for_exif_rotated_jpeg():
  picture = gradient_picture(60, 40)
  exif = Image.Exif()
  exif[0x0112] = 6  # stored sideways: display rotated 90 degrees clockwise
  decoded = imaging.decode(_encoded(picture, 'JPEG', exif=exif, quality=95))
  assert decoded.image.mode == 'RGB'
  assert decoded.image.size == (40, 60) == decoded.full_size
  got = np.asarray(decoded.image, dtype=np.float32)
  error = lambda turn: np.abs(got - np.asarray(picture.transpose(turn), dtype=np.float32)).mean()
  assert error(Image.Transpose.ROTATE_270) < 10  # JPEG noise only
  assert error(Image.Transpose.ROTATE_90) > 4 * error(Image.Transpose.ROTATE_270)


@pytest.mark.parametrize('mode', ['L', 'P', 'CMYK', 'RGBA', 'LA', 'I;16'])
def test_decode_converts_every_mode_to_rgb(mode):
  picture = gradient_picture(32, 24)
  if mode == 'I;16':
    levels = (np.asarray(picture.convert('L'), dtype=np.uint16) * 257)
    converted = Image.fromarray(levels)  # uint16 -> I;16
  else:
    converted = picture.convert(mode)
  fmt = 'JPEG' if mode == 'CMYK' else 'PNG'
  decoded = imaging.decode(_encoded(converted, fmt))
  assert decoded.image.mode == 'RGB' and decoded.image.size == (32, 24)
  gray = np.asarray(picture.convert('L'), dtype=np.float32)
  got = np.asarray(decoded.image.convert('L'), dtype=np.float32)
  assert np.abs(got - gray).mean() < 12  # same picture, not a flat or wrapped-around one


def test_transparent_pixels_are_flattened_on_white():
  rgba = Image.new('RGBA', (8, 8), (255, 0, 0, 0))
  decoded = imaging.decode(_encoded(rgba, 'PNG'))
  assert decoded.image.getpixel((3, 3)) == (255, 255, 255)


def test_animated_gif_gives_first_frame_and_says_so():
  frames = [Image.new('RGB', (10, 10), colour) for colour in ((255, 0, 0), (0, 0, 255))]
  data = _encoded(frames[0], 'GIF', save_all=True, append_images=frames[1:])
  decoded = imaging.decode(data)
  assert decoded.notes == ('first frame of 2',)
  assert decoded.image.getpixel((5, 5))[0] > 200


def test_pixel_limit_is_checked_before_decoding():
  huge = Image.new('L', (4000, 3000))
  data = _encoded(huge, 'PNG')
  with pytest.raises(imaging.ImageError, match='12000000 pixels, over the limit of 1000000'):
    imaging.decode(data, max_pixels=1_000_000)


@pytest.mark.parametrize('data, message', [
    (b'', 'not an image'),
    (b'just some text, not a picture', 'not an image'),
])
def test_undecodable_bytes_are_image_errors(data, message):
  with pytest.raises(imaging.ImageError, match=message):
    imaging.decode(data)


def test_truncated_jpeg_is_an_image_error():
  data = _encoded(gradient_picture(200, 200), 'JPEG')
  with pytest.raises(imaging.ImageError, match='cannot decode'):
    imaging.decode(data[: len(data) // 2])


def test_large_jpeg_is_decoded_at_reduced_scale():
  data = _encoded(gradient_picture(4000, 3000), 'JPEG', quality=80)
  decoded = imaging.decode(data, min_side=250)
  assert decoded.full_size == (4000, 3000)
  assert decoded.image.size == (1000, 750)  # 1/4 scale: the smallest with both sides >= 2 * 250


def test_style_input_is_centre_crop_in_unit_range():
  picture = Image.new('RGB', (600, 300), (0, 0, 0))
  picture.paste((255, 255, 255), (150, 0, 450, 300))  # white centre square
  style = imaging.style_input(picture)
  assert style.shape == (256, 256, 3) and style.dtype == np.float32
  assert style[2:-2, 2:-2].min() >= 0.99 and style.max() <= 1.0  # Lanczos rings at the edge


@pytest.mark.parametrize('size, max_size, box, out', [
    ((768, 384), 1024, (0, 96, 384, 288), (768, 384)),
    ((384, 768), 500, (96, 0, 288, 384), (250, 500)),
    ((3, 5000), 1024, (191, 0, 192, 384), (1, 1024)),
    ((2000, 1000), 0, (0, 96, 384, 288), (2000, 1000)),
])
def test_fit_framing_keeps_aspect_and_whole_picture(size, max_size, box, out):
  picture = gradient_picture(*size)
  network_input, framing = imaging.content_input(picture, size, 'fit', max_size)
  assert network_input.shape == (384, 384, 3) and network_input.dtype == np.float32
  assert 0.0 <= network_input.min() and network_input.max() <= 1.0
  assert framing.box == box and framing.output_size == out
  # The picture sits unchanged inside the box; the rest mirrors it.
  left, top, right, bottom = box
  inner = imaging.to_unit_float(picture.resize((right - left, bottom - top), Image.LANCZOS))
  np.testing.assert_array_equal(network_input[top:bottom, left:right], inner)
  output = imaging.content_output(network_input, framing)
  assert output.size == out


def test_square_framing_is_the_centre_crop():
  network_input, framing = imaging.content_input(gradient_picture(800, 600), (800, 600), 'square',
                                                 1024)
  assert framing.output_size == (600, 600) and framing.box == (0, 0, 384, 384)


def test_content_output_round_trips_network_values():
  values = np.random.default_rng(0).random((384, 384, 3), dtype=np.float32)
  framing = imaging.Framing((0, 0, 384, 384), (384, 384))
  picture = imaging.content_output(values, framing)
  np.testing.assert_array_equal(np.asarray(picture), np.rint(values * 255).astype(np.uint8))


@pytest.mark.parametrize('fmt, signature', [('jpeg', b'\xff\xd8'), ('png', b'\x89PNG')])
def test_encode(fmt, signature):
  assert imaging.encode(gradient_picture(20, 10), fmt).startswith(signature)
