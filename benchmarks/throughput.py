"""Throughput of the job against the bare interpreter, on the real int8 models and real photos.

Measures, for a fixed list of 13 photos x 3 paintings from ../shared (39 pairs; --styles N takes
more paintings, --copies K a catalog of K copies of the photos):
  (a) raw: the transfer interpreter alone (one StyleTransfer, num_threads=1) over every
      (content, style) pair, content tensors and style bottlenecks prepared before timing;
  (b) pipeline: `pipeline.run.run` on DirectRunner, multi_processing with 2 workers, from the
      files to JPEGs written in a temporary folder; wall time around the whole call (the summary's
      own `seconds`, which starts at `p.run()`, is recorded too);
and the ratio b/a (the project's target: >= 1.6, i.e. 80% of perfect two-core scaling).
With --breakdown, also: each stage the job does per picture, timed single-threaded and outside
Beam (read, decode, content_input, inference, content_output, encode), with a few alternatives to
them; the raw loop in two processes at once (what two cores give without Beam); and the job on one
pair (its fixed cost), hence the marginal, steady-state rate of the full run.
Writes benchmarks/results/throughput.json.

    .venv/bin/python -m benchmarks.throughput [--repeats 3] [--breakdown] [--shared ../shared]
    .venv/bin/python -m benchmarks.throughput --copies 5 --styles 15 --repeats 1  # committed

A run of the job has a fixed cost of about 9 s here (launch checks, graph construction, starting
the worker processes and their interpreters, the small stages, the manifest and the gallery); the
committed figures come from a catalog big enough (975 pairs) for the steady rate to dominate, as it
does in a nightly run over a real catalog.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import io
import json
import os
import pathlib
import platform
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from queue import Empty

from benchmarks import record

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_SHARED = ROOT.parent / 'shared'
DEFAULT_OUT = ROOT / 'benchmarks' / 'results' / 'throughput.json'
MODEL = 'magenta-int8'
WORKERS = 2
TARGET_RATIO = 1.6
# Fixed inputs: every photo in ../shared/images/content, and three paintings of different sizes.
CONTENT = (
    'astronaut_eileen_collins.png', 'cameraman_gray.png', 'clock_motion_blur_gray.png',
    'coffee.png', 'colva_beach_sq.jpg', 'dog_on_lava_field.jpg', 'golden_gate_sq.jpg',
    'grace_hopper.jpg', 'hubble_deep_field.jpg', 'lion.jpg', 'person_on_rocks_large.jpg',
    'toy_figures_large.jpg', 'tubingen_neckarfront.png')
STYLES = ('van_gogh_starry_night.jpg', 'hokusai_great_wave_crop.jpg', 'wpa_poster_zion.png')
# The other paintings, for --styles N > 3 (longer runs, to see the fixed cost amortized).
MORE_STYLES = (
    'gauguin_tahitian_women.jpg', 'klee_clouds_over_bor_1940.jpg', 'matisse_woman_with_a_hat.jpg',
    'munch_the_scream.jpg', 'picabia_edtaonisl.jpg', 'texture_gravel_gray.png', 'texture_red.jpg',
    'texture_zigzag_colorful.jpg', 'vallotton_camille_mauclair.jpg', 'van_gogh_night_cafe.jpg',
    'van_gogh_self_portrait.jpg', 'wpa_poster_grand_canyon.png')
RUNNER_ARGS = ('--runner', 'DirectRunner', '--direct_running_mode=multi_processing',
               f'--direct_num_workers={WORKERS}')
# The job's defaults (pipeline.options): what the breakdown reproduces.
FRAME, MAX_SIZE, JPEG_QUALITY = 'fit', 1024, 90


class Inputs:
  """The fixed pictures and model folder under `shared`; exits with a message if absent."""

  def __init__(self, shared: pathlib.Path, styles: int, content: tuple[str, ...] = CONTENT,
               copies: int = 1):
    self.shared = shared
    self.models = shared / 'models' / 'magenta'
    self.photos = [shared / 'images' / 'content' / name for name in content]
    self.copies = copies
    self._content = None if copies > 1 else self.photos
    self.styles = [shared / 'images' / 'style' / name for name in (STYLES + MORE_STYLES)[:styles]]
    if not shared.is_dir():
      sys.exit(f'{shared} is missing: this benchmark needs the shared test assets (the published '
               'Magenta models and real photos). Put them at ../shared next to the repository '
               'or pass --shared PATH.')
    from models import exports, registry
    model_set = registry.resolve_model_set(MODEL, str(self.models))
    self.prediction = pathlib.Path(model_set.prediction.uri)
    transfer = model_set.transfer  # a built one (the default) is built or taken from the cache
    self.transfer = pathlib.Path(exports.local_build(transfer)[0] if transfer.built_from
                                 else transfer.uri)
    missing = [str(p) for p in [self.prediction, self.transfer, *self.photos, *self.styles]
               if not p.is_file()]
    if missing:
      sys.exit(f'{shared} lacks files this benchmark needs: {", ".join(missing)}')

  def _catalog(self, copies: int) -> list[pathlib.Path]:
    """`copies` copies of the photos, in folders 0/ 1/ ...: a bigger catalog of the same images
    (same basenames in different folders, as real catalogs have), removed at exit."""
    self._folder = tempfile.TemporaryDirectory(prefix='throughput-catalog-')
    paths = []
    for k in range(copies):
      (pathlib.Path(self._folder.name) / str(k)).mkdir()
      for photo in self.photos:
        paths.append(pathlib.Path(self._folder.name) / str(k) / photo.name)
        shutil.copyfile(photo, paths[-1])
    return paths

  @property
  def pairs(self) -> int:
    return len(self.photos) * self.copies * len(self.styles)

  @property
  def content(self) -> list[pathlib.Path]:
    """The pictures the job reads (copied into a catalog on first use: the raw loop needs none)."""
    if self._content is None:
      self._content = self._catalog(self.copies)
    return self._content


# --- the pipeline's per-picture steps, whichever version of models.imaging is installed -------

class Steps:
  """The job's per-picture steps at its default options, as LoadContent, Stylize (one 384x384
  pass: `tiling.stylized` without a working size, then the resize) and WriteOutput call them."""

  def __init__(self):
    from models import imaging, rendering
    self.imaging = imaging
    self.rendering = rendering
    self.options = rendering.Rendering(frame=FRAME, max_size=MAX_SIZE, fmt='jpeg',
                                       jpeg_quality=JPEG_QUALITY)
    self.min_side = self.options.min_decode_side()

  def decode(self, data: bytes, min_side: int | None = -1):
    return self.imaging.decode(data, self.imaging.DEFAULT_MAX_PIXELS,
                               min_side=self.min_side if min_side == -1 else min_side)

  def content_input(self, decoded):
    """(network input, what content_output needs: box, output size, crop, alpha)."""
    tensor, box = self.imaging.content_input(decoded.image, FRAME)
    size, crop = self.rendering.output_size(decoded.full_size, self.options)
    return tensor, (box, size, crop, decoded.alpha)

  def content_output(self, stylized, framing):
    """Crop to the picture, resize to the output size (`imaging.network_output`: bicubic when
    enlarging), then `rendering.finish`."""
    box, size, crop, alpha = framing
    picture = self.imaging.network_output(stylized, box, size)
    return self.rendering.finish(picture, self.options, crop, None, alpha)

  @staticmethod
  def output_size(framing) -> tuple[int, int]:
    return framing[1]

  @staticmethod
  def box(framing) -> tuple[int, int, int, int]:
    return framing[0]

  def encode(self, picture) -> bytes:
    return self.rendering.encode(picture, self.options)


def _bottlenecks(inputs: Inputs, steps: Steps) -> list:
  from models.contract import StylePredictor
  predictor = StylePredictor(str(inputs.prediction), num_threads=1)
  return [predictor.predict(steps.imaging.style_input(steps.decode(p.read_bytes(), None).image))
          for p in inputs.styles]


# --- (a) the bare interpreter -----------------------------------------------------------------

class RawLoop:
  """One StyleTransfer (num_threads=1) and every pair's inputs, prepared before any timing."""

  def __init__(self, inputs: Inputs):
    from models.contract import StyleTransfer
    steps = Steps()
    self.pairs = inputs.pairs
    self.bottlenecks = _bottlenecks(inputs, steps)
    self.tensors = [steps.content_input(steps.decode(p.read_bytes()))[0]
                    for p in inputs.photos] * inputs.copies
    self.transfer = StyleTransfer(str(inputs.transfer), num_threads=1)
    self.transfer.stylize(self.tensors[0], self.bottlenecks[0])  # XNNPACK's first-invoke set-up
    self.seconds, self.cpu = [], []

  def run_once(self) -> float:
    start, start_cpu = time.perf_counter(), time.process_time()
    for tensor in self.tensors:
      for bottleneck in self.bottlenecks:
        self.transfer.stylize(tensor, bottleneck)
    self.seconds.append(time.perf_counter() - start)
    self.cpu.append(time.process_time() - start_cpu)
    return self.seconds[-1]

  def result(self) -> dict:
    best = statistics.median(self.seconds)
    return {'what': 'StyleTransfer.stylize (input checks + set_tensor + invoke + copy), one '
                    'interpreter, num_threads=1, one untimed warm-up call; pre-processed 384x384 '
                    'content tensors and predicted bottlenecks; cpu: this process\'s CPU seconds '
                    '(below the wall time when other processes took the core)',
            'runs_seconds': [round(s, 3) for s in self.seconds],
            'runs_cpu_seconds': [round(s, 3) for s in self.cpu],
            'median_seconds': round(best, 3), 'ms_per_pair': round(1000 * best / self.pairs, 1),
            'images_per_second': round(self.pairs / best, 3)}


