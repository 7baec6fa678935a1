"""Progress of a local run, as it goes: each worker process keeps a running tally of the pairs it
planned, wrote, skipped and failed, and rewrites one small file with it at most once a second;
the launcher adds the files up (`totals`) and prints a line every few seconds.

Only where the launcher asks for it (`ENV` names the folder; it sets it for the DirectRunner): on
Dataflow the job's Beam counters (`pairs_planned`, `pairs_written`, ...) show the same on its
page, and nothing here runs. A tally costs a dictionary update per pair.
"""
from __future__ import annotations

import collections
import json
import os
import threading
import time

ENV = 'STYLIZE_PROGRESS_DIR'
KINDS = ('planned', 'written', 'skipped', 'failed')
_EVERY_SECONDS = 1.0

_lock = threading.Lock()
_counts: collections.Counter = collections.Counter()
_last_write = [0.0]


def tally(kind: str, n: int = 1) -> None:
  folder = os.environ.get(ENV)
  if not folder:
    return
  with _lock:
    _counts[kind] += n
    now = time.monotonic()
    if now - _last_write[0] < _EVERY_SECONDS:
      return
    _last_write[0] = now
    counts = dict(_counts)
  path = os.path.join(folder, f'{os.getpid()}.json')
  try:
    with open(path + '.tmp', 'w') as f:
      json.dump(counts, f)
    os.replace(path + '.tmp', path)
  except OSError:
    pass  # progress is a courtesy: never a reason to fail a pair


def totals(folder: str) -> dict[str, int]:
  """The tallies of every worker process so far, added up."""
  summed = dict.fromkeys(KINDS, 0)
  for name in os.listdir(folder):
    if name.endswith('.json'):
      try:
        with open(os.path.join(folder, name)) as f:
          for kind, n in json.load(f).items():
            summed[kind] = summed.get(kind, 0) + n
      except (OSError, ValueError):
        continue  # being replaced right now: next time
  return summed
