"""The unseen photos for confirming a choice: SciPy's two stored arrays become picture files."""
from __future__ import annotations

import bz2
import io
import pickle

import numpy as np
import pytest
from PIL import Image

from benchmarks.unseen import _picture, check


def test_scipys_arrays_become_pngs_and_jpegs_stay_as_they_are():
  face = np.random.default_rng(0).integers(0, 256, (768, 1024, 3), dtype=np.uint8)
  png = Image.open(io.BytesIO(_picture('scipy/misc/face.dat', bz2.compress(face.tobytes()))))
  assert png.format == 'PNG' and np.array_equal(np.asarray(png), face)
  stairs = np.arange(64 * 32, dtype=np.int64).reshape(64, 32) % 256  # SciPy pickled int arrays
  png = Image.open(io.BytesIO(_picture('scipy/misc/ascent.dat', pickle.dumps(stairs))))
  assert png.mode == 'L' and np.array_equal(np.asarray(png), stairs.astype(np.uint8))
  assert _picture('sklearn/datasets/images/china.jpg', b'\xff\xd8jpeg') == b'\xff\xd8jpeg'


def test_the_confirmation_folder_must_hold_exactly_the_fetched_photos(tmp_path):
  names = ['china.jpg', 'flower.jpg', 'raccoon.png', 'stairs.png']
  for name in names:
    (tmp_path / name).write_bytes(b'x')
  assert check(str(tmp_path)) == [str(tmp_path / name) for name in names]
  (tmp_path / 'grace_hopper.jpg').write_bytes(b'x')  # a stray file would be scored as unseen
  with pytest.raises(SystemExit, match='should hold exactly'):
    check(str(tmp_path))
  with pytest.raises(SystemExit, match='it holds \\[\\]'):
    check(str(tmp_path / 'absent'))
