"""The content branch's two DoFns, called as Beam calls them (`setup`, then `process`), on real
pictures and the tiny generated models: what each yields, and each dead letter's stage and reason.

`LoadContent` turns a `ContentToDo` into a framed `ContentImage`, or charges its failure to every
(style, strength) it needed; `Stylize` paints one `StylizedImage` per pair, or a dead letter.
"""
from __future__ import annotations

import dataclasses
import pathlib
import subprocess
import sys

import apache_beam as beam
import faults
import numpy as np
import pytest
from apache_beam.metrics.metric import MetricsFilter
from conftest import fn_api_pipeline, gradient_picture
from PIL import Image

from models import imaging, registry
from models.rendering import Rendering
from transforms import inputs
from transforms.records import (
  FAILED,
  ContentImage,
  ContentToDo,
  Failure,
  ImageRef,
  StyleResult,
  StylizedImage,
  content_key,
)
from transforms.styles import PredictStyle
from transforms.stylize import LoadContent, Stylize

MAX_PIXELS = imaging.DEFAULT_MAX_PIXELS
DEFAULT = Rendering()


@pytest.fixture(scope='module')
def models(tiny_models):
  """The tiny model set as the launcher resolves it: (prediction, transfer) ModelFiles."""
  chosen = registry.resolve_model_set(tiny_models)
  return chosen.prediction, chosen.transfer


@pytest.fixture(scope='module')
def styles(models, tmp_path_factory):
  """{style_id: StyleResult} for two generated paintings, predicted by the tiny predictor."""
  folder = tmp_path_factory.mktemp('styles')
  gradient_picture(300, 300, 4).save(folder / 'warm.png')
  gradient_picture(256, 400, 5).save(folder / 'cool.jpg', quality=95)
  predict = PredictStyle(models[0], 1, MAX_PIXELS)
  predict.setup()
  return dict(result for name in ('warm.png', 'cool.jpg')
              for result in predict.process(ImageRef(str(folder / name), name.split('.')[0])))


def todo(path, style_ids=('warm',), strengths=(1.0,), given_id=None) -> ContentToDo:
  return ContentToDo(inputs.content_ref(str(path), given_id),
                     {(s, k): f'fp-{s}-{k}' for s in style_ids for k in strengths})


def load(item: ContentToDo, render: Rendering = DEFAULT, max_pixels: int = MAX_PIXELS):
  step = LoadContent(render, max_pixels)
  step.setup()
  return list(step.process(item))


def stylize(content: ContentImage, styles, transfer, render: Rendering = DEFAULT,
            prediction=None):
  step = Stylize(transfer, 1, render, prediction)
  step.setup()
  return list(step.process(content, styles))


def dead_letters(outputs) -> list[Failure]:
  found = [o for o in outputs if isinstance(o, beam.pvalue.TaggedOutput)]
  assert all(o.tag == FAILED for o in found)
  return [o.value for o in found]


def main_outputs(outputs) -> list:
  return [o for o in outputs if not isinstance(o, beam.pvalue.TaggedOutput)]


def painted_size(path, styles, models, render: Rendering = DEFAULT):
  (content,) = load(todo(path), render)
  (picture,) = stylize(content, styles, models[1], render)
  return picture.picture.size


@pytest.mark.parametrize('size, expected', [
    ((320, 200), (240, 150)), ((200, 300), (160, 240)), ((150, 150), (150, 150))])
def test_outputs_keep_the_source_aspect_under_the_size_cap(tmp_path, styles, models, size,
                                                           expected):
  gradient_picture(*size).save(tmp_path / 'photo.png')
  assert painted_size(tmp_path / 'photo.png', styles, models, Rendering(max_size=240)) == expected


@pytest.mark.parametrize('size, expected', [((320, 200), (200, 200)), ((150, 150), (150, 150))])
def test_square_frame_is_the_centre_crop(tmp_path, styles, models, size, expected):
  gradient_picture(*size).save(tmp_path / 'photo.png')
  assert painted_size(tmp_path / 'photo.png', styles, models, Rendering(frame='square')) == expected