# --- (b) the whole job --------------------------------------------------------------------------

def pipeline_once(inputs: Inputs, i: int, runner_args=RUNNER_ARGS) -> dict:
  """Runs the job once; exits unless it wrote every pair."""
  from pipeline import run as job
  with tempfile.TemporaryDirectory(prefix='throughput-') as work:
    output = pathlib.Path(work) / 'out'
    argv = [arg for p in inputs.content for arg in ('--content', str(p))]
    argv += [arg for p in inputs.styles for arg in ('--styles', str(p))]
    argv += ['--output', str(output), '--model', MODEL, '--model-dir', str(inputs.models),
             '--run-id', f'throughput{i}', *runner_args]
    start, cpu_before = time.perf_counter(), _cpu_seconds()
    with contextlib.redirect_stdout(sys.stderr):
      outcome = job.run(argv)
    wall = time.perf_counter() - start
    cpu = _cpu_seconds() - cpu_before
    written = len(list(output.glob('*/*.jpg')))
    summary = outcome.summary
  if written != inputs.pairs or summary.get('pairs_written') != inputs.pairs:
    sys.exit(f'the pipeline wrote {written} JPEGs (summary: {summary.get("pairs_written")} '
             f'written, {summary.get("pairs_failed")} failed) of {inputs.pairs} pairs; '
             f'summary: {json.dumps(summary)}')
  return {'wall_seconds': round(wall, 3), 'summary_seconds': summary['seconds'],
          'cpu_seconds': round(cpu, 2), 'cores_busy': round(cpu / wall, 2),
          'summary_images_per_second': summary['images_per_second'],
          'inference_ms_mean': summary.get('inference_ms_mean'),
          'interpreter_loads': summary.get('interpreter_loads')}


