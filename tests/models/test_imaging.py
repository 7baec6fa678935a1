"""Decoding and the pre/post-processing contract, on generated pictures of every awkward kind."""
from __future__ import annotations

import io

import numpy as np
import pytest
from conftest import gradient_picture
from PIL import Image

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


def test_opaque_alpha_channel_counts_as_none():
  assert imaging.decode(_encoded(gradient_picture(8, 8).convert('RGBA'), 'PNG')).alpha is None


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


@pytest.mark.parametrize('size, frame, decoded_size', [
    ((1024, 683), 'fit', (512, 342)),  # a catalog JPEG: half scale, long side still >= 384
    ((1024, 683), 'square', (1024, 683)),  # 683 // 2 < 384: the short side needs it whole
    ((2048, 1366), 'square', (1024, 683)),
    ((6000, 800), 'fit', (750, 100)),  # a panorama: only its long side matters to "fit"
    ((700, 500), 'fit', (700, 500)),
])
def test_a_frame_decodes_a_jpeg_only_as_large_as_that_frame_of_the_network_needs(
    size, frame, decoded_size):
  data = _encoded(gradient_picture(*size), 'JPEG', quality=90)
  decoded = imaging.decode(data, min_side=384, frame=frame)
  assert decoded.full_size == size
  assert decoded.image.size == decoded_size
  tensor, box = imaging.content_input(decoded.image, frame, decoded.full_size)
  assert tensor.shape == (384, 384, 3)
  if frame == 'fit':  # the box follows the source's own aspect, not the decoded rounding
    width, height = imaging.scaled(size, 384)
    assert (box[2] - box[0], box[3] - box[1]) == (width, height)


def test_a_rotated_jpeg_decoded_for_a_frame_is_upright_at_its_full_size():
  exif = Image.Exif()
  exif[0x0112] = 6
  data = _encoded(gradient_picture(1200, 800), 'JPEG', exif=exif, quality=90)
  decoded = imaging.decode(data, min_side=384, frame='fit')
  assert decoded.full_size == (800, 1200)
  assert decoded.image.size == (400, 600)


def test_the_reduced_decode_gives_the_network_nearly_the_same_input(shared):
  """Decoding at the frame's scale is a shortcut, not a different picture: on real photos the
  network input differs from the full decode's by far less than a visible step."""
  for name in ('dog_on_lava_field.jpg', 'lion.jpg', 'person_on_rocks_large.jpg'):
    data = (shared / 'images' / 'content' / name).read_bytes()
    whole = imaging.decode(data)
    reduced = imaging.decode(data, min_side=384, frame='fit')
    assert reduced.image.width < whole.image.width
    a, box = imaging.content_input(whole.image, 'fit')
    b, same_box = imaging.content_input(reduced.image, 'fit', reduced.full_size)
    assert same_box == box
    left, top, right, bottom = box
    error = np.mean((a[top:bottom, left:right] - b[top:bottom, left:right]) ** 2)
    assert 10 * np.log10(1 / error) > 30, name


def test_style_input_is_centre_crop_in_unit_range():
  picture = Image.new('RGB', (600, 300), (0, 0, 0))
  picture.paste((255, 255, 255), (150, 0, 450, 300))  # white centre square
  style = imaging.style_input(picture)
  assert style.shape == (256, 256, 3) and style.dtype == np.float32
  assert style[2:-2, 2:-2].min() >= 0.99 and style.max() <= 1.0  # Lanczos rings at the edge


@pytest.mark.parametrize('size, box', [
    ((768, 384), (0, 96, 384, 288)),
    ((384, 768), (96, 0, 288, 384)),
    ((3, 5000), (191, 0, 192, 384)),
])
def test_fit_framing_keeps_aspect_and_whole_picture(size, box):
  picture = gradient_picture(*size)
  network_input, got_box = imaging.content_input(picture, 'fit')
  assert network_input.shape == (384, 384, 3) and network_input.dtype == np.float32
  assert 0.0 <= network_input.min() and network_input.max() <= 1.0
  assert got_box == box
  # The picture sits unchanged inside the box; the rest mirrors it.
  left, top, right, bottom = box
  inner = imaging.to_unit_float(picture.resize((right - left, bottom - top), Image.LANCZOS))
  np.testing.assert_array_equal(network_input[top:bottom, left:right], inner)
  assert imaging.network_output(network_input, box, size).size == size


def test_square_framing_is_the_centre_crop():
  picture = Image.new('RGB', (800, 600), (0, 0, 0))
  picture.paste((255, 255, 255), (100, 0, 700, 600))
  network_input, box = imaging.content_input(picture, 'square')
  assert box == (0, 0, 384, 384)
  assert network_input[:, 2:-2].min() > 0.98  # only the white centre square is left


def test_network_output_round_trips_values():
  values = np.random.default_rng(0).random((384, 384, 3), dtype=np.float32)
  picture = imaging.network_output(values, (0, 0, 384, 384), (384, 384))
  np.testing.assert_array_equal(np.asarray(picture), np.rint(values * 255).astype(np.uint8))


def test_srgb_tagged_picture_is_left_as_it_is():
  from PIL import ImageCms
  srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile('sRGB')).tobytes()
  picture = Image.new('RGB', (8, 8), (200, 30, 30))
  decoded = imaging.decode(_encoded(picture, 'PNG', icc_profile=srgb))
  assert decoded.notes == () and decoded.image.getpixel((0, 0)) == (200, 30, 30)


