"""The contact sheet: the page's HTML, WriteGallery in a small pipeline over real outputs, and the
page opened in headless Chromium."""
from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.util import assert_that, equal_to
from conftest import fn_api_pipeline, gradient_picture
from PIL import Image

from models.rendering import Rendering
from transforms import inputs
from transforms.gallery import (
  ContactSheet,
  FirstKeys,
  ShownContents,
  WriteGallery,
  render_page,
)
from transforms.records import (
  ContentImage,
  ContentToDo,
  Failure,
  ManifestRow,
  StylizedImage,
  content_key,
)
from transforms.stylize import LoadContent
from transforms.write import WriteOutput

REQUIRE_CHROMIUM_ENV = 'STYLIZE_REQUIRE_CHROMIUM'


def test_page_shows_failures_and_links_relatively():
  pair = {'content_id': 'my photo-1', 'content_uri': '/in/my photo.jpg', 'style_id': 'wave',
          'model_sha256': 'abc'}
  rows = [
      ManifestRow(**pair, strength=1.0, status='written', output_uri='/out/wave/my photo-1.jpg'),
      ManifestRow(**pair, strength=0.5, status='failed', stage='stylize',
                  error_type='BadModelInput', message='values <must> lie in [0, 1]')]
  failures = [('/in/my photo.jpg', 'wave', '0.5', 'stylize', 'BadModelInput',
               'values <must> lie in [0, 1]')]
  page = render_page([('my photo-1', rows)], '/out', 'r1', failures, failed=3)
  assert 'href="wave/my%20photo-1.jpg"' in page
  assert '<th>content</th><th>source</th>' in page
  assert 'src="_gallery/_sources/my%20photo-1.jpg"' in page
  # The reasons, listed below the sheet, with where to find the failures not listed.
  assert re.search(r'<h2 id="failures">Failures: 3 \(the first 1 shown; all of them are in '
                   r'<code>_manifest/failures-r1-\*.jsonl</code>\)</h2>', page)
  assert ('<li><b>/in/my photo.jpg</b> in <b>wave</b> @ 0.5: stylize: BadModelInput: values '
          '&lt;must&gt; lie in [0, 1]</li>') in page
  assert 'src="_gallery/wave/my%20photo-1.jpg"' in page
  assert '<th>wave</th>' in page and '<th>wave @ 0.5</th>' in page
  assert 'class="failed"' in page and '&lt;must&gt;' in page and '<must>' not in page


def written_rows(output, contents=('a', 'b', 'c'), styles=('warm', 'cool'),
                 sources=None) -> list[ManifestRow]:
  """Real outputs, written by WriteOutput (a PNG with transparency among them), and their rows;
  with their source pictures saved in the folder `sources` when it is given."""
  write = WriteOutput(str(output), Rendering(fmt='png'), 'sha')
  write.setup()
  rows = []
  for k, content_id in enumerate(contents):
    picture = gradient_picture(120 + 40 * k, 90, seed=k)
    uri = f'/in/{content_id}.jpg'
    if sources:
      sources.mkdir(exist_ok=True)
      uri = str(sources / f'{content_id}.jpg')
      picture.save(uri, quality=90)
    if content_id == 'c':
      picture.putalpha(Image.new('L', picture.size, 128))
    for style_id in styles:
      rows += write.process(StylizedImage(
          ref=inputs.content_ref(uri, content_id), style_id=style_id,
          strength=1.0, fingerprint='fp', picture=picture))
  return rows


def gallery(output, rows, max_rows=200):
  with fn_api_pipeline() as p:
    _ = p | beam.Create(rows) | WriteGallery(str(output), 'r1', max_rows)


def test_the_gallery_shows_the_first_contents_with_a_thumbnail_per_output(tmp_path):
  rows = written_rows(tmp_path)
  gallery(tmp_path, rows, max_rows=2)
  page = (tmp_path / 'index.html').read_text()
  assert re.findall(r'<tbody>\n<tr><th title="/in/a.jpg">a</th>.*\n<tr><th title="/in/b.jpg">b'
                    r'</th>.*\n</tbody>', page)  # 'c' sorts last: not shown
  thumbs = sorted(p.relative_to(tmp_path / '_gallery').as_posix()
                  for p in (tmp_path / '_gallery').rglob('*.jpg'))
  assert thumbs == ['cool/a.jpg', 'cool/b.jpg', 'warm/a.jpg', 'warm/b.jpg']
  for thumb in (tmp_path / '_gallery').rglob('*.jpg'):
    with Image.open(thumb) as small:
      assert small.format == 'JPEG' and max(small.size) <= 192


