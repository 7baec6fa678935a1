"""The job: `python -m pipeline.run --content ... --styles ... --output ... [Beam options]`.

Graph (each step that can fail on one element sends it to a dead-letter output and carries on):

  content globs/lists -> ContentRefs --+
  earlier manifests + output listing --+-> JoinDone -> PlanPairs -> LoadContent -> Stylize -> Write
    -> DonePairs                       (fan-out)        |  ^                          ^          |
  style refs -> PredictStyles -- AsDict side input -----+--+--------------------------+          |
                                                  skipped rows | dead letters | written rows     v
                                                                                     WriteManifest
A first run into an empty --output has nothing done to read, and its graph leaves DonePairs out.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import sys
import time

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import (
  GoogleCloudOptions,
  PipelineOptions,
  StandardOptions,
  TestOptions,
)
from apache_beam.portability.api import beam_provision_api_pb2
from apache_beam.runners.portability.fn_api_runner import fn_runner
from apache_beam.runners.portability.portable_runner import JobServiceHandle

from pipeline import forecast, launch, options, summary, workers
from transforms import layout
from transforms.gallery import ShownContents, WriteGallery
from transforms.incremental import DonePairs, PlanPairs, for_planning
from transforms.inputs import ContentRefs
from transforms.manifest import WriteManifest, manifest_dir
from transforms.models_on_worker import skip_final_collection
from transforms.records import FAILED, PLANNED, SKIPPED, content_key
from transforms.storage import read_bytes
from transforms.styles import PredictStyles
from transforms.stylize import LoadContent, Stylize
from transforms.write import WriteOutput


@dataclasses.dataclass
class RunOutcome:
  result: beam.runners.runner.PipelineResult
  summary: dict


def plan_pairs(p: beam.Pipeline, job: options.JobSettings, plan: launch.Plan, style_map):
  """(done records, PlanPairs' tagged outputs, the content refs by key): the content joined with
  what is done."""
  refs = (p
          | 'ContentRefs' >> ContentRefs(job.content, job.content_list, frozenset(plan.blends),
                                         job.output)
          | 'ByOutputName' >> beam.Map(lambda ref: (content_key(ref.id, ref.uri), ref)))
  recorded = (p | 'DonePairs' >> DonePairs(job.output, [ref.id for ref in plan.styles],
                                           plan.snapshot, tidy=not job.plan_only)
              if plan.history
              else p | 'NothingDone' >> beam.Create([]))
  done = recorded | 'ForPlanning' >> beam.Map(for_planning)
  # The join also fans the content out: each picture goes on to any worker.
  planned = (
      {'ref': refs, 'done': done}
      | 'JoinDone' >> beam.CoGroupByKey()
      | 'PlanPairs' >> beam.ParDo(
          PlanPairs(job.output, job.rendering, job.strengths,
                    (plan.prediction.identity if plan.prediction else '', plan.transfer.identity),
                    plan.assignment),
          style_map
      ).with_outputs(SKIPPED, FAILED, PLANNED, main='todo'))
  return recorded, planned, refs


def build(p: beam.Pipeline, job: options.JobSettings, plan: launch.Plan) -> None:
  """Adds the job's steps to `p`."""
  styles = p | 'PredictStyles' >> PredictStyles(
      plan.styles, plan.prediction, job.num_threads, job.max_pixels, job.max_bytes, plan.blends)
  style_map = beam.pvalue.AsDict(styles)
  recorded, planned, refs = plan_pairs(p, job, plan, style_map)
  # The contents the gallery will show, known from the listing: the steps that hold their
  # pictures make their thumbnails, so the page's own step has next to nothing left to read.
  shown = refs | 'ShownContents' >> ShownContents(job.gallery_rows) if job.gallery_rows else None
  thumbnails = {'shown': beam.pvalue.AsSingleton(shown)} if shown is not None else {}
  loaded = planned.todo | 'LoadContent' >> beam.ParDo(
      LoadContent(job.rendering, job.max_pixels, job.max_bytes,
                  job.output if shown is not None else None),
      **thumbnails).with_outputs(FAILED, main='images')
  # On Beam's local engine the worker processes end with the run: they may skip their exit's
  # last collection, as the launcher does.
  stylized = loaded.images | 'Stylize' >> beam.ParDo(
      Stylize(plan.transfer, job.num_threads, job.rendering,
              plan.prediction if min(job.strengths) < 1.0 else None,
              quick_exit=isinstance(p.runner, fn_runner.FnApiRunner)), style_map
  ).with_outputs(FAILED, main='pictures')
  written = stylized.pictures | 'WriteOutputs' >> beam.ParDo(
      WriteOutput(job.output, job.rendering, plan.transfer.identity, job.cache_control),
      **thumbnails).with_outputs(FAILED, main='rows')

  failures = ((planned[FAILED], loaded[FAILED], stylized[FAILED], written[FAILED])
              | 'DeadLetters' >> beam.Flatten())
  rows = (written.rows, planned[SKIPPED], failures, planned[PLANNED]) | 'Manifest' >> WriteManifest(
      job.output, job.run_id, plan.transfer.identity, job.started_at, with_state=True,
      before=recorded if plan.history else None)
  if job.gallery_rows:
    _ = rows | 'Gallery' >> WriteGallery(job.output, job.run_id, job.gallery_rows, made=shown)


def run(argv: list[str] | None = None, test_pipeline: beam.Pipeline | None = None,
        every_core: bool = False) -> RunOutcome:
  """Checks the inputs, runs the job to the end and returns its result and summary.

  `every_core` (the command's default): a local run that does not say how to run uses one worker
  thread per core instead of the DirectRunner's single one.
  Raises `launch.LaunchError` when the job cannot start (nothing has been written then), and
  `JobFailed` when it stops part way (an output that stopped being writable, say).
  """
  job, beam_args = options.parse(sys.argv[1:] if argv is None else argv)
  plan = launch.prepare(job)
  beam_options = PipelineOptions(beam_args + (local_parallelism(beam_args) if every_core else []))
  p = test_pipeline or beam.Pipeline(runner=_direct_engine(beam_options), options=beam_options)
  if workers.is_remote(p.options):
    plan = launch.for_remote_workers(plan, p.options)
  if _only_described(p.options):  # a described graph runs later, on what the output holds then
    plan = dataclasses.replace(plan, history=job.skip_existing)
  if job.plan_only:
    return RunOutcome(*forecast.run(p, job, plan, plan_pairs))
  build(p, job, plan)
  start, result = time.monotonic(), None
  try:
    with _progress(p.options):
      result = p.run()
      result.wait_until_finish()
  except KeyboardInterrupt:
    raise Interrupted(_after_interrupt(p.options, result)) from None
  except Exception as e:  # noqa: BLE001 - a failed run ends in one line that says why
    raise JobFailed(_cause(e)) from e
  if _only_described(p.options):
    print('The job was described, not run (--dry_run or --template_location).')
    return RunOutcome(result, {})
  outcome = summary.collect(result, time.monotonic() - start, job.run_id)
  # The job wrote its own summary as its last step; the launcher adds the metrics' timings.
  summary_uri = FileSystems.join(manifest_dir(job.output), f'summary-{job.run_id}.json')
  try:
    outcome.update(json.loads(read_bytes(summary_uri)))
  except Exception as e:  # noqa: BLE001 - the metrics' counts are printed; say what is missing
    print(summary.render(outcome))
    raise JobFailed(f'the job did not leave its summary at {summary_uri}: {_cause(e)}') from e
  print(summary.render(outcome))
  gallery = FileSystems.join(job.output, layout.GALLERY_PAGE)
  print(f'outputs in {job.output}; manifest and dead letters in {manifest_dir(job.output)}'
        + (f'; gallery: {gallery}' if job.gallery_rows and FileSystems.exists(gallery) else ''))
  return RunOutcome(result, outcome)


def local_parallelism(beam_args: list[str]) -> list[str]:
  """Beam options for one worker thread per usable core, for a DirectRunner run whose options
  name neither a running mode nor a number of workers; [] otherwise. Threads, not processes: the
  interpreter, Pillow and numpy release the interpreter lock for their work, and threads kept up
  with processes and start sooner (benchmarks/results/endtoend.json)."""
  runner = PipelineOptions(beam_args).view_as(StandardOptions).runner or 'DirectRunner'
  named = {arg.split('=', 1)[0] for arg in beam_args if arg.startswith('--')}
  cores = len(os.sched_getaffinity(0))
  if (runner.rsplit('.', 1)[-1].lower() not in ('direct', 'directrunner') or cores < 2
      or {'--direct_running_mode', '--direct_num_workers'} & named):
    return []
  return ['--direct_running_mode=multi_threading', f'--direct_num_workers={cores}']


def _progress(beam_options: PipelineOptions):
  """Progress lines while a local run runs (every $STYLIZE_PROGRESS_SECONDS, default 5; 0: off);
  on Dataflow the job's page shows the same counters."""
  every = float(os.environ.get('STYLIZE_PROGRESS_SECONDS', '5'))
  if workers.is_remote(beam_options) or every <= 0 or _only_described(beam_options):
    return contextlib.nullcontext()
  return summary.ProgressPrinter(every)


def _direct_engine(beam_options: PipelineOptions):
  """For the DirectRunner, the engine it runs batch jobs on (the FnApiRunner), made as it makes it.

  Beam's DirectRunner first tries Prism, a binary it downloads at run time: where that works the
  job runs on another engine, which ignores --direct_running_mode and --direct_num_workers; where
  it fails (no internet) it costs a second or two per run before the fallback. None: any other
  runner, chosen by the options as usual.
  """
  standard = beam_options.view_as(StandardOptions)
  name = (standard.runner or 'DirectRunner').rsplit('.', 1)[-1].lower()
  if standard.streaming or name not in ('direct', 'directrunner', 'switchingdirectrunner'):
    return None  # streaming needs the DirectRunner's other engines: leave the choice to it
  encoded = JobServiceHandle.encode_pipeline_options(beam_options.get_all_options())
  return fn_runner.FnApiRunner(provision_info=fn_runner.ExtendedProvisionInfo(
      beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded)))


