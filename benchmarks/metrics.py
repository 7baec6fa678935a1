"""Picture-quality measures for the benchmarks: SSIM, PSNR and a tile-seam ratio.

SSIM follows the usual definition with a 7x7 uniform window, sample covariance, data range 1 and
the mean over channels (scikit-image's defaults), written here with numpy alone.
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


def seam_ratio(picture: np.ndarray, rows: list[int], columns: list[int], tile: int = 384) -> float:
  """Mean colour-gradient magnitude across tile borders over that of the rest of the picture.

  Borders are the lines where a tile starts or ends inside the picture; the gradient is the sum
  over channels of the absolute difference between the two pixels across the line (horizontal
  differences for vertical lines, vertical differences for horizontal lines). 1.0: the borders
  look like anywhere else.
  """
  height, width, _ = picture.shape
  across_x = np.abs(np.diff(picture, axis=1)).sum(-1)  # H x (W-1): pixel x vs x+1
  across_y = np.abs(np.diff(picture, axis=0)).sum(-1)  # (H-1) x W
  on_x = np.zeros(width - 1, bool)
  on_x[[e - 1 for s in columns for e in (s, s + tile) if 0 < e < width]] = True
  on_y = np.zeros(height - 1, bool)
  on_y[[e - 1 for s in rows for e in (s, s + tile) if 0 < e < height]] = True
  border = np.concatenate([across_x[:, on_x].ravel(), across_y[on_y, :].ravel()])
  interior = np.concatenate([across_x[:, ~on_x].ravel(), across_y[~on_y, :].ravel()])
  return float(border.mean() / interior.mean())
