"""`python -m model_building.optimize` end to end on a small Magenta-like model and generated
pictures, and the job running what it writes (`--model OUT/fast`)."""
from __future__ import annotations

import json
import shutil

import pytest
from conftest import gradient_picture, read_manifest

from model_building import optimize, tiny
from models import contract
from pipeline import run as job


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
  _, out = optimized
  model = tmp_path / 'fast'
  shutil.copytree(out / 'fast', model)
  shutil.copy(f'{tiny_models}/tiny_prediction.tflite', model)  # its own predictor, found by name
  output = tmp_path / 'stylized'
  outcome = job.run(['--content', str(pictures / 'content' / '**'),
                     '--styles', str(pictures / 'styles' / '*'), '--styles', 'builtin:great_wave',
                     '--output', str(output), '--model', str(model)])
  rows = read_manifest(output)
  assert len(rows) == 3 * 3 and {r['status'] for r in rows} == {'written'}
  assert outcome.summary['pairs_written'] == 9


def test_a_folder_without_a_predictor_takes_the_default_one(optimized, magenta_dir):
  from models import registry
  _, out = optimized
  chosen = registry.resolve_model_set(str(out / 'fast'), magenta_dir)
  assert chosen.transfer.uri.endswith('stylize_fast_transfer.tflite')
  assert chosen.prediction.uri.startswith(magenta_dir)
  assert chosen.prediction.sha256 == registry.REGISTRY['magenta-int8'].prediction.sha256
