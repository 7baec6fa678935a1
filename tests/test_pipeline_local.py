"""The whole job on DirectRunner, once, with tiny generated models: that the steps are wired
together, the outputs, manifest, summary and gallery they make between them.

What each step does on its own is tested beside it, in tests/transforms/ (sizes, frames, strengths,
dead letters, ...); this run checks what only the whole graph shows. It uses several options at
once: a style named four ways, two strengths and a size cap.
"""
from __future__ import annotations

import json
import re

import pytest
from conftest import make_pictures, read_manifest
from PIL import Image

from pipeline import run as job
from transforms import gallery

SIZES = {'a/photo.jpg': (240, 150), 'b/photo.jpg': (160, 240), 'b/square.png': (150, 150)}


@pytest.fixture(scope='module')
def local_run(tiny_models, tmp_path_factory):
  pictures = make_pictures(tmp_path_factory.mktemp('local'))
  listed = pictures / 'styles.txt'
  listed.write_text(f"{pictures / 'styles' / 'warm.png'}\n# a comment\n\nstyles/warm.png\n")
  out = pictures / 'out'
  outcome = job.run([
      '--content', str(pictures / 'content' / '**'),
      '--styles', str(pictures / 'styles' / '*'), '--styles', str(pictures / 'styles' / 'warm.png'),
      '--styles-list', str(listed),
      '--strength', '0.5,1', '--max-size', '240',
      '--output', str(out), '--model', tiny_models, '--runner', 'DirectRunner'])
  return outcome, read_manifest(out), out


def test_every_pair_is_written_with_its_manifest_row(local_run):
  _, rows, out = local_run
  # warm.png is named four ways (glob, path, absolute and relative list rows): one style.
  assert {r['style_id'] for r in rows} == {'warm', 'cool'}
  assert len(rows) == 3 * 2 * 2
  assert {r['status'] for r in rows} == {'written'}
  # Two content files named photo.jpg in different folders get distinct outputs.
  assert len({r['output_uri'] for r in rows}) == len(rows)
  for row in rows:
    suffix = '' if row['strength'] == 1.0 else '.s0.50'
    path = out / row['style_id'] / f"{row['content_id']}{suffix}.jpg"
    assert row['output_uri'] == str(path)
    with Image.open(path) as picture:
      assert picture.format == 'JPEG'
      assert picture.size == SIZES[row['content_uri'].split('content/')[1]]
  assert read_manifest(out, 'failures') == []


def test_the_summary_counts_every_pair_and_is_written_beside_the_manifest(local_run):
  outcome, _, out = local_run
  summary = outcome.summary
  assert summary['pairs_expected'] == summary['pairs_written'] == 3 * 2 * 2
  assert summary['pairs_failed'] == summary['pairs_skipped'] == 0 and summary['accounted']
  assert summary['styles_predicted'] == 2
  # Stylize got the prediction network for strengths below 1: one own bottleneck per picture.
  assert summary['content_bottlenecks'] == 3
  # One PredictStyle and one Stylize instance (the latter with a predictor too) in a
  # single-process DirectRunner: each loads its interpreters once, in setup.
  assert 3 <= summary['interpreter_loads'] <= 2 * 3
  # The job wrote its own summary; the launcher's adds the metrics' timings to it.
  written = json.loads((out / '_manifest' / f"summary-{summary['run_id']}.json").read_text())
  assert written == {key: summary[key] for key in written}
  assert written['failed_by_stage'] == {} and written['started_at'] < written['finished_at']


def test_the_gallery_shows_every_output(local_run):
  outcome, rows, out = local_run
  page = (out / 'index.html').read_text()
  assert len(re.findall(r'<img class="thumb"', page)) == len(rows)
  for row in rows:
    relative = row['output_uri'][len(str(out)) + 1:].rsplit('.', 1)[0]
    assert (out / '_gallery' / f'{relative}.jpg').is_file()
  assert outcome.summary['thumbnails_written'] == len(rows)  # each made once
  assert len(list((out / '_gallery' / '_sources').iterdir())) == 3


def test_thumbnails_are_made_for_the_contents_the_page_shows(tiny_models, tmp_path,
                                                             monkeypatch):
  """By the steps that hold the pictures (the page's step cannot read any back here), for the
  same contents the page picks from the rows."""
  def unreadable(uri, *_):
    raise OSError(f'the page step read {uri} back')
  monkeypatch.setattr(gallery, 'read_bytes', unreadable)  # the run is in this process
  pictures = make_pictures(tmp_path)
  out = tmp_path / 'out'
  outcome = job.run(['--content', str(pictures / 'content' / '**'),
                     '--styles', str(pictures / 'styles' / '*'), '--gallery-rows', '2',
                     '--output', str(out), '--model', tiny_models, '--runner', 'DirectRunner'])
  page = (out / 'index.html').read_text()
  shown = re.findall(r'<tr><th title="[^"]*">([^<]+)</th>', page)
  assert len(shown) == 2
  thumbs = sorted(p.relative_to(out / '_gallery').as_posix()
                  for p in (out / '_gallery').rglob('*.jpg'))
  assert thumbs == sorted([f'_sources/{c}.jpg' for c in shown] +
                          [f'{s}/{c}.jpg' for s in ('cool', 'warm') for c in shown])
  assert outcome.summary['thumbnails_written'] == 4
