"""Small stand-in networks with the published models' tensor names, shapes and dtypes.

They let the whole pipeline run where the published files are absent (tests, CI without
../shared). They are made from scratch with TensorFlow (needed here, never on workers) and compute
something simple but checkable: prediction = a fixed linear map of the style's 8x8 mean colours;
transfer = sigmoid(3x3 conv of the content + a colour shift taken from the bottleneck), so outputs
differ from inputs and from style to style.

With `layers`, the transfer network first adds `layers` 16-channel 3x3 convolutions (a residual):
a stand-in as slow as a real network, for measuring whether the job keeps up with a model of that
speed on a machine where the real one is slower (benchmarks.endtoend --stand-in).

    python -m model_building.tiny OUT_DIR [LAYERS]   # tiny_prediction.tflite, tiny_transfer.tflite
"""
from __future__ import annotations

import os
import sys

import numpy as np
import tensorflow as tf

from model_building import export, transfer_net
from models import contract


def _convert(function, module) -> bytes:
  converter = tf.lite.TFLiteConverter.from_concrete_functions(
      [function.get_concrete_function()], module)
  return converter.convert()


def build(out_dir: str, seed: int = 0, layers: int = 0) -> tuple[str, str]:
  """Writes the tiny prediction and transfer models; returns their paths."""
  if layers < 0:
    raise ValueError(f'layers must be 0 or more, got {layers}')
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
      self.layers = [tf.constant(rng.normal(0, 0.2, (3, 3, 3 if k == 0 else 16, 16))
                                 .astype(np.float32)) for k in range(layers)]
      self.back = (tf.constant(rng.normal(0, 0.02, (1, 1, 16, 3)).astype(np.float32))
                   if layers else None)

    @tf.function(input_signature=[tf.TensorSpec([1, c, c, 3], tf.float32),
                                  tf.TensorSpec([1, 1, 1, n], tf.float32)])
    def __call__(self, content, bottleneck):
      shift = tf.matmul(tf.reshape(bottleneck, [1, n]), self.shift)
      if self.layers:
        x = content
        for kernel in self.layers:
          x = tf.nn.relu(tf.nn.conv2d(x, kernel, 1, 'SAME'))
        content = content + tf.nn.conv2d(x, self.back, 1, 'SAME')
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
    data = export.publish_names(_convert(module.__call__, module), inputs, output)
    path = os.path.join(out_dir, name)
    with open(path, 'wb') as f:
      f.write(data)
    paths.append(path)
  return paths[0], paths[1]


if __name__ == '__main__':
  if len(sys.argv) not in (2, 3) or (len(sys.argv) == 3 and not sys.argv[2].isdigit()):
    sys.exit(__doc__)
  print('\n'.join(build(sys.argv[1], layers=int(sys.argv[2]) if len(sys.argv) == 3 else 0)))


def build_magenta_like(path: str, width: float = 0.125, seed: int = 0) -> str:
  """A small random transfer network with the published file's graph: the Magenta transformer
  (MirrorPad, nearest resize, conditional instance norms) under the published scope names, stored
  with float16 weights. It stands in for the published fp16 file when testing the importer and
  `model_building.optimize` where ../shared is absent."""
  rng = np.random.default_rng(seed)
  c1, c2, c3 = transfer_net.channels(width)
  n = contract.BOTTLENECK_SIZE
  weights = {}

  def conv_weights(name, kernel, cin, cout):
    std = np.sqrt(2.0 / (kernel * kernel * cin))
    weights[name] = (tf.constant(rng.normal(0, std, (kernel, kernel, cin, cout)), tf.float32),
                     tf.constant(rng.normal(0, 0.05, cout), tf.float32))

  layers = [('transformer/contract/conv1', 9, 3, c1), ('transformer/contract/conv2', 3, c1, c2),
            ('transformer/contract/conv3', 3, c2, c3)]
  layers += [(f'transformer/residual/residual{b}/conv{k}', 3, c3, c3)
             for b in range(1, 6) for k in (1, 2)]
  layers += [('transformer/expand/conv1/conv', 3, c3, c2),
             ('transformer/expand/conv2/conv', 3, c2, c1),
             ('transformer/expand/conv3/conv', 9, c1, 3)]
  for name, kernel, cin, cout in layers:
    conv_weights(name, kernel, cin, cout)
    if 'contract' not in name:
      for param, mean in (('Conv', 0.0), ('Conv_1', 1.0)):
        weights[f'{name}/StyleNorm/{param}'] = (
            tf.constant(rng.normal(0, 0.02, (1, 1, n, cout)), tf.float32),
            tf.constant(mean + rng.normal(0, 0.05, cout), tf.float32))

  def conv(x, name, kernel, stride=1, activation=None):
    pad = kernel // 2
    with tf.name_scope(name + '/'):
      x = tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode='REFLECT')
      w, b = weights[name]
      x = tf.nn.bias_add(tf.nn.conv2d(x, w, stride, 'VALID'), b, name='BiasAdd')
      return tf.nn.relu(x, name='Relu') if activation else x

  def style_param(bottleneck, name):
    with tf.name_scope(name + '/'):
      w, b = weights[name]
      return tf.nn.bias_add(tf.nn.conv2d(bottleneck, w, 1, 'VALID'), b, name='BiasAdd')

  def norm(x, name, bottleneck):
    beta = style_param(bottleneck, name + '/StyleNorm/Conv')
    gamma = style_param(bottleneck, name + '/StyleNorm/Conv_1')
    with tf.name_scope(name + '/StyleNorm/batchnorm/'):
      mean, variance = tf.nn.moments(x, [1, 2], keepdims=True)
      scale = tf.math.rsqrt(tf.add(variance, transfer_net.EPSILON, name='add')) * gamma
      return x * scale + (beta - mean * scale)

  size = contract.CONTENT_SIZE

  @tf.function(input_signature=[tf.TensorSpec([1, size, size, 3], tf.float32),
                                tf.TensorSpec([1, 1, 1, n], tf.float32)])
  def transfer(content, bottleneck):
    x = content
    for k, stride in ((1, 1), (2, 2), (3, 2)):
      x = conv(x, f'transformer/contract/conv{k}', 9 if k == 1 else 3, stride, 'relu')
    for b in range(1, 6):
      scope = f'transformer/residual/residual{b}'
      h = tf.nn.relu(norm(conv(x, scope + '/conv1', 3), scope + '/conv1', bottleneck))
      x = x + norm(conv(h, scope + '/conv2', 3), scope + '/conv2', bottleneck)
    for k, kernel in ((1, 3), (2, 3), (3, 9)):
      name = f'transformer/expand/conv{k}/conv'
      if k < 3:
        x = tf.image.resize(x, (x.shape[1] * 2, x.shape[2] * 2), 'nearest')
      x = norm(conv(x, name, kernel), name, bottleneck)
      x = tf.nn.relu(x) if k < 3 else tf.sigmoid(x)
    return x

  converter = tf.lite.TFLiteConverter.from_concrete_functions([transfer.get_concrete_function()])
  converter.optimizations = [tf.lite.Optimize.DEFAULT]
  converter.target_spec.supported_types = [tf.float16]
  data = export.publish_names(
      converter.convert(),
      {(1, size, size, 3): contract.CONTENT_IMAGE, (1, 1, 1, n): contract.BOTTLENECK},
      contract.STYLIZED_IMAGE)
  with open(path, 'wb') as f:
    f.write(data)
  return path
