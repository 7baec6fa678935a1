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

  def __init__(self, model: ModelFile, num_threads: int):
    self._model = model
    self._num_threads = num_threads
    self._network = None
    self._unreported_loads = 0

  def setup(self):
    if self._model is None:  # this instance needs no network (built-in styles only)
      return
    path, _ = local_copy(self._model)
    self._network = self.network_class(path, self._num_threads)
    self._unreported_loads += 1
    skip_final_collection()

  def start_bundle(self):
    if self._unreported_loads:
      Metrics.counter(METRICS_NAMESPACE, 'interpreter_loads').inc(self._unreported_loads)
      self._unreported_loads = 0


def skip_final_collection() -> None:
  """Makes this process skip the interpreter's last full garbage collection when it exits.

  With Beam, a network and their modules in memory, that collection takes a good part of a
  second, and every local run waits for it: in the launcher, and in each worker process, whose
  exit the runner awaits. It frees nothing the process's end does not: files are closed by then.
  Only at exit (never in a running worker, where frozen objects would stay for good).
  """
  atexit.unregister(gc.freeze)  # once per process, however many instances set up
  atexit.register(gc.freeze)


def timed_ms(function, *args):
  """(function(*args), elapsed milliseconds)."""
  start = time.perf_counter()
  out = function(*args)
  return out, int((time.perf_counter() - start) * 1000)
