"""The run summary: counts by outcome and throughput, read from the job's Beam metrics."""
from __future__ import annotations

from apache_beam.metrics.metric import MetricsFilter

from transforms.records import METRICS_NAMESPACE

COUNTERS = ('contents', 'pairs_planned', 'styles_predicted', 'styles_from_bank', 'styles_failed',
            'images_read', 'images_failed',
            'pairs_stylized', 'pairs_written', 'pairs_skipped', 'pairs_failed',
            'content_bottlenecks', 'interpreter_loads', 'io_retries',
            'manifest_lines_unreadable', 'manifest_files_unreadable',
            'leftovers_removed')


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

