"""Fault injection: every bad input costs exactly its own pairs, as dead letters with a reason.

One job runs over a catalog of good and bad pictures (all derived from generated ones) and two
styles, one of them broken; every (content, style) pair must end written or failed, as expected.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import faults
import pytest
from conftest import ROOT, gradient_picture, read_manifest
from PIL import Image

from pipeline import run as job

# name -> (how to make it, expected (status, stage, error_type or message part) for good styles)
WRITTEN = ('written', None, None)


def _save(picture, **kwargs):
  return lambda path: picture.save(path, **kwargs) or path


CONTENT = {
    'zero.jpg': (lambda p: p.write_bytes(b'') or p, ('failed', 'decode', 'not an image')),
    'truncated.jpg': (faults.truncated_jpeg, ('failed', 'decode', 'cannot decode')),
    'corrupt_chunk.png': (faults.png_with_corrupt_chunk, ('failed', 'decode', 'cannot decode')),
    'text.jpg': (lambda p: p.write_text('hello') or p, ('failed', 'decode', 'not an image')),
    'drawing.svg': (lambda p: p.write_text('<svg xmlns="http://www.w3.org/2000/svg"/>') or p,
                    ('failed', 'decode', 'not an image format Pillow can read')),
    'bomb.png': (faults.decompression_bomb, ('failed', 'decode', 'over the limit')),
    'one_pixel.png': (_save(gradient_picture(1, 1)), WRITTEN),
    'sliver.png': (_save(gradient_picture(3, 5000)), WRITTEN),
    'gray.png': (_save(gradient_picture(64, 48).convert('L')), WRITTEN),
    'palette_alpha.png': (faults.palette_with_transparency, WRITTEN),
    'rgba.png': (_save(gradient_picture(64, 48).convert('RGBA')), WRITTEN),
    'cmyk.jpg': (_save(gradient_picture(64, 48).convert('CMYK')), WRITTEN),
    'sixteen_bit.png': (faults.sixteen_bit_png, WRITTEN),
    'rotated.jpg': (faults.exif_rotated_jpeg, WRITTEN),
    'animated.gif': (faults.animated_gif, WRITTEN),
    'my photo é.jpg': (_save(gradient_picture(64, 48)), WRITTEN),
}
# list-file rows: (uri relative to the list file, id) -> expected
LISTED = {
    ('missing.jpg', ''): ('failed', 'read', 'FileNotFoundError'),
    ('a_folder.jpg', ''): ('failed', 'read', 'IsADirectoryError'),
    ('escape1.png', '../../escaped'): ('failed', 'read', 'not a safe relative name'),
    ('escape2.png', '/tmp/absolute'): ('failed', 'read', 'not a safe relative name'),
    ('ftp://example.invalid/x.jpg', ''): ('failed', 'read', 'Unable to get filesystem'),
    ('sku.png', 'shop/sku-7'): WRITTEN,
}
EXPECTED_SIZES = {'one_pixel.png': (1, 1), 'sliver.png': (1, 1024), 'rotated.jpg': (40, 60),
                  'gray.png': (64, 48)}


@pytest.fixture(scope='module')
def faulty_run(tiny_models, tmp_path_factory):
  root = tmp_path_factory.mktemp('faults')
  catalog, styles, out = root / 'catalog', root / 'styles', root / 'out'
  catalog.mkdir(), styles.mkdir()
  for name, (make, _) in CONTENT.items():
    make(catalog / name)
  listed = root / 'listed'
  listed.mkdir()
  (listed / 'a_folder.jpg').mkdir()
  for name in ('escape1.png', 'escape2.png', 'sku.png'):
    gradient_picture(64, 48).save(listed / name)
  listing = listed / 'catalog.csv'
  listing.write_text('uri,id\n' + ''.join(f'{uri},{given}\n' for uri, given in LISTED))
  gradient_picture(300, 300, 7).save(styles / 'good.png')
  faults.truncated_jpeg(styles / 'broken.jpg')
  outcome = job.run(['--content', str(catalog / '*.*'), '--content-list', str(listing),
                     '--styles', str(styles / '*'), '--output', str(out), '--model', tiny_models,
                     '--runner', 'DirectRunner'])
  return outcome, read_manifest(out), read_manifest(out, 'failures'), out


def _outcome(row):
  if row['status'] == 'written':
    return WRITTEN
  return row['status'], row['stage'], row['message'] if row['stage'] != 'read' or (
      'safe' in row['message'] or 'filesystem' in row['message']) else row['error_type']


def test_every_pair_is_accounted_for(faulty_run):
  outcome, rows, failures, _ = faulty_run
  contents = len(CONTENT) + len(LISTED)
  assert len(rows) == contents * 2 == outcome.summary['pairs_expected']
  assert outcome.summary['accounted']
  assert outcome.summary['pairs_written'] + outcome.summary['pairs_failed'] == contents * 2
  assert len(failures) == outcome.summary['pairs_failed']
  assert all(f['status'] == 'failed' and f['message'] and '\n' not in f['message']
             for f in failures)


def test_each_bad_content_costs_only_its_own_pairs(faulty_run):
  _, rows, _, _ = faulty_run
  good_style = {r['content_uri']: r for r in rows if r['style_id'] == 'good'}
  for name, (_, expected) in CONTENT.items():
    row = next(r for uri, r in good_style.items() if uri.endswith('/' + name))
    status, stage, detail = expected
    assert row['status'] == status, (name, row)
    if status == 'failed':
      assert row['stage'] == stage and detail in row['message'], (name, row)
  for (uri, given), (status, stage, detail) in LISTED.items():
    row = next(r for r in rows if r['style_id'] == 'good' and r['content_uri'].endswith(uri))
    assert row['status'] == status, (uri, given, row)
    if status == 'failed':
      assert row['stage'] == stage, row
      assert detail in row['message'] or detail == row['error_type'], row


def test_broken_style_fails_its_pairs_only(faulty_run):
  _, rows, _, _ = faulty_run
  good_contents = {r['content_uri'] for r in rows
                   if r['style_id'] == 'good' and r['status'] == 'written'}
  broken = [r for r in rows if r['style_id'] == 'broken']
  assert all(r['status'] == 'failed' for r in broken)
  # A good picture's pair with the broken style is charged to the style; a bad picture's pair,
  # to the picture (its first failure).
  charged_to_style = [r for r in broken if r['content_uri'] in good_contents]
  assert len(charged_to_style) == len(good_contents) > 0
  assert {r['stage'] for r in charged_to_style} == {'decode_style'}


def test_outputs_of_odd_pictures(faulty_run):
  _, rows, _, out = faulty_run
  written = {r['content_uri'].rsplit('/', 1)[1]: r for r in rows
             if r['status'] == 'written' and r['style_id'] == 'good'}
  for name, size in EXPECTED_SIZES.items():
    assert Image.open(written[name]['output_uri']).size == size, name
  assert written['animated.gif']['notes'] == ['first frame of 2']
  assert (out / 'good' / 'shop' / 'sku-7.jpg').is_file()
  # Nothing was written outside the output folder, whatever the ids said.
  assert not (out.parent / 'escaped.jpg').exists() and not os.path.exists('/tmp/absolute.jpg')
  for path in out.rglob('*'):
    assert path.resolve().is_relative_to(out.resolve())


def test_large_photo_is_decoded_in_bounded_memory(tmp_path):
  """An 8000x6000 JPEG (144 MB as RGB) through decode and preprocessing, in a fresh process."""
  photo = tmp_path / 'large.jpg'
  gradient_picture(8000, 6000).save(photo, quality=85)
  script = (
      'import json, resource, sys\n'
      'from models import imaging\n'
      'data = open(sys.argv[1], "rb").read()\n'
      'before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n'
      'decoded = imaging.decode(data, min_side=1024)\n'
      'x, box = imaging.content_input(decoded.image, "fit")\n'
      'picture = imaging.network_output(x, box, (1024, 768))\n'
      'peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n'
      'print(json.dumps([peak - before, decoded.image.size, picture.size]))\n')
  grown_kib, decoded_size, output_size = json.loads(subprocess.run(
      [sys.executable, '-c', script, str(photo)], cwd=ROOT, check=True, capture_output=True,
      text=True).stdout)
  assert decoded_size == [4000, 3000]  # JPEG decoded at 1/2 scale
  assert output_size == [1024, 768]
  assert grown_kib < 100 * 1024, f'{grown_kib} KiB: a full-size decode would take 144 MB'

