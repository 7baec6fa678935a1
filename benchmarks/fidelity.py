"""Fidelity of the model choices and painting modes, on real photos and paintings (../shared).

1. int8 vs fp16 transfer (the fp16 output as reference), whole picture at 384, square framing:
   SSIM and PSNR per (photo, painting) pair, and their means.
2. Painting large photos (2000+ px) at a working size of 2048: colour-matched tiles (the job's
   `--working-size`), tiles without colour matching, and the legacy dynamic-shape model in one
   pass; per mode: the tile-seam ratio (benchmarks/metrics.py; the target is <= 1.10), seconds
   per picture, and SSIM against the legacy whole-picture output.
Writes benchmarks/results/fidelity.json.

    .venv/bin/python -m benchmarks.fidelity
"""
from __future__ import annotations

import json
import os
import pathlib
import platform
import statistics
import sys
import time

from benchmarks.metrics import psnr, seam_ratio, ssim
from models import imaging, tiling
from models.contract import StylePredictor, StyleTransfer, open_transfer
from models.registry import REGISTRY

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / 'shared'
MODELS = SHARED / 'models' / 'magenta'
PHOTOS = ['coffee.png', 'grace_hopper.jpg', 'tubingen_neckarfront.png', 'dog_on_lava_field.jpg',
          'golden_gate_sq.jpg', 'lion.jpg']
PAINTINGS = ['van_gogh_starry_night.jpg', 'munch_the_scream.jpg', 'hokusai_great_wave_crop.jpg',
             'picabia_edtaonisl.jpg']
LARGE_PHOTOS = ['toy_figures_large.jpg', 'person_on_rocks_large.jpg']
LARGE_PAINTINGS = ['van_gogh_starry_night.jpg', 'munch_the_scream.jpg', 'wpa_poster_zion.png']
WORKING_SIZE = 2048


def _decoded(folder: str, name: str, min_side=None):
  return imaging.decode((SHARED / 'images' / folder / name).read_bytes(), min_side=min_side)


def int8_vs_fp16(predictor) -> dict:
  int8 = StyleTransfer(str(MODELS / REGISTRY['magenta-int8'].transfer.name))
  fp16 = StyleTransfer(str(MODELS / REGISTRY['magenta-fp16'].transfer.name))
  rows = []
  for painting in PAINTINGS:
    bottleneck = predictor.predict(imaging.style_input(_decoded('style', painting).image))
    for photo in PHOTOS:
      x, _ = imaging.content_input(_decoded('content', photo).image, 'square')
      a, b = int8.stylize(x, bottleneck), fp16.stylize(x, bottleneck)
      rows.append({'photo': photo, 'painting': painting, 'ssim': round(ssim(a, b), 4),
                   'psnr_db': round(psnr(a, b), 2)})
  return {'pairs': rows, 'mean_ssim': round(statistics.mean(r['ssim'] for r in rows), 4),
          'mean_psnr_db': round(statistics.mean(r['psnr_db'] for r in rows), 2)}


def painting_modes(predictor) -> dict:
  transfer = StyleTransfer(str(MODELS / REGISTRY['magenta-int8'].transfer.name))
  legacy = open_transfer(str(MODELS / REGISTRY['magenta-legacy-dynamic'].transfer.in_model_dir))
  rows = []
  for painting in LARGE_PAINTINGS:
    bottleneck = predictor.predict(imaging.style_input(_decoded('style', painting).image))
    stylize = lambda tile, b=bottleneck: transfer.stylize(tile, b)
    for photo in LARGE_PHOTOS:
      decoded = _decoded('content', photo, min_side=WORKING_SIZE)
      working = tiling.working_input(decoded.image, 'fit', WORKING_SIZE)
      x, box = imaging.content_input(decoded.image, 'fit')
      height, width, _ = working.shape
      starts = (tiling.tile_starts(height, 384, 128), tiling.tile_starts(width, 384, 128))
      outputs, seconds = {}, {}
      start = time.perf_counter()
      whole = transfer.stylize(x, bottleneck)[box[1]:box[3], box[0]:box[2]]
      reference = tiling.upsampled(whole, (width, height))
      outputs['tiled_matched'] = tiling.stylize_tiled(stylize, working, reference)
      seconds['tiled_matched'] = time.perf_counter() - start
      start = time.perf_counter()
      outputs['tiled_unmatched'] = tiling.stylize_tiled(stylize, working, None)
      seconds['tiled_unmatched'] = time.perf_counter() - start
      start = time.perf_counter()
      outputs['legacy_whole'] = legacy.stylize_any(working, bottleneck)
      seconds['legacy_whole'] = time.perf_counter() - start
      for mode, out in outputs.items():
        rows.append({'photo': photo, 'painting': painting, 'mode': mode,
                     'size': [width, height], 'seconds': round(seconds[mode], 2),
                     'seam_ratio': round(seam_ratio(out, *starts), 3),
                     'ssim_vs_legacy_whole': round(ssim(out, outputs['legacy_whole']), 4)})
  summary = {}
  for mode in ('tiled_matched', 'tiled_unmatched', 'legacy_whole'):
    mine = [r for r in rows if r['mode'] == mode]
    summary[mode] = {'mean_seam_ratio': round(statistics.mean(r['seam_ratio'] for r in mine), 3),
                     'max_seam_ratio': max(r['seam_ratio'] for r in mine),
                     'mean_seconds': round(statistics.mean(r['seconds'] for r in mine), 2),
                     'mean_ssim_vs_legacy_whole': round(
                         statistics.mean(r['ssim_vs_legacy_whole'] for r in mine), 4)}
  return {'working_size': WORKING_SIZE, 'tile': 384, 'overlap': 128, 'rows': rows,
          'summary': summary}


def main() -> None:
  if not MODELS.is_dir():
    sys.exit(f'{SHARED} is absent: this benchmark needs the published models and real pictures')
  predictor = StylePredictor(str(MODELS / REGISTRY['magenta-int8'].prediction.name))
  result = {
      'command': '.venv/bin/python -m benchmarks.fidelity',
      'date': time.strftime('%Y-%m-%d'),
      'machine': f'{os.cpu_count()} cores, {platform.machine()}; interpreters with 1 thread',
      'int8_vs_fp16_at_384': int8_vs_fp16(predictor),
      'large_photos_at_2048': painting_modes(predictor)}
  out = ROOT / 'benchmarks' / 'results' / 'fidelity.json'
  out.write_text(json.dumps(result, indent=2) + '\n')
  print(json.dumps({k: v for k, v in result['large_photos_at_2048'].items() if k != 'rows'},
                   indent=2))
  print('int8 vs fp16:', result['int8_vs_fp16_at_384']['mean_ssim'],
        result['int8_vs_fp16_at_384']['mean_psnr_db'])


if __name__ == '__main__':
  main()
