"""Chooses the layers of a transfer network that keep float arithmetic in an `int8-mixed` export.

An `int8-weights` export (int8 kernels, each layer's input rounded to int8 on the fly) runs faster
than `int8-storage` (the same int8 weights, float arithmetic) but costs the small house model
fidelity. This measures, on tuning pairs, what keeping each layer alone in float earns back, then
adds layers in that order until the export scores within `--tolerance` SSIM of `int8-storage`
against the reference (teacher) model, and drops any chosen layer the rest do without. It writes
the choice to WORKDIR/float_layers.json (or `--out`), which `distill.export` reads, so a re-export
never measures again:

    M=../shared/models/magenta/magenta_arbitrary-image-stylization-v1-256
    python -m model_building.mixed_precision --workdir training/house --width 0.3 \\
        --reference ${M}_fp16_transfer_1.tflite --predictor ${M}_int8_prediction_1.tflite \\
        --content ../shared/images/content/lion.jpg --styles ../shared/images/style/klee*.jpg ...

Give training pictures only: held-out ones are for reporting (`benchmarks/house_mixed.py`).

Each layer is ranked by its gain against the `int8-storage` export's own output, not the
teacher's: that isolates the rounding the layer adds from the student's own error (larger, and
the same in every export), which would otherwise let chance agreement with the teacher rank the
layers. The stopping rule uses the teacher, the measure the export is judged by.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import pathlib
import sys
import tempfile
import time
from typing import Callable

import numpy as np

from model_building import distill, export, quality
from models import contract, imaging

LOG = logging.getLogger('mixed_precision')
FRAMES = ('fit', 'square')


def pairs(content: list[str], styles: list[str], predictor: str
          ) -> tuple[list[np.ndarray], list[np.ndarray]]:
  """The transfer network's inputs for each photo in both of the job's frames, and the
  predictor's bottleneck of each painting (as `benchmarks/distilled.py` makes them)."""
  read = lambda path: imaging.decode(pathlib.Path(path).read_bytes(),
                                    min_side=contract.CONTENT_SIZE).image
  contents = [imaging.content_input(read(path), frame)[0] for path in content for frame in FRAMES]
  network = contract.StylePredictor(predictor)
  return contents, [network.predict(imaging.style_input(read(path))) for path in styles]


def _outputs(tflite: bytes | str, contents, bottlenecks) -> list[np.ndarray]:
  """The model's output for every (content, bottleneck) pair; one thread."""
  if isinstance(tflite, str):
    network = contract.StyleTransfer(tflite)
  else:
    with tempfile.NamedTemporaryFile(suffix='.tflite') as f:
      f.write(tflite)
      f.flush()
      network = contract.StyleTransfer(f.name)
  return [network.stylize(c, b) for c in contents for b in bottlenecks]


class Scorer:
  """Mean SSIM of an export's outputs against the reference model's and the float export's on
  fixed pairs (the references run once)."""

  def __init__(self, reference: str, float_export: bytes, contents, bottlenecks):
    self.contents, self.bottlenecks = contents, bottlenecks
    self.teacher = _outputs(reference, contents, bottlenecks)
    self.float = _outputs(float_export, contents, bottlenecks)

  def __call__(self, tflite: bytes) -> dict[str, float]:
    got = _outputs(tflite, self.contents, self.bottlenecks)
    mean = lambda measure, references: float(np.mean([measure(g, r)
                                                      for g, r in zip(got, references)]))
    return {'ssim': mean(quality.ssim, self.teacher), 'psnr_db': mean(quality.psnr, self.teacher),
            'ssim_vs_float': mean(quality.ssim, self.float)}