def test_a_loaded_picture_is_framed_for_the_network(tmp_path):
  gradient_picture(320, 200).save(tmp_path / 'photo.jpg')
  (content,) = load(todo(tmp_path / 'photo.jpg'))
  assert content.network_input.shape == (384, 384, 3)
  assert content.network_input.dtype == np.float32
  assert content.box == (0, 72, 384, 312) and content.size == (320, 200)  # centred, mirrored
  # What only some options need is left out: no own style, no working picture, no EXIF.
  assert content.style_input is None and content.working is None and content.exif == b''


def test_the_content_is_prepared_as_a_style_only_for_strengths_below_one(tmp_path):
  gradient_picture(320, 200).save(tmp_path / 'photo.jpg')
  (full,) = load(todo(tmp_path / 'photo.jpg', strengths=(1.0,)))
  (blended,) = load(todo(tmp_path / 'photo.jpg', strengths=(0.5, 1.0)))
  assert full.style_input is None
  assert blended.style_input.shape == (256, 256, 3)


def test_the_contents_own_style_is_made_from_a_picture_decoded_for_it_not_for_the_network(
    tmp_path):
  """A wide JPEG decoded only as large as the network's frame needs would have a short side
  under the style input's: a picture that also feeds its own style is decoded as before."""
  gradient_picture(1600, 900).save(tmp_path / 'wide.jpg', quality=92)
  data = (tmp_path / 'wide.jpg').read_bytes()
  assert min(imaging.decode(data, min_side=384, frame='fit').image.size) < imaging.STYLE_SIZE
  (blended,) = load(todo(tmp_path / 'wide.jpg', strengths=(0.5, 1.0)))
  expected = imaging.style_input(imaging.decode(data, min_side=384).image)
  np.testing.assert_array_equal(blended.style_input, expected)


# name -> (builder of the file, stage, part of the message)
BAD_CONTENT = {
    'zero.jpg': (lambda p: p.write_bytes(b''), 'decode', 'not an image'),
    'truncated.jpg': (faults.truncated_jpeg, 'decode', 'cannot decode'),
    'corrupt_chunk.png': (faults.png_with_corrupt_chunk, 'decode', 'cannot decode'),
    'text.jpg': (lambda p: p.write_text('hello'), 'decode', 'not an image'),
    'drawing.svg': (lambda p: p.write_text('<svg xmlns="http://www.w3.org/2000/svg"/>'),
                    'decode', 'not an image format Pillow can read'),
    'bomb.png': (faults.decompression_bomb, 'decode', 'over the limit'),
    'missing.jpg': (lambda p: None, 'read', 'No such file'),
    'a_folder.jpg': (lambda p: p.mkdir(), 'read', 'Is a directory'),
}


@pytest.mark.parametrize('name', sorted(BAD_CONTENT))
def test_a_bad_picture_is_charged_to_every_pair_it_needed(tmp_path, name):
  make, stage, detail = BAD_CONTENT[name]
  make(tmp_path / name)
  item = todo(tmp_path / name, style_ids=('warm', 'cool'), strengths=(0.5, 1.0))
  outputs = load(item)
  failures = dead_letters(outputs)
  assert main_outputs(outputs) == []
  assert [(f.style_id, f.strength) for f in failures] == sorted(item.fingerprints)
  for failure in failures:
    assert (failure.content_uri, failure.content_id) == (item.ref.uri, item.ref.id)
    assert failure.stage == stage and detail in failure.message, failure
    assert '\n' not in failure.message


def test_a_missing_file_and_a_folder_fail_with_their_error_types(tmp_path):
  (tmp_path / 'folder.jpg').mkdir()
  kinds = {name: dead_letters(load(todo(tmp_path / name)))[0].error_type
           for name in ('missing.jpg', 'folder.jpg')}
  assert kinds == {'missing.jpg': 'FileNotFoundError', 'folder.jpg': 'IsADirectoryError'}


