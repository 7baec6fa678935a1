"""The whole job on DirectRunner, with tiny generated models: outputs, manifest, counters."""
from __future__ import annotations

import numpy as np
from conftest import gradient_picture, read_manifest
from PIL import Image

from pipeline import run as job


def _run(pictures, models, output, *extra):
  return job.run([
      '--content', str(pictures / 'content' / '**'),
      '--styles', str(pictures / 'styles' / '*'),
      '--output', str(output), '--model', models, '--runner', 'DirectRunner', *extra])


def test_every_pair_is_written_with_its_manifest_row(pictures, tiny_models, tmp_path):
  out = tmp_path / 'out'
  outcome = _run(pictures, tiny_models, out)

  rows = read_manifest(out)
  assert len(rows) == 3 * 2
  assert {r['status'] for r in rows} == {'written'}
  assert {r['style_id'] for r in rows} == {'warm', 'cool'}
  # Two content files named photo.jpg in different folders get distinct outputs.
  assert len({r['output_uri'] for r in rows}) == 6
  for row in rows:
    path = out / row['style_id'] / (row['content_id'] + '.jpg')
    assert row['output_uri'] == str(path)
    assert Image.open(path).format == 'JPEG'
  assert outcome.summary['pairs_written'] == 6
  assert outcome.summary['pairs_failed'] == 0
  assert read_manifest(out, 'failures') == []


def test_outputs_keep_the_source_aspect_and_size_cap(pictures, tiny_models, tmp_path):
  out = tmp_path / 'out'
  _run(pictures, tiny_models, out, '--max-size', '240')
  sizes = {r['content_uri'].split('content/')[1]: Image.open(r['output_uri']).size
           for r in read_manifest(out)}
  assert sizes == {'a/photo.jpg': (240, 150), 'b/photo.jpg': (160, 240), 'b/square.png': (150, 150)}


def test_square_frame_is_the_centre_crop(pictures, tiny_models, tmp_path):
  out = tmp_path / 'out'
  _run(pictures, tiny_models, out, '--frame', 'square', '--format', 'png')
  sizes = {Image.open(r['output_uri']).size for r in read_manifest(out)}
  assert sizes == {(200, 200), (150, 150)}
  assert all(r['output_uri'].endswith('.png') for r in read_manifest(out))


def test_each_distinct_style_is_predicted_once(pictures, tiny_models, tmp_path):
  listed = pictures / 'styles.txt'
  listed.write_text(f"{pictures / 'styles' / 'warm.png'}\n# a comment\n\nstyles/warm.png\n")
  outcome = job.run([
      '--content', str(pictures / 'content' / 'b' / '*'),
      '--styles', str(pictures / 'styles' / '*'), '--styles', str(pictures / 'styles' / 'warm.png'),
      '--styles-list', str(listed),
      '--output', str(tmp_path / 'out'), '--model', tiny_models, '--runner', 'DirectRunner'])
  # warm.png is named four ways (glob, path, absolute and relative list rows): one style.
  assert outcome.summary['styles_predicted'] == 2
  assert outcome.summary['pairs_written'] == 2 * 2
  assert {r['style_id'] for r in read_manifest(tmp_path / 'out')} == {'warm', 'cool'}


def test_interpreter_loaded_once_per_dofn_instance(pictures, tiny_models, tmp_path):
  outcome = _run(pictures, tiny_models, tmp_path / 'out')
  # One PredictStyle and one Stylize instance in a single-process DirectRunner.
  assert 2 <= outcome.summary['interpreter_loads'] <= 2 * 2


def test_output_differs_by_style_and_from_input(pictures, tiny_models, tmp_path):
  out = tmp_path / 'out'
  _run(pictures, tiny_models, out, '--format', 'png')
  rows = {(r['content_uri'], r['style_id']): r['output_uri'] for r in read_manifest(out)}
  source_uri = str(pictures / 'content' / 'b' / 'square.png')
  source = np.asarray(Image.open(source_uri), dtype=np.float32)
  warm = np.asarray(Image.open(rows[(source_uri, 'warm')]), dtype=np.float32)
  cool = np.asarray(Image.open(rows[(source_uri, 'cool')]), dtype=np.float32)
  assert np.abs(warm - source).mean() > 20
  assert np.abs(warm - cool).mean() > 2


def test_content_list_file_csv_with_ids(pictures, tiny_models, tmp_path):
  listing = pictures / 'catalog.csv'
  listing.write_text('uri,id\ncontent/a/photo.jpg,sku-1\ncontent/b/photo.jpg,\n')
  out = tmp_path / 'out'
  job.run(['--content-list', str(listing), '--styles', str(pictures / 'styles' / 'warm.png'),
           '--output', str(out), '--model', tiny_models, '--runner', 'DirectRunner'])
  ids = sorted(r['content_id'] for r in read_manifest(out))
  assert ids[1] == 'sku-1' and ids[0].startswith('photo-')
  assert (out / 'warm' / 'sku-1.jpg').is_file()


def test_strengths_blend_with_the_content_bottleneck_computed_once(pictures, tiny_models,
                                                                    tmp_path):
  out = tmp_path / 'out'
  outcome = _run(pictures, tiny_models, out, '--strength', '0,0.5', '--strength', '1',
                 '--format', 'png')
  rows = read_manifest(out)
  assert len(rows) == 3 * 2 * 3 == outcome.summary['pairs_expected']
  assert outcome.summary['content_bottlenecks'] == 3  # once per content picture, not per pair
  assert {r['strength'] for r in rows} == {0.0, 0.5, 1.0}
  by_pair = {(r['content_uri'], r['style_id'], r['strength']): r['output_uri'] for r in rows}
  square = str(pictures / 'content' / 'b' / 'square.png')
  assert by_pair[(square, 'warm', 0.5)].endswith('.s0.50.png')
  assert by_pair[(square, 'warm', 1.0)].endswith('/warm/' + square_id(rows, square) + '.png')
  pixels = {key: np.asarray(Image.open(uri), np.int16) for key, uri in by_pair.items()}
  # Strength 0 is the content's own style alone: the same whatever the style.
  np.testing.assert_array_equal(pixels[(square, 'warm', 0.0)], pixels[(square, 'cool', 0.0)])
  # And strength grows the distance from it.
  far = lambda s: np.abs(pixels[(square, 'warm', s)] - pixels[(square, 'warm', 0.0)]).mean()
  assert 0 < far(0.5) < far(1.0)


def square_id(rows, uri):
  return next(r['content_id'] for r in rows if r['content_uri'] == uri)


def test_full_strength_needs_no_content_bottleneck(pictures, tiny_models, tmp_path):
  outcome = _run(pictures, tiny_models, tmp_path / 'out')
  assert outcome.summary['content_bottlenecks'] == 0


def test_working_size_paints_large_pictures_in_tiles(pictures, tiny_models, tmp_path):
  gradient_picture(1200, 800, seed=9).save(pictures / 'content' / 'b' / 'large.png')
  out = tmp_path / 'out'
  outcome = _run(pictures, tiny_models, out, '--working-size', '900', '--max-size', '1200',
                 '--format', 'png')
  assert outcome.summary['pairs_written'] == 8
  large = [r for r in read_manifest(out) if r['content_uri'].endswith('large.png')]
  assert {Image.open(r['output_uri']).size for r in large} == {(1200, 800)}
