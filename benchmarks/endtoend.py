"""Does the job keep up with its model? A catalog of JPEGs in, JPEGs out, against a bare loop.

Measures, on a catalog of `--count` 1024-pixel JPEGs made from the photos in ../shared
(`benchmarks.catalog`) and one painting:
  (a) bare: one transfer interpreter of `--model`, one thread, over every picture, the network
      inputs prepared before timing: the most one core gives with no job around it; timed
      before, between and after the jobs, since these machines' speed drifts within minutes;
  (b) job: `python -m pipeline.run` on DirectRunner with 2 workers, as threads of one process
      (the command's local default) and as worker processes, files in and files out, wall time
      of the whole command as a user runs it (start-up, launch checks, manifest, state, gallery);
  (c) one picture: the same commands on one picture of the catalog (the fixed cost of a run),
      into an empty output, then another picture into that output (a run that reads what is
      done), beside Beam's own floor: a command that imports Beam and runs a one-element Create
      and one-step ParDo on the same engine, mode and workers as the job, skipping the same
      exit collection the job skips;
  (d) profile: the job on `--profile-count` pictures in one process under cProfile, its own
      functions' time per pair: where the time outside inference goes.
The ratio b/a with threads is the target (>= 1.0; stretch 1.4), and (c) on worker processes
within 3.5 s. Writes
benchmarks/results/endtoend.json:

    .venv/bin/python -m benchmarks.endtoend [--count 1200] [--model magenta-fast]

With `--stand-in LAYERS`, the model is `model_building.tiny`'s stand-in with that many layers
instead: a network about as quick on this machine as magenta-fast is on a CPU with int8
dot-product instructions (pick LAYERS so that its bare loop matches that CPU's in
results/endtoend.json), so a machine without them can tell whether the job keeps up with a model
that quick. It is an emulation (the rest of the job runs at this machine's speed), not a figure
for the real model.
"""
from __future__ import annotations

import argparse
import cProfile
import json
import os
import pathlib
import pstats
import re
import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks import catalog
from benchmarks.record import ROOT, provenance, transfer_path
from benchmarks.throughput import _cpu_seconds, versions

SHARED = ROOT.parent / 'shared'
STYLE = 'van_gogh_starry_night.jpg'
WORKERS = 2
MODES = ('multi_threading', 'multi_processing')  # the first is the command's local default
ONE_PICTURE_MODE = 'multi_processing'  # the one-picture target is on worker processes
TARGET, STRETCH, ONE_PICTURE_TARGET_S = 1.0, 1.4, 3.5
# The job's own steps: (function, the job's function that calls it for a pair); None: any caller.
STEPS = {
    'read': ('transforms/storage.py:read_bytes', None),
    'decode': ('models/imaging.py:decode', 'transforms/stylize.py:process'),
    'network_input': ('models/imaging.py:content_input', 'transforms/stylize.py:process'),
    'inference': ('models/contract.py:stylize', 'models/tiling.py:stylized'),
    'network_output': ('models/imaging.py:network_output', 'transforms/stylize.py:process'),
    'encode': ('models/rendering.py:encode', 'transforms/write.py:process'),
    'write': ('transforms/storage.py:write_bytes', None),
    'gallery_thumbnails': ('transforms/gallery.py:write_thumbnail', None),  # as pairs are made
    'gallery_page_step_thumbnails': ('transforms/gallery.py:_write_thumbnails', None),
}


# Beam's floor for (c): the job's engine (the FnApiRunner, as `pipeline.run` makes it) on the
# smallest pipeline, in a fresh interpreter. Like the job, its processes skip the interpreter's
# last full garbage collection at exit (the launcher's, and each worker's, in `setup`).
FLOOR = '''
import atexit, gc, sys
import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.portability.fn_api_runner import fn_runner
class Same(beam.DoFn):
  def setup(self):
    atexit.register(gc.freeze)
  def process(self, x):
    yield x
atexit.register(gc.freeze)
mode, workers = sys.argv[1:]
options = PipelineOptions([f'--direct_running_mode={mode}', f'--direct_num_workers={workers}'])
with beam.Pipeline(runner=fn_runner.FnApiRunner(), options=options) as p:
  _ = p | beam.Create([1]) | beam.ParDo(Same())
'''


