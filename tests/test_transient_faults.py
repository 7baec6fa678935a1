"""Transient I/O faults are retried with backoff; permanent ones become dead letters at once.

`flaky://` is a real Beam filesystem (registered by subclassing, as Beam discovers them) over
the local disk whose first `open`, `create` and `match` of each path fail with a connection reset.
"""
from __future__ import annotations

import collections

import apache_beam as beam
import pytest
from apache_beam.io.filesystem import FileMetadata, MatchResult
from apache_beam.io.localfilesystem import LocalFileSystem
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.util import assert_that, equal_to
from conftest import fn_api_pipeline

from models import imaging, registry
from models.rendering import Rendering
from pipeline import launch, options
from transforms import inputs, storage
from transforms.records import FAILED, ContentToDo
from transforms.styles import PredictStyles
from transforms.stylize import LoadContent, Stylize
from transforms.write import WriteOutput

PREFIX = 'flaky://'
MAX_PIXELS = imaging.DEFAULT_MAX_PIXELS


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


def test_launch_matches_and_checks_styles_through_retries(pictures, tiny_models, tmp_path):
  job, _ = options.parse([
      '--content', f'{PREFIX}{pictures}/content/**', '--styles', f'{PREFIX}{pictures}/styles/*',
      '--output', str(tmp_path / 'out'), '--model', tiny_models])
  plan = launch.prepare(job)
  assert sorted(ref.id for ref in plan.styles) == ['cool', 'warm']
  matched = [key for key in FlakyFileSystem.calls if key[0] == 'match']
  assert matched and all(FlakyFileSystem.calls[key] >= 2 for key in matched)
  # One style is opened to check that it decodes: through its injected fault too.
  (opened,) = [key for key in FlakyFileSystem.calls if key[0] == 'open']
  assert FlakyFileSystem.calls[opened] == 2


def test_every_step_reads_through_retries_and_counts_them(pictures, tiny_models):
  """The content and style branches' steps reading flaky:// in a small pipeline: each first open
  fails, nothing is lost, and each retry is counted in the job's `io_retries` metric. (Writing
  through a failure is the test above.)"""
  models = registry.resolve_model_set(tiny_models)
  contents = [ContentToDo(inputs.content_ref(f'{PREFIX}{path}'), {(style, 1.0): 'fp'
                                                                  for style in ('warm', 'cool')})
              for path in sorted((pictures / 'content').rglob('*.*'))]
  styles = inputs.style_refs([(f'{PREFIX}{path}', None)
                              for path in sorted((pictures / 'styles').iterdir())])
  out = str(pictures / 'out')
  render = Rendering()
  p = fn_api_pipeline()
  style_map = beam.pvalue.AsDict(p | PredictStyles(styles, models.prediction, 1, MAX_PIXELS))
  loaded = (p | beam.Create(contents)
            | beam.ParDo(LoadContent(render, MAX_PIXELS)).with_outputs(FAILED, main='images'))
  painted = loaded.images | beam.ParDo(
      Stylize(models.transfer, 1, render), style_map).with_outputs(FAILED, main='pictures')
  written = painted.pictures | beam.ParDo(
      WriteOutput(out, render, 'sha')).with_outputs(FAILED, main='rows')
  lost = (loaded[FAILED], painted[FAILED], written[FAILED]) | beam.Flatten()
  assert_that(lost, equal_to([]), label='NoDeadLetters')
  assert_that(written.rows | beam.Map(lambda row: row.status), equal_to(['written'] * 6),
              label='AllWritten')
  result = p.run()
  result.wait_until_finish()

  retries = result.metrics().query(MetricsFilter().with_name('io_retries'))['counters']
  assert sum(c.committed for c in retries) == 3 + 2  # contents and styles
  opened = {path for (operation, path), count in FlakyFileSystem.calls.items()
            if operation == 'open'}
  assert len(opened) == 5 and all(FlakyFileSystem.calls[('open', p)] == 2 for p in opened)
  assert len(list((pictures / 'out').rglob('*.jpg'))) == 6
