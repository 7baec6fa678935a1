"""Delivering a stylized picture: its size, colours, transparency and encoding.

Sizes: the source's own, its long side capped (`max_size`), an exact `box` the picture is
fitted into (whole frame) or fills (centre-cropped to exactly the box), or a set of widths
(`sizes`: responsive variants, each made from the widest by downscaling). Colours: outputs are sRGB
and tagged so; `preserve_colour` keeps the content's colours and takes only the style's texture
(the stylized luminance with the source's chroma). Transparency: the source's alpha is put back
for PNG and WebP; a JPEG is flattened onto `background`. Metadata: no source EXIF (camera, GPS,
dates) is copied unless `keep_metadata` asks for it.
"""
from __future__ import annotations

import dataclasses
import io

from PIL import Image, ImageFilter, ImageOps

from models import imaging

FORMATS = {'jpeg': 'jpg', 'png': 'png', 'webp': 'webp', 'avif': 'avif'}  # format -> extension
MIME_TYPES = {'jpeg': 'image/jpeg', 'png': 'image/png', 'webp': 'image/webp',
              'avif': 'image/avif'}
WITH_ALPHA = ('png', 'webp', 'avif')  # formats that keep the source's transparency
BOX_MODES = ('fit', 'fill')
CUTOUT_PARTS = ('foreground', 'background')  # what --cutout stylizes of a picture, by its alpha
_ADDED_FIELDS = {'sizes': ()}  # -> default (`Rendering.recipe`)
_MASK_FIELDS = ('feather', 'cutout')  # in the fingerprints of masked pairs only
_SRGB_BYTES = imaging.SRGB_BYTES


@dataclasses.dataclass(frozen=True, kw_only=True)
class Rendering:
  """Everything that decides an output's pixels and bytes (all of it is in its fingerprint)."""
  frame: str = 'fit'
  max_size: int = 1024
  box: tuple[int, int] | None = None
  box_mode: str = 'fit'
  fmt: str = 'jpeg'
  jpeg_quality: int = 90
  progressive: bool = False
  background: tuple[int, int, int] = imaging.WHITE
  preserve_colour: bool = False
  working_size: int = 0  # >0: the network paints at this long side (tiles or a dynamic model)
  keep_metadata: bool = False  # copy the source's EXIF (GPS included) to the output
  sizes: tuple[int, ...] = ()  # widths: one file each, from one inference (ascending)
  feather: int = 0  # blur radius of a mask's edge, in output pixels
  cutout: str | None = None  # stylize only this part of a cut-out, by its alpha (CUTOUT_PARTS)

  @property
  def extension(self) -> str:
    return FORMATS[self.fmt]

  def recipe(self) -> list:
    """What a fingerprint covers of the rendering: every field, except those added since
    catalogs were first rendered while they keep their default (upgrading the job re-renders
    nothing), and the mask's, which only masked pairs' fingerprints cover."""
    fields = dataclasses.asdict(self)
    return sorted((name, value) for name, value in fields.items()
                  if name not in _MASK_FIELDS
                  and not (name in _ADDED_FIELDS and value == _ADDED_FIELDS[name]))

  def min_decode_side(self, masked: bool = False) -> int | None:
    """How small a JPEG may be decoded (see `imaging.decode`); None: at full size.

    Only `preserve_colour` and masks (`masked`, or `cutout`) put source pixels in the output;
    otherwise every output pixel comes from the network, so the source is needed only at the
    network's own size (a 20-megapixel JPEG then decodes at 1/4 or 1/8 scale, much faster).
    """
    network_side = max(self.working_size, imaging.CONTENT_SIZE)
    if self.network_only(masked):
      return network_side
    if self.sizes:
      return None  # a tall picture's long side is not known from its widths
    wanted = max(self.box) if self.box else self.max_size
    return max(wanted, network_side) if wanted else None


  def network_only(self, masked: bool = False) -> bool:
    """Whether every output pixel comes from the network: then a picture is needed only as large
    as the network's input (`imaging.decode`'s `frame`)."""
    return not (self.preserve_colour or masked or self.cutout)


