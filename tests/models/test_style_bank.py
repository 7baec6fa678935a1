"""The built-in style bank: committed bottlenecks that need no prediction network."""
from __future__ import annotations

import os

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.util import assert_that, equal_to
from conftest import fn_api_pipeline

from models import imaging, style_bank
from models.contract import StylePredictor
from models.registry import REGISTRY
from pipeline import launch, options
from pipeline import run as job
from pipeline.launch import LaunchError
from transforms import inputs
from transforms.records import ContentToDo, StyleResult
from transforms.styles import PredictStyles
from transforms.stylize import LoadContent, Stylize


def test_bank_has_twelve_described_paintings_of_100_finite_floats():
  bank = style_bank.load()
  assert len(bank) >= 12
  for entry in bank.values():
    assert entry.bottleneck.shape == (100,) and np.isfinite(entry.bottleneck).all()
    assert entry.description and np.linalg.norm(entry.bottleneck) > 1
  assert style_bank.names('builtin:all') == sorted(bank)
  with pytest.raises(KeyError, match='not a built-in style; there are: .*starry_night'):
    style_bank.names('builtin:mona_lisa')


def test_bank_matches_the_published_predictor(shared, magenta_dir):
  predictor = StylePredictor(os.path.join(magenta_dir, REGISTRY['magenta-int8'].prediction.name))
  for name, (file_name, _) in style_bank.PAINTINGS.items():
    picture = imaging.decode((shared / 'images' / 'style' / file_name).read_bytes()).image
    expected = predictor.predict(imaging.style_input(picture))
    np.testing.assert_allclose(style_bank.load()[name].bottleneck, expected, atol=1e-4)


def test_builtin_styles_run_without_a_prediction_model(pictures, tiny_models, tmp_path):
  """Launched with built-in styles only, the job verifies and ships no prediction network (this
  one does not exist); the style branch takes the bank's bottlenecks and Stylize paints them."""
  transfer = os.path.join(tiny_models, 'tiny_transfer.tflite')
  settings, _ = options.parse([
      '--content', str(pictures / 'content' / 'b' / '*'),
      '--styles', 'builtin:starry_night', '--styles', 'builtin:great_wave',
      '--output', str(tmp_path / 'out'), '--model', f'/nowhere/prediction.tflite,{transfer}'])
  plan = launch.prepare(settings)
  assert plan.prediction is None
  assert [ref.id for ref in plan.styles] == ['starry_night', 'great_wave']

  p = fn_api_pipeline()
  styles = p | PredictStyles(plan.styles, plan.prediction, 1, settings.max_pixels)
  assert_that(styles | beam.MapTuple(lambda style_id, result: (style_id, result.error)),
              equal_to([('starry_night', None), ('great_wave', None)]))
  result = p.run()
  result.wait_until_finish()
  counts = {c.key.metric.name: c.committed for c in result.metrics().query(
      MetricsFilter().with_namespace('batch_stylize'))['counters']}
  assert counts == {'styles_from_bank': 2}  # none predicted, no interpreter loaded

  bank = {ref.id: StyleResult(ref, bottleneck=style_bank.load()[ref.id].bottleneck)
          for ref in plan.styles}
  load = LoadContent(settings.rendering, settings.max_pixels)
  load.setup()
  (content,) = load.process(ContentToDo(
      inputs.content_ref(str(pictures / 'content' / 'b' / 'square.png')),
      {(style_id, 1.0): 'fp' for style_id in bank}))
  paint = Stylize(plan.transfer, 1, settings.rendering, plan.prediction)
  paint.setup()
  painted = list(paint.process(content, bank))
  assert sorted(p.style_id for p in painted) == ['great_wave', 'starry_night']
  assert all(p.picture.size == (150, 150) for p in painted)


def test_unknown_builtin_style_stops_at_launch(pictures, tiny_models, tmp_path):
  with pytest.raises(LaunchError, match='not a built-in style'):
    job.run(['--content', str(pictures / 'content' / 'b' / '*'), '--styles', 'builtin:nope',
             '--output', str(tmp_path / 'out'), '--model', tiny_models, '--runner',
             'DirectRunner'])
