"""Builds the job's default transfer network (`--model magenta-fast`) from the published fp16 file.

    python -m model_building.fast_export SOURCE.tflite OUT.tflite

The source's weights go into the Keras rebuild (checked to compute what the source computes), and
the rebuild is exported with int8 weights and float activations: the `fast` export of
`model_building.optimize`, without its calibration and report. The export is checked against
the source on natural photos (scikit-image's samples) and built-in styles before it is written.
The launcher runs this once per machine (`models.exports`); workers only ever load the file.

`RECIPE` names what this makes. Fingerprints name the model by the source's sha256 and `RECIPE`,
not by the bytes written, so rebuilding the same export (another machine, another TensorFlow
patch release) re-renders nothing: change `RECIPE` whenever a change here or in
`transfer_net`'s export forms would change what the network computes. A change that only
reorders the same sums (float rounding) bumps `registry.FAST_BUILD` instead: launchers build it
again, catalogs are not rendered again; `benchmarks.rebuild` measures how far it moves pixels.
"""
from __future__ import annotations

import argparse
import os

import numpy as np
import skimage.data
from PIL import Image

from model_building import export, import_published, quality
from models import contract, imaging, registry, style_bank

RECIPE = registry.FAST_RECIPE
MIN_SSIM = 0.95  # of the export against its source (benchmarks/results/optimize.json: far above)


def _photos() -> list[np.ndarray]:
  """Natural photos to check the export on: scikit-image's samples (the `building` extra has it).
  Not generated pictures: on flat or purely smooth ones, whose outputs have almost no variance,
  SSIM says little."""
  return [imaging.content_input(Image.fromarray(picture))[0]
          for picture in (skimage.data.astronaut(), skimage.data.chelsea())]


def build(source: str, out: str) -> float:
  """Writes the export to `out`; returns its lowest SSIM against the source."""
  contents = _photos()
  bank = list(style_bank.load().values())
  bottlenecks = [style.bottleneck for style in bank[::4]]
  model = import_published.load_published(source)
  # Float rounding differs between the two runtimes: far under a 1/255 step all the same.
  import_published.check_equivalence(model, source, contents[:1], bottlenecks[:1], min_psnr=80)
  data = export.to_tflite(model, 'int8-weights')
  partial = out + '.partial'
  with open(partial, 'wb') as f:
    f.write(data)
  reference, built = contract.StyleTransfer(source), contract.StyleTransfer(partial)
  worst = min(quality.ssim(built.stylize(c, b), reference.stylize(c, b))
              for c in contents for b in bottlenecks)
  if worst < MIN_SSIM:
    os.remove(partial)
    raise SystemExit(f'the export of {source} differs from it: SSIM {worst:.3f} < {MIN_SSIM}')
  os.replace(partial, out)
  return worst


def main(argv=None) -> None:
  p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  p.add_argument('source', help='the published fp16 transfer .tflite (its sha256 checked by the '
                                 'caller)')
  p.add_argument('out', help='where to write the export')
  args = p.parse_args(argv)
  worst = build(args.source, args.out)
  print(f'built {args.out} ({RECIPE}); SSIM against the source >= {worst:.4f}')


if __name__ == '__main__':
  main()
