"""The checked interpreter wrapper, on tiny generated models and on the published ones."""
from __future__ import annotations

import os

import numpy as np
import pytest

from models.contract import BadModelInput, ModelContractError, StylePredictor, StyleTransfer


def _tiny(tiny_models, role):
  return os.path.join(tiny_models, f'tiny_{role}.tflite')


def test_tiny_models_follow_the_published_contract(tiny_models):
  bottleneck = StylePredictor(_tiny(tiny_models, 'prediction')).predict(
      np.full((256, 256, 3), 0.5, np.float32))
  assert bottleneck.shape == (100,) and np.isfinite(bottleneck).all()
  out = StyleTransfer(_tiny(tiny_models, 'transfer')).stylize(
      np.full((384, 384, 3), 0.5, np.float32), bottleneck)
  assert out.shape == (384, 384, 3) and 0 <= out.min() and out.max() <= 1


@pytest.mark.parametrize('image, message', [
    (np.full((384, 384, 3), 128.0, np.float32), r'in \[0, 1\]'),  # 0..255 values: silent garbage
    (np.full((384, 384, 3), np.nan, np.float32), r'in \[0, 1\]'),
    (np.zeros((384, 384, 3), np.float64), 'float32'),
    (np.zeros((256, 256, 3), np.float32), r'\(384, 384, 3\)'),
])
def test_bad_content_input_is_refused(tiny_models, image, message):
  transfer = StyleTransfer(_tiny(tiny_models, 'transfer'))
  with pytest.raises(BadModelInput, match=message):
    transfer.stylize(image, np.zeros(100, np.float32))


def test_bad_bottleneck_is_refused(tiny_models):
  transfer = StyleTransfer(_tiny(tiny_models, 'transfer'))
  content = np.zeros((384, 384, 3), np.float32)
  with pytest.raises(BadModelInput, match='100 finite floats'):
    transfer.stylize(content, np.zeros(99, np.float32))
  with pytest.raises(BadModelInput, match='100 finite floats'):
    transfer.stylize(content, np.full(100, np.inf, np.float32))


def test_wrong_model_for_the_role_is_a_contract_error(tiny_models):
  with pytest.raises(ModelContractError, match="no input tensor named 'content_image'"):
    StyleTransfer(_tiny(tiny_models, 'prediction'))


def test_truncated_model_is_a_contract_error(tiny_models, tmp_path):
  data = open(_tiny(tiny_models, 'transfer'), 'rb').read()
  broken = tmp_path / 'broken.tflite'
  broken.write_bytes(data[: len(data) // 3])
  with pytest.raises(ModelContractError, match='not a loadable TFLite model'):
    StyleTransfer(str(broken))


@pytest.mark.parametrize('name', [
    'magenta_arbitrary-image-stylization-v1-256_int8_transfer_1.tflite',
    'magenta_arbitrary-image-stylization-v1-256_fp16_transfer_1.tflite',
])
def test_published_transfer_models_load_by_name(magenta_dir, name):
  # The bottleneck input sits at a different index in these two files: names find it in both.
  transfer = StyleTransfer(os.path.join(magenta_dir, name))
  out = transfer.stylize(np.full((384, 384, 3), 0.5, np.float32), np.ones(100, np.float32))
  assert out.shape == (384, 384, 3) and 0 <= out.min() and out.max() <= 1
