"""How to split a worker's cores: SDK processes x interpreter threads, measured end to end.

Runs the job (real int8 models, real photos, JPEG outputs) on DirectRunner multi_processing with
each layout below, on this machine's cores, twice: with one pair (the fixed cost: launch checks,
worker start-up, manifests) and with all pairs; records pairs per second over the whole run and
the marginal rate, (pairs - 1) / (seconds - seconds of one pair), which is what a long catalog
run approaches:
  2 processes x 1 interpreter thread  (the default: one interpreter per DoFn instance per core)
  2 processes x 2 interpreter threads (oversubscribed)
  1 process   x 2 interpreter threads (XNNPACK's own threads instead of processes)
Writes benchmarks/results/parallelism.json.

    .venv/bin/python -m benchmarks.parallelism
"""
from __future__ import annotations

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
PHOTOS = ['coffee.png', 'grace_hopper.jpg', 'tubingen_neckarfront.png', 'dog_on_lava_field.jpg',
          'golden_gate_sq.jpg', 'colva_beach_sq.jpg', 'astronaut_eileen_collins.png',
          'hubble_deep_field.jpg', 'cameraman_gray.png', 'lion.jpg']
PAINTINGS = ['van_gogh_starry_night.jpg', 'munch_the_scream.jpg', 'hokusai_great_wave_crop.jpg',
             'wpa_poster_zion.png', 'klee_clouds_over_bor_1940.jpg', 'picabia_edtaonisl.jpg']
LAYOUTS = [(2, 1), (2, 2), (1, 2)]  # (worker processes, interpreter threads)

_CHILD = '''
import json, sys, time
from pipeline import run as job
start = time.monotonic()
outcome = job.run(json.loads(sys.argv[1]))
print(json.dumps({"wall_seconds": round(time.monotonic() - start, 2), **outcome.summary}))
'''


def run_job(workers: int, threads: int, out: pathlib.Path, photos, paintings) -> dict:
  argv = ['--output', str(out), '--model-dir', str(SHARED / 'models' / 'magenta'),
          '--num-threads', str(threads), '--runner', 'DirectRunner',
          '--direct_running_mode=multi_processing', f'--direct_num_workers={workers}',
          '--gallery-rows', '0', '--run-id', f'p{workers}t{threads}']
  for photo in photos:
    argv += ['--content', str(SHARED / 'images' / 'content' / photo)]
  for painting in paintings:
    argv += ['--styles', str(SHARED / 'images' / 'style' / painting)]
  done = subprocess.run([sys.executable, '-c', _CHILD, json.dumps(argv)], cwd=ROOT, check=True,
                        capture_output=True, text=True)
  return json.loads(done.stdout.strip().splitlines()[-1])


def run_layout(workers: int, threads: int, work: pathlib.Path) -> dict:
  one = run_job(workers, threads, work / f'{workers}x{threads}-one', PHOTOS[:1], PAINTINGS[:1])
  full = run_job(workers, threads, work / f'{workers}x{threads}', PHOTOS, PAINTINGS)
  pairs = full['pairs_written']
  marginal = (pairs - 1) / (full['wall_seconds'] - one['wall_seconds'])
  return {'processes': workers, 'interpreter_threads': threads, 'pairs': pairs,
          'wall_seconds': full['wall_seconds'], 'one_pair_wall_seconds': one['wall_seconds'],
          'pairs_per_second': round(pairs / full['wall_seconds'], 2),
          'marginal_pairs_per_second': round(marginal, 2),
          'inference_ms_mean': full.get('inference_ms_mean')}


def main() -> None:
  if not (SHARED / 'models' / 'magenta').is_dir():
    sys.exit(f'{SHARED} is absent: this benchmark needs the published models and real pictures')
  rows = []
  with tempfile.TemporaryDirectory() as work:
    for workers, threads in LAYOUTS:
      rows.append(run_layout(workers, threads, pathlib.Path(work)))
      print(rows[-1])
  result = {'command': '.venv/bin/python -m benchmarks.parallelism',
            'date': time.strftime('%Y-%m-%d'),
            'machine': f'{os.cpu_count()} cores, {platform.machine()}',
            'what': f'{len(PHOTOS)} photos x {len(PAINTINGS)} paintings, magenta-int8, fit, '
                    'max-size 1024, JPEG, no gallery; wall time of the whole job in a fresh '
                    'process; marginal: (pairs - 1) / (wall - wall of a 1-pair run)',
            'rows': rows}
  (ROOT / 'benchmarks' / 'results' / 'parallelism.json').write_text(
      json.dumps(result, indent=2) + '\n')


if __name__ == '__main__':
  main()