def choose(hybrid: bytes, float_export: bytes, score: Callable[[bytes], dict],
           tolerance: float) -> dict:
  """The float layers of an `int8-mixed` export, from the network's `int8-weights` and
  `int8-storage` exports and a `Scorer`, with every score they were chosen by."""
  storage = score(float_export)
  everything = score(hybrid)
  layers = list(export.weight_layers(hybrid))
  mixed = lambda chosen: export.dequantize_at_load(hybrid, set(chosen))
  alone = {}
  for layer in layers:
    alone[layer] = score(mixed([layer]))
    LOG.info('%s alone in float: %s', layer, alone[layer])
  gain = lambda layer: alone[layer]['ssim_vs_float'] - everything['ssim_vs_float']
  ranked = sorted(layers, key=gain, reverse=True)
  good_enough = lambda scores: scores['ssim'] >= storage['ssim'] - tolerance
  chosen, scores = [], everything
  for layer in ranked:
    if good_enough(scores):
      break
    chosen.append(layer)
    scores = score(mixed(chosen))  # all of them in float: int8-storage, so this ends
    LOG.info('float %s: %s', chosen, scores)
  # Adding in rank order can leave in a layer that a later one made unneeded: drop those.
  for layer in reversed(list(chosen)):
    fewer = [c for c in chosen if c != layer]
    if fewer and good_enough(trial := score(mixed(fewer))):
      chosen, scores = fewer, trial
      LOG.info('dropped %s: %s', layer, scores)
  rounded = lambda s: {k: round(v, 4 if 'ssim' in k else 2) for k, v in s.items()}
  return {
      'float_layers': [layer for layer in layers if layer in chosen],  # graph order
      'int8_kernel_layers': len(layers) - len(chosen),
      'tolerance_ssim': tolerance,
      'tuning': {'int8-storage': rounded(storage), 'int8-weights': rounded(everything),
                 'int8-mixed': rounded(scores)},
      'alone_in_float': {layer: {'gain_ssim_vs_float': round(gain(layer), 4),
                                 **rounded(alone[layer])} for layer in ranked},
  }


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter,
                                   epilog=__doc__.split('\n\n', 1)[1])
  parser.add_argument('--workdir', required=True, help='the training workdir (its checkpoint)')
  parser.add_argument('--width', type=float, required=True, help='the checkpoint\'s width')
  parser.add_argument('--reference', required=True,
                      help='the transfer .tflite the export is judged against (the teacher)')
  parser.add_argument('--predictor', required=True, help='the prediction .tflite (bottlenecks)')
  parser.add_argument('--content', action='append', required=True, help='a tuning photo')
  parser.add_argument('--styles', action='append', required=True, help='a tuning painting')
  parser.add_argument('--tolerance', type=float, default=0.005,
                      help='SSIM the export may lose against int8-storage on the tuning pairs')
  parser.add_argument('--out', help='where to write the choice (default: WORKDIR/%s, which the '
                                    'export reads)' % distill.FLOAT_LAYERS_FILE)
  args = parser.parse_args(argv)
  logging.basicConfig(level=logging.INFO, format='%(asctime)s %(message)s')
  started = time.time()
  model, latest = distill.restore_for_export(args.workdir, args.width)
  contents, bottlenecks = pairs(args.content, args.styles, args.predictor)
  float_export = export.to_tflite(model, 'int8-storage')
  choice = choose(export.to_tflite(model, 'int8-weights'), float_export,
                  Scorer(args.reference, float_export, contents, bottlenecks), args.tolerance)
  choice = {
      'what': 'the layers an int8-mixed export of this checkpoint keeps in float, chosen on '
              'tuning pairs (model_building/mixed_precision.py)',
      'command': ' '.join(['python -m model_building.mixed_precision', *(argv or sys.argv[1:])]),
      'checkpoint': os.path.basename(latest),
      'float_layers': choice.pop('float_layers'),
      'tuning_pairs': {'photos': [os.path.basename(p) for p in args.content],
                       'paintings': [os.path.basename(p) for p in args.styles],
                       'frames': list(FRAMES), 'count': len(contents) * len(bottlenecks)},
      **choice,
      'seconds': round(time.time() - started, 1),
  }
  path = args.out or os.path.join(args.workdir, distill.FLOAT_LAYERS_FILE)
  with open(path, 'w', encoding='utf-8') as f:
    f.write(json.dumps(choice, indent=1) + '\n')
  print(json.dumps({k: choice[k] for k in ('float_layers', 'int8_kernel_layers', 'tuning')},
                   indent=1))
  LOG.info('wrote %s', path)


if __name__ == '__main__':
  main()