def beam_floor(mode: str) -> float:
  """Wall seconds of the smallest Beam command on `mode` with the job's number of workers."""
  start = time.perf_counter()
  done = subprocess.run([sys.executable, '-c', FLOOR, mode, str(WORKERS)], cwd=ROOT,
                        capture_output=True, text=True, check=False)
  if done.returncode:
    sys.exit(f'Beam alone failed on {mode} (rc {done.returncode}):\n{done.stderr[-3000:]}')
  return round(time.perf_counter() - start, 2)


def _photos(shared: pathlib.Path) -> list[pathlib.Path]:
  """The shared photos large enough to crop a catalog picture from without much upscaling."""
  from PIL import Image
  return [p for p in sorted((shared / 'images' / 'content').iterdir())
          if max(Image.open(p).size) >= 500]


def _job_argv(content: str, style: pathlib.Path, output: pathlib.Path, model: str,
              models: pathlib.Path, run_id: str, mode: str = 'multi_processing') -> list[str]:
  return ['--content', content, '--styles', str(style), '--output', str(output),
          '--model', model, '--model-dir', str(models), '--run-id', run_id,
          '--runner', 'DirectRunner', f'--direct_running_mode={mode}',
          f'--direct_num_workers={WORKERS}']


def bare_inputs(paths: list[pathlib.Path], style: pathlib.Path, transfer: str,
                predictor: str):
  """(a)'s network, bottleneck and inputs, prepared as the job prepares them. The inputs are
  kept as 8-bit levels (a quarter of the memory of the floats, which the jobs need meanwhile)."""
  from models import imaging
  from models.contract import StylePredictor, StyleTransfer
  bottleneck = StylePredictor(predictor).predict(
      imaging.style_input(imaging.decode(style.read_bytes(), min_side=imaging.STYLE_SIZE).image))
  levels = []
  for p in paths:
    decoded = imaging.decode(p.read_bytes(), min_side=imaging.CONTENT_SIZE, frame='fit')
    levels.append(imaging.to_uint8(imaging.content_input(decoded.image, 'fit',
                                                         decoded.full_size)[0]))
  network = StyleTransfer(transfer, num_threads=1)
  network.stylize(imaging.to_unit_float(levels[0]), bottleneck)  # XNNPACK's set-up, untimed
  return network, bottleneck, levels


def bare_loop(network, bottleneck, levels) -> dict:
  """(a): only the interpreter timed, over every prepared input."""
  from models import imaging
  seconds = cpu = 0.0
  for picture in levels:
    tensor = imaging.to_unit_float(picture)  # exactly the job's input: levels / 255
    start, started_cpu = time.perf_counter(), time.process_time()
    network.stylize(tensor, bottleneck)
    seconds += time.perf_counter() - start
    cpu += time.process_time() - started_cpu
  return {'seconds': round(seconds, 2), 'cpu_seconds': round(cpu, 2),
          'ms_per_picture': round(1000 * seconds / len(levels), 2),
          'pictures_per_second': round(len(levels) / seconds, 3)}


def job(argv: list[str], pictures: int, output: pathlib.Path, files: int | None = None) -> dict:
  """(b) and (c): the command as a user runs it, in its own process; `files`: the outputs
  expected in `output` afterwards, when it held some before."""
  env = {**os.environ, 'STYLIZE_PROGRESS_SECONDS': '0'}
  start, cpu = time.perf_counter(), _cpu_seconds()
  done = subprocess.run([sys.executable, '-m', 'pipeline.run', *argv], cwd=ROOT, env=env,
                        capture_output=True, text=True, check=False)
  seconds = time.perf_counter() - start
  cpu = _cpu_seconds() - cpu
  written = len(list(output.glob('*/*.jpg')))
  if done.returncode or written != (files or pictures):
    sys.exit(f'the job wrote {written} of {files or pictures} pictures (rc {done.returncode}):\n'
             f'{done.stderr[-3000:]}')
  # The launcher prints the workers' metrics with the summary: `inference_ms_mean: 71.2`.
  inference_ms = float(re.search(r'inference_ms_mean: ([\d.]+)', done.stdout).group(1))
  return {'seconds': round(seconds, 2), 'cpu_seconds': round(cpu, 2),
          'cores_busy': round(cpu / seconds, 2),
          'pictures_per_second': round(pictures / seconds, 3),
          'inference_ms_mean': inference_ms,
          'cpu_ms_per_picture_outside_inference': round(1000 * cpu / pictures - inference_ms, 1)}


