"""Picture-quality measures: SSIM and PSNR, with numpy alone (for model building and benchmarks).

SSIM follows the usual definition with a 7x7 uniform window, sample covariance, data range 1 and
the mean over channels (scikit-image's defaults).
"""
from __future__ import annotations

import numpy as np

_WINDOW = 7


def _box_mean(x: np.ndarray) -> np.ndarray:
  """Mean over every 7x7 window (valid positions only), per channel."""
  c = np.cumsum(np.cumsum(np.pad(x, ((1, 0), (1, 0), (0, 0))), axis=0), axis=1)
  w = _WINDOW
  return (c[w:, w:] - c[:-w, w:] - c[w:, :-w] + c[:-w, :-w]) / (w * w)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
  """Structural similarity of two HxWx3 float pictures in [0, 1]."""
  a, b = a.astype(np.float64), b.astype(np.float64)
  n = _WINDOW * _WINDOW
  cov_norm = n / (n - 1)
  ma, mb = _box_mean(a), _box_mean(b)
  va = cov_norm * (_box_mean(a * a) - ma * ma)
  vb = cov_norm * (_box_mean(b * b) - mb * mb)
  cov = cov_norm * (_box_mean(a * b) - ma * mb)
  c1, c2 = 0.01 ** 2, 0.03 ** 2
  s = ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2))
  return float(s.mean())


def psnr(a: np.ndarray, b: np.ndarray) -> float:
  mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
  return float('inf') if mse == 0 else 10 * np.log10(1.0 / mse)
