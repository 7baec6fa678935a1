"""Enlarging the network's output to the delivered size: bicubic (the job's choice) against Lanczos
(its choice before), speed and difference, on real `magenta-fast` outputs.

The choice was made by looking at the first 6 shared content photos (sorted by name) with the
built-in `great_wave`; this reports on the others, with three other built-in styles. Writes
benchmarks/results/upscale.json:

    .venv/bin/python -m benchmarks.upscale [--rounds 20]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np
from PIL import Image

from benchmarks.metrics import psnr, ssim
from benchmarks.record import ROOT, provenance, transfer_path
from models import imaging, style_bank
from models.contract import StyleTransfer

SHARED = ROOT.parent / 'shared'
CHOSEN_ON = 6  # the first photos, looked at when choosing
STYLES = ('edtaonisl', 'night_cafe', 'the_scream')
MAX_SIZE = 1024  # the job's default --max-size
FILTERS = {'lanczos': Image.Resampling.LANCZOS, 'bicubic': Image.Resampling.BICUBIC}


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
  photos = sorted((SHARED / 'images' / 'content').iterdir())[CHOSEN_ON:]
  pairs, ms = [], {name: [] for name in FILTERS}
  for photo in photos:
    decoded = imaging.decode(photo.read_bytes(), min_side=imaging.CONTENT_SIZE, frame='fit')
    network_input, (left, top, right, bottom) = imaging.content_input(decoded.image, 'fit',
                                                                      decoded.full_size)
    size = imaging.scaled(decoded.full_size, MAX_SIZE)
    for style in STYLES:
      out = network.stylize(network_input, bank[style].bottleneck)[top:bottom, left:right]
      region = Image.fromarray(np.clip(np.rint(out * 255), 0, 255).astype(np.uint8))
      enlarged = {}
      for name, resample in FILTERS.items():
        start = time.perf_counter()
        for _ in range(args.rounds):
          picture = region.resize(size, resample)
        ms[name].append(1000 * (time.perf_counter() - start) / args.rounds)
        enlarged[name] = np.asarray(picture, np.float32) / 255.0
      pairs.append({'photo': photo.name, 'style': style, 'size': list(size),
                    'ssim': round(float(ssim(enlarged['lanczos'], enlarged['bicubic'])), 4),
                    'psnr_db': round(float(psnr(enlarged['lanczos'], enlarged['bicubic'])), 1)})
  result = {
      'what': f'the network output region of {len(pairs)} pairs ({len(photos)} photos not looked '
              f'at when choosing x {len(STYLES)} built-in styles) enlarged to --max-size '
              f'{MAX_SIZE}: median ms per resize of each filter, one thread, {args.rounds} '
              'rounds per pair; SSIM and PSNR of bicubic against Lanczos',
      'median_ms': {name: round(statistics.median(times), 2) for name, times in ms.items()},
      'bicubic_vs_lanczos': {'ssim_min': min(p['ssim'] for p in pairs),
                             'ssim_mean': round(statistics.mean(p['ssim'] for p in pairs), 4),
                             'psnr_db_min': min(p['psnr_db'] for p in pairs)},
      'pairs': pairs,
      'provenance': provenance('.venv/bin/python -m benchmarks.upscale ' + ' '.join(
          sys.argv[1:] if argv is None else argv), started),
  }
  (ROOT / 'benchmarks' / 'results' / 'upscale.json').write_text(json.dumps(result, indent=1) + '\n')
  print(json.dumps(result['median_ms']), json.dumps(result['bicubic_vs_lanczos']))


if __name__ == '__main__':
  main()
