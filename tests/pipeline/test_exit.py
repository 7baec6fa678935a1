"""A local run's processes skip the interpreter's last full garbage collection when they exit
(`transforms.models_on_worker.skip_final_collection`): the launcher, and the workers the local
runner waits for."""
from __future__ import annotations

import pathlib
import subprocess
import sys

from pipeline import run as job
from transforms import models_on_worker

ROOT = pathlib.Path(__file__).resolve().parents[2]

# The check is registered first, so it runs last (exit functions run last-in, first-out).
COMMAND = """
import atexit, gc, sys
atexit.register(lambda: print('frozen at exit:', gc.get_freeze_count() > 0))
from pipeline import run
sys.argv = ['pipeline.run', '--help']
run.main()
"""


def test_the_command_skips_it_even_when_it_stops_early():
  done = subprocess.run([sys.executable, '-c', COMMAND], cwd=ROOT, capture_output=True,
                        text=True, timeout=120, check=False)
  assert done.returncode == 0, done.stderr
  assert done.stdout.rstrip().endswith('frozen at exit: True'), done.stdout[-500:]


def test_a_local_run_asks_its_stylizing_workers_to_skip_it(pictures, tiny_models, tmp_path,
                                                          monkeypatch):
  """In-process workers here; worker processes run the same `setup`."""
  asked = []
  monkeypatch.setattr(models_on_worker, 'skip_final_collection', lambda: asked.append(True))
  job.run(['--content', str(pictures / 'content' / '**'), '--styles',
           str(pictures / 'styles' / 'warm.png'), '--output', str(tmp_path / 'out'),
           '--model', tiny_models, '--direct_running_mode=in_memory'])
  assert asked


def test_ctrl_c_on_a_remote_run_says_the_job_goes_on_and_how_to_stop_it():
  """Beam's Dataflow result does not cancel the job when its launcher stops waiting: telling the
  user to just run again would start a second job beside the first."""
  from apache_beam.options.pipeline_options import PipelineOptions

  class Submitted:  # what a Dataflow result tells of its job
    def job_id(self):
      return '2026-12-07_01_02_03-123'

  remote = PipelineOptions(['--runner=DataflowRunner', '--region=europe-west4'])
  said = job._after_interrupt(remote, Submitted())
  assert 'goes on' in said and 'gcloud dataflow jobs cancel 2026-12-07_01_02_03-123 --region ' \
      'europe-west4' in said
  assert 'jobs cancel JOB_ID --region REGION' in job._after_interrupt(
      PipelineOptions(['--runner=DataflowRunner']), None)
  assert job._after_interrupt(PipelineOptions([]), None) == job.KEPT
