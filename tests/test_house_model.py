"""The project's own embedded transfer network ("house"): its contract, the job's plan with it and
built-in styles, and the offline demo (`./run_local.sh`, a whole run of that plan) with ../shared
out of sight."""
from __future__ import annotations

import hashlib
import os
import pathlib
import subprocess

import numpy as np
from conftest import ROOT, SHARED, read_manifest

from models import contract, registry, style_bank
from pipeline import launch, options


def test_the_embedded_model_keeps_the_published_contract():
  assert os.path.getsize(registry.HOUSE_TRANSFER) <= 400 * 1024
  transfer = contract.StyleTransfer(registry.HOUSE_TRANSFER)  # names, shapes, dtypes
  y, x = np.mgrid[0:384, 0:384] / 383.0
  content = np.stack([x, y, 0.5 * (x + y)], axis=-1).astype(np.float32)
  bank = style_bank.load()
  waves = transfer.stylize(content, bank['great_wave'].bottleneck)
  scream = transfer.stylize(content, bank['the_scream'].bottleneck)
  assert waves.shape == (384, 384, 3) and 0 <= waves.min() and waves.max() <= 1
  assert np.abs(waves - content).mean() > 0.05  # it paints
  assert np.abs(waves - scream).mean() > 0.02  # and the style matters


def test_the_job_plans_it_with_built_in_styles_and_no_predictor(pictures, tmp_path):
  """--model-dir (here an empty folder) never replaces the embedded file; built-in styles need
  no prediction network. The demo below runs this plan end to end."""
  settings, _ = options.parse(['--content', str(pictures / 'content' / '**'),
                               '--styles', 'builtin:starry_night', '--styles', 'builtin:edtaonisl',
                               '--output', str(tmp_path / 'out'), '--model', 'house',
                               '--model-dir', str(tmp_path)])
  plan = launch.prepare(settings)
  assert plan.prediction is None
  assert plan.transfer.uri == registry.HOUSE_TRANSFER and plan.transfer.sha256 == _house_sha256()


def _house_sha256():
  return hashlib.sha256(pathlib.Path(registry.HOUSE_TRANSFER).read_bytes()).hexdigest()


def test_run_local_demo_runs_offline_without_shared(tmp_path):
  env = {k: v for k, v in os.environ.items() if k != registry.MODEL_DIR_ENV}
  env['STYLIZE_SHARED'] = str(tmp_path / 'no-shared-here')
  done = subprocess.run([str(ROOT / 'run_local.sh')], cwd=tmp_path, env=env, text=True,
                        capture_output=True, timeout=900, check=False)
  assert done.returncode == 0, done.stderr[-3000:]
  rows = read_manifest(tmp_path / 'out')
  assert len(rows) == 4 * 3 and {r['status'] for r in rows} == {'written'}
  assert {r['style_id'] for r in rows} == {'starry_night', 'great_wave', 'the_scream'}
  assert all(pathlib.Path(r['output_uri']).stat().st_size > 1000 for r in rows)
  assert all(r['content_uri'].endswith(('.png', '.jpg')) and '/skimage/data/' in r['content_uri']
             for r in rows)  # the scikit-image wheel's sample photos
  assert not any(r['content_uri'].startswith(str(SHARED)) for r in rows)
  assert {r['model_sha256'] for r in rows} == {_house_sha256()}