@pytest.mark.parametrize('ref, detail', [
    (inputs.content_ref('/data/escape.png', '../../escaped'), 'not a safe relative name'),
    (inputs.content_ref('/data/list.csv#row3', problem='row 3 has no usable "uri"'),
     'row 3 has no usable "uri"'),
    (inputs.content_ref('ftp://example.invalid/x.jpg'), 'Unable to get filesystem'),
])
def test_an_unusable_ref_fails_at_read_without_touching_a_file(ref, detail):
  (failure,) = dead_letters(load(ContentToDo(ref, {('warm', 1.0): 'fp'})))
  assert failure.stage == 'read' and detail in failure.message
  assert (failure.content_uri, failure.content_id, failure.style_id) == (ref.uri, ref.id, 'warm')


def test_a_sliver_filling_a_box_is_refused_not_allocated(tmp_path):
  """3x5000 filling 1000x1000 would be a 1000x1666667 frame (5 GB): one dead letter instead."""
  gradient_picture(3, 5000).save(tmp_path / 'sliver.png')
  render = Rendering(box=(1000, 1000), box_mode='fill')
  (failure,) = dead_letters(load(todo(tmp_path / 'sliver.png'), render, max_pixels=10_000_000))
  assert failure.stage == 'decode' and 'output frame would be 1000x1666667' in failure.message
  gradient_picture(64, 48).save(tmp_path / 'fine.png')
  assert main_outputs(load(todo(tmp_path / 'fine.png'), render, max_pixels=10_000_000))


# name -> (builder, the painted output's size, what decoding notes)
ODD_BUT_GOOD = {
    'one_pixel.png': (lambda p: gradient_picture(1, 1).save(p), (1, 1), ()),
    'sliver.png': (lambda p: gradient_picture(3, 5000).save(p), (1, 1024), ()),
    'gray.png': (lambda p: gradient_picture(64, 48).convert('L').save(p), (64, 48), ()),
    'palette_alpha.png': (faults.palette_with_transparency, (50, 40), ()),
    'rgba.png': (lambda p: gradient_picture(64, 48).convert('RGBA').save(p), (64, 48), ()),
    'cmyk.jpg': (lambda p: gradient_picture(64, 48).convert('CMYK').save(p), (64, 48), ()),
    'sixteen_bit.png': (faults.sixteen_bit_png, (64, 48), ()),
    'rotated.jpg': (faults.exif_rotated_jpeg, (40, 60), ()),
    'animated.gif': (faults.animated_gif, (40, 30), ('first frame of 2',)),
    'my photo é.jpg': (lambda p: gradient_picture(64, 48).save(p), (64, 48), ()),
}


@pytest.mark.parametrize('name', sorted(ODD_BUT_GOOD))
def test_odd_but_valid_pictures_are_painted(tmp_path, styles, models, name):
  make, size, notes = ODD_BUT_GOOD[name]
  make(tmp_path / name)
  (content,) = load(todo(tmp_path / name))
  (painted,) = stylize(content, styles, models[1])
  assert painted.picture.size == size
  assert painted.notes == notes


def test_output_differs_by_style_and_from_the_input(tmp_path, styles, models):
  gradient_picture(150, 150, 3).save(tmp_path / 'square.png')
  (content,) = load(todo(tmp_path / 'square.png', style_ids=('warm', 'cool')))
  painted = {p.style_id: np.asarray(p.picture, np.float32)
             for p in stylize(content, styles, models[1])}
  source = np.asarray(Image.open(tmp_path / 'square.png'), np.float32)
  assert np.abs(painted['warm'] - source).mean() > 20
  assert np.abs(painted['warm'] - painted['cool']).mean() > 2