def test_a_failed_gallery_never_fails_the_run(tmp_path):
  """The page is a convenience: where it cannot be written the pipeline still ends well."""
  rows = written_rows(tmp_path / 'out', contents=('a',), styles=('warm',))
  (tmp_path / 'out' / 'index.html').mkdir()  # a folder where the page should go
  gallery(tmp_path / 'out', rows)
  assert (tmp_path / 'out' / '_gallery' / 'warm' / 'a.jpg').is_file()


def _chromium():
  found = shutil.which('chromium') or shutil.which('chromium-browser')
  if not found:
    if os.environ.get(REQUIRE_CHROMIUM_ENV):
      pytest.fail(f'chromium is missing and ${REQUIRE_CHROMIUM_ENV} says it must be there')
    pytest.skip('chromium is not installed (apt-get install chromium)')
  return [found, '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
          '--disable-background-networking', '--disable-component-update', '--disable-sync',
          '--allow-file-access-from-files', '--window-size=1400,1000']


def test_gallery_opens_in_chromium_with_every_thumbnail(tmp_path):
  browser = _chromium() + [f'--user-data-dir={tmp_path / "profile"}']
  out = tmp_path / 'out'
  broken = inputs.content_ref('/in/broken.jpg', 'broken')
  failed = [Failure.of(ValueError('not a picture'), 'decode', broken, style_id, 1.0).row('sha')
            for style_id in ('warm', 'cool')]
  gallery(out, written_rows(out, sources=tmp_path / 'in') + failed)
  page = out / 'index.html'
  dom = subprocess.run(browser + ['--virtual-time-budget=5000', '--dump-dom', page.as_uri()],
                       capture_output=True, text=True, timeout=120, check=True).stdout
  assert len(re.findall(r'<img class="thumb"', dom)) == 6
  assert re.search(r'data-loaded="6"', dom), 'every thumbnail must load'
  # a, b and c's sources load; broken.jpg's falls back to its name.
  assert re.search(r'data-sources="3"', dom), 'every source thumbnail must load'
  assert dom.count('class="failed"') == 2  # broken.jpg in both styles
  assert dom.count('<li><b>/in/broken.jpg</b> in <b>') == 2
  assert 'decode: ValueError: not a picture' in dom
  shot = tmp_path / 'shot.png'
  subprocess.run(browser + [f'--screenshot={shot}', page.as_uri()], capture_output=True,
                 timeout=120, check=True)
  pixels = np.asarray(Image.open(shot).convert('RGB'), np.float32)
  assert pixels.std() > 20, 'the screenshot is blank'


def _row(content_id: str, style_id: str, failed: bool = False) -> ManifestRow:
  return ManifestRow(content_id=content_id, content_uri=f'/in/{content_id}.jpg',
                     style_id=style_id, strength=1.0, model_sha256='sha',
                     status='failed' if failed else 'written', stage='decode' if failed else None,
                     output_uri=None if failed else f'/out/{style_id}/{content_id}.jpg')