class JobFailed(RuntimeError):
  """The job started but could not finish; the message is the cause, in one line."""


class Interrupted(RuntimeError):
  """Ctrl-C while the job ran; the message says what became of it."""


KEPT = 'What was written before is kept; the next run renders again what this one did not record.'


def _after_interrupt(beam_options: PipelineOptions, result) -> str:
  """A local run ends with the launcher; a remote one goes on without it (Beam's runners do not
  cancel it), so a second launch now would run beside it."""
  if not workers.is_remote(beam_options):
    return KEPT
  job_id = result.job_id() if result is not None and hasattr(result, 'job_id') else 'JOB_ID'
  region = beam_options.view_as(GoogleCloudOptions).region or 'REGION'
  return (f'The launcher stopped waiting, but the job it submitted goes on: stop it on its page '
          f'or with `gcloud dataflow jobs cancel {job_id} --region {region}` before running it '
          'again.')


def _cause(error: BaseException) -> str:
  """The innermost error of a failed run in one line: runners wrap a worker's error in their
  own, with its traceback as text."""
  while error.__cause__ is not None:
    error = error.__cause__
  lines = [line.strip() for line in str(error).splitlines() if line.strip()]
  named = [line for line in lines if re.match(r'^[\w.]+(Error|Exception|Exit)\b', line)]
  text = (named or lines or [type(error).__name__])[-1]
  return text if re.match(r'^[\w.]+(Error|Exception)\b', text) else (
      f'{type(error).__name__}: {text}')


def _only_described(beam_options: PipelineOptions) -> bool:
  return bool(beam_options.view_as(TestOptions).dry_run
              or beam_options.view_as(GoogleCloudOptions).template_location)


def main() -> None:
  skip_final_collection()
  try:
    run(every_core=True)
  except launch.LaunchError as e:
    sys.exit(f'Cannot start the job: {e}')
  except JobFailed as e:
    sys.exit(f'The job failed: {e}. What was written before is kept; the next run renders '
             'again what this one did not record.')
  except (Interrupted, KeyboardInterrupt) as e:  # before the run: nothing of it started yet
    print(f'\nInterrupted. {e if isinstance(e, Interrupted) else KEPT}', file=sys.stderr)
    sys.exit(130)  # the shell's code for a command stopped by Ctrl-C


if __name__ == '__main__':
  main()
