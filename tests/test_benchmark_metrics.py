"""The quality measures the benchmarks report."""
from __future__ import annotations

import numpy as np
from conftest import gradient_picture

from benchmarks.metrics import psnr, seam_ratio, ssim
from models import imaging


def test_ssim_and_psnr_of_identical_and_different_pictures():
  a = imaging.to_unit_float(gradient_picture(64, 48, 1))
  b = imaging.to_unit_float(gradient_picture(64, 48, 2))
  assert ssim(a, a) == 1.0 and psnr(a, a) == float('inf')
  assert ssim(a, b) < 0.5
  noisy = np.clip(a + np.random.default_rng(0).normal(0, 0.05, a.shape), 0, 1)
  assert 0.5 < ssim(a, noisy) < 0.99 and 24 < psnr(a, noisy) < 28  # sigma 0.05 -> ~26 dB


def test_seam_ratio_sees_a_step_at_a_tile_border():
  picture = imaging.to_unit_float(gradient_picture(800, 384, 3))
  assert 0.9 < seam_ratio(picture, [0], [0, 416]) < 1.1
  stepped = picture.copy()
  stepped[:, 384:] = np.clip(stepped[:, 384:] + 0.15, 0, 1)
  assert seam_ratio(stepped, [0], [0, 416]) > 1.5