def test_the_sheet_keeps_the_first_contents_without_grouping_every_row():
  combine = ContactSheet(3)
  bundles = [[_row('e', 'warm'), _row('a', 'warm'), _row('a', 'cool'), _row('c', 'warm', True),
              _row('f', 'warm', True)],
             [_row('b', 'warm'), _row('d', 'warm', True), _row('a', 'dry'), _row('g', 'cool')]]
  parts = []
  for bundle in bundles:
    part = combine.create_accumulator()
    for row in bundle:
      part = combine.add_input(part, row)
    contents, _, failures, _ = part
    assert len(contents) <= 3 and len(failures) <= 3  # a bundle's partial result stays small
    parts.append(part)
  shown = combine.extract_output(combine.merge_accumulators(parts))
  assert [key for key, _ in shown.contents] == [content_key(c, f'/in/{c}.jpg') for c in 'abc']
  assert sorted(row.style_id for row in dict(shown.contents)[content_key('a', '/in/a.jpg')]) == [
      'cool', 'dry', 'warm']  # every row of a shown content, from every bundle
  assert [failure[0] for failure in shown.failures] == ['/in/c.jpg', '/in/d.jpg', '/in/f.jpg']
  assert shown.failed == 3
  smaller = ContactSheet(2)
  some = smaller.create_accumulator()
  for row in bundles[0] + bundles[1]:
    some = smaller.add_input(some, row)
  assert [f[0] for f in smaller.extract_output(some).failures] == ['/in/c.jpg', '/in/d.jpg']
  assert smaller.extract_output(some).failed == 3  # all failures counted, the first 2 listed
  # A content pushed out by smaller ones stays out when more of its rows come, even after a
  # merge; a kept content gets every later row.
  later = smaller.merge_accumulators([some, smaller.create_accumulator()])
  for row in (_row('e', 'cool'), _row('b', 'cool'), _row('c', 'dry')):
    later = smaller.add_input(later, row)
  shown = smaller.extract_output(later)
  assert [(rows[0].content_id, sorted(r.style_id for r in rows)) for _, rows in shown.contents] == [
      ('a', ['cool', 'dry', 'warm']), ('b', ['cool', 'warm'])]


def test_an_empty_run_gets_an_empty_page(tmp_path):
  gallery(tmp_path, [])
  page = (tmp_path / 'index.html').read_text()
  assert 'Content pictures: 0 (rows)' in page and 'Failures: none' in page


def test_source_thumbnails_are_made_for_new_or_changed_sources(tmp_path):
  out = tmp_path / 'out'
  rows = written_rows(out, contents=('a', 'b'), styles=('warm',), sources=tmp_path / 'in')
  gallery(out, rows)
  sources = out / '_gallery' / '_sources'
  assert sorted(p.name for p in sources.iterdir()) == ['a.jpg', 'b.jpg']
  with Image.open(sources / 'b.jpg') as small:
    assert small.format == 'JPEG' and small.size == (160, 90)  # within 192 px: never enlarged
  before = (sources / 'a.jpg').stat().st_mtime_ns
  gallery(out, [dataclasses.replace(row, status='skipped') for row in rows])
  assert (sources / 'a.jpg').stat().st_mtime_ns == before  # nothing changed: not made again
  gallery(out, rows)  # written again (a changed source): made again
  assert (sources / 'a.jpg').stat().st_mtime_ns != before


def test_thumbnails_are_made_for_what_changed(tmp_path):
  rows = written_rows(tmp_path, contents=('a', 'b'), styles=('warm',))
  gallery(tmp_path, rows)
  thumbs = {p.name: p for p in (tmp_path / '_gallery' / 'warm').iterdir()}
  assert set(thumbs) == {'a.jpg', 'b.jpg'}
  before = {name: path.stat().st_mtime_ns for name, path in thumbs.items()}
  thumbs['b.jpg'].unlink()
  skipped = [dataclasses.replace(row, status='skipped') for row in rows]
  gallery(tmp_path, skipped)  # the next night: nothing changed, but b's thumbnail went missing
  assert (tmp_path / '_gallery' / 'warm' / 'a.jpg').stat().st_mtime_ns == before['a.jpg']
  assert (tmp_path / '_gallery' / 'warm' / 'b.jpg').exists()


def test_shown_contents_are_the_first_distinct_keys_of_the_listing():
  """A picture listed on several rows (per-item styles, overlapping globs) counts once."""
  key = {c: content_key(c, f'/in/{c}.jpg') for c in 'abcde'}
  listed = [key[c] for c in 'dbeaacab'] + [content_key(None, '/in/x y.jpg')]
  with fn_api_pipeline() as p:
    shown = (p | beam.Create([(k, 'ref') for k in listed]) | ShownContents(3))
    assert_that(shown, equal_to([frozenset({key['a'], key['b'], key['c']})]))
  first = FirstKeys(2)
  parts = []
  for bundle in ('aab', 'ba', 'c'):
    part = first.create_accumulator()
    for c in bundle:
      part = first.add_input(part, key[c])
    assert len(part) <= 2
    parts.append(part)
  assert first.extract_output(first.merge_accumulators(parts)) == {key['a'], key['b']}