def profile(paths: list[pathlib.Path], style: pathlib.Path, model: str,
            models: pathlib.Path) -> dict:
  """(d): the job in this process (DirectRunner in memory, one worker) under cProfile."""
  from pipeline import run as stylize_job
  with tempfile.TemporaryDirectory(prefix='endtoend-profile-') as work:
    folder = pathlib.Path(work) / 'in'
    folder.mkdir()
    for p in paths:
      (folder / p.name).symlink_to(p)
    argv = _job_argv(str(folder / '*.jpg'), style, pathlib.Path(work) / 'out', model, models,
                     'profile')
    argv[-2:] = ['--direct_running_mode=in_memory', '--direct_num_workers=1']
    profiler = cProfile.Profile()
    os.environ['STYLIZE_PROGRESS_SECONDS'] = '0'
    start = time.perf_counter()
    profiler.runcall(stylize_job.run, argv)
    seconds = time.perf_counter() - start
  stats = pstats.Stats(profiler).stats
  per_pair = {}
  for step, (callee, caller) in STEPS.items():
    total = 0.0
    for where, (_, _, _, cumulative, callers) in stats.items():
      if not _is(where, callee):
        continue
      total += (cumulative if caller is None else
                sum(c[3] for by, c in callers.items() if _is(by, caller)))
    per_pair[step] = round(1000 * total / len(paths), 2)
  outside = round(1000 * seconds / len(paths) - per_pair['inference'], 1)
  return {'pictures': len(paths), 'seconds': round(seconds, 2), 'ms_per_pair': per_pair,
          'wall_ms_per_pair_outside_inference_incl_fixed_cost': outside}


