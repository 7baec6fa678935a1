"""Latency of every transfer model the job runs, on this machine: one interpreter thread, the same
photo and style for all, in interleaved rounds (every model sees the same machine load), with the
CPU's int8 features in the provenance (int8 dot-product instructions, VNNI, change the ranking).
Writes benchmarks/results/latency.json, or `--out` (another machine's table beside this one's):

    .venv/bin/python -m benchmarks.latency [--rounds 30] [--out PATH]
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

from benchmarks.record import ROOT, provenance, transfer_path
from model_building.optimize import latency_ms
from models import imaging, style_bank

SHARED = ROOT.parent / 'shared'
MODELS = ('magenta-fast', 'magenta-int8', 'magenta-fp16', 'house')
PHOTO = 'lion.jpg'
STYLE = 'great_wave'


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--rounds', type=int, default=30)
  parser.add_argument('--out', type=pathlib.Path,
                      default=ROOT / 'benchmarks' / 'results' / 'latency.json')
  args = parser.parse_args(argv)
  magenta = SHARED / 'models' / 'magenta'
  if not magenta.is_dir():
    sys.exit(f'{SHARED} is absent: this benchmark needs the published models and photos')
  started = time.time()
  paths = {name: transfer_path(name, magenta) for name in MODELS}
  with open(SHARED / 'images' / 'content' / PHOTO, 'rb') as f:
    content = imaging.content_input(imaging.decode(f.read()).image)[0]
  latency = latency_ms(paths, content, style_bank.load()[STYLE].bottleneck, args.rounds)
  result = {
      'what': f'median ms per call of each transfer model, one thread, {args.rounds} interleaved '
              f'rounds after a warm-up, on {PHOTO} with the built-in {STYLE} bottleneck',
      'latency_ms': latency,
      'vs_published_int8': {name: round(ms / latency['magenta-int8'], 3)
                            for name, ms in latency.items()},
      'provenance': provenance('.venv/bin/python -m benchmarks.latency ' + ' '.join(
          sys.argv[1:] if argv is None else argv), started),
  }
  args.out.write_text(json.dumps(result, indent=1) + '\n')
  print(json.dumps(result['latency_ms']), json.dumps(result['vs_published_int8']))


if __name__ == '__main__':
  main()
