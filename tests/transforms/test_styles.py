"""The style branch: PredictStyle called directly on real pictures and the tiny predictor, and
PredictStyles in a small pipeline for its metrics."""
from __future__ import annotations

import apache_beam as beam
import faults
import numpy as np
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.util import assert_that, equal_to
from conftest import fn_api_pipeline, gradient_picture

from models import imaging, registry, style_bank
from models.contract import StylePredictor
from models.fetch import local_copy
from transforms import inputs
from transforms.records import ImageRef
from transforms.styles import PredictStyle, PredictStyles

MAX_PIXELS = imaging.DEFAULT_MAX_PIXELS


@pytest.fixture(scope='module')
def prediction(tiny_models):
  return registry.resolve_model_set(tiny_models).prediction


def predict(model, ref: ImageRef):
  step = PredictStyle(model, 1, MAX_PIXELS)
  step.setup()
  ((style_id, result),) = step.process(ref)
  assert style_id == ref.id and result.ref == ref
  return result


def test_a_style_picture_gives_the_predictors_bottleneck(prediction, tmp_path):
  gradient_picture(256, 400, 5).save(tmp_path / 'cool.jpg', quality=95)
  result = predict(prediction, ImageRef(str(tmp_path / 'cool.jpg'), 'cool'))
  assert result.error is None and result.bottleneck.shape == (100,)
  direct = StylePredictor(local_copy(prediction)[0]).predict(imaging.style_input(
      imaging.decode((tmp_path / 'cool.jpg').read_bytes(), min_side=256).image))
  np.testing.assert_allclose(result.bottleneck, direct, atol=1e-6)


@pytest.mark.parametrize('make, ref_problem, stage', [
    (faults.truncated_jpeg, None, 'decode_style'),
    (faults.decompression_bomb, None, 'decode_style'),
    (lambda path: None, None, 'read_style'),  # no such file
    (lambda path: gradient_picture(300, 300).save(path), 'row 4 has no usable "uri"',
     'read_style'),
])
def test_a_broken_style_is_kept_with_its_failure(prediction, tmp_path, make, ref_problem, stage):
  path = tmp_path / 'broken.jpg'
  make(path)
  ref = ImageRef(str(path), 'broken', ref_problem)
  result = predict(prediction, ref)
  assert result.bottleneck is None
  failure = result.error
  assert (failure.stage, failure.style_id, failure.content_uri) == (stage, 'broken', '')
  if ref_problem:
    assert failure.message == ref_problem


def test_a_built_in_style_needs_no_prediction_network():
  """Launched with built-in styles only, the job passes no prediction model at all."""
  result = predict(None, ImageRef('builtin:great_wave', 'great_wave'))
  np.testing.assert_array_equal(result.bottleneck, style_bank.load()['great_wave'].bottleneck)


def test_each_distinct_style_is_predicted_once_and_counted(prediction, tmp_path):
  gradient_picture(300, 300, 4).save(tmp_path / 'warm.png')
  faults.truncated_jpeg(tmp_path / 'broken.jpg')
  refs = inputs.style_refs([(str(tmp_path / 'warm.png'), None), (str(tmp_path / 'warm.png'), None),
                            (str(tmp_path / 'broken.jpg'), None),
                            ('builtin:starry_night', 'starry_night')])
  p = fn_api_pipeline()
  results = p | PredictStyles(refs, prediction, 1, MAX_PIXELS)
  assert_that(results | beam.MapTuple(lambda style_id, r: (style_id, r.error is None)),
              equal_to([('warm', True), ('broken', False), ('starry_night', True)]))
  result = p.run()
  result.wait_until_finish()
  counts = {c.key.metric.name: c.committed for c in result.metrics().query(
      MetricsFilter().with_namespace('batch_stylize'))['counters']}
  assert counts == {'styles_predicted': 1, 'styles_failed': 1, 'styles_from_bank': 1,
                    'interpreter_loads': 1}