def _is(where: tuple, function: str) -> bool:
  """Whether a pstats key (file, line, name) is `function` ('folder/file.py:name')."""
  file, name = function.split(':')
  return where[0].endswith(file) and where[2] == name


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--count', type=int, default=1200)
  parser.add_argument('--model', default='magenta-fast')
  parser.add_argument('--stand-in', type=int, default=0, metavar='LAYERS',
                      help="model_building.tiny's stand-in with LAYERS layers instead of --model")
  parser.add_argument('--profile-count', type=int, default=200)
  parser.add_argument('--out', type=pathlib.Path,
                      default=ROOT / 'benchmarks' / 'results' / 'endtoend.json')
  args = parser.parse_args(argv)
  if args.stand_in < 0:
    parser.error('--stand-in must be a number of layers, 1 or more (0: the model itself)')
  if args.count < 6:
    parser.error('--count must be at least 6: the one-picture runs take the first six pictures')
  magenta = SHARED / 'models' / 'magenta'
  if not magenta.is_dir():
    sys.exit(f'{SHARED} is absent: this benchmark needs the published models and photos')
  from models import registry
  style = SHARED / 'images' / 'style' / STYLE
  started = time.time()
  with tempfile.TemporaryDirectory(prefix='endtoend-') as folder:
    work = pathlib.Path(folder)
    model, described = args.model, args.model
    if args.stand_in:
      from model_building import tiny
      model = str(work / 'stand-in')
      tiny.build(model, layers=args.stand_in)
      described = f'stand-in: model_building.tiny with {args.stand_in} layers'
    model_set = registry.resolve_model_set(model, str(magenta))
    transfer = transfer_path(model, magenta)
    paths = catalog.make(_photos(SHARED), work / 'catalog', args.count)
    print(f'catalog: {len(paths)} JPEGs', file=sys.stderr)
    prepared = bare_inputs(paths, style, transfer, model_set.prediction.uri)
    # The machine's speed drifts within minutes: each job is compared with the loops beside it.
    bares = [bare_loop(*prepared)]
    print(f'bare loop: {bares[0]}', file=sys.stderr)
    jobs, ones, used, floors = {}, {}, {}, {}
    for mode in MODES:
      out = work / f'out-{mode}'
      jobs[mode] = job(_job_argv(str(work / 'catalog' / '**'), style, out, model, magenta,
                                 mode, mode), len(paths), out)
      print(f'job, {mode}: {jobs[mode]}', file=sys.stderr)
      bares.append(bare_loop(*prepared))
      print(f'bare loop: {bares[-1]}', file=sys.stderr)
    del prepared
    for k in range(3):  # alternated, so both modes see the same machine
      for mode in MODES:
        out = work / f'one{k}-{mode}'
        ones.setdefault(mode, []).append(
            job(_job_argv(str(paths[k]), style, out, model, magenta, 'one', mode), 1, out))
        used.setdefault(mode, []).append(
            job(_job_argv(str(paths[k + 3]), style, out, model, magenta, 'two', mode), 1,
                out, files=2))
        floors.setdefault(mode, []).append(beam_floor(mode))
    print(f'one picture: {ones}; into a used output: {used}; Beam alone: {floors}',
          file=sys.stderr)
    profiled = profile(paths[:args.profile_count], style, model, magenta)
  one_seconds = {mode: statistics.median(r['seconds'] for r in runs)
                 for mode, runs in ones.items()}
  beside = {mode: statistics.mean(b['pictures_per_second'] for b in bares[k:k + 2])
            for k, mode in enumerate(MODES)}
  ratios = {mode: round(row['pictures_per_second'] / beside[mode], 3)
            for mode, row in jobs.items()}
  ratio, one = ratios[MODES[0]], one_seconds[ONE_PICTURE_MODE]
  result = {
      'what': f'{args.count} catalog-like 1024-px JPEGs (benchmarks.catalog, seed 0) x 1 style '
              f'({STYLE}), --model {described}, JPEG outputs at the job\'s defaults. bare: one '
              'interpreter thread over prepared inputs, before, between and after the jobs; each '
              'job\'s ratio is against the mean rate of the two loops beside it. jobs: '
              '`python -m pipeline.run` with '
              f'{WORKERS} workers on DirectRunner, as threads of one process (multi_threading, '
              'the command\'s local default) and as worker processes (multi_processing); wall '
              'time of the command. one_picture: the same command on one picture into an empty '
              'output, 3 runs of each; into_used_output: then another picture into that output '
              '(the run reads the state and lists the outputs); beam_alone: the smallest Beam '
              'command (FLOOR: import, a one-element Create and ParDo, the exit\'s last '
              'collection skipped as the job skips it) on the same engine, mode '
              'and workers, run after each. '
              'profile: the job in one process under cProfile, cumulative ms per pair of '
              'the functions in STEPS (read and write: all callers, the gallery\'s included)',
      'model': described, 'pictures': len(paths),
      'bare_one_thread': {'runs': bares, 'beside_each_job_pictures_per_second': {
          mode: round(rate, 3) for mode, rate in beside.items()}},
      'jobs': jobs, 'job_over_bare': ratios,
      'one_picture': {'runs': ones, 'median_seconds': one_seconds,
                      'into_used_output': {
                          'runs': used, 'median_seconds': {
                              mode: statistics.median(r['seconds'] for r in runs)
                              for mode, runs in used.items()}},
                      'beam_alone_seconds': floors,
                      'beam_alone_median_seconds': {mode: statistics.median(runs)
                                                    for mode, runs in floors.items()}},
      'profile': profiled,
      'targets': {'job_over_bare': TARGET, 'stretch': STRETCH,
                  'one_picture_seconds': ONE_PICTURE_TARGET_S,
                  'judged_on': {'job_over_bare': MODES[0],
                                'one_picture_seconds': ONE_PICTURE_MODE},
                  'met': {'job_over_bare': ratio >= TARGET, 'stretch': ratio >= STRETCH,
                          'one_picture_seconds': one <= ONE_PICTURE_TARGET_S}},
      'versions': versions(),
      **provenance('.venv/bin/python -m benchmarks.endtoend ' + ' '.join(
          sys.argv[1:] if argv is None else argv), started),
  }
  args.out.write_text(json.dumps(result, indent=1) + '\n')
  print(json.dumps({k: result[k] for k in ('job_over_bare', 'one_picture', 'targets')}))


if __name__ == '__main__':
  main()