def output_size(full_size: tuple[int, int], r: Rendering
                ) -> tuple[tuple[int, int], tuple[int, int, int, int] | None]:
  """(size the stylized frame is delivered at, crop box within it for "fill", else None)."""
  width, height = full_size
  if r.frame == 'square':
    width = height = min(width, height)
  if r.box:
    box_w, box_h = r.box
    pick = max if r.box_mode == 'fill' else min
    scale = pick(box_w / width, box_h / height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if r.box_mode == 'fill':
      left, top = (size[0] - box_w) // 2, (size[1] - box_h) // 2
      return size, (left, top, left + box_w, top + box_h)
    return size, None
  if r.sizes:  # the widest variant; the others are made from it
    widest = max(r.sizes)
    return (widest, max(1, round(height * widest / width))), None
  long_side = max(width, height) if not r.max_size else min(max(width, height), r.max_size)
  return imaging.scaled((width, height), long_side), None


def variants(picture: Image.Image, r: Rendering):
  """(width or None, picture) for each file of a pair: the picture itself, or one downscaled
  copy per width of `r.sizes`, the widest being the picture as it is."""
  if not r.sizes:
    yield None, picture
    return
  for width in r.sizes:
    height = max(1, round(picture.height * width / picture.width))
    yield width, (picture if width == picture.width
                  else picture.resize((width, height), imaging.RESAMPLE))


def finish(picture: Image.Image, r: Rendering, crop=None, source: Image.Image | None = None,
           alpha: Image.Image | None = None, mask: Image.Image | None = None) -> Image.Image:
  """The stylized frame (RGB, at output size) -> the picture to encode.

  `source` (the content at the same size) is needed for `preserve_colour` and a `mask`
  (likewise: stylized where white, the source where black), `alpha` when the source had
  transparency (None where a stylized backdrop fills it: `cutout` background)."""
  if r.preserve_colour:
    _, cb, cr = source.convert('YCbCr').split()
    picture = Image.merge('YCbCr', (picture.convert('L'), cb, cr)).convert('RGB')
  if mask is not None:
    picture = Image.composite(picture, source, mask)
  if crop:
    picture = picture.crop(crop)
    alpha = alpha.crop(crop) if alpha is not None else None
  if alpha is None:
    return picture
  if r.fmt in WITH_ALPHA:
    picture.putalpha(alpha)
    return picture
  return Image.composite(picture, Image.new('RGB', picture.size, r.background), alpha)


def encode(picture: Image.Image, r: Rendering, exif: bytes = b'') -> bytes:
  """Encoded bytes, tagged sRGB; with the source's `exif` only if `r.keep_metadata`."""
  buffer = io.BytesIO()
  # JPEG holds at most 64 KB of EXIF: a larger block (some PNG sources) is left out.
  fits = r.fmt != 'jpeg' or len(exif) < 65000
  extra = {'exif': exif} if r.keep_metadata and exif and fits else {}
  if r.fmt == 'jpeg':
    picture.save(buffer, 'JPEG', quality=r.jpeg_quality, progressive=r.progressive,
                 icc_profile=_SRGB_BYTES, **extra)
  elif r.fmt == 'png':
    picture.save(buffer, 'PNG', icc_profile=_SRGB_BYTES, **extra)
  elif r.fmt == 'webp':
    picture.save(buffer, 'WEBP', quality=r.jpeg_quality, icc_profile=_SRGB_BYTES, **extra)
  elif r.fmt == 'avif':
    picture.save(buffer, 'AVIF', quality=r.jpeg_quality, icc_profile=_SRGB_BYTES, **extra)
  else:
    raise ValueError(f'format must be one of {sorted(FORMATS)}, got {r.fmt!r}')
  return buffer.getvalue()


def mask_at(mask: Image.Image, size: tuple[int, int], r: Rendering) -> Image.Image:
  """A mask (already framed like the source) at the output size, its edge feathered."""
  mask = mask.convert('L').resize(size, imaging.RESAMPLE)
  return mask.filter(ImageFilter.GaussianBlur(r.feather)) if r.feather else mask


def cutout_mask(alpha: Image.Image | None, r: Rendering) -> Image.Image:
  """`r.cutout` of a cut-out as a mask: its opaque part (foreground) or the rest."""
  if alpha is None:
    raise imaging.ImageError(f'--cutout {r.cutout} needs a picture with transparency (a '
                             'cut-out); this one has none')
  return alpha if r.cutout == 'foreground' else ImageOps.invert(alpha)
