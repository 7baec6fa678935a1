"""Fidelity of the house model with int8 kernels: its `int8-mixed` exports (the layers a choice
file names kept in float, the rest int8 kernels) beside `int8-storage` (all float arithmetic) and
`int8-weights` (all int8 kernels), on the held-out pairs of `benchmarks/distilled.py`, against the
published fp16 output.

Choices are made on tuning pairs from the training pictures (`python -m
model_building.mixed_precision`, its command in the choice file); this only reports, and refuses
a choice tuned on any held-out picture. Each export is also timed (one thread, interleaved
rounds, as `benchmarks.latency` times models), with the CPU's int8 features in the provenance:
int8 kernels gain most on CPUs with int8 dot-product instructions (VNNI).

`--confirm DIR` also scores every export on photos nothing of this project has seen
(`benchmarks.unseen`): each photo as content, against the held-out paintings and against every one
of those photos as the style. A choice is confirmed when it loses at most the target there too,
a rule fixed before these pictures were first scored. Writes benchmarks/results/house_mixed.json:

    .venv/bin/python -m benchmarks.unseen --out /tmp/unseen
    .venv/bin/python -m benchmarks.house_mixed [--choice FILE ...] [--confirm /tmp/unseen] \
        [--rounds 30]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

from benchmarks import unseen as benchmarks_unseen
from benchmarks.distilled import HELD_OUT_PAINTINGS, HELD_OUT_PHOTOS, MAGENTA, SHARED
from benchmarks.record import ROOT, provenance
from model_building import distill, export, mixed_precision, optimize
from models import registry
from models.fetch import sha256_of

WORKDIR, WIDTH = ROOT / 'training' / 'house', 0.3  # training/train_house.sh's
TOLERANCE_SSIM = 0.005  # what an int8-mixed export may lose against int8-storage (issue 20)


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--choice', action='append',
                      help='a choice file of model_building.mixed_precision (repeatable; default: '
                           f'training/house/{distill.FLOAT_LAYERS_FILE}, the one the export uses)')
  parser.add_argument('--rounds', type=int, default=30, help='timed rounds per export')
  parser.add_argument('--confirm', help='a folder of pictures unseen by training and choices '
                                        '(benchmarks.unseen writes one)')
  args = parser.parse_args(argv)
  if not MAGENTA.is_dir():
    sys.exit(f'{SHARED} is absent: this benchmark needs the published models and photos')
  files = args.choice or [str(WORKDIR / distill.FLOAT_LAYERS_FILE)]
  choices = {}
  for path in files:
    if not os.path.exists(path):
      sys.exit(f'{path} is absent: run model_building.mixed_precision')
    with open(path, encoding='utf-8') as f:
      choices[os.path.relpath(path, ROOT)] = json.load(f)
  for name, choice in choices.items():
    tuned_on = set(choice['tuning_pairs']['photos']) | set(choice['tuning_pairs']['paintings'])
    if tuned_on & set(HELD_OUT_PHOTOS + HELD_OUT_PAINTINGS):
      sys.exit(f'{name} was tuned on held-out pictures: {sorted(tuned_on)}')
  started = time.time()
  model, latest = distill.restore_for_export(str(WORKDIR), WIDTH)
  contents, bottlenecks = mixed_precision.pairs(
      [str(SHARED / 'images' / 'content' / name) for name in HELD_OUT_PHOTOS],
      [str(SHARED / 'images' / 'style' / name) for name in HELD_OUT_PAINTINGS],
      str(MAGENTA / registry.REGISTRY['magenta-int8'].prediction.name))
  fp16 = str(MAGENTA / registry.REGISTRY['magenta-fp16'].transfer.name)
  predictor = str(MAGENTA / registry.REGISTRY['magenta-int8'].prediction.name)
  unseen = benchmarks_unseen.check(args.confirm) if args.confirm else []
  exports = {'int8-storage': export.to_tflite(model, 'int8-storage'),
             'int8-weights': export.to_tflite(model, 'int8-weights')}
  for name, choice in choices.items():
    exports[name] = export.to_tflite(model, 'int8-mixed', float_layers=choice['float_layers'])
  with tempfile.TemporaryDirectory() as folder:
    paths = {}
    for i, (name, data) in enumerate(exports.items()):
      paths[name] = os.path.join(folder, f'{i}.tflite')
      with open(paths[name], 'wb') as f:
        f.write(data)
    scores = optimize.fidelity(paths, fp16, contents, bottlenecks)
    confirmation = _confirm(paths, fp16, predictor, unseen) if unseen else None
    speed = optimize.latency_ms(paths, contents[0], bottlenecks[0], args.rounds)
  held_out = lambda name: {'bytes': len(exports[name]), 'latency_ms': speed[name],
                           'latency_vs_int8_storage': round(speed[name] / speed['int8-storage'],
                                                            3), **scores[name]}
  lost = lambda name: round(scores['int8-storage']['ssim'] - scores[name]['ssim'], 4)
  result = {
      'what': 'the house model with int8 kernels except in its most sensitive layers '
              '(int8-mixed), beside int8-storage and int8-weights, against the published fp16 '
              'output on held-out photos x paintings; latency_ms: median of --rounds '
              'interleaved calls, one thread',
      **provenance(' '.join(['.venv/bin/python -m benchmarks.house_mixed',
                             *(f'--choice {path}' for path in args.choice or []),
                             *([f'--confirm {args.confirm}'] if args.confirm else []),
                             f'--rounds {args.rounds}']), started),
      'checkpoint': os.path.basename(latest),
      'held_out_pairs': {'photos': HELD_OUT_PHOTOS, 'paintings': HELD_OUT_PAINTINGS,
                         'frames': list(mixed_precision.FRAMES),
                         'count': len(contents) * len(bottlenecks)},
      'target': {'max_ssim_lost_vs_int8_storage': TOLERANCE_SSIM},
      'int8-storage': {'held_out': held_out('int8-storage')},
      'int8-weights': {'held_out': held_out('int8-weights'),
                       'held_out_ssim_lost': lost('int8-weights')},
      'int8-mixed': {name: {
          'float_layers': choice['float_layers'],
          'layers': {'int8_kernels': choice['int8_kernel_layers'],
                     'float': len(choice['float_layers'])},
          'chosen': {key: choice[key] for key in ('command', 'checkpoint', 'tuning_pairs',
                                                  'tolerance_ssim', 'tuning')},
          'held_out': held_out(name), 'held_out_ssim_lost': lost(name),
          'met': lost(name) <= TOLERANCE_SSIM} for name, choice in choices.items()},
  }
  if confirmation:
    result['confirmation'] = {
        'rule': 'fixed before these pictures were first scored: a choice is confirmed when its '
                'SSIM lost against int8-storage over all the pairs below is at most the target',
        'photos': {os.path.basename(path): sha256_of(path) for path in unseen},
        'pairs': {group: row['pairs'] for group, row in confirmation.items()},
        'scores': {group: row['scores'] for group, row in confirmation.items()},
        'all_pairs': (everything := _pooled(confirmation)),
        'ssim_lost': {name: round(everything['int8-storage']['ssim'] - row['ssim'], 4)
                      for name, row in everything.items()},
        'confirmed': {name: round(everything['int8-storage']['ssim'] - everything[name]['ssim'],
                                  4) <= TOLERANCE_SSIM for name in choices},
    }
  path = ROOT / 'benchmarks' / 'results' / 'house_mixed.json'
  path.write_text(json.dumps(result, indent=1) + '\n')
  print(json.dumps({name: {k: v for k, v in row.items() if k != 'chosen'}
                    for name, row in [('int8-storage', result['int8-storage']),
                                      ('int8-weights', result['int8-weights']),
                                      *result['int8-mixed'].items()]}, indent=1))


def _confirm(paths: dict[str, str], reference: str, predictor: str, unseen: list[str]) -> dict:
  """Each export's fidelity on the unseen photos, styled by the held-out paintings and by the
  unseen photos themselves (a picture's own bottleneck is one the job makes too)."""
  paintings = [str(SHARED / 'images' / 'style' / name) for name in HELD_OUT_PAINTINGS]
  groups = {'held_out_paintings': paintings, 'unseen_photos_as_styles': unseen}
  out = {}
  for group, styles in groups.items():
    contents, bottlenecks = mixed_precision.pairs(unseen, styles, predictor)
    out[group] = {'pairs': len(contents) * len(bottlenecks),
                  'scores': optimize.fidelity(paths, reference, contents, bottlenecks)}
  return out


def _pooled(confirmation: dict) -> dict[str, dict[str, float]]:
  """Mean SSIM and PSNR over every pair of every group, and the worst SSIM."""
  total = sum(row['pairs'] for row in confirmation.values())
  names = next(iter(confirmation.values()))['scores']
  mean = lambda name, key: sum(row['pairs'] * row['scores'][name][key]
                               for row in confirmation.values()) / total
  return {name: {'ssim': round(mean(name, 'ssim'), 4), 'psnr_db': round(mean(name, 'psnr_db'), 2),
                 'min_ssim': min(row['scores'][name]['min_ssim']
                                 for row in confirmation.values())} for name in names}


if __name__ == '__main__':
  main()
