"""Fidelity, size and speed of the embedded "house" model (the distilled student) against the
published models, on photos and paintings that training never saw.

Reference: the published fp16 transfer output. Pairs: the 3 photos and 3 paintings held out of
training (`training/train_house.sh` passes them as --holdout-*), the paintings' bottlenecks from the
published int8 predictor, each photo in both frames of the job ("fit", "square"): 18 pairs. The
published int8 file is scored and timed alongside in the same interleaved rounds. Writes
benchmarks/results/distilled.json:

    .venv/bin/python -m benchmarks.distilled [--rounds 30]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from benchmarks.record import ROOT, provenance
from model_building import optimize
from models import imaging, registry
from models.contract import StylePredictor

SHARED = ROOT.parent / 'shared'
MAGENTA = SHARED / 'models' / 'magenta'
HELD_OUT_PHOTOS = ['grace_hopper.jpg', 'tubingen_neckarfront.png', 'golden_gate_sq.jpg']
HELD_OUT_PAINTINGS = ['picabia_edtaonisl.jpg', 'van_gogh_night_cafe.jpg', 'wpa_poster_zion.png']
TARGETS = {'min_ssim': 0.80, 'stretch_ssim': 0.87, 'min_psnr_db': 23.0, 'max_bytes': 400 * 1024,
           'max_latency_vs_published_int8': 1.0}


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--rounds', type=int, default=30)
  args = parser.parse_args(argv)
  if not MAGENTA.is_dir():
    sys.exit(f'{SHARED} is absent: this benchmark needs the published models and photos')
  fp16 = str(MAGENTA / registry.REGISTRY['magenta-fp16'].transfer.name)
  int8 = str(MAGENTA / registry.REGISTRY['magenta-int8'].transfer.name)
  predictor = StylePredictor(str(MAGENTA / registry.REGISTRY['magenta-int8'].prediction.name))
  decode = lambda folder, name: imaging.decode((SHARED / 'images' / folder / name).read_bytes(),
                                               min_side=384).image
  contents = [imaging.content_input(decode('content', name), frame)[0]
              for name in HELD_OUT_PHOTOS for frame in ('fit', 'square')]
  bottlenecks = [predictor.predict(imaging.style_input(decode('style', name)))
                 for name in HELD_OUT_PAINTINGS]
  models = {'house': registry.HOUSE_TRANSFER, 'published_int8': int8}
  started = time.time()
  scores = optimize.fidelity(models, fp16, contents, bottlenecks)
  speed = optimize.latency_ms(models, contents[0], bottlenecks[0], args.rounds)
  rows = {name: {'bytes': os.path.getsize(path), 'latency_ms': speed[name], **scores[name]}
          for name, path in models.items()}
  house = rows['house']
  ratio = round(house['latency_ms'] / rows['published_int8']['latency_ms'], 3)
  result = {
      'what': 'the embedded house model (distilled student, int8 weights) and the published int8 '
              'model against the published fp16 output, on held-out photos x paintings',
      **provenance('.venv/bin/python -m benchmarks.distilled --rounds %d' % args.rounds, started),
      'pairs': {'photos': HELD_OUT_PHOTOS, 'paintings': HELD_OUT_PAINTINGS,
                'frames': ['fit', 'square'], 'count': len(contents) * len(bottlenecks)},
      'models': rows,
      'house_latency_vs_published_int8': ratio,
      'targets': {**TARGETS, 'met': {
          'ssim': house['ssim'] >= TARGETS['min_ssim'],
          'psnr': house['psnr_db'] >= TARGETS['min_psnr_db'],
          'size': house['bytes'] <= TARGETS['max_bytes'],
          'latency': ratio <= TARGETS['max_latency_vs_published_int8']}},
  }
  path = ROOT / 'benchmarks' / 'results' / 'distilled.json'
  path.write_text(json.dumps(result, indent=1) + '\n')
  print(json.dumps({'models': rows, 'latency_ratio': ratio, 'met': result['targets']['met']},
                   indent=1))


if __name__ == '__main__':
  main()
