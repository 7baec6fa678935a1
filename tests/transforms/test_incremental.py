"""Re-runs, step by step: a pair's fingerprint, DonePairs (what earlier manifests record and is
still there) and PlanPairs (skip it, or do it), each on real files.

A whole job run twice is checked in tests/test_reruns.py; here each rule has its own test."""
from __future__ import annotations

import dataclasses
import os
import time

import apache_beam as beam
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.util import assert_that, equal_to
from conftest import fn_api_pipeline, gradient_picture

from models.rendering import Rendering
from transforms import inputs
from transforms.incremental import Assignment, DonePairs, PlanPairs, fingerprint, for_planning
from transforms.records import (
  FAILED,
  PLANNED,
  SKIPPED,
  WRITTEN,
  ContentToDo,
  ImageRef,
  ManifestRow,
  StyleResult,
)

MODELS = ('sha-of-prediction', 'sha-of-transfer')
CONTENT = ImageRef('/in/photo.jpg', 'photo-1', version='100@1.0')
STYLE = ImageRef('/styles/warm.png', 'warm', version='200@2.0')
DEFAULT = Rendering()


@pytest.mark.parametrize('change', [
    dict(content=dataclasses.replace(CONTENT, version='101@3.0')),  # the source was rewritten
    dict(style=dataclasses.replace(STYLE, version='201@4.0')),  # so was the style
    dict(strength=0.5),
    dict(models=('sha-of-prediction', 'another transfer')),
    dict(models=('another prediction', 'sha-of-transfer')),
    dict(render=Rendering(jpeg_quality=70)),  # any rendering option
    dict(render=Rendering(frame='square')),
])
def test_a_fingerprint_changes_with_anything_the_output_is_made_from(change):
  recipe = dict(content=CONTENT, style=STYLE, strength=1.0, models=MODELS, render=Rendering())
  same = fingerprint(recipe['content'], recipe['style'], 1.0, MODELS, Rendering())
  assert fingerprint(*recipe.values()) == same  # deterministic
  recipe.update(change)
  assert fingerprint(*recipe.values()) != same


def styles(*refs: ImageRef) -> dict[str, StyleResult]:
  return {ref.id: StyleResult(ref) for ref in refs}


def plan(output, refs, done=(), style_map=None, strengths=(1.0,), render=DEFAULT):
  step = PlanPairs(str(output), render, strengths, MODELS)
  step.setup()
  grouped = ('the content key', {'ref': list(refs), 'done': list(done)})
  outputs = list(step.process(grouped, style_map or styles(STYLE)))
  planned = [o.value for o in outputs if getattr(o, 'tag', None) == PLANNED]
  assert planned == [len(style_map or styles(STYLE)) * len(strengths)] * len(
      {(r.uri, r.id, r.problem) for r in refs}), 'each content counts its pairs once'
  outputs = [o for o in outputs if getattr(o, 'tag', None) != PLANNED]
  todo = [o for o in outputs if isinstance(o, ContentToDo)]
  skipped = [o.value for o in outputs if isinstance(o, beam.pvalue.TaggedOutput)]
  assert all(o.tag == SKIPPED for o in outputs if isinstance(o, beam.pvalue.TaggedOutput))
  assert len(todo) + len(skipped) == len(outputs)
  return todo, skipped


def expected_fp(ref, style=STYLE, strength=1.0, render=DEFAULT, models=MODELS):
  return fingerprint(ref, style, strength, models, render)


def test_with_no_record_every_pair_is_to_do(tmp_path):
  cool = ImageRef('/styles/cool.jpg', 'cool', version='300@3.0')
  (todo,), skipped = plan(tmp_path, [CONTENT], style_map=styles(STYLE, cool),
                          strengths=(0.5, 1.0))
  assert skipped == [] and todo.ref == CONTENT
  assert todo.fingerprints == {(s.id, k): expected_fp(CONTENT, s, k)
                               for s in (STYLE, cool) for k in (0.5, 1.0)}


def test_a_pair_recorded_with_the_same_fingerprint_is_skipped(tmp_path):
  out = str(tmp_path / 'warm' / 'photo-1.jpg')
  todo, (row,) = plan(tmp_path, [CONTENT], done=[(out, expected_fp(CONTENT), ('t1', 'r1'))])
  assert todo == []
  assert row == ManifestRow(content_uri=CONTENT.uri, content_id='photo-1', style_id='warm',
                            strength=1.0, status=SKIPPED, model_sha256='sha-of-transfer',
                            output_uri=out, fingerprint=expected_fp(CONTENT))


