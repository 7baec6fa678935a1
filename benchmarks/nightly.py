"""The nightly job at catalog scale: what a re-run costs as history and the catalog grow, and how
many Cloud Storage requests a pair costs.

It runs the real job (`python -m pipeline.run`, DirectRunner, 2 worker processes) with the tiny
stand-in models (`model_building.tiny`) on small generated pictures, so what it measures is the
job around inference: listing, state, planning, manifests, writing. Sections (README.md here says
what each measures and what is synthetic):

    python -m benchmarks.nightly history --pairs 100000 --after 1,10,30
    python -m benchmarks.nightly scales --scales 10000,100000,1000000
    python -m benchmarks.nightly requests

Each section replaces its own entry in `results/nightly.json`.
"""
from __future__ import annotations

import argparse
import collections
import csv
import datetime
import json
import os
import pathlib
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from benchmarks.record import ROOT, provenance
from model_building import tiny
from pipeline import launch, options
from transforms import inputs, state
from transforms.incremental import PlanPairs
from transforms.records import WRITTEN, ManifestRow, StyleResult

RESULTS = ROOT / 'benchmarks' / 'results' / 'nightly.json'
STYLES = 2
ENGINES = {  # --engine: how the DirectRunner runs the job
    'processes': ['--direct_running_mode=multi_processing', '--direct_num_workers=2'],
    'in_memory': ['--direct_running_mode=in_memory'],
}
WORKERS = ENGINES['processes']


def main(argv: list[str] | None = None) -> None:
  p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  p.add_argument('section', choices=['history', 'scales', 'requests'])
  p.add_argument('--pairs', type=int, default=100_000, help='history: pairs per run')
  p.add_argument('--after', default='1,10,30', help='history: earlier runs to report after')
  p.add_argument('--scales', default='10000,100000,1000000', help='scales: pairs')
  p.add_argument('--engine', choices=sorted(ENGINES), default='processes',
                 help='processes: 2 SDK worker processes (the job\'s local default); in_memory: '
                      'the runner and one worker in one process')
  p.add_argument('--work', default=None, help='a folder for the catalogs (default: a temp one)')
  args = p.parse_args(argv)
  WORKERS[:] = ENGINES[args.engine]
  started = time.time()
  work = pathlib.Path(args.work or tempfile.mkdtemp(prefix='nightly-'))
  models = work / 'models'
  if not (models / 'tiny_transfer.tflite').exists():
    tiny.build(str(models))
  if args.section == 'history':
    figures = history(work, models, args.pairs, sorted(int(n) for n in args.after.split(',')))
  elif args.section == 'scales':
    figures = scales(work, models, [int(n) for n in args.scales.split(',')])
  else:
    figures = requests(work, models)
  figures['provenance'] = provenance(
      'python -m benchmarks.nightly ' + ' '.join(sys.argv[1:] if argv is None else argv), started)
  results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
  results[args.section] = figures
  RESULTS.write_text(json.dumps(results, indent=1) + '\n')
  print(json.dumps(figures, indent=1))


# --- the catalog and one run -----------------------------------------------------------------

def make_pictures(folder: pathlib.Path, count: int, seed: int = 0, start: int = 0) -> None:
  """`count` distinct 16x16 PNGs, named by number."""
  folder.mkdir(parents=True, exist_ok=True)
  rng = np.random.default_rng(seed)
  for i in range(start, start + count):
    Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(
        folder / f'{i:07d}.png')


def job_args(content: list[str], styles: str, output: str, models: pathlib.Path) -> list[str]:
  return [*content, '--styles', styles, '--output', output, '--model', str(models),
          '--format', 'png', *WORKERS]