def pipeline_result(inputs: Inputs, rows: list[dict]) -> dict:
  wall = statistics.median(r['wall_seconds'] for r in rows)
  own = statistics.median(r['summary_seconds'] for r in rows)
  return {'what': f'pipeline.run.run(...) on DirectRunner, --direct_running_mode=multi_processing '
                  f'--direct_num_workers={WORKERS}, --model {MODEL}, default options (fit, '
                  f'max-size {MAX_SIZE}, JPEG q{JPEG_QUALITY}), files to JPEGs in a fresh '
                  'temporary folder; wall time around the call (includes launch checks, model '
                  'sha256, worker start-up, style prediction, manifest); cpu_seconds: user+system '
                  'CPU of this process and the worker processes during the run; cores_busy = '
                  'cpu_seconds / wall_seconds (2.0 = both cores busy throughout)',
          'runs': rows, 'median_wall_seconds': round(wall, 3),
          'median_summary_seconds': round(own, 3),
          'images_per_second': round(inputs.pairs / wall, 3),
          'images_per_second_by_summary_seconds': round(inputs.pairs / own, 3)}


def _cpu_seconds() -> float:
  """User + system CPU of this process and its finished children (the Beam workers)."""
  own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
      resource.RUSAGE_CHILDREN)
  return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


