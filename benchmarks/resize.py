"""The network's two resizes, on real `magenta-fast` pairs: speed, and how much each choice moves
the delivered picture.

- Output (the network's region enlarged to the delivered size): OpenCV's bicubic (the job's,
  `imaging.resized`) against Pillow's bicubic (the job's before).
- Input (the content reduced to fit the network): Pillow's Lanczos (the job's) against quicker
  filters. The network answers a slightly different input with a visibly different picture, so
  a quicker input filter is not "the same picture, sooner": the job keeps Lanczos there.

The choices were made looking at the first 6 shared content photos (sorted by name) with two
built-in styles; this reports on the others, with three other built-in styles. Writes
benchmarks/results/resize.json:

    .venv/bin/python -m benchmarks.resize [--rounds 20]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import cv2
import numpy as np
from PIL import Image

from benchmarks.metrics import psnr, ssim
from benchmarks.record import ROOT, provenance, transfer_path
from models import imaging, style_bank
from models.contract import CONTENT_SIZE, StyleTransfer

SHARED = ROOT.parent / 'shared'
LOOKED_AT = 6  # the first photos, not reported on
STYLES = ('edtaonisl', 'night_cafe', 'the_scream')
MAX_SIZE = 1024  # the job's default --max-size
OUTPUTS = {  # the job's first; each as the job delivers it, a Pillow picture
    'opencv_bicubic': lambda region, size: Image.fromarray(imaging.resized(region, size)),
    'pillow_bicubic': lambda region, size: Image.fromarray(region).resize(
        size, Image.Resampling.BICUBIC),
}
INPUTS = {  # the job's first
    'pillow_lanczos': lambda image, size: np.asarray(image.resize(size, imaging.RESAMPLE)),
    'pillow_bicubic': lambda image, size: np.asarray(image.resize(size, Image.Resampling.BICUBIC)),
    'opencv_area': lambda image, size: cv2.resize(np.asarray(image), size,
                                                  interpolation=cv2.INTER_AREA),
    'opencv_bicubic': lambda image, size: cv2.resize(np.asarray(image), size,
                                                     interpolation=cv2.INTER_CUBIC),
}


def timed(rounds: int, step, *args):
  """(step's result, its mean ms over `rounds` calls)."""
  start = time.perf_counter()
  for _ in range(rounds):
    result = step(*args)
  return result, 1000 * (time.perf_counter() - start) / rounds


def as_unit(pixels: np.ndarray) -> np.ndarray:
  return pixels.astype(np.float32) / 255.0


def similarity(reference: np.ndarray, other: np.ndarray) -> dict:
  return {'ssim': round(float(ssim(as_unit(reference), as_unit(other))), 4),
          'psnr_db': round(float(psnr(as_unit(reference), as_unit(other))), 1)}


def summary(ms: list[float], pairs: list[dict]) -> dict:
  if not pairs:  # the job's own step: the reference
    return {'median_ms': round(statistics.median(ms), 2)}
  return {'median_ms': round(statistics.median(ms), 2),
          'ssim_min': min(p['ssim'] for p in pairs),
          'ssim_mean': round(statistics.mean(p['ssim'] for p in pairs), 4),
          'psnr_db_min': min(p['psnr_db'] for p in pairs)}


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--rounds', type=int, default=20)
  args = parser.parse_args(argv)
  if not (SHARED / 'models' / 'magenta').is_dir():
    sys.exit(f'{SHARED} is absent: this benchmark needs the published models and photos')
  started = time.time()
  network = StyleTransfer(transfer_path('magenta-fast', SHARED / 'models' / 'magenta'),
                          num_threads=1)
  bank = style_bank.load()
  photos = sorted((SHARED / 'images' / 'content').iterdir())[LOOKED_AT:]
  ms = {f'{step}/{name}': [] for step, names in (('output', OUTPUTS), ('input', INPUTS))
        for name in names}
  pairs = {name: [] for name in ms}
  for photo in photos:
    decoded = imaging.decode(photo.read_bytes(), min_side=CONTENT_SIZE, frame='fit')
    inner = imaging.scaled(decoded.full_size, CONTENT_SIZE)
    left, top = (CONTENT_SIZE - inner[0]) // 2, (CONTENT_SIZE - inner[1]) // 2
    pad = ((top, CONTENT_SIZE - inner[1] - top), (left, CONTENT_SIZE - inner[0] - left), (0, 0))
    size = imaging.scaled(decoded.full_size, min(max(decoded.full_size), MAX_SIZE))
    inputs = {}
    for name, to_input in INPUTS.items():
      pixels, took = timed(args.rounds, to_input, decoded.image, inner)
      ms[f'input/{name}'].append(took)
      inputs[name] = imaging.to_unit_float(np.pad(pixels, pad, mode='reflect'))
    for style in STYLES:
      regions = {}
      for name, network_input in inputs.items():
        out = network.stylize(network_input, bank[style].bottleneck)
        regions[name] = np.clip(np.rint(out[top:top + inner[1], left:left + inner[0]] * 255),
                                0, 255).astype(np.uint8)
      delivered = {}
      for name, enlarge in OUTPUTS.items():
        picture, took = timed(args.rounds, enlarge, regions['pillow_lanczos'], size)
        delivered[name] = np.asarray(picture)
        ms[f'output/{name}'].append(took)
      for name in list(OUTPUTS)[1:]:
        pairs[f'output/{name}'].append({'photo': photo.name, 'style': style, **similarity(
            delivered['opencv_bicubic'], delivered[name])})
      for name, region in list(regions.items())[1:]:
        pairs[f'input/{name}'].append({'photo': photo.name, 'style': style, **similarity(
            delivered['opencv_bicubic'], np.asarray(OUTPUTS['opencv_bicubic'](region, size)))})
  result = {
      'what': f'{len(photos) * len(STYLES)} pairs ({len(photos)} photos not looked at when '
              f'choosing x {len(STYLES)} built-in styles), delivered at --max-size {MAX_SIZE}. '
              f'Each step: its median ms per picture (one thread, {args.rounds} rounds), and '
              'SSIM and PSNR of the picture it delivers against the job\'s (output: Pillow '
              'Lanczos input, OpenCV bicubic output)',
      'steps': {name: summary(ms[name], pairs[name]) for name in ms},
      'pairs': pairs,
      'provenance': provenance('.venv/bin/python -m benchmarks.resize ' + ' '.join(
          sys.argv[1:] if argv is None else argv), started),
  }
  (ROOT / 'benchmarks' / 'results' / 'resize.json').write_text(json.dumps(result, indent=1) + '\n')
  print(json.dumps(result['steps'], indent=1))


if __name__ == '__main__':
  main()