def test_adobe_rgb_painting_is_converted_to_srgb(shared):
  from PIL import ImageCms
  path = shared / 'images' / 'style' / 'gauguin_tahitian_women.jpg'
  decoded = imaging.decode(path.read_bytes())
  assert decoded.notes == ('converted to sRGB from Adobe RGB (1998)',)
  source = Image.open(path)
  expected = ImageCms.profileToProfile(
      source, ImageCms.ImageCmsProfile(io.BytesIO(source.info['icc_profile'])), imaging.SRGB,
      outputMode='RGB')
  got, naive = (np.asarray(p, np.int16) for p in (decoded.image, source.convert('RGB')))
  assert np.abs(got - np.asarray(expected, np.int16)).max() <= 1
  assert np.abs(got - naive).mean() > 2  # the conversion really changed the colours


def test_transparency_is_kept_apart_and_flattened_on_the_background():
  rgba = Image.new('RGBA', (8, 8), (255, 0, 0, 0))
  rgba.paste((0, 0, 255, 255), (0, 0, 4, 8))
  decoded = imaging.decode(_encoded(rgba, 'PNG'), background=(0, 255, 0))
  assert decoded.image.getpixel((6, 3)) == (0, 255, 0)
  assert decoded.image.getpixel((1, 3)) == (0, 0, 255)
  assert decoded.alpha.getpixel((6, 3)) == 0 and decoded.alpha.getpixel((1, 3)) == 255


def test_dark_sixteen_bit_pictures_stay_dark():
  levels = np.full((8, 8), 300, np.uint16)  # 300 of 65535: nearly black
  decoded = imaging.decode(_encoded(Image.fromarray(levels), 'PNG'))
  assert decoded.image.getpixel((0, 0)) == (1, 1, 1)


def test_a_profile_that_does_not_fit_the_picture_is_ignored_with_a_note():
  from PIL import ImageCms
  lab = ImageCms.ImageCmsProfile(ImageCms.createProfile('LAB')).tobytes()
  picture = Image.new('RGB', (8, 8), (10, 200, 30))
  decoded = imaging.decode(_encoded(picture, 'PNG', icc_profile=lab))
  assert decoded.image.getpixel((0, 0)) == (10, 200, 30)
  assert decoded.notes and 'ICC profile ignored' in decoded.notes[0]


@pytest.mark.parametrize('fmt', ['WEBP', 'AVIF'])
def test_modern_formats_pass_the_signature_check_and_decode(fmt):
  picture = gradient_picture(48, 32)
  data = _encoded(picture, fmt, quality=95)
  imaging.check_signature(data[:64])
  decoded = imaging.decode(data)
  assert decoded.image.size == (48, 32) == decoded.full_size
  assert np.abs(np.asarray(decoded.image, np.float32) - np.asarray(picture, np.float32)).mean() < 8


def test_the_output_is_the_network_region_resized():
  values = np.random.default_rng(1).random((384, 384, 3), dtype=np.float32)
  box = (10, 20, 374, 300)
  region = np.rint(values[20:300, 10:374] * 255).astype(np.uint8)
  for size in ((1024, 787), (200, 154)):
    np.testing.assert_array_equal(np.asarray(imaging.network_output(values, box, size)),
                                  imaging.resized(region, size))


def test_resizes_enlarge_like_pillows_bicubic_and_reduce_with_its_lanczos():
  """The vectorized enlargement stands in for Pillow's bicubic: on a photo-like picture the two
  agree to about a level of 255 on average. Reductions are Pillow's Lanczos itself."""
  picture = gradient_picture(364, 280, seed=3)
  size = (1024, 787)
  ours = imaging.resized(np.asarray(picture), size).astype(np.float32)
  theirs = np.asarray(picture.resize(size, Image.Resampling.BICUBIC), np.float32)
  assert ours.shape == theirs.shape == (787, 1024, 3)
  assert np.abs(ours - theirs).mean() < 1.5
  for size in ((200, 154), (37, 29), (1024, 200)):  # the last: wider, but lower
    np.testing.assert_array_equal(imaging.resized(np.asarray(picture), size),
                                  np.asarray(picture.resize(size, Image.Resampling.LANCZOS)))


def test_a_reduction_averages_instead_of_aliasing():
  """A one-pixel checkerboard reduced by an odd factor is flat grey: every source pixel counts,
  not a sample of them (which would give a pattern of black and white)."""
  board = (np.indices((300, 300)).sum(axis=0) % 2 * 255).astype(np.uint8)
  board = np.repeat(board[..., np.newaxis], 3, axis=2)
  small = imaging.resized(board, (43, 43)).astype(np.float32)
  assert np.abs(small - 127.5).max() < 8


def test_a_picture_already_at_size_is_returned_as_it_is():
  pixels = np.asarray(gradient_picture(40, 30))
  assert imaging.resized(pixels, (40, 30)) is pixels


def test_unit_floats_become_rounded_clipped_levels():
  unit = np.array([[-0.5, 0.0, 0.5 / 255, 1.49 / 255, 0.5, 1.0, 2.0]], np.float32)
  levels = imaging.to_uint8(unit)
  assert levels.dtype == np.uint8
  assert levels.tolist() == [[0, 0, 0, 1, 128, 255, 255]]
  assert unit[0, 0] == -0.5  # the input is left as it was
