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
