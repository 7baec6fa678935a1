"""The contact sheet: a static page of thumbnails, checked in headless Chromium."""
from __future__ import annotations

import os
import re
import shutil
import subprocess

import numpy as np
import pytest
from conftest import read_manifest
from PIL import Image

from pipeline import run as job
from transforms.gallery import render_page
from transforms.records import ManifestRow

REQUIRE_CHROMIUM_ENV = 'STYLIZE_REQUIRE_CHROMIUM'


def test_page_shows_failures_and_links_relatively():
  pair = {'content_id': 'my photo-1', 'content_uri': '/in/my photo.jpg', 'style_id': 'wave',
          'model_sha256': 'abc'}
  rows = [
      ManifestRow(**pair, strength=1.0, status='written', output_uri='/out/wave/my photo-1.jpg'),
      ManifestRow(**pair, strength=0.5, status='failed', stage='stylize',
                  error_type='BadModelInput', message='values <must> lie in [0, 1]')]
  page = render_page([('my photo-1', rows)], '/out', 'r1')
  assert 'href="wave/my%20photo-1.jpg"' in page
  assert 'src="_gallery/wave/my%20photo-1.jpg"' in page
  assert '<th>wave</th>' in page and '<th>wave @ 0.5</th>' in page
  assert 'class="failed"' in page and '&lt;must&gt;' in page and '<must>' not in page


def _chromium():
  found = shutil.which('chromium') or shutil.which('chromium-browser')
  if not found:
    if os.environ.get(REQUIRE_CHROMIUM_ENV):
      pytest.fail(f'chromium is missing and ${REQUIRE_CHROMIUM_ENV} says it must be there')
    pytest.skip('chromium is not installed (apt-get install chromium)')
  return [found, '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
          '--disable-background-networking', '--disable-component-update', '--disable-sync',
          '--allow-file-access-from-files', '--window-size=1400,1000']


def test_gallery_opens_in_chromium_with_every_thumbnail(pictures, tiny_models, tmp_path):
  (pictures / 'content' / 'broken.jpg').write_bytes(b'not a picture')
  out = tmp_path / 'out'
  job.run(['--content', str(pictures / 'content' / '**'), '--styles',
           str(pictures / 'styles' / '*'), '--output', str(out), '--model', tiny_models,
           '--runner', 'DirectRunner'])
  page = out / 'index.html'
  assert page.is_file()
  browser = _chromium() + [f'--user-data-dir={tmp_path / "profile"}']
  dom = subprocess.run(browser + ['--virtual-time-budget=5000', '--dump-dom', page.as_uri()],
                       capture_output=True, text=True, timeout=120, check=True).stdout
  written = [r for r in read_manifest(out) if r['status'] == 'written']
  assert len(written) == 6
  assert len(re.findall(r'<img class="thumb"', dom)) == 6
  assert re.search(r'data-loaded="6"', dom), 'every thumbnail must load'
  assert dom.count('class="failed"') == 2  # broken.jpg in both styles
  shot = tmp_path / 'shot.png'
  subprocess.run(browser + [f'--screenshot={shot}', page.as_uri()], capture_output=True,
                 timeout=120, check=True)
  pixels = np.asarray(Image.open(shot).convert('RGB'), np.float32)
  assert pixels.std() > 20, 'the screenshot is blank'
