"""How much two cores of this machine give the bare interpreter: the ceiling for any pipeline.

Runs the int8 transfer network (same input, 30 invocations after a warm-up) in one process with
one thread, in two such processes at once, and in one process with two threads, and records ms
per inference and the aggregate inferences per second. If two processes at once are no faster in
aggregate than one, no two-worker pipeline can be either. Writes
benchmarks/results/core_scaling.json.

    .venv/bin/python -m benchmarks.core_scaling
"""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
MODEL = (ROOT.parent / 'shared' / 'models' / 'magenta' /
         'magenta_arbitrary-image-stylization-v1-256_int8_transfer_1.tflite')
CALLS = 30

_CHILD = f'''
import json, sys, time
import numpy as np
from models.contract import StyleTransfer
transfer = StyleTransfer(sys.argv[1], int(sys.argv[2]))
x = np.random.default_rng(0).random((384, 384, 3), dtype=np.float32)
b = np.ones(100, np.float32)
transfer.stylize(x, b)
start = time.perf_counter()
for _ in range({CALLS}):
  transfer.stylize(x, b)
print(json.dumps((time.perf_counter() - start) / {CALLS} * 1000))
'''


def _run(processes: int, threads: int) -> dict:
  children = [subprocess.Popen([sys.executable, '-c', _CHILD, str(MODEL), str(threads)],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True) for _ in range(processes)]
  ms = [json.loads(child.communicate()[0]) for child in children]
  return {'processes': processes, 'threads_each': threads,
          'ms_per_inference': [round(m, 1) for m in ms],
          'aggregate_inferences_per_second': round(sum(1000 / m for m in ms), 2)}


def main() -> None:
  if not MODEL.exists():
    sys.exit(f'{MODEL} is absent: this benchmark needs ../shared')
  rows = [_run(1, 1), _run(2, 1), _run(1, 2)]
  for row in rows:
    print(row)
  base = rows[0]['aggregate_inferences_per_second']
  result = {'command': '.venv/bin/python -m benchmarks.core_scaling',
            'date': time.strftime('%Y-%m-%dT%H:%M:%S'), 'cores': os.cpu_count(),
            'loadavg_before': os.getloadavg()[0], 'rows': rows,
            'two_process_speedup': round(rows[1]['aggregate_inferences_per_second'] / base, 2),
            'two_thread_speedup': round(rows[2]['aggregate_inferences_per_second'] / base, 2)}
  (ROOT / 'benchmarks' / 'results' / 'core_scaling.json').write_text(
      json.dumps(result, indent=2) + '\n')
  print('two processes:', result['two_process_speedup'], 'x; two threads:',
        result['two_thread_speedup'], 'x')


if __name__ == '__main__':
  main()
