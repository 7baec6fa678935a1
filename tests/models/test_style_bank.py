"""The built-in style bank: committed bottlenecks that need no prediction network."""
from __future__ import annotations

import os

import numpy as np
import pytest
from conftest import read_manifest

from models import imaging, style_bank
from models.contract import StylePredictor
from models.registry import REGISTRY
from pipeline import run as job
from pipeline.launch import LaunchError


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
  out = tmp_path / 'out'
  transfer = os.path.join(tiny_models, 'tiny_transfer.tflite')
  outcome = job.run(['--content', str(pictures / 'content' / 'b' / '*'),
                     '--styles', 'builtin:starry_night', '--styles', 'builtin:great_wave',
                     '--output', str(out), '--model', f'/nowhere/prediction.tflite,{transfer}',
                     '--runner', 'DirectRunner'])
  assert outcome.summary['styles_from_bank'] == 2 and outcome.summary['styles_predicted'] == 0
  assert outcome.summary['pairs_written'] == 4
  assert {r['style_id'] for r in read_manifest(out)} == {'starry_night', 'great_wave'}


def test_unknown_builtin_style_stops_at_launch(pictures, tiny_models, tmp_path):
  with pytest.raises(LaunchError, match='not a built-in style'):
    job.run(['--content', str(pictures / 'content' / 'b' / '*'), '--styles', 'builtin:nope',
             '--output', str(tmp_path / 'out'), '--model', tiny_models, '--runner',
             'DirectRunner'])
