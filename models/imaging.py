"""Pictures into and out of the networks: decoding, and the networks' input/output contract.

This is the one module that knows the networks' sizes and value range. The transfer network always
returns 384x384 whatever it is fed, so to keep a picture's shape ("fit" framing) the content is
scaled to fit inside 384x384 and the rest of the square is filled by mirroring the picture; the
matching region of the output is cut out again and resized to the delivered size.
"square" framing is the published demo's: shorter side to 384, centre crop.
Delivering the picture (sizes, colour, alpha, encoding) is `models.rendering`'s job.
"""
from __future__ import annotations

import dataclasses
import io
import math
import struct

import cv2
import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from models.contract import CONTENT_SIZE, STYLE_SIZE

FRAMES = ('fit', 'square')
DEFAULT_MAX_PIXELS = 80_000_000
DEFAULT_MAX_BYTES = 256 * 2**20  # far above a catalog photo; refuses a runaway file early
WHITE = (255, 255, 255)
RESAMPLE = Image.Resampling.LANCZOS
# The network's input stays Pillow's Lanczos: the network's output moves visibly with any other
# filter there (benchmarks/resize.py). Enlarging its output to the delivered size, the largest
# step of a pair outside inference, is OpenCV's (`resized`): many times quicker than Pillow's,
# and the same picture. A worker already runs one picture per thread or process, so OpenCV's own
# thread pool (process-wide: this sets it for the whole worker) would only contend with them.
cv2.setNumThreads(1)
_EXIF_ORIENTATION = 0x0112
# `decode` checks the pixel count itself, against --max-pixels, from the header; Pillow's own
# global limit would otherwise refuse some pictures with its own message and threshold.
Image.MAX_IMAGE_PIXELS = None
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile('sRGB'))
# What outputs are tagged with. LittleCMS stamps a profile with the time it made it: a fixed date
# in the ICC header (12 bytes at offset 24) makes one picture encode to the same bytes every run.
SRGB_BYTES = SRGB.tobytes()[:24] + struct.pack('>6H', 2024, 1, 1, 0, 0, 0) + SRGB.tobytes()[36:]


class ImageError(ValueError):
  """An input that is not a picture the job can use; the message says why, in one line."""


@dataclasses.dataclass
class Decoded:
  """An sRGB picture, upright, possibly decoded at reduced scale (see `decode`)."""
  image: Image.Image  # RGB, transparent areas flattened onto the background colour
  full_size: tuple[int, int]  # upright size of the source at full scale
  notes: tuple[str, ...] = ()
  alpha: Image.Image | None = None  # the source's transparency (mode L), when it has one
  exif: bytes = b''  # the source's EXIF, orientation already applied (copied only if asked)


def check_signature(head: bytes) -> None:
  """Refuses data whose first bytes no image format Pillow reads begins with, so junk is turned
  away after a few kilobytes instead of being read whole."""
  Image.init()
  if any(_accepts(Image.OPEN[f][1], head) for f in Image.ID):
    return
  try:  # a few formats have no signature (TGA): they are known by their header alone
    Image.open(io.BytesIO(head))
  except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
    raise ImageError('not an image format Pillow can read (by its first bytes)') from None


def _accepts(accept, head: bytes) -> bool:
  """A Pillow plugin's signature test; some raise on data too short for them."""
  try:
    return accept is not None and bool(accept(head))
  except Exception:  # noqa: BLE001 - a test that cannot run on these bytes does not accept them
    return False


