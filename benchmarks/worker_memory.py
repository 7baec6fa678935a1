"""Peak memory of the job as the number of styles grows (1, 10, 1000 by default).

Each count runs in a fresh process: the real int8 models, one real photo, N generated style
pictures, single-process DirectRunner (runner and worker share the process, so the figure is an
upper bound for one worker). Writes benchmarks/results/worker_memory.json.

    .venv/bin/python -m benchmarks.worker_memory [--styles 1 10 1000]
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / 'shared'
PHOTO = SHARED / 'images' / 'content' / 'grace_hopper.jpg'

_CHILD = '''
import json, resource, sys, time
from pipeline import run as job
argv = json.loads(sys.argv[1])
start = time.monotonic()
outcome = job.run(argv)
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"peak_rss_mib": round(peak_kib / 1024, 1),
                  "seconds": round(time.monotonic() - start, 1),
                  "pairs_written": outcome.summary["pairs_written"]}))
'''


def measure(styles: int, work: pathlib.Path) -> dict:
  import numpy as np
  from PIL import Image
  style_dir = work / f'styles-{styles}'
  style_dir.mkdir()
  rng = np.random.default_rng(styles)
  for i in range(styles):
    pixels = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    Image.fromarray(pixels).resize((256, 256), Image.BICUBIC).save(style_dir / f's{i:04d}.png')
  argv = ['--content', str(PHOTO), '--styles', str(style_dir / '*'), '--output',
          str(work / f'out-{styles}'), '--model-dir', str(SHARED / 'models' / 'magenta'),
          '--runner', 'DirectRunner', '--run-id', 'memory']
  done = subprocess.run([sys.executable, '-c', _CHILD, json.dumps(argv)], cwd=ROOT, check=True,
                        capture_output=True, text=True)
  return {'styles': styles, **json.loads(done.stdout.strip().splitlines()[-1])}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--styles', type=int, nargs='+', default=[1, 10, 1000])
  parser.add_argument('--out', default=str(ROOT / 'benchmarks' / 'results' / 'worker_memory.json'))
  args = parser.parse_args()
  if not PHOTO.exists():
    sys.exit(f'{SHARED} is absent: this benchmark needs the published models and real photos')
  with tempfile.TemporaryDirectory() as work:
    rows = [measure(n, pathlib.Path(work)) for n in args.styles]
  for row in rows:
    print(row)
  result = {
      'what': 'peak RSS of a single-process DirectRunner job: 1 photo (grace_hopper.jpg) x N '
              'styles, magenta-int8, JPEG outputs; runner and worker in one process',
      'command': '.venv/bin/python -m benchmarks.worker_memory --styles '
                 + ' '.join(map(str, args.styles)),
      'date': time.strftime('%Y-%m-%d'), 'machine': f'{os.cpu_count()} cores, {platform.machine()}',
      'python': platform.python_version(), 'rows': rows}
  pathlib.Path(args.out).write_text(json.dumps(result, indent=2) + '\n')


if __name__ == '__main__':
  main()
