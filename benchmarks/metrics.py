"""Picture-quality measures for the benchmarks: SSIM and PSNR (from `model_building.quality`) and a
tile-seam ratio.
"""
from __future__ import annotations

import numpy as np

from model_building.quality import psnr, ssim

__all__ = ['psnr', 'seam_ratio', 'ssim']


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
