"""A catalog-like set of JPEGs made from the photos in ../shared, for end-to-end benchmarks.

Real catalogs hold camera or studio photos delivered at a web size: this makes `count` of them,
each a random crop (common aspect ratios, both orientations) of one of the shared photos, scaled
to a long side of `long_side` pixels and saved as a baseline JPEG at a quality between 85 and 92.
The same seed gives the same files.
"""
from __future__ import annotations

import pathlib

import numpy as np
from PIL import Image

ASPECTS = (1.0, 4 / 3, 3 / 2, 16 / 9, 5 / 4)


def make(photos: list[pathlib.Path], folder: pathlib.Path, count: int, long_side: int = 1024,
         seed: int = 0) -> list[pathlib.Path]:
  """Writes `count` JPEGs into `folder` (sub-folders of 100, as catalogs shard them)."""
  rng = np.random.default_rng(seed)
  sources = [Image.open(p).convert('RGB') for p in photos]
  paths = []
  for k in range(count):
    source = sources[rng.integers(len(sources))]
    aspect = ASPECTS[rng.integers(len(ASPECTS))]
    if rng.random() < 0.4:
      aspect = 1 / aspect  # portrait
    scale = rng.uniform(0.6, 1.0)  # of the largest crop of that aspect
    w, h = source.size
    crop_w = min(w, h * aspect) * scale
    crop_h = crop_w / aspect
    left = rng.uniform(0, w - crop_w)
    top = rng.uniform(0, h - crop_h)
    size = ((long_side, round(long_side / aspect)) if aspect >= 1
            else (round(long_side * aspect), long_side))
    picture = source.resize(size, Image.Resampling.LANCZOS,
                            box=(left, top, left + crop_w, top + crop_h))
    path = folder / f'{k // 100:03d}' / f'item-{k:05d}.jpg'
    path.parent.mkdir(parents=True, exist_ok=True)
    picture.save(path, 'JPEG', quality=int(rng.integers(85, 93)))
    paths.append(path)
  return paths
