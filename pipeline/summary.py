"""The run summary: counts by outcome and throughput, read from the job's Beam metrics."""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
import time

from apache_beam.metrics.metric import MetricsFilter

from transforms import progress
from transforms.records import METRICS_NAMESPACE

COUNTERS = ('contents', 'pairs_planned', 'styles_predicted', 'styles_from_bank', 'styles_failed',
            'images_read', 'images_failed',
            'pairs_stylized', 'pairs_written', 'pairs_skipped', 'pairs_failed',
            'content_bottlenecks', 'interpreter_loads', 'io_retries',
            'manifest_lines_unreadable', 'manifest_files_unreadable',
            'leftovers_removed', 'contents_in_output_left_out')


def _value(result):
  return result.committed if result.committed is not None else result.attempted


def collect(result, seconds: float, run_id: str) -> dict:
  """The launcher's summary of a finished run, from the job's Beam metrics (with timings).

  `pairs_expected` is the pairs planned: each picture's assigned styles x strengths; `accounted`
  says every pair ended written, skipped or failed."""
  metrics = result.metrics().query(MetricsFilter().with_namespace(METRICS_NAMESPACE))
  counts = dict.fromkeys(COUNTERS, 0)
  for counter in metrics['counters']:
    counts[counter.key.metric.name] = counts.get(counter.key.metric.name, 0) + _value(counter)
  summary = {'run_id': run_id, 'seconds': round(seconds, 2), **counts}
  summary['pairs_expected'] = counts['pairs_planned']
  summary['accounted'] = summary['pairs_expected'] == (
      counts['pairs_written'] + counts['pairs_skipped'] + counts['pairs_failed'])
  for dist in metrics['distributions']:
    data = _value(dist)
    if data and data.count:
      summary[f'{dist.key.metric.name}_mean'] = round(data.sum / data.count, 1)
      summary[f'{dist.key.metric.name}_max'] = data.max
  summary['images_per_second'] = round(counts['pairs_written'] / seconds, 2) if seconds else 0.0
  return summary


def render(summary: dict) -> str:
  lines = [f"run {summary['run_id']}: {summary['pairs_written']} written, "
           f"{summary['pairs_skipped']} skipped, {summary['pairs_failed']} failed of "
           f"{summary['pairs_expected']} pairs, in {summary['seconds']} s "
           f"({summary['images_per_second']} images/s)"]
  lines += [f'  {key}: {value}' for key, value in summary.items()
            if key not in ('run_id', 'seconds', 'images_per_second')]
  return '\n'.join(lines)



class ProgressPrinter:
  """Prints a local run's progress every `every` seconds while it runs, from the workers' tallies
  (`transforms.progress`): pairs done of those planned so far, the rate, the time left."""

  def __init__(self, every: float, out=sys.stderr):
    self._every, self._out = every, out
    self._stop = threading.Event()
    self._folder = tempfile.mkdtemp(prefix='stylize-progress-')
    self._start = time.monotonic()
    self._last = None

  def __enter__(self):
    os.environ[progress.ENV] = self._folder  # worker processes inherit it
    self._thread = threading.Thread(target=self._run, daemon=True)
    self._thread.start()
    return self

  def __exit__(self, *_):
    self._stop.set()
    self._thread.join()
    os.environ.pop(progress.ENV, None)
    shutil.rmtree(self._folder, ignore_errors=True)

  def _run(self):
    while not self._stop.wait(self._every):
      counts = progress.totals(self._folder)
      if counts != self._last and counts['planned']:
        self._last = counts
        print(progress_line(counts, time.monotonic() - self._start), file=self._out, flush=True)


def progress_line(counts: dict, seconds: float) -> str:
  done = counts['written'] + counts['skipped'] + counts['failed']
  rendered = counts['written'] + counts['failed']
  rate = rendered / seconds if seconds > 0 else 0.0
  left = counts['planned'] - done
  eta = f'about {_duration(left / rate)} left' if rate > 0 and left > 0 else 'time left unknown'
  return (f"progress: {done} of {counts['planned']} pairs planned so far "
          f"({counts['written']} written, {counts['skipped']} skipped, {counts['failed']} "
          f"failed); {rate:.1f} pairs/s rendered; {eta}")


def _duration(seconds: float) -> str:
  minutes, secs = divmod(round(seconds), 60)
  hours, minutes = divmod(minutes, 60)
  return f'{hours} h {minutes:02d} min' if hours else f'{minutes} min {secs:02d} s'
