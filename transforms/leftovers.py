"""Removing what killed runs and earlier nights leave behind, once it is provably not in use.

A killed local write leaves a hidden `.NAME.XXXXXXXX.partial` beside its output (`storage.
write_bytes` writes and renames it within one call, seconds, so one untouched for an hour has no
writer left). A killed run leaves its tables' shards in `_manifest/temp-RUN_ID/`
(`transforms.tables`; runs of earlier releases: Beam's `_manifest/beam-temp-KIND-RUN_ID-UUID/`):
they are abandoned once that run wrote its summary (it finished, and its own clean-up failed) or
when they were not touched for a day (longer than any run's manifest writing goes quiet). A
snapshot of the state (`transforms.state`) is done with once another is current and its own run
has ended.
"""
from __future__ import annotations

import logging
import re
import shutil
import time

from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from transforms import storage
from transforms.records import METRICS_NAMESPACE

PARTIAL_STALE_AFTER_S = 3600
TEMP_STALE_AFTER_S = 24 * 3600
_PARTIAL = re.compile(r'/\.[^/]+\.[0-9a-f]{8}\.partial\Z')
# A temp folder's name, matched against the path under the manifest folder only (never the
# folders above it, which are the user's).
_TEMP = re.compile(
    r'(?:temp-(?P<run>[^/]+)|beam-temp-(?:results|failures)-(?P<beam_run>[^/]+)-[0-9a-f]{32})/')


def _mtime(version: str | None) -> float:
  try:
    return float(version.split('@', 1)[1]) if version else time.time()
  except (IndexError, ValueError):
    return time.time()  # unknown: never taken for old


def remove_if_abandoned_partial(found: storage.Found, now: float | None = None) -> bool:
  """Deletes `found` if it is a `.partial` file untouched for an hour; True if it did."""
  if not _PARTIAL.search(found.path):
    return False
  if (now or time.time()) - _mtime(found.version) < PARTIAL_STALE_AFTER_S:
    return False
  try:
    FileSystems.delete([found.path])
  except Exception as e:  # noqa: BLE001 - a leftover that stays costs nothing but space
    logging.warning('abandoned %s not removed: %s', found.path, e)
    return False
  Metrics.counter(METRICS_NAMESPACE, 'leftovers_removed').inc()
  return True


def remove_abandoned_temp(manifest_dir: str, now: float | None = None) -> list[str]:
  """Deletes the abandoned temp folders under `manifest_dir`; returns the ones it removed."""
  now = now or time.time()
  inside = FileSystems.join(manifest_dir, '')
  groups: dict[str, list[storage.Found]] = {}
  runs: dict[str, str] = {}
  for pattern in ('temp-*/**', 'beam-temp-*/**'):
    for found in storage.match(FileSystems.join(manifest_dir, pattern)):
      m = _TEMP.match(found.path[len(inside):]) if found.path.startswith(inside) else None
      if m is not None:
        folder = inside + m.group(0)
        groups.setdefault(folder, []).append(found)
        runs[folder] = m.group('run') or m.group('beam_run')
  removed = []
  for folder, files in sorted(groups.items()):
    run_id = runs[folder]
    finished = storage.match(FileSystems.join(manifest_dir, f'summary-{run_id}.json'), limit=1)
    quiet = now - max(_mtime(f.version) for f in files) >= TEMP_STALE_AFTER_S
    if finished or quiet:
      FileSystems.delete([f.path for f in files])
      if FileSystems.get_scheme(folder) is None:
        shutil.rmtree(folder, ignore_errors=True)  # the folder, now empty, of a local run
      removed.append(folder)
  return removed


def remove_old_snapshots(state_dir: str, manifest_dir: str, current: str | None,
                         now: float | None = None) -> list[str]:
  """Deletes snapshot folders other than the current one whose run finished (it wrote its
  completion marker) or went quiet a day ago; returns the ones it removed. The state then costs
  one snapshot (two while a run publishes), however many nights have passed."""
  now = now or time.time()
  groups: dict[str, list[storage.Found]] = {}
  root = FileSystems.join(state_dir, 'snapshots')
  for found in storage.match(FileSystems.join(root, '**')):
    run_id = found.path[len(root):].lstrip('/').split('/', 1)[0]
    groups.setdefault(run_id, []).append(found)
  removed = []
  for run_id, files in sorted(groups.items()):
    folder = FileSystems.join(root, run_id)
    if current and folder.rstrip('/') == current.rstrip('/'):
      continue
    finished = storage.match(FileSystems.join(manifest_dir, f'complete-{run_id}.json'), limit=1)
    if finished or now - max(_mtime(f.version) for f in files) >= TEMP_STALE_AFTER_S:
      FileSystems.delete([f.path for f in files])
      if FileSystems.get_scheme(folder) is None:
        shutil.rmtree(folder, ignore_errors=True)
      removed.append(folder)
  return removed
