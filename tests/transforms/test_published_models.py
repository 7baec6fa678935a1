"""The job's steps on the published models and real pictures (../shared), against a reference
computed here by calling the interpreter directly, by tensor name, on independently preprocessed
input. The steps are the DoFns themselves, planned and set up as the job plans and sets them up
(a whole job's wiring is checked with the tiny models in tests/test_pipeline_local.py)."""
from __future__ import annotations

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter
from PIL import Image, ImageOps

from models.registry import REGISTRY
from pipeline import launch, options
from transforms import inputs
from transforms.records import ContentToDo, ImageRef, ManifestRow
from transforms.styles import PredictStyle
from transforms.stylize import LoadContent, Stylize
from transforms.write import WriteOutput

# Small enough that no JPEG is decoded at reduced scale (the JPEG's short side, 512, is under
# 2 x 384: see imaging.decode), so the reference can decode at full size and match within 1/255.
CONTENT = ['coffee.png', 'grace_hopper.jpg', 'tubingen_neckarfront.png']
STYLES = ['hokusai_great_wave_crop.jpg', 'texture_gravel_gray.png']


def _by_name(interpreter, feeds, output):
  inputs = {d['name']: d['index'] for d in interpreter.get_input_details()}
  for name, value in feeds.items():
    interpreter.set_tensor(inputs[name], value)
  interpreter.invoke()
  outputs = {d['name']: d['index'] for d in interpreter.get_output_details()}
  return interpreter.get_tensor(outputs[output])


def _reference(shared, model_set, content, style):
  """Square frame, shorter side to 384 / 256 and centre crop: the published preprocessing."""
  def unit(path, size):
    picture = ImageOps.fit(Image.open(path).convert('RGB'), (size, size), Image.LANCZOS)
    return (np.asarray(picture, np.float32) / 255)[np.newaxis]
  magenta = shared / 'models' / 'magenta'
  predictor = Interpreter(str(magenta / model_set.prediction.name))
  predictor.allocate_tensors()
  bottleneck = _by_name(predictor, {'style_image': unit(shared / 'images/style' / style, 256)},
                        'mobilenet_conv/Conv/BiasAdd')
  transfer = Interpreter(str(magenta / model_set.transfer.name))
  transfer.allocate_tensors()
  out = _by_name(transfer, {'content_image': unit(shared / 'images/content' / content, 384),
                            'mobilenet_conv/Conv/BiasAdd': bottleneck},
                 'transformer/expand/conv3/conv/Sigmoid')[0]
  return np.rint(out * 255).astype(np.int16)


def _steps(shared, magenta_dir, tmp_path, model, *flags):
  """The job's settings and plan for the published `model` (verified as the launcher verifies
  it), and its content branch as DoFns set up as Beam sets them up: f(content, styles) -> rows."""
  args = ['--content', str(shared / 'images' / 'content' / '*'),
          '--styles', str(shared / 'images' / 'style' / STYLES[0]),
          '--output', str(tmp_path / 'out'), '--model', model, '--model-dir', magenta_dir, *flags]
  settings, _ = options.parse(args)
  plan = launch.prepare(settings)
  steps = (PredictStyle(plan.prediction, 1, settings.max_pixels),
           LoadContent(settings.rendering, settings.max_pixels),
           Stylize(plan.transfer, 1, settings.rendering),
           WriteOutput(settings.output, settings.rendering, plan.transfer.sha256))
  for step in steps:
    step.setup()
  predict, load, paint, write = steps

  def rows(contents, styles):
    style_map = dict(result for name in styles for result in predict.process(
        ImageRef(str(shared / 'images' / 'style' / name), name.rsplit('.', 1)[0])))
    assert all(result.error is None for result in style_map.values())
    out = []
    for name in contents:
      todo = ContentToDo(inputs.content_ref(str(shared / 'images' / 'content' / name)),
                         {(style_id, 1.0): 'fp' for style_id in style_map})
      for content in load.process(todo):
        for picture in paint.process(content, style_map):
          out += write.process(picture)
    assert all(isinstance(row, ManifestRow) for row in out)
    return out
  return plan, rows


@pytest.mark.parametrize('model', ['magenta-int8', 'magenta-fp16'])
def test_outputs_equal_the_direct_interpreter_reference(shared, magenta_dir, tmp_path, model):
  plan, steps = _steps(shared, magenta_dir, tmp_path, model, '--frame', 'square',
                       '--max-size', '384', '--format', 'png')
  assert plan.transfer.sha256 == REGISTRY[model].transfer.sha256
  rows = steps(CONTENT, STYLES)

  assert len(rows) == len(CONTENT) * len(STYLES)
  assert {r.model_sha256 for r in rows} == {REGISTRY[model].transfer.sha256}
  for row in rows:
    content = row.content_uri.rsplit('/', 1)[1]
    style = next(s for s in STYLES if s.startswith(row.style_id))
    got = np.asarray(Image.open(row.output_uri), np.int16)
    expected = _reference(shared, REGISTRY[model], content, style)
    assert got.shape == (384, 384, 3)
    assert np.abs(got - expected).max() <= 1, (content, style)
    source = np.asarray(ImageOps.fit(Image.open(row.content_uri).convert('RGB'), (384, 384),
                                     Image.LANCZOS), np.int16)
    assert np.abs(got - source).mean() > 25  # clearly stylized, not the input passed through


def test_fit_frame_keeps_real_photos_whole(shared, magenta_dir, tmp_path):
  _, steps = _steps(shared, magenta_dir, tmp_path, 'magenta-int8')
  rows = steps(['toy_figures_large.jpg', 'grace_hopper.jpg'], ['munch_the_scream.jpg'])
  sizes = sorted(Image.open(r.output_uri).size for r in rows)
  assert sizes == [(512, 600), (1024, 683)]  # 5184x3456 capped at 1024 on the long side
