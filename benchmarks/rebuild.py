"""A new build revision of `magenta-fast` against an earlier one: speed, and how far it moves the
pictures next to how far the runtime's own kernels already move them.

A revision (`registry.FAST_BUILD`) keeps the model's identity, so catalogs are not rendered
again: it may change how the sums are ordered, not what they are. This measures that on held-out
photos x paintings (`benchmarks.distilled`'s): per pair, the SSIM between the two builds, the
largest difference in 8-bit levels and the share of pixels that differ; beside it the same figures
for the current build run by XNNPACK (as the job runs it) against LiteRT's reference kernels. Both
builds are timed in interleaved rounds, one thread. The earlier build is made by the earlier
commit's builder, e.g. from a checkout of it:

    python -m model_building.fast_export PUBLISHED_FP16.tflite /tmp/earlier.tflite
    .venv/bin/python -m benchmarks.rebuild --earlier /tmp/earlier.tflite --earlier-commit REV
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import numpy as np

from benchmarks.distilled import HELD_OUT_PAINTINGS, HELD_OUT_PHOTOS, MAGENTA, SHARED
from benchmarks.record import ROOT, provenance, transfer_path
from model_building import optimize, quality
from models import contract, fetch, imaging, registry


def _levels(picture: np.ndarray) -> np.ndarray:
  return np.round(np.clip(picture, 0, 1) * 255)


def agreement(a: contract.StyleTransfer, b: contract.StyleTransfer, contents, bottlenecks) -> dict:
  """The two networks' outputs compared pair by pair: worst SSIM, largest level difference,
  mean and largest share of pixels that differ in 8 bits."""
  ssims, largest, shares = [], [], []
  for content in contents:
    for bottleneck in bottlenecks:
      x, y = a.stylize(content, bottleneck), b.stylize(content, bottleneck)
      ssims.append(quality.ssim(x, y))
      differ = _levels(x) != _levels(y)
      largest.append(float(np.abs(_levels(x) - _levels(y)).max()))
      shares.append(float(differ.any(axis=-1).mean()))
  return {'min_ssim': round(min(ssims), 6), 'max_level_difference': max(largest),
          'mean_share_of_pixels_differing': round(float(np.mean(shares)), 5),
          'max_share_of_pixels_differing': round(max(shares), 5)}


def _record_beside(path: str) -> dict | None:
  """The model cache's record of a build, when `path` is a cached build (its recipe, build)."""
  try:
    return json.loads((pathlib.Path(path).parent / 'built.json').read_text())
  except (OSError, ValueError):
    return None


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--earlier', required=True, help='a build of the earlier revision')
  parser.add_argument('--earlier-commit', required=True, help='the commit that built it')
  parser.add_argument('--rounds', type=int, default=30)
  args = parser.parse_args(argv)
  if not MAGENTA.is_dir():
    sys.exit(f'{SHARED} is absent: this benchmark needs the published models and photos')
  started = time.time()
  current = transfer_path('magenta-fast', MAGENTA)
  predictor = contract.StylePredictor(
      str(MAGENTA / registry.REGISTRY['magenta-int8'].prediction.name))
  decode = lambda folder, name: imaging.decode((SHARED / 'images' / folder / name).read_bytes(),
                                               min_side=imaging.CONTENT_SIZE).image
  contents = [imaging.content_input(decode('content', name))[0] for name in HELD_OUT_PHOTOS]
  bottlenecks = [predictor.predict(imaging.style_input(decode('style', name)))
                 for name in HELD_OUT_PAINTINGS]
  earlier, now = contract.StyleTransfer(args.earlier), contract.StyleTransfer(current)
  reference_kernels = contract.StyleTransfer(current, fast=False)  # without XNNPACK
  speed = optimize.latency_ms({'earlier': args.earlier, 'current': current}, contents[0],
                              bottlenecks[0], args.rounds)
  result = {
      'what': 'magenta-fast: this build revision against an earlier one, on held-out photos x '
              'paintings; agreement in 8-bit levels, and median ms per picture (one thread, '
              f'{args.rounds} interleaved rounds)',
      'builds': {'current': {'build': registry.FAST_BUILD, 'sha256': fetch.sha256_of(current)},
                 'earlier': {'commit': args.earlier_commit,
                             'sha256': fetch.sha256_of(args.earlier),
                             'cache_record': _record_beside(args.earlier)}},
      'pairs': {'photos': HELD_OUT_PHOTOS, 'paintings': HELD_OUT_PAINTINGS},
      'current_vs_earlier': agreement(now, earlier, contents, bottlenecks),
      'xnnpack_vs_reference_kernels': agreement(now, reference_kernels, contents, bottlenecks),
      'latency_ms': speed,
      'current_over_earlier': round(speed['current'] / speed['earlier'], 3),
      'provenance': provenance('.venv/bin/python -m benchmarks.rebuild ' + ' '.join(
          sys.argv[1:] if argv is None else argv), started),
  }
  path = ROOT / 'benchmarks' / 'results' / 'rebuild.json'
  path.write_text(json.dumps(result, indent=1) + '\n')
  print(json.dumps({k: result[k] for k in ('current_vs_earlier', 'xnnpack_vs_reference_kernels',
                                           'latency_ms', 'current_over_earlier')}, indent=1))


if __name__ == '__main__':
  main()
