"""Transient I/O faults are retried with backoff; permanent ones become dead letters at once.

`flaky://` is a real Beam filesystem (registered by subclassing, as Beam discovers them) over
the local disk whose first `open`, `create` and `match` of each path fail with a connection reset.
"""
from __future__ import annotations

import collections

import pytest
from apache_beam.io.filesystem import FileMetadata, MatchResult
from apache_beam.io.localfilesystem import LocalFileSystem
from conftest import read_manifest

from pipeline import run as job
from transforms import storage

PREFIX = 'flaky://'


class FlakyFileSystem(LocalFileSystem):
  calls = collections.Counter()

  @classmethod
  def scheme(cls):
    return 'flaky'

  @classmethod
  def _fail_first(cls, operation, path):
    cls.calls[(operation, path)] += 1
    if cls.calls[(operation, path)] == 1:
      raise ConnectionResetError(f'injected: first {operation} of {path}')

  def match(self, patterns, limits=None):
    for pattern in patterns:
      self._fail_first('match', pattern)
    results = super().match([p[len(PREFIX):] for p in patterns], limits)
    return [MatchResult(PREFIX + r.pattern, [
        FileMetadata(PREFIX + m.path, m.size_in_bytes, m.last_updated_in_seconds)
        for m in r.metadata_list]) for r in results]

  def open(self, path, *args, **kwargs):
    self._fail_first('open', path)
    return super().open(path[len(PREFIX):], *args, **kwargs)

  def create(self, path, *args, **kwargs):
    self._fail_first('create', path)
    return super().create(path[len(PREFIX):], *args, **kwargs)


@pytest.fixture(autouse=True)
def fresh_counts():
  FlakyFileSystem.calls.clear()


def test_write_is_retried_and_lands_whole(tmp_path):
  target = f'{PREFIX}{tmp_path}/out/picture.jpg'
  storage.write_bytes(target, b'x' * 100_000)
  assert FlakyFileSystem.calls[('create', target)] == 2
  assert (tmp_path / 'out' / 'picture.jpg').read_bytes() == b'x' * 100_000


def test_permanent_error_is_not_retried(tmp_path):
  missing = f'{PREFIX}{tmp_path}/missing.jpg'
  FlakyFileSystem.calls[('open', missing)] = 1  # past the injected fault
  with pytest.raises(FileNotFoundError):
    storage.read_bytes(missing)
  assert FlakyFileSystem.calls[('open', missing)] == 2  # one real try, no retries


def test_job_over_a_flaky_filesystem_loses_nothing(pictures, tiny_models, tmp_path):
  out = tmp_path / 'out'
  outcome = job.run([
      '--content', f'{PREFIX}{pictures}/content/**', '--styles', f'{PREFIX}{pictures}/styles/*',
      '--output', str(out), '--model', tiny_models, '--runner', 'DirectRunner'])
  assert outcome.summary['pairs_written'] == 6 and outcome.summary['pairs_failed'] == 0
  # Each of the 3 contents and 2 styles failed its first open; one style's was spent at launch
  # (which checks that a style decodes), outside the job's metrics.
  assert outcome.summary['io_retries'] == 3 + 1
  opened = {path for (operation, path), count in FlakyFileSystem.calls.items()
            if operation == 'open'}
  assert len(opened) == 5 and all(FlakyFileSystem.calls[('open', p)] >= 2 for p in opened)
  assert {r['status'] for r in read_manifest(out)} == {'written'}