# --- --breakdown: what limits (b) -----------------------------------------------------------------

def _raw_worker(shared: str, styles: int, content: tuple[str, ...], copies: int, repeats: int,
                barrier, queue) -> None:
  raw = RawLoop(Inputs(pathlib.Path(shared), styles, content, copies))
  for _ in range(repeats):
    barrier.wait()
    raw.run_once()
  queue.put(raw.seconds)


def two_raw_processes(inputs: Inputs, repeats: int) -> dict:
  """(a) in two processes at once: what two cores give with no Beam at all (the ceiling for b)."""
  import multiprocessing
  ctx = multiprocessing.get_context('spawn')
  barrier, queue = ctx.Barrier(WORKERS), ctx.Queue()
  workers = [ctx.Process(target=_raw_worker, args=(
      str(inputs.shared), len(inputs.styles), tuple(p.name for p in inputs.photos),
      inputs.copies, repeats, barrier, queue)) for _ in range(WORKERS)]
  for w in workers:
    w.start()
  seconds = []
  while len(seconds) < len(workers):
    try:
      seconds.append(queue.get(timeout=5))
    except Empty:
      dead = [w.exitcode for w in workers if w.exitcode not in (None, 0)]
      if dead:
        sys.exit(f'a raw-loop process failed (exit codes {dead}); see its traceback above')
  for w in workers:
    w.join()
  slowest = [max(run) for run in zip(*seconds)]
  best = statistics.median(slowest)
  return {'what': f'the raw loop (a) in {WORKERS} processes at once, each over all {inputs.pairs} '
                  'pairs; images/s = 2 x pairs / the slower process\'s seconds',
          'runs_seconds': [[round(x, 3) for x in run] for run in seconds],
          'images_per_second': round(WORKERS * inputs.pairs / best, 3)}


def pipeline_fixed_cost(shared: pathlib.Path, repeats: int, full: dict) -> dict:
  """The job on one small photo x one style, and what it implies about the full run's cost."""
  one = Inputs(shared, 1, ('colva_beach_sq.jpg',))
  rows = [pipeline_once(one, i) for i in range(repeats)]
  wall = statistics.median(r['wall_seconds'] for r in rows)
  pairs = full['pairs']
  marginal = (full['median_wall_seconds'] - wall) / (pairs - 1)
  return {'what': 'the same job on 1 photo (colva_beach_sq.jpg) x 1 style: its wall time is about '
                  'the fixed cost of a run (launch checks, graph, worker start-up, model loads, '
                  'manifest); marginal = (full run - this) / (pairs - 1), per pair with 2 workers',
          'runs': rows, 'median_wall_seconds': round(wall, 3),
          'marginal_seconds_per_pair': round(marginal, 3),
          'fixed_seconds': round(wall - marginal, 3),
          'steady_state_images_per_second': round(1 / marginal, 3) if marginal > 0 else None}


# --- --breakdown: each step alone, single-threaded, outside Beam ---------------------------------