def test_the_records_of_a_picture_gone_from_the_catalog_plan_nothing(tmp_path):
  out = str(tmp_path / 'warm' / 'photo-1.jpg')
  assert plan(tmp_path, [], done=[(out, expected_fp(CONTENT), ('t1', 'r1'))]) == ([], [])


def test_a_pair_recorded_with_another_fingerprint_is_done_again(tmp_path):
  out = str(tmp_path / 'warm' / 'photo-1.jpg')
  old = expected_fp(CONTENT, render=Rendering(jpeg_quality=70))
  (todo,), skipped = plan(tmp_path, [CONTENT], done=[(out, old, ('t1', 'r1'))])
  assert skipped == [] and todo.fingerprints == {('warm', 1.0): expected_fp(CONTENT)}


@pytest.mark.parametrize('newest_matches', [True, False])
def test_the_latest_record_of_an_output_decides(tmp_path, newest_matches):
  out = str(tmp_path / 'warm' / 'photo-1.jpg')
  current, other = expected_fp(CONTENT), 'fingerprint of an earlier version'
  first, last = (other, current) if newest_matches else (current, other)
  done = [(out, last, ('2026-01-03T00:00:00', 'r3')), (out, first, ('2026-01-01T00:00:00', 'r1')),
          (out, first, ('2026-01-02T00:00:00', 'r2'))]
  todo, skipped = plan(tmp_path, [CONTENT], done=done)
  assert (len(todo), len(skipped)) == ((0, 1) if newest_matches else (1, 0))


def test_a_ref_without_a_version_gets_the_files_and_a_rewritten_file_is_redone(tmp_path):
  """A listed picture's version is looked up after the fan-out: its size and mtime."""
  path = tmp_path / 'photo.png'
  gradient_picture(64, 48, 1).save(path)
  ref = inputs.content_ref(str(path))
  (todo,), _ = plan(tmp_path, [ref])
  stat = os.stat(path)
  assert todo.ref.version == f'{stat.st_size}@{stat.st_mtime}'
  out = str(tmp_path / 'warm' / f'{ref.id}.jpg')
  done = [(out, todo.fingerprints[('warm', 1.0)], ('t1', 'r1'))]
  assert plan(tmp_path, [ref], done=done)[0] == []  # unchanged: skipped

  time.sleep(0.01)
  gradient_picture(64, 48, 2).save(path)  # a new version of the source
  (redo,), skipped = plan(tmp_path, [ref], done=done)
  assert skipped == [] and redo.fingerprints != todo.fingerprints


def test_a_missing_file_is_still_planned_so_reading_it_makes_the_dead_letter(tmp_path):
  ref = inputs.content_ref(str(tmp_path / 'gone.jpg'))
  (todo,), skipped = plan(tmp_path, [ref])
  assert skipped == [] and todo.ref.version is None and list(todo.fingerprints) == [('warm', 1.0)]


def test_a_ref_with_a_problem_is_planned_never_skipped(tmp_path):
  ref = inputs.content_ref('/in/x.png', '../escape')
  (todo,), skipped = plan(tmp_path, [ref])
  assert skipped == [] and todo.ref == ref and list(todo.fingerprints) == [('warm', 1.0)]


def test_a_picture_listed_twice_is_planned_once(tmp_path):
  todo, _ = plan(tmp_path, [CONTENT, CONTENT])
  assert [t.ref for t in todo] == [CONTENT]


def test_a_built_in_style_at_full_strength_does_not_depend_on_the_prediction_model(tmp_path):
  bank = ImageRef('builtin:starry_night', 'starry_night', version='bank-1')
  (todo,), _ = plan(tmp_path, [CONTENT], style_map=styles(bank), strengths=(0.5, 1.0))
  assert todo.fingerprints[('starry_night', 1.0)] == expected_fp(
      CONTENT, bank, 1.0, models=('', 'sha-of-transfer'))
  # Below full strength the content's own bottleneck comes from the prediction network.
  assert todo.fingerprints[('starry_night', 0.5)] == expected_fp(CONTENT, bank, 0.5)