def test_the_writing_step_makes_the_thumbnails_of_shown_contents_only(tmp_path):
  """From the picture in hand, the widest of its files, transparency shown on white."""
  write = WriteOutput(str(tmp_path), Rendering(fmt='png', sizes=(60, 120)), 'sha')
  write.setup()
  picture = gradient_picture(160, 100)
  picture.putalpha(Image.new('L', picture.size, 0))  # wholly transparent: white on the sheet
  shown = frozenset({content_key('a', '/in/a.jpg')})
  for content_id in 'ab':
    (row,) = write.process(StylizedImage(ref=inputs.content_ref(f'/in/{content_id}.jpg',
                                                                content_id),
                                         style_id='warm', strength=1.0, fingerprint='fp',
                                         picture=picture), shown)
  assert row.output_uri.endswith('b.w120.png')
  assert [p.name for p in (tmp_path / '_gallery' / 'warm').iterdir()] == ['a.w120.jpg']
  with Image.open(tmp_path / '_gallery' / 'warm' / 'a.w120.jpg') as small:
    assert small.size == (120, 75)  # the widest file's size, never enlarged
    assert np.asarray(small.convert('RGB')).min() >= 250


def test_the_page_step_makes_only_the_thumbnails_the_writing_steps_did_not(tmp_path):
  out = tmp_path / 'out'
  rows = written_rows(out, contents=('a', 'b'), styles=('warm', 'cool'), sources=tmp_path / 'in')
  skipped_a = dataclasses.replace(rows[0], style_id='dry', status='skipped',
                                  output_uri=rows[0].output_uri.replace('/warm/', '/dry/'))
  (out / 'dry').mkdir()
  shutil.copy(rows[0].output_uri, skipped_a.output_uri)  # written by an earlier run
  made = {content_key('a', str(tmp_path / 'in' / 'a.jpg'))}
  with fn_api_pipeline() as p:
    _ = (p | 'Rows' >> beam.Create(rows + [skipped_a])
         | WriteGallery(str(out), 'r1', 200, made=p | 'Made' >> beam.Create([frozenset(made)])))
  thumbs = sorted(p.relative_to(out / '_gallery').as_posix()
                  for p in (out / '_gallery').rglob('*.jpg'))
  # a's written outputs and its source were made by the steps that had them (not in this test):
  # the page's step left them, made b's, and made a's skipped output's, which had none.
  assert thumbs == ['_sources/b.jpg', 'cool/b.jpg', 'dry/a.jpg', 'warm/b.jpg']


def test_a_thumbnail_that_cannot_be_written_costs_nothing_else(tmp_path, caplog):
  """The pair is written and recorded, the source still goes on to the network; the failure is
  logged and not counted as a thumbnail written."""
  (tmp_path / '_gallery').write_text('a file where the folder should be')
  key = content_key('a', '/in/a.jpg')
  write = WriteOutput(str(tmp_path), Rendering(), 'sha')
  write.setup()
  (row,) = write.process(StylizedImage(ref=inputs.content_ref('/in/a.jpg', 'a'), style_id='warm',
                                       strength=1.0, fingerprint='fp',
                                       picture=gradient_picture(64, 48)), frozenset({key}))
  assert row.status == 'written' and os.path.isfile(row.output_uri)
  assert f'thumbnail of {row.output_uri} not written' in caplog.text
  assert (tmp_path / '_gallery').is_file()


def test_a_source_thumbnail_that_cannot_be_written_costs_nothing_else(tmp_path, caplog):
  source = tmp_path / 'a.jpg'
  gradient_picture(120, 80).save(source, quality=90)
  ref = inputs.content_ref(str(source), 'a')
  out = tmp_path / 'out'
  out.mkdir()
  (out / '_gallery').write_text('a file where the folder should be')
  load = LoadContent(Rendering(), 10**8, gallery_at=str(out))
  load.setup()
  (content,) = load.process(ContentToDo(ref, {('warm', 1.0): 'fp'}),
                            frozenset({content_key('a', str(source))}))
  assert isinstance(content, ContentImage) and content.network_input.shape == (384, 384, 3)
  assert f'thumbnail of {source} not written' in caplog.text