def test_each_pair_carries_its_fingerprint_and_the_content_ref(tmp_path, styles, models):
  gradient_picture(64, 48).save(tmp_path / 'photo.png')
  item = todo(tmp_path / 'photo.png', style_ids=('warm', 'cool'), given_id='sku-1')
  (content,) = load(item)
  painted = stylize(content, styles, models[1])
  assert all(isinstance(p, StylizedImage) and p.ref == item.ref for p in painted)
  assert {(p.style_id, p.strength, p.fingerprint) for p in painted} == {
      ('warm', 1.0, 'fp-warm-1.0'), ('cool', 1.0, 'fp-cool-1.0')}


def test_strengths_blend_with_the_contents_own_style(tmp_path, styles, models):
  gradient_picture(150, 150, 3).save(tmp_path / 'square.png')
  item = todo(tmp_path / 'square.png', style_ids=('warm', 'cool'), strengths=(0.0, 0.5, 1.0))
  (content,) = load(item)
  painted = stylize(content, styles, models[1], prediction=models[0])
  pixels = {(p.style_id, p.strength): np.asarray(p.picture, np.int16) for p in painted}
  assert sorted(pixels) == sorted(item.fingerprints)
  # Strength 0 is the content's own style alone: the same whatever the style.
  np.testing.assert_array_equal(pixels[('warm', 0.0)], pixels[('cool', 0.0)])
  # And strength grows the distance from it.
  far = lambda s: np.abs(pixels[('warm', s)] - pixels[('warm', 0.0)]).mean()
  assert 0 < far(0.5) < far(1.0)


def test_own_bottleneck_is_predicted_once_per_picture_and_only_when_needed(
    tmp_path, styles, models):
  """Counted by Beam's metrics, so run in a small pipeline of LoadContent and Stylize alone:
  blended strengths predict the content's own bottleneck once per picture, full strength never."""
  todos = []
  for seed in range(3):
    gradient_picture(64, 48, seed).save(tmp_path / f'p{seed}.png')
    todos.append(todo(tmp_path / f'p{seed}.png', style_ids=('warm', 'cool'),
                      strengths=(0.0, 0.5, 1.0)))
  p = fn_api_pipeline()
  style_map = beam.pvalue.AsDict(p | 'Styles' >> beam.Create(sorted(styles.items())))
  planned = p | beam.Create(todos)
  _ = (planned
       | 'LoadBlended' >> beam.ParDo(LoadContent(DEFAULT, MAX_PIXELS))
       | 'Blended' >> beam.ParDo(Stylize(models[1], 1, DEFAULT, models[0]), style_map))
  _ = (planned
       | 'FullOnly' >> beam.Map(_full_strength_only)
       | 'LoadFull' >> beam.ParDo(LoadContent(DEFAULT, MAX_PIXELS))
       | 'Full' >> beam.ParDo(Stylize(models[1], 1, DEFAULT), style_map))
  result = p.run()
  result.wait_until_finish()

  def counted(step, name):
    found = result.metrics().query(MetricsFilter().with_step(step).with_name(name))['counters']
    return sum(c.committed for c in found)
  assert counted('Blended', 'pairs_stylized') == 3 * 2 * 3
  assert counted('Blended', 'content_bottlenecks') == 3  # per picture, not per pair
  assert counted('Full', 'pairs_stylized') == 3 * 2
  assert counted('Full', 'content_bottlenecks') == 0
  # One transfer interpreter per instance, plus a predictor where blending needs one.
  assert counted('Blended', 'interpreter_loads') == 2
  assert counted('Full', 'interpreter_loads') == 1


def _full_strength_only(item: ContentToDo) -> ContentToDo:
  return ContentToDo(item.ref, {key: fp for key, fp in item.fingerprints.items() if key[1] == 1.0})


