"""Pictures in and out of the networks: decoding, the pre/post-processing contract, encoding.

This is the one module that knows the networks' sizes and value range. The transfer network always
returns 384x384 whatever it is fed, so to keep a picture's shape ("fit" framing) the content is
scaled to fit inside 384x384 and the rest of the square is filled by mirroring the picture; the
matching region of the output is cut out again and resized (Lanczos) to the output size.
"square" framing is the published demo's: shorter side to 384, centre crop.
"""
from __future__ import annotations

import dataclasses
import io

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from models.interpreter import CONTENT_SIZE, STYLE_SIZE

FRAMES = ('fit', 'square')
FORMATS = {'jpeg': 'jpg', 'png': 'png'}  # format -> file extension
DEFAULT_MAX_PIXELS = 80_000_000
_RESAMPLE = Image.Resampling.LANCZOS
_EXIF_ORIENTATION = 0x0112
# `decode` checks the pixel count itself, against --max-pixels, from the header; Pillow's own
# global limit would otherwise refuse some pictures with its own message and threshold.
Image.MAX_IMAGE_PIXELS = None


class ImageError(ValueError):
  """An input that is not a picture the job can use; the message says why, in one line."""


@dataclasses.dataclass
class Decoded:
  """An RGB picture, upright, possibly decoded at reduced scale (see `decode`)."""
  image: Image.Image
  full_size: tuple[int, int]  # upright size of the source at full scale
  notes: tuple[str, ...] = ()


def decode(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS,
           min_side: int | None = None) -> Decoded:
  """Decodes an encoded picture to upright 8-bit RGB.

  The pixel count is checked against `max_pixels` from the header, before any pixel is decoded,
  so a decompression bomb costs nothing. With `min_side`, a JPEG is decoded at the smallest
  1/2, 1/4 or 1/8 scale that keeps both sides >= 2 * min_side (so a Lanczos resize, not the
  JPEG decoder, makes the final reduction), which bounds the memory of huge photos.
  """
  try:
    image = Image.open(io.BytesIO(data))
  except UnidentifiedImageError:
    raise ImageError('not an image format Pillow can read') from None
  width, height = image.size
  if width * height > max_pixels:
    raise ImageError(f'{width}x{height} is {width * height} pixels, over the limit of '
                     f'{max_pixels} (--max-pixels)')
  notes = []
  frames = getattr(image, 'n_frames', 1)
  if frames > 1:
    notes.append(f'first frame of {frames}')
  try:
    if image.getexif().get(_EXIF_ORIENTATION, 1) in (5, 6, 7, 8):
      width, height = height, width
    if min_side and image.format == 'JPEG':
      image.draft('RGB', (2 * min_side, 2 * min_side))  # margin: Lanczos does the rest
    image = _to_rgb(ImageOps.exif_transpose(image))
  except (OSError, ValueError, SyntaxError, EOFError) as e:
    raise ImageError(f'cannot decode: {e}') from None
  return Decoded(image, (width, height), tuple(notes))


def _to_rgb(image: Image.Image) -> Image.Image:
  """Any Pillow mode -> 8-bit RGB; transparency is flattened onto white."""
  if image.mode.startswith('I;16') or image.mode in ('I', 'F'):
    levels = np.asarray(image, dtype=np.float32)
    if image.mode != 'F' and levels.max(initial=0) > 255:
      levels = levels / 257.0  # 16-bit range down to 8-bit
    image = Image.fromarray(np.clip(np.rint(levels), 0, 255).astype(np.uint8))
  if image.mode in ('RGBA', 'LA', 'PA') or 'transparency' in image.info:
    rgba = image.convert('RGBA')
    white = Image.new('RGBA', rgba.size, (255, 255, 255, 255))
    image = Image.alpha_composite(white, rgba)
  rgb = image.convert('RGB')
  rgb.load()
  return rgb


def to_unit_float(image: Image.Image) -> np.ndarray:
  """uint8 RGB picture -> float32 HxWx3 in [0, 1], the only range the networks accept."""
  return np.asarray(image, dtype=np.uint8).astype(np.float32) / np.float32(255.0)


def style_input(image: Image.Image) -> np.ndarray:
  """The prediction network's input: shorter side to 256, centre crop, [0, 1]."""
  return to_unit_float(ImageOps.fit(image, (STYLE_SIZE, STYLE_SIZE), method=_RESAMPLE))


@dataclasses.dataclass(frozen=True)
class Framing:
  """Where the picture sits inside the network's 384x384 square, and the size to deliver."""
  box: tuple[int, int, int, int]  # left, top, right, bottom inside the square
  output_size: tuple[int, int]


def content_input(image: Image.Image, full_size: tuple[int, int], frame: str = 'fit',
                  max_size: int = 1024) -> tuple[np.ndarray, Framing]:
  """The transfer network's input for `image`, and how to turn its output back into a picture.

  The output keeps the source's aspect ratio ("fit") or is the centre square ("square"); its long
  side is the source's, capped at `max_size` (0: no cap).
  """
  width, height = full_size
  if frame == 'square':
    side = min(width, height) if not max_size else min(width, height, max_size)
    square = ImageOps.fit(image, (CONTENT_SIZE, CONTENT_SIZE), method=_RESAMPLE)
    return to_unit_float(square), Framing((0, 0, CONTENT_SIZE, CONTENT_SIZE), (side, side))
  if frame != 'fit':
    raise ValueError(f'frame must be one of {FRAMES}, got {frame!r}')
  long_side = max(width, height) if not max_size else min(max(width, height), max_size)
  output_size = _scaled((width, height), long_side)
  inner_w, inner_h = _scaled(image.size, CONTENT_SIZE)
  pixels = to_unit_float(image.resize((inner_w, inner_h), _RESAMPLE))
  left, top = (CONTENT_SIZE - inner_w) // 2, (CONTENT_SIZE - inner_h) // 2
  padded = np.pad(pixels, ((top, CONTENT_SIZE - inner_h - top),
                           (left, CONTENT_SIZE - inner_w - left), (0, 0)), mode='reflect')
  return padded, Framing((left, top, left + inner_w, top + inner_h), output_size)


def _scaled(size: tuple[int, int], long_side: int) -> tuple[int, int]:
  scale = long_side / max(size)
  return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def content_output(stylized: np.ndarray, framing: Framing) -> Image.Image:
  """The network's 384x384 [0, 1] output -> the delivered RGB picture."""
  left, top, right, bottom = framing.box
  pixels = np.clip(np.rint(stylized[top:bottom, left:right] * 255.0), 0, 255).astype(np.uint8)
  picture = Image.fromarray(pixels)
  if picture.size != framing.output_size:
    picture = picture.resize(framing.output_size, _RESAMPLE)
  return picture


def encode(image: Image.Image, fmt: str = 'jpeg', jpeg_quality: int = 90) -> bytes:
  buffer = io.BytesIO()
  if fmt == 'jpeg':
    image.save(buffer, 'JPEG', quality=jpeg_quality, optimize=True)
  elif fmt == 'png':
    image.save(buffer, 'PNG')
  else:
    raise ValueError(f'format must be one of {sorted(FORMATS)}, got {fmt!r}')
  return buffer.getvalue()
