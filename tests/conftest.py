"""Shared fixtures: tiny generated models, sample pictures, and the real assets in ../shared.

Tests that need ../shared skip where it is absent, and fail instead when $STYLIZE_REQUIRE_SHARED
is set (CI sets it), so a broken path can't pass silently.
"""
from __future__ import annotations

import os
import pathlib

import numpy as np
import pytest
from PIL import Image

pytest_plugins = ['gcs_emulator']  # the `gcs_emulator` and `gcs_bucket` fixtures

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / 'shared'
REQUIRE_SHARED_ENV = 'STYLIZE_REQUIRE_SHARED'


@pytest.fixture(scope='session')
def shared() -> pathlib.Path:
  """../shared, with its published models and real pictures."""
  if not (SHARED / 'models' / 'magenta').is_dir():
    message = f'{SHARED} (published models and real pictures) is absent'
    if os.environ.get(REQUIRE_SHARED_ENV):
      pytest.fail(f'{message}, and ${REQUIRE_SHARED_ENV} says it must be there')
    pytest.skip(message)
  return SHARED


@pytest.fixture(scope='session')
def magenta_dir(shared) -> str:
  return str(shared / 'models' / 'magenta')


@pytest.fixture(scope='session')
def tiny_models(tmp_path_factory) -> str:
  """A folder with tiny_prediction.tflite and tiny_transfer.tflite (usable as --model)."""
  from model_building import tiny  # imports TensorFlow: only when a test needs the models
  folder = tmp_path_factory.mktemp('tiny_models')
  tiny.build(str(folder))
  return str(folder)


def gradient_picture(width: int, height: int, seed: int = 0) -> Image.Image:
  """A smooth, colourful RGB picture with a little noise: compresses well, is clearly not flat."""
  rng = np.random.default_rng(seed)
  y, x = np.mgrid[0:height, 0:width].astype(np.float32)
  phase = rng.uniform(0, 2 * np.pi, 3)
  channels = [127 + 100 * np.sin(x / max(width, 1) * 6 + y / max(height, 1) * 3 + p) for p in phase]
  pixels = np.stack(channels, axis=-1) + rng.normal(0, 8, (height, width, 3))
  return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def make_pictures(root: pathlib.Path) -> pathlib.Path:
  """content/ (3 pictures, two of them named the same in different folders) and styles/ (2)."""
  (root / 'content' / 'a').mkdir(parents=True)
  (root / 'content' / 'b').mkdir()
  (root / 'styles').mkdir()
  gradient_picture(320, 200, 1).save(root / 'content' / 'a' / 'photo.jpg', quality=95)
  gradient_picture(200, 300, 2).save(root / 'content' / 'b' / 'photo.jpg', quality=95)
  gradient_picture(150, 150, 3).save(root / 'content' / 'b' / 'square.png')
  gradient_picture(300, 300, 4).save(root / 'styles' / 'warm.png')
  gradient_picture(256, 400, 5).save(root / 'styles' / 'cool.jpg', quality=95)
  return root


@pytest.fixture
def pictures(tmp_path) -> pathlib.Path:
  """The sample pictures of `make_pictures`, fresh for one test."""
  return make_pictures(tmp_path)


def fn_api_pipeline():
  """A TestPipeline on the FnApiRunner, the engine the job itself runs on with the DirectRunner
  (see `pipeline.run._direct_engine`). Beam's default would first try to download and start
  Prism: seconds lost offline, and another engine where it succeeds."""
  from apache_beam.runners.portability.fn_api_runner import fn_runner
  from apache_beam.testing import test_pipeline
  return test_pipeline.TestPipeline(runner=fn_runner.FnApiRunner())


def read_manifest(output: pathlib.Path, kind: str = 'results') -> list[dict]:
  import json
  rows = []
  for path in sorted((output / '_manifest').glob(f'{kind}-*.jsonl')):
    rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
  return rows