def _ms(function, *args, repeats: int = 1):
  """(last result, median milliseconds over `repeats` calls)."""
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    out = function(*args)
    times.append(1000 * (time.perf_counter() - start))
  return out, statistics.median(times)


def breakdown(inputs: Inputs, repeats: int) -> dict:
  import numpy as np
  from PIL import Image

  from models.contract import CONTENT_SIZE, StyleTransfer
  from transforms.storage import read_bytes
  steps = Steps()
  bottlenecks = _bottlenecks(inputs, steps)
  transfer = StyleTransfer(str(inputs.transfer), num_threads=1)
  n_styles = len(bottlenecks)
  rows = []
  for path in inputs.photos:
    data, read_ms = _ms(read_bytes, str(path), repeats=repeats)
    decoded, decode_ms = _ms(steps.decode, data, repeats=repeats)
    (tensor, framing), input_ms = _ms(steps.content_input, decoded, repeats=repeats)
    transfer.stylize(tensor, bottlenecks[0])  # warm caches for this picture's timing
    per_style = {'inference': [], 'content_output': [], 'encode': []}
    for bottleneck in bottlenecks:
      stylized, ms = _ms(transfer.stylize, tensor, bottleneck, repeats=repeats)
      per_style['inference'].append(ms)
      picture, ms = _ms(steps.content_output, stylized, framing, repeats=repeats)
      per_style['content_output'].append(ms)
      encoded, ms = _ms(steps.encode, picture, repeats=repeats)
      per_style['encode'].append(ms)
    row = {'content': path.name, 'source_size': list(decoded.full_size),
           'decoded_size': list(decoded.image.size), 'output_size': list(picture.size),
           'output_kib': round(len(encoded) / 1024, 1), 'read_ms': read_ms, 'decode_ms': decode_ms,
           'content_input_ms': input_ms,
           **{f'{k}_ms': statistics.mean(v) for k, v in per_style.items()}}
    # Alternatives (what-ifs), timed the same way.
    # Decoding for the network's needs only: JPEG draft to >= 2 x 384 on both sides instead of
    # >= 2 x 1024 (the output's pixels all come from the 384x384 network output at these options).
    small, row['alt_decode_min_side_384_ms'] = _ms(steps.decode, data, CONTENT_SIZE,
                                                   repeats=repeats)
    row['alt_decode_min_side_384_size'] = list(small.image.size)
    _, row['alt_content_input_after_384_decode_ms'] = _ms(steps.content_input, small,
                                                          repeats=repeats)
    # The output's resize: Lanczos vs bicubic (the job's when enlarging) vs bilinear, same crop and
    # size.
    left, top, right, bottom = steps.box(framing)
    crop = Image.fromarray(np.clip(np.rint(stylized[top:bottom, left:right] * 255.0), 0, 255)
                           .astype(np.uint8))
    size = steps.output_size(framing)
    region = stylized[top:bottom, left:right]
    _, row['alt_to_uint8_crop_ms'] = _ms(
        lambda region=region: Image.fromarray(np.clip(np.rint(region * 255.0), 0, 255)
                                              .astype(np.uint8)), repeats=repeats)
    for name, method in (('lanczos', Image.Resampling.LANCZOS),
                         ('bicubic', Image.Resampling.BICUBIC),
                         ('bilinear', Image.Resampling.BILINEAR)):
      _, row[f'alt_resize_{name}_ms'] = _ms(crop.resize, size, method, repeats=repeats)
    # JPEG encoding options at the same quality (the job's: plain, plus an sRGB ICC profile).
    for name, kwargs in (('plain', {}), ('optimize', {'optimize': True}),
                         ('optimize_progressive', {'optimize': True, 'progressive': True})):
      out, row[f'alt_encode_{name}_ms'] = _ms(_jpeg, picture, kwargs, repeats=repeats)
      row[f'alt_encode_{name}_kib'] = round(len(out) / 1024, 1)
    rows.append({k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()})
    print(f'breakdown {path.name}: ' + ', '.join(
        f'{k[:-3]} {row[k]:.1f}' for k in ('read_ms', 'decode_ms', 'content_input_ms',
                                           'inference_ms', 'content_output_ms', 'encode_ms')),
          file=sys.stderr)
  per_content = ('read_ms', 'decode_ms', 'content_input_ms')
  per_pair = ('inference_ms', 'content_output_ms', 'encode_ms')
  totals = {k: round(sum(r[k] for r in rows), 1) for k in per_content}
  totals.update({k: round(n_styles * sum(r[k] for r in rows), 1) for k in per_pair})
  all_ms = sum(totals.values())
  pairs = len(rows) * n_styles
  return {
      'what': 'each step of the job per picture, single-threaded, outside Beam, at the job\'s '
              f'defaults (fit, max-size {MAX_SIZE}, JPEG q{JPEG_QUALITY}); median of --repeats '
              'calls each; read/decode/content_input once per photo, inference/content_output/'
              f'encode once per (photo, style), mean over the {n_styles} styles. '
              'content_output = crop + resize to the output size + rendering.finish. alt_* are '
              'what-ifs timed the same way: decode with the JPEG draft for 384 (and the '
              'content_input after it), the output resize with other filters, JPEG options',
      'decode_min_side': steps.min_side,
      'styles_per_photo': n_styles, 'rows': rows,
      'totals_ms_for_all_pairs': totals,
      'share_of_time': {k: round(v / all_ms, 3) for k, v in totals.items()},
      'single_thread_ms_per_pair': round(all_ms / pairs, 1),
      'single_thread_images_per_second': round(1000 * pairs / all_ms, 3),
      'ideal_two_worker_images_per_second': round(2 * 1000 * pairs / all_ms, 3),
  }