def decode(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, min_side: int | None = None,
           background: tuple[int, int, int] = WHITE, keep_exif: bool = False,
           frame: str | None = None) -> Decoded:
  """Decodes an encoded picture to upright 8-bit sRGB.

  Colours are converted to sRGB from an embedded ICC profile, if any (the networks were trained on
  sRGB pictures).

  The pixel count is checked against `max_pixels` from the header, before any pixel is decoded,
  so a decompression bomb costs nothing. With `min_side`, a JPEG is decoded at the smallest
  1/2, 1/4 or 1/8 scale that keeps both sides >= 2 * min_side (so a Lanczos resize, not the
  JPEG decoder, makes the final reduction), which bounds the memory of huge photos. With a `frame`
  too, only the side that frame scales by (the long side for "fit", the short side for "square")
  is kept >= min_side: enough for a network input of that side, which is all a picture needs
  when every output pixel comes from the network (a catalog's 1024-pixel JPEG then decodes at
  half scale, about a third of the work of decoding and resizing it whole).
  With `keep_exif`, the source's EXIF is kept (orientation already applied) for the output.
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
  if frames > 1 and image.format != 'MPO':  # an MPO's extra frames are previews, not animation
    notes.append(f'first frame of {frames}')
  try:
    orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
    if orientation in (5, 6, 7, 8):
      width, height = height, width
    if min_side and image.format in ('JPEG', 'MPO'):
      image.draft('RGB', _draft_request(image.size, min_side, frame))
    if orientation not in (0, 1):  # transposing copies the picture: only when it must
      image = ImageOps.exif_transpose(image)
    alpha = _alpha(image)
    rgb, converted = _to_srgb(_eight_bit(image))
  except (OSError, ValueError, SyntaxError, EOFError) as e:
    raise ImageError(f'cannot decode: {e}') from None
  if converted:
    notes.append(converted)
  exif = _exif_bytes(image) if keep_exif else b''
  if alpha is not None:
    rgb = Image.composite(rgb, Image.new('RGB', rgb.size, background), alpha)
  return Decoded(rgb, (width, height), tuple(notes), alpha, exif)


def _draft_request(size: tuple[int, int], min_side: int, frame: str | None) -> tuple[int, int]:
  """The smallest size a JPEG draft may decode to (Pillow keeps both sides at least this)."""
  if frame is None:
    return 2 * min_side, 2 * min_side  # margin: Lanczos does the rest
  pick = max if frame == 'fit' else min
  scale = min_side / pick(size)
  return max(1, math.floor(size[0] * scale)), max(1, math.floor(size[1] * scale))


def _exif_bytes(image: Image.Image) -> bytes:
  try:
    exif = image.getexif()
    return exif.tobytes() if exif else b''
  except Exception:  # noqa: BLE001 - damaged EXIF is dropped, not fatal
    return b''  # unreadable metadata is not worth a picture


def _eight_bit(image: Image.Image) -> Image.Image:
  if image.mode.startswith('I;16') or image.mode in ('I', 'F'):
    levels = np.asarray(image, dtype=np.float32)
    # I;16 is 16-bit by definition; a 32-bit 'I' picture is taken as 16-bit when it exceeds 255.
    if image.mode.startswith('I;16') or (image.mode == 'I' and levels.max(initial=0) > 255):
      levels = levels / 257.0
    return Image.fromarray(np.clip(np.rint(levels), 0, 255).astype(np.uint8))
  return image


def _alpha(image: Image.Image) -> Image.Image | None:
  if image.mode in ('RGBA', 'LA', 'PA') or 'transparency' in image.info:
    alpha = image.convert('RGBA').getchannel('A')
    return None if alpha.getextrema() == (255, 255) else alpha
  return None


def _to_srgb(image: Image.Image) -> tuple[Image.Image, str | None]:
  """(RGB picture in sRGB, a note on what was done about its ICC profile, if anything)."""
  icc = image.info.get('icc_profile')
  base = {'RGBA': 'RGB', 'LA': 'L', 'PA': 'RGB', 'P': 'RGB'}.get(image.mode, image.mode)
  if icc and base in ('RGB', 'L', 'CMYK'):
    try:
      source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
      name = ImageCms.getProfileDescription(source).strip()
      if 'srgb' not in name.lower():
        rgb = ImageCms.profileToProfile(image.convert(base), source, SRGB, outputMode='RGB')
        return rgb, f'converted to sRGB from {name}'
    except (ImageCms.PyCMSError, OSError, ValueError) as e:
      note = f'ICC profile ignored ({" ".join(str(e).split())[:80]}): taken as sRGB'
      rgb = image.convert('RGB')
      rgb.load()
      return rgb, note
  rgb = image.convert('RGB')
  rgb.load()
  return rgb, None


def to_unit_float(image: Image.Image | np.ndarray) -> np.ndarray:
  """uint8 RGB picture -> float32 HxWx3 in [0, 1], the only range the networks accept."""
  return np.asarray(image, dtype=np.uint8).astype(np.float32) / np.float32(255.0)


def style_input(image: Image.Image) -> np.ndarray:
  """The prediction network's input: shorter side to 256, centre crop, [0, 1]."""
  return to_unit_float(ImageOps.fit(image, (STYLE_SIZE, STYLE_SIZE), method=RESAMPLE))


