"""`--plan`: what a run would do, counted from the inputs and the state, with nothing written.

The same listing, state and planning steps as a run; no picture is read, no style predicted, no
file written. The estimated time is the pairs to render times the transfer network's latency,
measured on this machine at launch: inference alone (the rest of a pair's cost is in
`benchmarks/results/`).
"""
from __future__ import annotations

import statistics
import time

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics

from models import contract, fetch
from pipeline import summary
from transforms.records import FAILED, METRICS_NAMESPACE, StyleResult

RENDER, REFUSED = 'plan_render', 'plan_refused'


def run(p: beam.Pipeline, job, plan, plan_pairs) -> tuple[object, dict]:
  """Runs the planning steps of the job on `p`; prints and returns the forecast."""
  styles = p | 'Styles' >> beam.Create([(ref.id, StyleResult(ref)) for ref in plan.styles])
  _, planned, _ = plan_pairs(p, job, plan, beam.pvalue.AsDict(styles))
  unusable = {ref.id for ref in plan.styles if ref.problem}
  _ = planned.todo | 'CountToDo' >> beam.Map(_count, unusable)
  _ = planned[FAILED] | 'CountRefused' >> beam.Map(
      lambda _: Metrics.counter(METRICS_NAMESPACE, REFUSED).inc())
  start = time.monotonic()
  result = p.run()
  result.wait_until_finish()
  counts = summary.collect(result, time.monotonic() - start, job.run_id)
  seconds = latency_seconds(fetch.local_copy(plan.transfer)[0], job.num_threads)
  render = counts.get(RENDER, 0)
  outcome = {'pictures': counts['contents'], 'pairs': counts['pairs_expected'],
             'render': render, 'skip': counts['pairs_skipped'],
             'refuse': counts.get(REFUSED, 0), 'inference_ms': round(1000 * seconds, 1),
             'inference_core_hours': round(render * seconds / 3600, 3)}
  print(render_text(outcome, job.output))
  return result, outcome


def _count(todo, unusable: set[str]) -> None:
  """A picture's pairs still to do: rendered, or refused when the picture or style is unusable."""
  for style_id, _ in todo.fingerprints:
    refused = todo.ref.problem or style_id in unusable
    Metrics.counter(METRICS_NAMESPACE, REFUSED if refused else RENDER).inc()


def latency_seconds(transfer_path: str, num_threads: int, repeats: int = 3) -> float:
  """The median time of one transfer-network call here, after a warm-up call."""
  network = contract.open_transfer(transfer_path, num_threads)
  content = np.full((contract.CONTENT_SIZE, contract.CONTENT_SIZE, 3), 0.5, np.float32)
  bottleneck = np.zeros(contract.BOTTLENECK_SIZE, np.float32)
  network.stylize(content, bottleneck)
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    network.stylize(content, bottleneck)
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def render_text(outcome: dict, output: str) -> str:
  hours = outcome['inference_core_hours']
  return '\n'.join([
      f"plan for {output} (nothing was written): {outcome['pictures']} pictures, "
      f"{outcome['pairs']} pairs",
      f"  render: {outcome['render']}",
      f"  skip:   {outcome['skip']} (done, with the same fingerprint, and still there)",
      f"  refuse: {outcome['refuse']} (unusable list rows, styles or duplicate ids: dead letters)",
      f"  inference: {outcome['render']} x {outcome['inference_ms']} ms (one call measured now) "
      f"= {hours} core-hours ({hours * 60:.1f} core-minutes); decoding, encoding and writing add "
      'to it'])