def _row(output, style_id, content_id, status, fp, run_id='r1'):
  return ManifestRow(content_uri=f'/in/{content_id}.jpg', content_id=content_id,
                     style_id=style_id, strength=1.0, status=status, model_sha256='sha',
                     output_uri=str(output / style_id / f'{content_id}.jpg') if fp else None,
                     fingerprint=fp, run_id=run_id, recorded_at=f'{run_id}-time').to_json()


def test_done_pairs_from_manifests_are_recorded_outputs_that_still_exist(tmp_path):
  """Before a snapshot exists (tests/transforms/test_state.py), the manifests are the state."""
  out = tmp_path / 'out'
  (out / '_manifest').mkdir(parents=True)
  (out / '_manifest' / 'results-r1-00000-of-00001.jsonl').write_text('\n'.join([
      _row(out, 'warm', 'a', WRITTEN, 'fp-a'),
      _row(out, 'warm', 'b', WRITTEN, 'fp-b'),  # its output was deleted since
      _row(out, 'cool', 'c', 'failed', None)]) + '\n')
  (out / '_manifest' / 'results-r2-00000-of-00001.jsonl').write_text(
      _row(out, 'cool', 'a', SKIPPED, 'fp-ca', run_id='r2') + '\n')
  # A damaged file (two lines that are not records) and a file that is not a results file.
  (out / '_manifest' / 'results-r0-00000-of-00001.jsonl').write_text('{"status": "writ\nnot json\n')
  (out / '_manifest' / 'failures-r1-00000-of-00001.jsonl').write_text(
      _row(out, 'warm', 'd', WRITTEN, 'fp-d') + '\n')
  for style_id, content_id in (('warm', 'a'), ('cool', 'a'), ('warm', 'd')):
    (out / style_id).mkdir(exist_ok=True)
    (out / style_id / f'{content_id}.jpg').write_bytes(b'an output')

  p = fn_api_pipeline()
  done = p | DonePairs(str(out), ['warm', 'cool'])
  assert_that(done | beam.Map(lambda record: for_planning(record)[1]), equal_to([
      (str(out / 'warm' / 'a.jpg'), 'fp-a', ('r1-time', 'r1')),
      (str(out / 'cool' / 'a.jpg'), 'fp-ca', ('r2-time', 'r2'))]))
  result = p.run()
  result.wait_until_finish()
  unreadable = result.metrics().query(
      MetricsFilter().with_name('manifest_lines_unreadable'))['counters']
  assert sum(c.committed for c in unreadable) == 2


def test_a_listed_version_is_taken_without_a_request(tmp_path):
  """The file is not even there: a lookup would have found no version."""
  ref = ImageRef(str(tmp_path / 'not-there.jpg'), 'sku-1', version='listed:2026-11-30')
  (todo,), _ = plan(tmp_path, [ref])
  assert todo.ref.version == 'listed:2026-11-30'
  assert todo.fingerprints[('warm', 1.0)] == expected_fp(ref)


def _planned(step, refs, style_map):
  step.setup()
  return list(step.process(('key', {'ref': list(refs), 'done': []}), style_map))


def test_a_picture_gets_only_the_styles_its_row_assigns_and_counts_only_those(tmp_path):
  cool = ImageRef('/styles/cool.jpg', 'cool', version='300@3.0')
  assignment = Assignment(('warm',), {STYLE.uri: 'warm', cool.uri: 'cool'})
  step = PlanPairs(str(tmp_path), DEFAULT, (0.5, 1.0), MODELS, assignment)
  own = dataclasses.replace(CONTENT, styles=(cool.uri,))
  outputs = _planned(step, [own], styles(STYLE, cool))
  (todo,) = [o for o in outputs if isinstance(o, ContentToDo)]
  assert set(todo.fingerprints) == {('cool', 0.5), ('cool', 1.0)}
  assert [o.value for o in outputs if getattr(o, 'tag', None) == PLANNED] == [2]
  # No styles of its own: the defaults.
  outputs = _planned(step, [CONTENT], styles(STYLE, cool))
  (todo,) = [o for o in outputs if isinstance(o, ContentToDo)]
  assert set(todo.fingerprints) == {('warm', 0.5), ('warm', 1.0)}