def content_input(image: Image.Image, frame: str = 'fit', full_size: tuple[int, int] | None = None
                  ) -> tuple[np.ndarray, tuple[int, int, int, int]]:
  """The transfer network's input for `image`, and the box (left, top, right, bottom) of the
  384x384 output that holds the picture: the whole square for "square", the picture's own
  aspect for "fit". `full_size`: the source's size when `image` was decoded at a reduced scale
  (whose rounding would otherwise move the box by a pixel)."""
  if frame == 'square':
    square = ImageOps.fit(image, (CONTENT_SIZE, CONTENT_SIZE), method=RESAMPLE)
    return to_unit_float(square), (0, 0, CONTENT_SIZE, CONTENT_SIZE)
  if frame != 'fit':
    raise ValueError(f'frame must be one of {FRAMES}, got {frame!r}')
  return fit_and_mirror(image, CONTENT_SIZE, full_size)


def fit_and_mirror(image: Image.Image, side: int, full_size: tuple[int, int] | None = None
                   ) -> tuple[np.ndarray, tuple[int, int, int, int]]:
  """`image` scaled to fit inside a `side` square, the rest of the square filled by mirroring it
  (the "fit" frame): [0, 1] float, and the picture's box (left, top, right, bottom) within."""
  inner_w, inner_h = scaled(full_size or image.size, side)
  pixels = np.asarray(image.resize((inner_w, inner_h), RESAMPLE))
  left, top = (side - inner_w) // 2, (side - inner_h) // 2
  padded = np.pad(pixels, ((top, side - inner_h - top), (left, side - inner_w - left), (0, 0)),
                  mode='reflect')
  return to_unit_float(padded), (left, top, left + inner_w, top + inner_h)


def centre_square(image: Image.Image) -> Image.Image:
  """The largest centred square of `image`: what the "square" frame shows of it."""
  side = min(image.size)
  left, top = (image.width - side) // 2, (image.height - side) // 2
  return image.crop((left, top, left + side, top + side))


def scaled(size: tuple[int, int], long_side: int) -> tuple[int, int]:
  """`size` scaled so its long side is `long_side`, never below 1x1."""
  scale = long_side / max(size)
  return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def network_output(stylized: np.ndarray, box: tuple[int, int, int, int],
                   size: tuple[int, int]) -> Image.Image:
  """The network's 384x384 [0, 1] output -> the picture's region, as RGB of `size`."""
  left, top, right, bottom = box
  return Image.fromarray(resized(to_uint8(stylized[top:bottom, left:right]), size))


def to_uint8(unit: np.ndarray) -> np.ndarray:
  """[0, 1] float pixels -> uint8, rounded and clipped. Worked in place on one scaled copy:
  several times quicker than numpy's clip making arrays of its own, once a pair."""
  levels = unit * np.float32(255.0)
  np.rint(levels, out=levels)
  np.clip(levels, 0, 255, out=levels)
  return levels.astype(np.uint8)


def resized(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
  """uint8 HxWx3 `pixels` at size=(width, height): OpenCV's bicubic when enlarging (the usual
  case, and the costly one), Pillow's Lanczos otherwise (as for every other reduction)."""
  if (pixels.shape[1], pixels.shape[0]) == tuple(size):
    return pixels
  if size[0] >= pixels.shape[1] and size[1] >= pixels.shape[0]:
    return cv2.resize(pixels, tuple(size), interpolation=cv2.INTER_CUBIC)
  return np.asarray(Image.fromarray(pixels).resize(tuple(size), RESAMPLE))
