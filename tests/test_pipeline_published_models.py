"""The job on the published models and real pictures (../shared), against a reference computed
here by calling the interpreter directly, by tensor name, on independently preprocessed input."""
from __future__ import annotations

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter
from conftest import read_manifest
from PIL import Image, ImageOps

from models.registry import REGISTRY
from pipeline import run as job

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


@pytest.mark.parametrize('model', ['magenta-int8', 'magenta-fp16'])
def test_outputs_equal_the_direct_interpreter_reference(shared, magenta_dir, tmp_path, model):
  out = tmp_path / 'out'
  args = ['--output', str(out), '--model', model, '--model-dir', magenta_dir,
          '--frame', 'square', '--max-size', '384', '--format', 'png', '--runner', 'DirectRunner']
  for name in CONTENT:
    args += ['--content', str(shared / 'images' / 'content' / name)]
  for name in STYLES:
    args += ['--styles', str(shared / 'images' / 'style' / name)]
  outcome = job.run(args)

  rows = read_manifest(out)
  assert len(rows) == len(CONTENT) * len(STYLES)
  assert {r['model_sha256'] for r in rows} == {REGISTRY[model].transfer.sha256}
  assert outcome.summary['styles_predicted'] == len(STYLES)
  for row in rows:
    content = row['content_uri'].rsplit('/', 1)[1]
    style = next(s for s in STYLES if s.startswith(row['style_id']))
    got = np.asarray(Image.open(row['output_uri']), np.int16)
    expected = _reference(shared, REGISTRY[model], content, style)
    assert got.shape == (384, 384, 3)
    assert np.abs(got - expected).max() <= 1, (content, style)
    source = np.asarray(ImageOps.fit(Image.open(row['content_uri']).convert('RGB'), (384, 384),
                                     Image.LANCZOS), np.int16)
    assert np.abs(got - source).mean() > 25  # clearly stylized, not the input passed through


def test_fit_frame_keeps_real_photos_whole(shared, magenta_dir, tmp_path):
  out = tmp_path / 'out'
  job.run(['--content', str(shared / 'images/content/toy_figures_large.jpg'),
           '--content', str(shared / 'images/content/grace_hopper.jpg'),
           '--styles', str(shared / 'images/style/munch_the_scream.jpg'),
           '--output', str(out), '--model-dir', magenta_dir, '--runner', 'DirectRunner'])
  sizes = sorted(Image.open(r['output_uri']).size for r in read_manifest(out))
  assert sizes == [(512, 600), (1024, 683)]  # 5184x3456 capped at 1024 on the long side
