"""`python -m model_building.optimize` end to end on a small Magenta-like model and generated
pictures, and the job's launch and steps running what it writes (`--model OUT/fast`)."""
from __future__ import annotations

import json
import shutil

import pytest
from conftest import gradient_picture

from model_building import optimize, tiny
from models import contract
from pipeline import launch, options
from transforms import inputs
from transforms.records import ContentToDo, StylizedImage
from transforms.styles import PredictStyle
from transforms.stylize import LoadContent, Stylize


@pytest.fixture(scope='module')
def optimized(tmp_path_factory):
  root = tmp_path_factory.mktemp('optimize')
  source = tiny.build_magenta_like(str(root / 'magenta_like_transfer.tflite'))
  catalog = root / 'catalog'
  catalog.mkdir()
  for i in range(8):
    gradient_picture(300 + 20 * i, 260, seed=10 + i).save(catalog / f'p{i}.jpg', quality=90)
  out = root / 'out'
  optimize.main(['--source', source, '--out', str(out), '--calibration', str(catalog / '*.jpg'),
                 '--rounds', '2'])
  return source, out


def test_writes_three_models_with_the_published_contract(optimized):
  _, out = optimized
  for folder in ('fast', 'calibrated', 'fp16'):
    path = out / folder / f'stylize_{folder}_transfer.tflite'
    contract.StyleTransfer(str(path))  # names, shapes, float32 in and out


def test_report_gives_size_latency_and_fidelity_on_held_out_pictures(optimized):
  source, out = optimized
  report = json.loads((out / 'report.json').read_text())
  assert report['source'] == source
  assert report['rebuild_psnr_db'] > 100
  held = report['evaluation']['pictures']
  calibration = report['evaluation']['calibration_pictures']
  assert len(held) == 2 and len(calibration) == 6 and not set(held) & set(calibration)
  for name in ('fast', 'calibrated', 'fp16'):
    row = report['models'][name]
    assert row['bytes'] == (out / name / f'stylize_{name}_transfer.tflite').stat().st_size
    assert row['latency_ms'] > 0
    assert 0 < row['ssim'] <= 1 and row['psnr_db'] > 10
  assert report['models']['fp16']['ssim'] > report['models']['calibrated']['ssim']
  assert '| fast |' in (out / 'report.md').read_text()


def test_without_calibration_pictures_there_is_no_calibrated_model(optimized, tmp_path):
  source, _ = optimized
  report = optimize.optimize(source, str(tmp_path), rounds=1)
  assert set(report['models']) == {'fast', 'fp16', 'source'}
  assert 'synthetic' in report['evaluation']['pictures']
  assert not (tmp_path / 'calibrated').exists()


def test_the_job_runs_an_optimized_folder_as_its_model(optimized, tiny_models, pictures, tmp_path):
  """Launch verifies the folder's files (and finds its own predictor by name); the job's steps,
  set up with them, paint every pair, with a predicted and a built-in style alike."""
  _, out = optimized
  model = tmp_path / 'fast'
  shutil.copytree(out / 'fast', model)
  shutil.copy(f'{tiny_models}/tiny_prediction.tflite', model)  # its own predictor, found by name
  settings, _ = options.parse(['--content', str(pictures / 'content' / '**'),
                               '--styles', str(pictures / 'styles' / '*'),
                               '--styles', 'builtin:great_wave',
                               '--output', str(tmp_path / 'stylized'), '--model', str(model)])
  plan = launch.prepare(settings)
  assert plan.prediction.uri == str(model / 'tiny_prediction.tflite')
  assert plan.transfer.uri == str(model / 'stylize_fast_transfer.tflite')
  predict = PredictStyle(plan.prediction, 1, settings.max_pixels)
  load = LoadContent(settings.rendering, settings.max_pixels)
  paint = Stylize(plan.transfer, 1, settings.rendering)
  for step in (predict, load, paint):
    step.setup()
  styles = dict(result for ref in plan.styles for result in predict.process(ref))
  assert sorted(styles) == ['cool', 'great_wave', 'warm']
  painted = []
  for path in sorted((pictures / 'content').rglob('*.*')):
    todo = ContentToDo(inputs.content_ref(str(path)), {(s, 1.0): 'fp' for s in styles})
    for content in load.process(todo):
      painted += paint.process(content, styles)
  assert len(painted) == 3 * 3 and all(isinstance(p, StylizedImage) for p in painted)


def test_a_folder_without_a_predictor_takes_the_default_one(optimized, magenta_dir):
  from models import registry
  _, out = optimized
  chosen = registry.resolve_model_set(str(out / 'fast'), magenta_dir)
  assert chosen.transfer.uri.endswith('stylize_fast_transfer.tflite')
  assert chosen.prediction.uri.startswith(magenta_dir)
  assert chosen.prediction.sha256 == registry.REGISTRY['magenta-int8'].prediction.sha256
