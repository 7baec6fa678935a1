"""Speed and fidelity of `model_building.optimize`'s exports against the published transfer
models.

Runs `model_building.optimize` on the published fp16 transfer file (../shared), calibrating on 8 of
the photos in ../shared/images/content and scoring on the other 5 (never calibrated on), in both the
job's frames ("fit" and "square"), with every third built-in style's bottleneck (those styles are
left out of calibration too). The published int8 file is timed and scored alongside, in the same
interleaved rounds, so every latency ratio comes from one run. Writes
benchmarks/results/optimize.json:

    .venv/bin/python -m benchmarks.optimize [--rounds 30]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

from benchmarks.record import ROOT, provenance
from model_building import optimize

SHARED = ROOT.parent / 'shared'
MAGENTA = SHARED / 'models' / 'magenta'
SOURCE = MAGENTA / 'magenta_arbitrary-image-stylization-v1-256_fp16_transfer_1.tflite'
PUBLISHED_INT8 = MAGENTA / 'magenta_arbitrary-image-stylization-v1-256_int8_transfer_1.tflite'
EVAL_PHOTOS = ['coffee.png', 'grace_hopper.jpg', 'tubingen_neckarfront.png', 'golden_gate_sq.jpg',
               'lion.jpg']
TARGETS = {'fast': {'min_ssim': 0.97, 'max_latency_ratio': 0.4},
           'calibrated': {'min_ssim': 0.89, 'max_latency_ratio': 0.4}}


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--rounds', type=int, default=30)
  args = parser.parse_args(argv)
  if not SOURCE.exists():
    sys.exit(f'{SHARED} is absent: this benchmark needs the published models and photos')
  photos = sorted((SHARED / 'images' / 'content').iterdir())
  calibration = [str(p) for p in photos if p.name not in EVAL_PHOTOS]
  evaluation = [str(SHARED / 'images' / 'content' / n) for n in EVAL_PHOTOS]
  started = time.time()
  with tempfile.TemporaryDirectory() as out:
    report = optimize.optimize(str(SOURCE), out, calibration=calibration, eval_patterns=evaluation,
                               compare=[str(PUBLISHED_INT8)], rounds=args.rounds)
  models = report['models']
  published = models[PUBLISHED_INT8.name]
  for row in models.values():
    row['latency_vs_published_int8'] = round(row['latency_ms'] / published['latency_ms'], 3)
    row['path'] = os.path.relpath(row['path'], ROOT) if row['path'].startswith('/') else row[
        'path']
  result = {
      'what': 'per-image latency (median, 1 thread, interleaved rounds) and fidelity (mean SSIM '
              'and PSNR against the published fp16 output) of model_building.optimize exports',
      **provenance('.venv/bin/python -m benchmarks.optimize --rounds %d' % args.rounds, started),
      'evaluation': {**report['evaluation'],
                     'pictures': [os.path.basename(p) for p in report['evaluation']['pictures']],
                     'calibration_pictures': [os.path.basename(p) for p in
                                              report['evaluation']['calibration_pictures']]},
      'rebuild_psnr_db': report['rebuild_psnr_db'],
      'models': models,
      'targets': {name: {**target,
                         'ssim': models[name]['ssim'],
                         'latency_ratio': models[name]['latency_vs_published_int8'],
                         'met': models[name]['ssim'] >= target['min_ssim'] and
                                models[name]['latency_vs_published_int8'] <=
                                target['max_latency_ratio']}
                  for name, target in TARGETS.items()},
  }
  path = ROOT / 'benchmarks' / 'results' / 'optimize.json'
  path.write_text(json.dumps(result, indent=1) + '\n')
  print(json.dumps(result['targets'], indent=1))
  print(f'wrote {path}')


if __name__ == '__main__':
  main()