def _jpeg(picture, kwargs) -> bytes:
  buffer = io.BytesIO()
  picture.save(buffer, 'JPEG', quality=JPEG_QUALITY, **kwargs)
  return buffer.getvalue()


# --- the results file -----------------------------------------------------------------------------

def machine() -> dict:
  """The machine, with the CPU's model and int8/float features (`record.cpu`)."""
  load = None
  with contextlib.suppress(OSError):
    load = [float(x) for x in pathlib.Path('/proc/loadavg').read_text().split()[:3]]
  return {'nproc': os.cpu_count(), 'usable_cpus': len(os.sched_getaffinity(0)),
          **record.cpu(), 'arch': platform.machine(), 'python': platform.python_version(),
          'loadavg_at_start': load}


def versions() -> dict:
  out = {}
  for name in ('apache-beam', 'ai-edge-litert', 'numpy', 'pillow', 'opencv-python-headless'):
    try:
      out[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      out[name] = None
  return out


def code_version() -> dict:
  def git(*args):
    return subprocess.run(['git', *args], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout.strip()
  try:
    dirty = git('status', '--porcelain', '--', 'models', 'pipeline', 'transforms')
    return {'commit': git('rev-parse', 'HEAD'), 'uncommitted_changes_in_code': bool(dirty)}
  except (OSError, subprocess.CalledProcessError):
    return {'commit': None}


def main(argv: list[str] | None = None) -> None:
  global MODEL  # noqa: PLW0603 - one setting the whole script reads
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--shared', type=pathlib.Path, default=DEFAULT_SHARED,
                      help='the shared test assets (default: ../shared next to the repository)')
  parser.add_argument('--repeats', type=int, default=3,
                      help='timed runs of each measurement; medians are reported (default: 3)')
  parser.add_argument('--styles', type=int, default=len(STYLES),
                      choices=range(1, len(STYLES + MORE_STYLES) + 1), metavar='N',
                      help=f'use the first N styles: {", ".join(STYLES)} (the default 3), then '
                           'the other 12 paintings in ../shared/images/style')
  parser.add_argument('--copies', type=int, default=1, metavar='K',
                      help='run over K copies of the photos (a catalog K times bigger, in which '
                           'the job\'s fixed start-up cost weighs less; default: 1)')
  parser.add_argument('--breakdown', action='store_true',
                      help='also time each per-picture step alone, outside Beam')
  parser.add_argument('--model', default=MODEL,
                      help=f'the model set of (a) and (b) (default: {MODEL}, as committed)')
  parser.add_argument('--out', type=pathlib.Path, default=DEFAULT_OUT,
                      help='results file (default: benchmarks/results/throughput.json)')
  args = parser.parse_args(argv)
  MODEL = args.model
  if args.repeats < 1:
    parser.error('--repeats must be >= 1')
  if args.copies < 1:
    parser.error('--copies must be >= 1')
  inputs = Inputs(args.shared.resolve(), args.styles, copies=args.copies)
  command = '.venv/bin/python -m benchmarks.throughput ' + shlex.join(
      sys.argv[1:] if argv is None else argv)
  result = {
      'what': 'images (stylized pairs) per second: (a) the bare int8 transfer interpreter, one '
              'thread; (b) the whole job on DirectRunner with 2 worker processes; ratio = b / a '
              '(both from medians; b from wall time around pipeline.run.run)',
      'command': command.strip(), 'date': time.strftime('%Y-%m-%dT%H:%M:%S%z'),
      'machine': machine(), 'versions': versions(), 'code': code_version(), 'model': MODEL,
      'content': [p.name for p in inputs.photos], 'copies': inputs.copies,
      'styles': [p.name for p in inputs.styles],
      'pairs': inputs.pairs, 'repeats': args.repeats}
  # (a) and (b) alternate, so that both see the same machine when other work comes and goes.
  raw, rows = RawLoop(inputs), []
  for i in range(args.repeats):
    seconds = raw.run_once()
    print(f'{i + 1}/{args.repeats} raw interpreter: {inputs.pairs} pairs in {seconds:.2f} s',
          file=sys.stderr)
    rows.append(pipeline_once(inputs, i))
    print(f'{i + 1}/{args.repeats} pipeline: {rows[-1]}', file=sys.stderr)
  result['raw_interpreter'] = raw.result()
  result['pipeline'] = pipeline_result(inputs, rows)
  a = result['raw_interpreter']['images_per_second']
  b = result['pipeline']['images_per_second']
  result['ratio'] = {
      'pipeline_over_raw': round(b / a, 3),
      'pipeline_by_summary_seconds_over_raw': round(
          result['pipeline']['images_per_second_by_summary_seconds'] / a, 3),
      'target': TARGET_RATIO, 'meets_target': b / a >= TARGET_RATIO,
      'used_for_target': 'pipeline_over_raw (wall time around pipeline.run.run)'}
  if args.breakdown:
    print('breakdown...', file=sys.stderr)
    result['breakdown'] = breakdown(inputs, args.repeats)
    print('two raw processes...', file=sys.stderr)
    two = result['breakdown']['two_raw_processes'] = two_raw_processes(inputs, args.repeats)
    print('pipeline on one pair...', file=sys.stderr)
    fixed = result['breakdown']['pipeline_fixed_cost'] = pipeline_fixed_cost(
        inputs.shared, args.repeats, {'pairs': inputs.pairs, **result['pipeline']})
    result['ratio']['two_raw_processes_over_raw'] = round(two['images_per_second'] / a, 3)
    if fixed['steady_state_images_per_second']:
      result['ratio']['pipeline_steady_state_over_raw'] = round(
          fixed['steady_state_images_per_second'] / a, 3)
  result['machine']['loadavg_at_end'] = machine()['loadavg_at_start']
  args.out.parent.mkdir(parents=True, exist_ok=True)
  args.out.write_text(json.dumps(result, indent=2) + '\n')
  print(f'raw {a} images/s, pipeline {b} images/s (wall; '
        f'{result["pipeline"]["images_per_second_by_summary_seconds"]} by the summary\'s seconds), '
        f'ratio {result["ratio"]["pipeline_over_raw"]} (target {TARGET_RATIO}); wrote {args.out}')


if __name__ == '__main__':
  main()
