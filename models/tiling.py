"""Full resolution from a 384x384 network: overlapping tiles, colour-matched and feathered.

The published transfer network paints at a fixed scale and returns 384x384. To stylize a picture
at a larger working resolution, it is covered with overlapping 384x384 tiles, each stylized alone.
Instance normalization inside the network gives each tile its own colour cast, which shows as
seams; so every tile's output is shifted to the per-channel mean colour of the same region of a
whole-picture stylization at 384 (the "reference", which sets the global colours), and the tiles
are blended with weights that fall smoothly (smoothstep) to zero across each overlap.
Measured on real photos (benchmarks/fidelity.py), matching the mean alone and smoothstep weights
gave the lowest seams; also matching the standard deviation raised them.
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image

from models import imaging
from models.contract import CONTENT_SIZE, DynamicStyleTransfer

TILE = CONTENT_SIZE


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
  """Start offsets covering [0, length) with tiles of `tile` overlapping by >= `overlap`."""
  if length <= tile:
    return [0]
  count = math.ceil((length - overlap) / (tile - overlap))
  return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def _axis_weights(starts: list[int], index: int) -> np.ndarray:
  """Blend weights of tile `index` along one axis: rising across its overlap with the previous
  tile, falling across its overlap with the next (smoothstep of a linear ramp); full weight at
  the picture's edges."""
  weights = np.ones(TILE, np.float32)
  if index > 0:
    rise = starts[index - 1] + TILE - starts[index]
    weights[:rise] = (np.arange(rise, dtype=np.float32) + 0.5) / rise
  if index + 1 < len(starts):
    fall = starts[index] + TILE - starts[index + 1]
    weights[-fall:] = np.minimum(weights[-fall:],
                                 (np.arange(fall, dtype=np.float32)[::-1] + 0.5) / fall)
  return weights * weights * (3.0 - 2.0 * weights)


def _match_colours(tile: np.ndarray, reference: np.ndarray) -> np.ndarray:
  """`tile` shifted to the per-channel mean colour of `reference`."""
  return tile - tile.mean(axis=(0, 1)) + reference.mean(axis=(0, 1))


def stylize_tiled(stylize, picture: np.ndarray, reference: np.ndarray | None,
                  overlap: int = 128) -> np.ndarray:
  """Stylizes `picture` (HxWx3 float32 in [0, 1], any size) tile by tile.

  `stylize(tile) -> tile` runs the network on one 384x384 input; `reference` (same size as
  `picture`, or None to skip colour matching) is a whole-picture stylization upsampled to it.
  """
  height, width, _ = picture.shape
  # A side shorter than a tile is mirrored up to one, as the whole-picture framing does.
  padding = ((0, max(0, TILE - height)), (0, max(0, TILE - width)), (0, 0))
  picture = np.pad(picture, padding, mode='reflect')
  if reference is not None:
    reference = np.pad(reference, padding, mode='reflect')
  full_h, full_w, _ = picture.shape
  rows, columns = tile_starts(full_h, TILE, overlap), tile_starts(full_w, TILE, overlap)
  total = np.zeros((full_h, full_w, 3), np.float32)
  weight = np.zeros((full_h, full_w, 1), np.float32)
  for i, top in enumerate(rows):
    for j, left in enumerate(columns):
      window = (slice(top, top + TILE), slice(left, left + TILE))
      out = stylize(np.ascontiguousarray(picture[window]))
      if reference is not None:
        out = _match_colours(out, reference[window])
      blend = np.outer(_axis_weights(rows, i), _axis_weights(columns, j))[..., np.newaxis]
      total[window] += out * blend
      weight[window] += blend
  return np.clip(total / weight, 0.0, 1.0)[:height, :width]


def upsampled(picture: np.ndarray, size: tuple[int, int]) -> np.ndarray:
  """A [0, 1] float picture resized (Lanczos) to size=(width, height)."""
  image = Image.fromarray(imaging.to_uint8(picture))
  return np.asarray(image.resize(size, Image.Resampling.LANCZOS), np.float32) / 255.0


def working_input(image: Image.Image, frame: str, working_size: int) -> np.ndarray:
  """The picture as the network paints it at a working resolution: long side `working_size`
  (the centre square for "square" framing), [0, 1]."""
  if frame == 'square':
    image = imaging.centre_square(image)
  return imaging.to_unit_float(image.resize(imaging.scaled(image.size, working_size),
                                            Image.Resampling.LANCZOS))


def stylized(network, network_input: np.ndarray, box, working: np.ndarray | None,
             bottleneck: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int]]:
  """The network's work for a picture: its [0, 1] output and the picture's box within it. One
  384x384 pass; or, given a working-resolution picture, one pass of a dynamic-shape network, or
  colour-matched tiles of a 384x384 one."""
  if working is None:
    return network.stylize(network_input, bottleneck), box
  if isinstance(network, DynamicStyleTransfer):
    out = network.stylize_any(working, bottleneck)
  else:
    left, top, right, bottom = box
    whole = network.stylize(network_input, bottleneck)[top:bottom, left:right]
    reference = upsampled(whole, (working.shape[1], working.shape[0]))
    out = stylize_tiled(lambda tile: network.stylize(tile, bottleneck), working, reference)
  return out, (0, 0, out.shape[1], out.shape[0])