def test_working_size_paints_large_pictures_in_tiles(tmp_path, styles, models):
  gradient_picture(1200, 800, seed=9).save(tmp_path / 'large.png')
  render = Rendering(working_size=900, max_size=1200)
  (content,) = load(todo(tmp_path / 'large.png'), render)
  assert content.working.shape == (600, 900, 3)  # painted at 900 on the long side
  (painted,) = stylize(content, styles, models[1], render)
  assert painted.picture.size == (1200, 800)


def test_a_failed_style_is_charged_to_each_of_its_pairs(tmp_path, styles, models):
  gradient_picture(64, 48).save(tmp_path / 'photo.png')
  broken_ref = ImageRef(str(tmp_path / 'broken.jpg'), 'broken')
  broken = StyleResult(broken_ref, error=Failure.of(
      imaging.ImageError('cannot decode: truncated'), 'decode_style', style_id='broken'))
  item = todo(tmp_path / 'photo.png', style_ids=('warm', 'broken'), strengths=(0.5, 1.0))
  (content,) = load(item)
  outputs = stylize(content, {**styles, 'broken': broken}, models[1], prediction=models[0])
  assert {(p.style_id, p.strength) for p in main_outputs(outputs)} == {('warm', 0.5),
                                                                        ('warm', 1.0)}
  failures = dead_letters(outputs)
  assert [(f.style_id, f.strength, f.stage) for f in failures] == [
      ('broken', 0.5, 'decode_style'), ('broken', 1.0, 'decode_style')]
  assert {(f.content_uri, f.content_id) for f in failures} == {(item.ref.uri, item.ref.id)}


def test_a_pair_the_network_refuses_is_a_stylize_dead_letter(tmp_path, styles, models):
  gradient_picture(64, 48).save(tmp_path / 'photo.png')
  odd = StyleResult(ImageRef('/styles/odd.png', 'odd'), bottleneck=np.zeros(50, np.float32))
  (content,) = load(todo(tmp_path / 'photo.png', style_ids=('warm', 'odd')))
  outputs = stylize(content, {**styles, 'odd': odd}, models[1])
  assert [p.style_id for p in main_outputs(outputs)] == ['warm']  # the other pair goes on
  (failure,) = dead_letters(outputs)
  assert (failure.stage, failure.error_type, failure.style_id) == ('stylize', 'BadModelInput',
                                                                   'odd')
  assert '100 finite floats' in failure.message


def test_a_mask_that_is_not_a_picture_and_a_cutout_without_transparency_are_dead_letters(
    tmp_path):
  gradient_picture(64, 48).save(tmp_path / 'photo.png')
  (tmp_path / 'mask.png').write_bytes(b'not a picture at all')
  masked = todo(tmp_path / 'photo.png', style_ids=('warm', 'cool'))
  masked = dataclasses.replace(masked, ref=dataclasses.replace(
      masked.ref, mask=str(tmp_path / 'mask.png')))
  outputs = load(masked)
  assert main_outputs(outputs) == []
  assert [(f.style_id, f.stage) for f in dead_letters(outputs)] == [
      ('cool', 'decode_mask'), ('warm', 'decode_mask')]
  (failure,) = dead_letters(load(todo(tmp_path / 'photo.png'), Rendering(cutout='background')))
  assert failure.stage == 'decode' and 'needs a picture with transparency' in failure.message


def test_a_masked_picture_says_so_in_its_notes(tmp_path):
  gradient_picture(64, 48).save(tmp_path / 'photo.png')
  Image.new('L', (8, 8), 255).save(tmp_path / 'mask.png')
  item = todo(tmp_path / 'photo.png')
  item = dataclasses.replace(item, ref=dataclasses.replace(item.ref,
                                                           mask=str(tmp_path / 'mask.png')))
  (content,) = load(item)
  assert content.notes == (f'masked by {tmp_path / "mask.png"}',)
  assert content.mask.size == content.size and content.source.size == content.size