def test_a_picture_listed_twice_gets_the_styles_of_both_rows_once(tmp_path):
  cool = ImageRef('/styles/cool.jpg', 'cool', version='300@3.0')
  assignment = Assignment(('warm',), {STYLE.uri: 'warm', cool.uri: 'cool'})
  step = PlanPairs(str(tmp_path), DEFAULT, (1.0,), MODELS, assignment)
  rows = [dataclasses.replace(CONTENT, styles=(cool.uri,)),
          dataclasses.replace(CONTENT, styles=(cool.uri, STYLE.uri))]
  outputs = _planned(step, rows, styles(STYLE, cool))
  (todo,) = [o for o in outputs if isinstance(o, ContentToDo)]
  assert set(todo.fingerprints) == {('cool', 1.0), ('warm', 1.0)}
  assert [o.value for o in outputs if getattr(o, 'tag', None) == PLANNED] == [2]


def test_a_style_the_run_lacks_and_a_row_without_styles_are_dead_letters(tmp_path):
  assignment = Assignment((), {STYLE.uri: 'warm'})
  step = PlanPairs(str(tmp_path), DEFAULT, (1.0,), MODELS, assignment)
  own = dataclasses.replace(CONTENT, styles=(STYLE.uri, '/styles/gone.jpg'))
  outputs = _planned(step, [own], styles(STYLE))
  (failure,) = [o.value for o in outputs if getattr(o, 'tag', None) == FAILED]
  assert (failure.style_id, failure.stage, failure.error_type) == (
      '/styles/gone.jpg', 'plan', 'UnknownStyle')
  assert [o.value for o in outputs if getattr(o, 'tag', None) == PLANNED] == [2]
  outputs = _planned(step, [CONTENT], styles(STYLE))  # no styles column, no --styles
  (failure,) = [o.value for o in outputs if getattr(o, 'tag', None) == FAILED]
  assert failure.style_id is None and 'names no styles' in failure.message
  assert [o.value for o in outputs if getattr(o, 'tag', None) == PLANNED] == [1]
  assert not [o for o in outputs if isinstance(o, ContentToDo)]


@pytest.mark.parametrize('strength, render, expected', [
    (1.0, Rendering(), 'f0b546b907313631641d'),
    (0.5, Rendering(fmt='png', max_size=512), 'd7357d2768075873d7bf'),
])
def test_fingerprints_of_pairs_without_the_newer_options_are_what_they_always_were(
    strength, render, expected):
  """Computed with the code before sizes, masks and built models existed: a catalog rendered
  then is not rendered again by an upgrade, whatever --feather or --cutout say."""
  assert fingerprint(CONTENT, STYLE, strength, MODELS, render) == expected
  feathered = dataclasses.replace(render, feather=4)  # no mask to feather: the same
  assert fingerprint(CONTENT, STYLE, strength, MODELS, feathered) == expected
  cut = dataclasses.replace(render, cutout='background')  # every pair masked by its alpha
  assert fingerprint(CONTENT, STYLE, strength, MODELS, cut) != expected


def test_a_masked_pairs_fingerprint_covers_its_mask_and_feather():
  masked = dataclasses.replace(CONTENT, mask='/in/m.png', mask_version='1@1')
  base = fingerprint(masked, STYLE, 1.0, MODELS, DEFAULT)
  assert base != fingerprint(CONTENT, STYLE, 1.0, MODELS, DEFAULT)
  assert base != fingerprint(dataclasses.replace(masked, mask_version='2@2'), STYLE, 1.0, MODELS,
                             DEFAULT)
  assert base != fingerprint(masked, STYLE, 1.0, MODELS, Rendering(feather=3))
  # A row's own mask wins over --cutout: the cutout does not change its fingerprint.
  assert base == fingerprint(masked, STYLE, 1.0, MODELS, Rendering(cutout='foreground'))


def test_rows_of_one_picture_that_disagree_on_its_mask_take_the_smallest_in_any_order(tmp_path):
  rows = [dataclasses.replace(CONTENT, mask=None),
          dataclasses.replace(CONTENT, mask='/in/b.png', mask_version='1@1'),
          dataclasses.replace(CONTENT, mask='/in/a.png', mask_version='1@1')]
  step = PlanPairs(str(tmp_path), DEFAULT, (1.0,), MODELS)
  for order in (rows, rows[::-1], rows[1:] + rows[:1]):
    (todo,) = [o for o in _planned(step, order, styles(STYLE)) if isinstance(o, ContentToDo)]
    assert todo.ref.mask == '/in/a.png'