def run_job(args: list[str], output: str, env: dict | None = None) -> dict:
  """Runs the job in a process of its own; its wall time, peak memory and summary."""
  run_id = f'bench-{datetime.datetime.now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}'
  started, cpu_before = time.monotonic(), _children_cpu()
  process = subprocess.Popen([sys.executable, '-m', 'pipeline.run', *args, '--run-id', run_id],
                             cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
  with PeakRss(process.pid) as peak:
    printed = process.communicate()[0]
  seconds, cpu = time.monotonic() - started, _children_cpu() - cpu_before
  if process.returncode:
    raise RuntimeError(f'the job failed ({process.returncode}):\n{printed[-3000:]}')
  summary = json.loads(_read(f'{output}/_manifest/summary-{run_id}.json'))
  return {'seconds': round(seconds, 2), 'cpu_seconds': round(cpu, 2),
          'runner_peak_rss_mib': peak.runner_mib,
          'worker_peak_rss_mib': peak.worker_mib,
          **{key: summary.get(key) for key in (
              'pairs_expected', 'pairs_written', 'pairs_skipped', 'pairs_failed', 'accounted')}}


def _children_cpu() -> float:
  """User + system CPU seconds of this process's finished children and what they waited for."""
  usage = resource.getrusage(resource.RUSAGE_CHILDREN)
  return usage.ru_utime + usage.ru_stime


def _read(uri: str) -> bytes:
  from transforms.storage import read_bytes  # noqa: PLC0415 - after the emulator's environment
  return read_bytes(uri)


class PeakRss:
  """The peak RSS (VmHWM) of a process and, separately, of the largest of its descendants (the
  SDK worker processes), polled from /proc while it runs."""

  def __init__(self, pid: int, every: float = 0.2):
    self._pid, self._every = pid, every
    self._stop = threading.Event()
    self.runner_mib = self.worker_mib = 0.0

  def __enter__(self):
    self._thread = threading.Thread(target=self._poll, daemon=True)
    self._thread.start()
    return self

  def __exit__(self, *_):
    self._stop.set()
    self._thread.join()

  def _poll(self):
    while not self._stop.is_set():
      for pid in _tree(self._pid):
        mib = _peak_mib(pid)
        if pid == self._pid:
          self.runner_mib = max(self.runner_mib, mib)
        else:
          self.worker_mib = max(self.worker_mib, mib)
      self._stop.wait(self._every)


def _tree(root: int) -> list[int]:
  children = collections.defaultdict(list)
  for entry in os.listdir('/proc'):
    if entry.isdigit():
      try:
        ppid = int(pathlib.Path(f'/proc/{entry}/stat').read_text().rsplit(')', 1)[1].split()[1])
      except (OSError, IndexError, ValueError):
        continue
      children[ppid].append(int(entry))
  found, todo = [], [root]
  while todo:
    pid = todo.pop()
    found.append(pid)
    todo.extend(children[pid])
  return found


def _peak_mib(pid: int) -> float:
  try:
    status = pathlib.Path(f'/proc/{pid}/status').read_text()
  except OSError:
    return 0.0
  match = re.search(r'^VmHWM:\s+(\d+) kB', status, re.M)
  return round(int(match.group(1)) / 1024, 1) if match else 0.0


def per_pair(run: dict, pairs: int) -> dict:
  return {**run, 'pairs': pairs, 'ms_per_pair': round(1000 * run['seconds'] / pairs, 3),
          'cpu_ms_per_pair': round(1000 * run['cpu_seconds'] / pairs, 3)}


# --- history: a no-op re-run after 1, 10 and 30 earlier runs ---------------------------------

def history(work: pathlib.Path, models: pathlib.Path, pairs: int, after: list[int]) -> dict:
  """A first run over `pairs` pairs, then no-op re-runs, every one measured: all real runs."""
  catalog = work / f'history-{pairs}'
  shutil.rmtree(catalog, ignore_errors=True)
  make_pictures(catalog / 'content', pairs // STYLES)
  make_pictures(catalog / 'styles', STYLES, seed=1)
  output = str(catalog / 'out')
  args = job_args(['--content', str(catalog / 'content' / '*.png')],
                  str(catalog / 'styles' / '*.png'), output, models)
  first = per_pair(run_job(args, output), pairs)
  print('first run', first, flush=True)
  reruns = []
  for n in range(1, max(after) + 1):
    reruns.append(per_pair(run_job(args, output), pairs))
    print(f'no-op after {n} earlier runs', reruns[-1], flush=True)
  base = reruns[after[0] - 1]
  return {
      'what': f'{pairs // STYLES} generated 16x16 PNGs (a local glob) x {STYLES} styles, tiny '
              f'models, PNG outputs, DirectRunner ({" ".join(WORKERS)}); a first run, then '
              f'{max(after)} no-op re-runs, every one a real run of the job',
      'first_run': first,
      'no_op_after': {str(n): reruns[n - 1] for n in after},
      'ratio_last_over_first': {  # no worker processes with --engine in_memory: no worker ratio
          key: round(reruns[max(after) - 1][key] / base[key], 3)
          for key in ('seconds', 'cpu_seconds', 'runner_peak_rss_mib', 'worker_peak_rss_mib')
          if base[key]},
      'every_no_op_seconds': [run['seconds'] for run in reruns],
      'manifest_bytes_after': _bytes(pathlib.Path(output) / '_manifest'),
      'state_bytes_after': _bytes(pathlib.Path(output) / '_state'),
  }


def _bytes(folder: pathlib.Path) -> int:
  return sum(path.stat().st_size for path in folder.rglob('*') if path.is_file())


# --- scales: first runs and no-op re-runs at growing catalogs ---------------------------------

def scales(work: pathlib.Path, models: pathlib.Path, sizes: list[int]) -> dict:
  """For each size: a no-op re-run on a synthetic done state; a real first run where it fits."""
  figures = {}
  for pairs in sizes:
    catalog = work / f'scale-{pairs}'
    shutil.rmtree(catalog, ignore_errors=True)
    make_pictures(catalog / 'styles', STYLES, seed=1)
    entry = {}
    if pairs <= 10_000:  # a real first run, from real pictures listed with versions
      make_pictures(catalog / 'content', pairs // STYLES)
      list_file = write_list(catalog, pairs // STYLES, real=True)
      output = str(catalog / 'first')
      entry['first_run'] = per_pair(run_job(job_args(
          ['--content-list', str(list_file)], str(catalog / 'styles' / '*.png'), output, models),
          output), pairs)
      print(pairs, 'first run', entry['first_run'], flush=True)
    list_file = write_list(catalog, pairs // STYLES, real=False)
    output = str(catalog / 'out')
    args = job_args(['--content-list', str(list_file)], str(catalog / 'styles' / '*.png'),
                    output, models)
    synthetic_state(args, list_file, output)
    entry['no_op_synthetic'] = per_pair(run_job(args, output), pairs)
    print(pairs, 'no-op', entry['no_op_synthetic'], flush=True)
    figures[str(pairs)] = entry
    shutil.rmtree(catalog, ignore_errors=True)
  return {
      'what': f'a CSV list file (uri, id, version) of N/{STYLES} pictures x {STYLES} styles, '
              f'tiny models, PNG outputs, DirectRunner ({" ".join(WORKERS)}). first_run: a real '
              'run over real generated 16x16 PNGs. no_op_synthetic: a real run of the job over a '
              'synthetic state: the pictures named in the list do not exist, the current '
              'snapshot (Parquet) records every pair as written with the fingerprint the job '
              'computes (its own PlanPairs.pairs), and every output is an empty file; the run '
              'lists the outputs, reads the snapshot, plans, writes its manifests and publishes '
              'the next snapshot, as a real no-op re-run does.',
      'by_pairs': figures,
  }


def write_list(catalog: pathlib.Path, pictures: int, real: bool) -> pathlib.Path:
  """A list file of the pictures, each with a version, so no picture needs a look-up."""
  path = catalog / ('real.csv' if real else 'synthetic.csv')
  folder = 'content' if real else 'absent'
  with open(path, 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(['uri', 'id', 'version'])
    for i in range(pictures):
      writer.writerow([f'{folder}/{i:07d}.png', f'p{i:07d}', 'v1'])
  return path


def synthetic_state(args: list[str], list_file: pathlib.Path, output: str,
                    shards: int = 8) -> None:
  """Publishes a snapshot that records every pair of the list as done, and makes the outputs."""
  job, _ = options.parse([*args, '--run-id', 'synthetic'])
  plan = launch.prepare(job)
  planner = PlanPairs(job.output, job.rendering, job.strengths,
                      (plan.prediction.identity if plan.prediction else '', plan.transfer.identity))
  styles = {ref.id: StyleResult(ref) for ref in plan.styles}
  folder = pathlib.Path(state.snapshot_dir(output, 'synthetic'))
  folder.mkdir(parents=True)
  when = datetime.datetime.now(datetime.timezone.utc).isoformat()
  records, made = [], set()
  for row in inputs.read_list_file(str(list_file)):
    ref = inputs.content_ref(row.uri, row.id, row.version, row.problem)
    for style_id, strength, out, fp in planner.pairs(ref, styles):
      records.append(state.to_record(ManifestRow(
          content_uri=ref.uri, content_id=ref.id, style_id=style_id, strength=strength,
          output_uri=out, status=WRITTEN, model_sha256=plan.transfer.identity, fingerprint=fp,
          run_id='synthetic', recorded_at=when)))
      parent = os.path.dirname(out)
      if parent not in made:
        os.makedirs(parent, exist_ok=True)
        made.add(parent)
      open(out, 'wb').close()
  for shard in range(shards):
    table = pa.Table.from_pylist(records[shard::shards], schema=state.SCHEMA)
    pq.write_table(table, folder / f'part-{shard:05d}-of-{shards:05d}.parquet',
                   compression='snappy')
  pathlib.Path(state.state_dir(output), state.CURRENT).write_text(json.dumps(
      {'snapshot': 'snapshots/synthetic', 'run_id': 'synthetic', 'files': shards}))


# --- requests: Cloud Storage requests per pair, on the emulator -------------------------------

def requests(work: pathlib.Path, models: pathlib.Path, step: int = 10) -> dict:
  """Four runs on the emulator: `step` new pictures; no-op; `step` more new; no-op. The
  differences give the requests of a new pair and of a skipped pair, and a run's fixed count."""
  sys.path.insert(0, str(ROOT / 'tests'))
  import gcs_emulator  # noqa: PLC0415 - the tests' emulator, started here as there
  figures = {}
  shutil.rmtree(work / 'emulator', ignore_errors=True)
  (work / 'emulator').mkdir(parents=True)
  with gcs_emulator.running(work / 'emulator') as emulator:
    env = dict(os.environ)
    # The gallery checks each output it shows that this run skipped (one request each, at most
    # --gallery-rows pictures x their pairs): a fixed bound, measured apart from the pairs.
    for variant in ('glob', 'list', 'glob_with_gallery'):
      bucket = emulator.create_bucket(f'bench-{variant}-{uuid.uuid4().hex[:8]}')
      local = work / f'requests-{variant}'
      shutil.rmtree(local, ignore_errors=True)
      make_pictures(local / 'styles', STYLES, seed=1)
      emulator.upload_tree(local / 'styles', f'gs://{bucket}/styles')
      output = f'gs://{bucket}/out'
      runs = []
      for added in (step, 0, step, 0):
        if added:
          start = len(runs) // 2 * step
          make_pictures(local / 'content', added, start=start)
          for i in range(start, start + added):
            emulator.upload(local / 'content' / f'{i:07d}.png',
                            f'gs://{bucket}/content/{i:07d}.png', 'image/png')
        content = ['--content', f'gs://{bucket}/content/*.png',
                   *([] if variant.endswith('gallery') else ['--gallery-rows', '0'])]
        if variant == 'list':
          pictures = len(list((local / 'content').glob('*.png')))
          rows = '\n'.join(f'content/{i:07d}.png,p{i:07d},v1' for i in range(pictures))
          emulator.upload(f'uri,id,version\n{rows}\n'.encode(), f'gs://{bucket}/list.csv')
          content = ['--content-list', f'gs://{bucket}/list.csv', '--gallery-rows', '0']
        before = len(emulator.requests())
        run = run_job(job_args(content, f'gs://{bucket}/styles/*.png', output, models), output,
                      env)
        served = emulator.requests()[before:]
        run['requests'] = len(served)
        run['by_kind'] = dict(collections.Counter(_kind(m, path) for m, path in served))
        runs.append(run)
        print(variant, run, flush=True)
      new_pair = (runs[2]['requests'] - runs[1]['requests']) / (step * STYLES)
      skipped_pair = (runs[3]['requests'] - runs[1]['requests']) / (step * STYLES)
      figures[variant] = {
          'runs': runs,
          'requests_per_new_pair': round(new_pair, 2),
          'requests_per_skipped_pair': round(skipped_pair, 2),
          'requests_per_run_fixed': round(runs[1]['requests'] - skipped_pair * step * STYLES, 1),
      }
  return {
      'what': f'the gcp-storage-emulator, {STYLES} styles, tiny models, PNG outputs; four runs '
              f'per variant: {step} new pictures, a no-op, {step} more new, a no-op. Per new '
              'pair = (run 3 - run 2) / its new pairs; per skipped pair = (run 4 - run 2) / the '
              'skipped pairs it adds; requests counted from the emulator\'s log. glob: '
              '--content gs://.../*.png; list: a CSV list file with a version column; both '
              'without the gallery (--gallery-rows 0), whose checks are bounded by its size '
              'and shown apart: glob_with_gallery, every picture shown.',
      **figures,
  }


def _kind(method: str, path: str) -> str:
  """A request's kind, as Cloud Storage bills it."""
  route = path.split('?', 1)[0]
  if method == 'GET' and re.search(r'/o$', route):
    return 'list (class A)'
  if method in ('POST', 'PUT', 'PATCH') or '/upload/' in route or 'rewriteTo' in route:
    return 'write (class A)'
  if method == 'DELETE':
    return 'delete (free)'
  if 'alt=media' in path or '/download/' in route:
    return 'read (class B)'
  return 'metadata (class B)'


if __name__ == '__main__':
  main()