def test_a_shown_content_gets_its_source_thumbnail_from_the_picture_in_hand(tmp_path):
  """Upright, as the job sees it; only for the contents the gallery shows, and only when the
  picture could be read."""
  picture = gradient_picture(300, 200, 7)
  exif = Image.Exif()
  exif[0x0112] = 6  # stored on its side: shown upright
  shown_todo, other = todo(tmp_path / 'a.jpg'), todo(tmp_path / 'b.jpg')
  picture.save(shown_todo.ref.uri, quality=95, exif=exif)
  picture.save(other.ref.uri, quality=95)
  broken = todo(tmp_path / 'c.jpg')
  (tmp_path / 'c.jpg').write_bytes(b'\xff\xd8 not really a JPEG')
  shown = frozenset(content_key(t.ref.id, t.ref.uri) for t in (shown_todo, broken))
  step = LoadContent(DEFAULT, MAX_PIXELS, gallery_at=str(tmp_path / 'out'))
  step.setup()
  for item in (shown_todo, other, broken):
    list(step.process(item, shown))
  sources = tmp_path / 'out' / '_gallery' / '_sources'
  assert [p.name for p in sources.iterdir()] == [f'{shown_todo.ref.id}.jpg']
  with Image.open(sources / f'{shown_todo.ref.id}.jpg') as small:
    assert small.size == (128, 192)
    expected = picture.transpose(Image.Transpose.ROTATE_270).resize(small.size)
    assert np.abs(np.asarray(small, np.float32) - np.asarray(expected, np.float32)).mean() < 4


def test_a_source_thumbnail_shows_transparency_on_white_whatever_the_background(tmp_path):
  """As the page's other thumbnails do; the network still sees `--background`."""
  picture = gradient_picture(200, 100, 3)
  alpha = Image.new('L', picture.size, 255)
  alpha.paste(0, (100, 0, 200, 100))  # the right half transparent
  picture.putalpha(alpha)
  item = todo(tmp_path / 'a.png')
  picture.save(item.ref.uri)
  step = LoadContent(Rendering(fmt='png', background=(0, 0, 0)), MAX_PIXELS,
                     gallery_at=str(tmp_path / 'out'))
  step.setup()
  (content,) = step.process(item, frozenset({content_key(item.ref.id, item.ref.uri)}))
  with Image.open(tmp_path / 'out' / '_gallery' / '_sources' / f'{item.ref.id}.jpg') as small:
    pixels = np.asarray(small.convert('RGB'), np.float32)
  assert pixels[:, 110:].min() >= 245  # white, not the black background
  assert pixels[:, :80].mean() < 200  # the picture itself
  assert content.network_input[:, 300:].max() < 0.05  # the network saw black there


# The last thing it runs at exit is the check, registered first (exit functions run last-in,
# first-out): the heap must be frozen by then, and only then, and only where asked.
EXITING = """
import atexit, gc, sys
atexit.register(lambda: print('frozen at exit:', gc.get_freeze_count() > 0))
from models import registry
from models.rendering import Rendering
from transforms.stylize import Stylize
for _ in range(2):
  Stylize(registry.resolve_model_set(sys.argv[1]).transfer, 1, Rendering(),
          quick_exit=sys.argv[2] == 'quick').setup()
print('frozen while running:', gc.get_freeze_count() > 0)
"""


@pytest.mark.parametrize('asked', [True, False])
def test_a_local_worker_process_skips_its_last_full_collection_at_exit(tiny_models, asked):
  """The local runner waits for each worker process to end: a full collection of Beam's and the
  network's heap then costs every local run time (README, "Speed"). A Dataflow worker, which
  is not asked, keeps it."""
  root = pathlib.Path(__file__).resolve().parents[2]
  done = subprocess.run([sys.executable, '-c', EXITING, tiny_models, 'quick' if asked else 'no'],
                        cwd=root, capture_output=True, text=True, check=True, timeout=120)
  assert done.stdout.split('\n')[-3:] == ['frozen while running: False',
                                          f'frozen at exit: {asked}', ''], done.stdout
