"""Tiles: full coverage, exact blending, and colour matching that removes per-tile casts."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import gradient_picture

from models import imaging, tiling


@pytest.mark.parametrize('length', [100, 384, 385, 1000, 2048])
def test_tiles_cover_with_the_overlap(length):
  starts = tiling.tile_starts(length, 384, 128)
  assert starts[0] == 0 and starts[-1] + 384 >= length
  assert all(b - a <= 384 - 128 for a, b in zip(starts, starts[1:]))


def test_identical_tiles_blend_back_to_the_picture():
  picture = imaging.to_unit_float(gradient_picture(1000, 700))
  out = tiling.stylize_tiled(lambda tile: tile, picture, reference=None)
  np.testing.assert_allclose(out, picture, atol=1e-5)


def _casting_network():
  """A stand-in network that gives every tile its own colour cast, as instance norm does."""
  rng = np.random.default_rng(0)
  return lambda tile: tile + rng.uniform(-0.1, 0.1, 3).astype(np.float32)


def _border_ratio(out, starts):
  gradient = np.abs(np.diff(out, axis=1)).sum(-1)
  borders = sorted({edge - 1 for s in starts for edge in (s, s + 384) if 0 < edge < out.shape[1]})
  mask = np.zeros(gradient.shape[1], bool)
  mask[borders] = True
  return gradient[:, mask].mean() / gradient[:, ~mask].mean()


def test_colour_matching_removes_per_tile_casts():
  picture = imaging.to_unit_float(gradient_picture(1500, 384, seed=3))
  unmatched = tiling.stylize_tiled(_casting_network(), picture, reference=None, overlap=32)
  matched = tiling.stylize_tiled(_casting_network(), picture, reference=picture, overlap=32)
  starts = tiling.tile_starts(1500, 384, 32)
  assert np.abs(matched - picture).mean() < 0.2 * np.abs(unmatched - picture).mean()
  assert _border_ratio(matched, starts) < 1.1


def test_small_pictures_are_mirrored_up_to_a_tile():
  picture = imaging.to_unit_float(gradient_picture(200, 90))
  out = tiling.stylize_tiled(lambda tile: tile, picture, reference=picture)
  assert out.shape == picture.shape
  np.testing.assert_allclose(out, picture, atol=1e-5)


def test_legacy_dynamic_model_paints_any_size(magenta_dir):
  from models.contract import DynamicStyleTransfer, open_transfer
  network = open_transfer(f'{magenta_dir}/legacy/style_transfer_quantized_dynamic.tflite')
  assert isinstance(network, DynamicStyleTransfer)
  out = network.stylize_any(imaging.to_unit_float(gradient_picture(501, 303)),
                            np.ones(100, np.float32))
  assert out.shape == (303, 501, 3) and 0 <= out.min() and out.max() <= 1
