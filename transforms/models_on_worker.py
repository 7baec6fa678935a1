"""Loading a network once per DoFn instance, in `setup`, from a verified local copy."""
from __future__ import annotations

import atexit
import gc
import time

from apache_beam.metrics import Metrics

from models.fetch import local_copy
from models.registry import ModelFile
from transforms.records import METRICS_NAMESPACE


class LoadsModel:
  """Mixin for a DoFn that owns one interpreter (they are not thread-safe: never share one).

  Counts each load once, in the first bundle after `setup` (metrics are not recorded in setup).
  """
  network_class = None

  def __init__(self, model: ModelFile, num_threads: int, quick_exit: bool = False):
    self._model = model
    self._num_threads = num_threads
    self._quick_exit = quick_exit  # the process ends with the run: see skip_final_collection
    self._network = None
    self._unreported_loads = 0

  def setup(self):
    if self._quick_exit:
      skip_final_collection()
    if self._model is None:  # this instance needs no network (built-in styles only)
      return
    path, _ = local_copy(self._model)
    self._network = self.network_class(path, self._num_threads)
    self._unreported_loads += 1

  def start_bundle(self):
    if self._unreported_loads:
      Metrics.counter(METRICS_NAMESPACE, 'interpreter_loads').inc(self._unreported_loads)
      self._unreported_loads = 0


def skip_final_collection() -> None:
  """Makes this process skip the interpreter's last full garbage collections when it exits.

  With Beam, a network and their modules in memory, they take a noticeable part of a short local
  run, which waits for them in the launcher and in each worker process (the runner awaits their
  end). The cost: objects that only reference cycles hold are never finalized, so a file held
  that way would not be flushed. The job closes what it writes explicitly (in `process`,
  `finish_bundle` or `teardown`, all before exit). For local runs only: a Dataflow worker is
  stopped, not exited, and gains nothing. Takes effect at exit, never in a running process.
  """
  atexit.unregister(gc.freeze)  # once per process, however many instances set up
  atexit.register(gc.freeze)


def timed_ms(function, *args):
  """(function(*args), elapsed milliseconds)."""
  start = time.perf_counter()
  out = function(*args)
  return out, int((time.perf_counter() - start) * 1000)
