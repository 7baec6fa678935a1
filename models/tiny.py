"""Small stand-in networks with the published models' tensor names, shapes and dtypes.

They let the whole pipeline run where the published files are absent (tests, CI without
../shared). They are made from scratch with TensorFlow (needed here, never on workers) and compute
something simple but checkable: prediction = a fixed linear map of the style's 8x8 mean colours;
transfer = sigmoid(3x3 conv of the content + a colour shift taken from the bottleneck), so outputs
differ from inputs and from style to style.

    python -m models.tiny OUT_DIR   # writes tiny_prediction.tflite and tiny_transfer.tflite
"""
from __future__ import annotations

import os
import sys

import numpy as np

from models import interpreter as contract


def _publish_names(tflite_bytes: bytes, inputs_by_shape: dict, output: str) -> bytes:
  """Gives the model's inputs and output the published names (converters pick their own)."""
  from tensorflow.lite.tools import flatbuffer_utils  # pylint: disable=import-outside-toplevel
  model = flatbuffer_utils.convert_bytearray_to_object(bytearray(tflite_bytes))
  graph = model.subgraphs[0]
  for index in graph.inputs:
    tensor = graph.tensors[index]
    tensor.name = inputs_by_shape[tuple(int(d) for d in tensor.shape)].encode()
  graph.tensors[graph.outputs[0]].name = output.encode()
  return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _convert(function, module) -> bytes:
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  converter = tf.lite.TFLiteConverter.from_concrete_functions(
      [function.get_concrete_function()], module)
  return converter.convert()


def build(out_dir: str, seed: int = 0) -> tuple[str, str]:
  """Writes the tiny prediction and transfer models; returns their paths."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(seed)
  s, c, n = contract.STYLE_SIZE, contract.CONTENT_SIZE, contract.BOTTLENECK_SIZE

  class Prediction(tf.Module):
    def __init__(self):
      super().__init__()
      self.w = tf.constant(rng.normal(0, 0.1, (8 * 8 * 3, n)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec([1, s, s, 3], tf.float32)])
    def __call__(self, style):
      means = tf.nn.avg_pool2d(style, s // 8, s // 8, 'VALID')
      return tf.reshape(tf.matmul(tf.reshape(means, [1, -1]), self.w), [1, 1, 1, n])

  class Transfer(tf.Module):
    def __init__(self):
      super().__init__()
      kernel = rng.normal(0, 0.3, (3, 3, 3, 3)).astype(np.float32)
      kernel[1, 1] += 3.0 * np.eye(3, dtype=np.float32)[::-1]  # swap R and B, strongly
      self.kernel = tf.constant(kernel)
      self.shift = tf.constant(rng.normal(0, 0.05, (n, 3)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec([1, c, c, 3], tf.float32),
                                  tf.TensorSpec([1, 1, 1, n], tf.float32)])
    def __call__(self, content, bottleneck):
      shift = tf.matmul(tf.reshape(bottleneck, [1, n]), self.shift)
      mixed = tf.nn.conv2d(content, self.kernel, 1, 'SAME') - 1.5
      return tf.sigmoid(mixed + tf.reshape(shift, [1, 1, 1, 3]))

  os.makedirs(out_dir, exist_ok=True)
  prediction, transfer = Prediction(), Transfer()
  paths = []
  for name, module, inputs, output in (
      ('tiny_prediction.tflite', prediction, {(1, s, s, 3): contract.STYLE_IMAGE},
       contract.BOTTLENECK),
      ('tiny_transfer.tflite', transfer,
       {(1, c, c, 3): contract.CONTENT_IMAGE, (1, 1, 1, n): contract.BOTTLENECK},
       contract.STYLIZED_IMAGE),
  ):
    data = _publish_names(_convert(module.__call__, module), inputs, output)
    path = os.path.join(out_dir, name)
    with open(path, 'wb') as f:
      f.write(data)
    paths.append(path)
  return paths[0], paths[1]


if __name__ == '__main__':
  if len(sys.argv) != 2:
    sys.exit(__doc__)
  print('\n'.join(build(sys.argv[1])))
