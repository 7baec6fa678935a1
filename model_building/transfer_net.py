"""The style transfer network as one Keras definition, written in the forms that run fast in LiteRT.

It is the Magenta "mobile" transformer (the published TFLite transfer models are its width-0.25
instance): contract (9x9 conv, two 3x3 stride-2 convs; ReLU), five residual blocks, expand (two
x2 upsamplings + 3x3 convs, a 9x9 conv to RGB, sigmoid), with reflect padding before every conv and
a conditional instance norm after every conv but the first three, whose per-channel gamma and beta
are 1x1 convolutions of the 100-float style bottleneck.

Four forms differ from the published graph, none in value (see
`tests/model_building/test_transfer_net.py`):
- reflect padding is single-row/column slices with explicit sizes joined by concatenation, because
  XNNPACK does not take MIRROR_PAD (most of the published int8 file's time goes there);
- the two 9x9 convolutions at full resolution (3 -> 8 and 8 -> 3 channels) run on 2x2 blocks
  (space_to_depth, a 5x5 convolution into 4x the channels, depth_to_space), and each x2
  upsampling + 3x3 convolution runs as a sub-pixel convolution of the smaller picture: XNNPACK's
  float kernels compute 8 or 16 output channels at a time, so layers with 3 or 8 output channels
  at full resolution left most of that work idle;
- instance norm is `x * scale + (beta - mean * scale)` with `scale = gamma * rsqrt(var + eps)`:
  one multiply-add over the image, which full-int8 quantization keeps accurate;
- the expand stages' norms and activations run on those convolutions' 2x2 blocks, before
  depth_to_space, their statistics pooled over the four sub-pixel groups: XNNPACK's elementwise
  kernels are slow on the 3 or 8 channels of the full-resolution picture and fast on 4x as many
  (`norms_on_blocks=False` gives the form before it, in which the house file was exported).

TensorFlow (the Keras backend here) is needed to build, train and convert; never on workers.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from models import contract

EPSILON = 1e-5
NUM_RESIDUAL_BLOCKS = 5


def channels(width: float) -> tuple[int, int, int]:
  """Channels of the contract stages for a width multiplier (0.25 -> 8, 16, 32)."""
  return int(32 * width), int(64 * width), int(128 * width)


def reflect_pad(x: tf.Tensor, pad: int, for_export: bool = True,
                mode: str = 'REFLECT') -> tf.Tensor:
  """Reflect padding (like MIRROR_PAD REFLECT, or SYMMETRIC: the edge row repeated first) from
  slices of explicit size and a concatenation; `for_export=False` gives the same values with one
  MIRROR_PAD, much faster to train."""
  if pad == 0:
    return x
  if mode not in ('REFLECT', 'SYMMETRIC'):
    raise ValueError(f'mode must be REFLECT or SYMMETRIC, not {mode!r}')
  if not for_export:
    return tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode=mode)
  skip = 1 if mode == 'REFLECT' else 0  # REFLECT leaves the edge row out of the padding
  for axis in (1, 2):
    length = x.shape[axis]
    # Explicit sizes: a -1 size keeps the slice out of XNNPACK (the batch is -1 only in training).
    size = [-1 if s is None else s for s in x.shape]
    size[axis] = 1

    def row(i, axis=axis, size=size, x=x):
      begin = [0, 0, 0, 0]
      begin[axis] = i
      return tf.slice(x, begin, size)

    before = [row(i) for i in range(pad - 1 + skip, skip - 1, -1)]
    after = [row(length - 1 - i) for i in range(skip, pad + skip)]
    # XNNPACK takes a concatenation of at most 4 inputs: join each side's rows first.
    x = tf.concat([_concat(before, axis), x, _concat(after, axis)], axis=axis)
  return x


def _concat(tensors: list, axis: int) -> tf.Tensor:
  while len(tensors) > 1:
    tensors = [tensors[i] if i + 1 == len(tensors) else tf.concat(tensors[i:i + 4], axis=axis)
               for i in range(0, len(tensors), 4)]
  return tensors[0]


class ReflectConv(keras.layers.Layer):
  """Reflect padding by kernel//2, then a VALID convolution (stride 1 or 2).

  Exported, a 9x9 convolution runs as a 5x5 one on the 2x2 space-to-depth of its input with 4x
  the output channels, then depth_to_space: the same sums, but 12 or 32 output channels instead of
  the 3 or 8 of the network's full-resolution ends, which left most of XNNPACK's 8- or 16-channel
  kernels idle (see `_space_to_depth_kernel`).
  """

  def __init__(self, filters: int, kernel: int, stride: int = 1, activation=None,
               for_export: bool = True, **kwargs):
    super().__init__(**kwargs)
    self.filters, self.kernel, self.stride, self.activation = filters, kernel, stride, activation
    self.for_export = for_export
    self.conv = keras.layers.Conv2D(filters, kernel, stride, padding='valid',
                                    activation=activation, name='conv')

  def build(self, input_shape):
    self.conv.build((None, None, None, input_shape[-1]))
    super().build(input_shape)

  def runs_on_blocks(self, upsampled: bool = False) -> bool:
    """Whether the export form computes on 2x2 blocks (4 sub-pixel groups of channels)."""
    return self.for_export and (upsampled or (self.kernel == 9 and self.stride == 1))

  def call(self, x, keep_blocks: bool = False):
    """`keep_blocks` (a form that `runs_on_blocks`): the 2x2 blocks, before depth_to_space."""
    padded = reflect_pad(x, self.kernel // 2, self.for_export)
    if not self.runs_on_blocks():
      return self.conv(padded)
    return self._on_blocks(tf.nn.space_to_depth(padded, 2), _space_to_depth_kernel(
        self.conv.kernel), keep_blocks)

  def call_upsampled(self, x, keep_blocks: bool = False):
    """This convolution of `x` upsampled x2 by nearest neighbour (the expand stages).

    Exported, it is a 3x3 convolution of `x` itself (edge-padded by one) into 4x the channels,
    one group per output sub-pixel, then depth_to_space: the same sums as upsampling first, with
    no upsampled copy and 4x wider kernels (see `_subpixel_kernel`).
    """
    if not self.for_export:
      return self(upsample2(x))
    if not self.built:
      self.build(x.shape)
    padded = reflect_pad(x, 1, self.for_export, mode='SYMMETRIC')
    return self._on_blocks(padded, _subpixel_kernel(self.conv.kernel), keep_blocks)

  def _on_blocks(self, x, kernel, keep_blocks: bool):
    """VALID convolution with a kernel whose output channels are 4 sub-pixel groups."""
    y = tf.nn.conv2d(x, kernel, 1, 'VALID') + tf.tile(self.conv.bias, [4])
    if self.activation:
      y = keras.activations.get(self.activation)(y)
    return y if keep_blocks else tf.nn.depth_to_space(y, 2)

  def get_config(self):
    return {**super().get_config(), 'filters': self.filters, 'kernel': self.kernel,
            'stride': self.stride, 'activation': self.activation, 'for_export': self.for_export}


def _space_to_depth_kernel(kernel):
  """9x9 kernel (9, 9, ci, co) -> (5, 5, 4ci, 4co) on 2x2 blocks.

  Output pixel (2i+oy, 2j+ox) of a VALID 9x9 convolution reads padded rows 2i+oy+u, u = 0..8;
  writing row 2i+oy+u as 2(i+a)+p (block i+a, row p in it), its weight is W[2a+p-oy] (zero when
  outside 0..8), for a = 0..4: a 5x5 kernel over blocks, one per (oy, ox) output group.
  """
  ci, co = kernel.shape[2], kernel.shape[3]
  padded = tf.pad(kernel, [[1, 1], [1, 1], [0, 0], [0, 0]])  # W[-1] and W[9] are zero
  groups = []
  for oy in (0, 1):
    for ox in (0, 1):
      w = padded[1 - oy:11 - oy, 1 - ox:11 - ox]  # w[2a+p] = W[2a+p-oy]
      w = tf.transpose(tf.reshape(w, (5, 2, 5, 2, ci, co)), (0, 2, 1, 3, 4, 5))
      groups.append(tf.reshape(w, (5, 5, 4 * ci, co)))  # depth order (p, q, c): space_to_depth's
  return tf.concat(groups, axis=-1)  # channel order (oy, ox, o): depth_to_space's


# Nearest x2 then reflect pad 1 then 3x3 equals, on the edge-padded source, output sub-pixel o's
# 3x3 kernel K[r] = sum_u M[o][r, u] W[u]: sub-pixel 0 reads source rows i-1, i, i; sub-pixel 1
# reads rows i, i, i+1 (in padded coordinates: r = 0, 1, 1 and r = 1, 1, 2).
_SUBPIXEL_TAPS = ([[1., 0., 0.], [0., 1., 1.], [0., 0., 0.]],
                  [[0., 0., 0.], [1., 1., 0.], [0., 0., 1.]])


def _subpixel_kernel(kernel):
  """3x3 kernel (3, 3, ci, co) for the upsampled picture -> (3, 3, ci, 4co) for the source."""
  taps = tf.constant(_SUBPIXEL_TAPS, dtype=kernel.dtype)
  return tf.concat([tf.einsum('ru,sv,uvio->rsio', taps[oy], taps[ox], kernel)
                    for oy in (0, 1) for ox in (0, 1)], axis=-1)


class StyleNorm(keras.layers.Layer):
  """Conditional instance norm: gamma and beta are 1x1 convolutions of the style bottleneck."""

  def __init__(self, filters: int, epsilon: float = EPSILON, **kwargs):
    super().__init__(**kwargs)
    self.filters, self.epsilon = filters, epsilon
    self.beta = keras.layers.Conv2D(filters, 1, name='beta')    # published: StyleNorm/Conv
    self.gamma = keras.layers.Conv2D(filters, 1, name='gamma')  # published: StyleNorm/Conv_1

  def call(self, x, bottleneck, groups: int = 1):
    """`groups`: `x` holds 2x2 blocks, `groups` sub-pixel groups of `filters` channels each
    (depth_to_space's order), normalized as the picture they make."""
    mean = _pooled(tf.reduce_mean(x, axis=[1, 2], keepdims=True), groups)
    centered = x - _tiled(mean, groups)  # not SQUARED_DIFFERENCE: no XNNPACK int8 kernel
    variance = _pooled(tf.reduce_mean(centered * centered, axis=[1, 2], keepdims=True), groups)
    scale = self.gamma(bottleneck) * tf.math.rsqrt(variance + self.epsilon)
    return x * _tiled(scale, groups) + _tiled(self.beta(bottleneck) - mean * scale, groups)

  def get_config(self):
    return {**super().get_config(), 'filters': self.filters, 'epsilon': self.epsilon}


def _pooled(statistic, groups: int):
  """Per-channel statistics (1, 1, 1, groups * C) -> (1, 1, 1, C), the groups' mean. Slices and
  adds, not a 5-D reshape and mean, which XNNPACK does not take (the graph would leave it)."""
  if groups == 1:
    return statistic
  channels = statistic.shape[-1] // groups
  size = [-1 if s is None else s for s in statistic.shape[:-1]] + [channels]
  parts = [tf.slice(statistic, [0, 0, 0, g * channels], size) for g in range(groups)]
  while len(parts) > 1:
    parts = [a + b for a, b in zip(parts[::2], parts[1::2], strict=True)]
  return parts[0] * (1.0 / groups)


def _tiled(per_channel, groups: int):
  """(1, 1, 1, C) -> (1, 1, 1, groups * C): a concatenation, which XNNPACK takes (TILE it does
  not)."""
  return per_channel if groups == 1 else tf.concat([per_channel] * groups, axis=-1)


def upsample2(x: tf.Tensor) -> tf.Tensor:
  """Nearest-neighbour x2 (training; exports fold it into the next convolution)."""
  return tf.repeat(tf.repeat(x, 2, axis=1), 2, axis=2)


class TransferNet(keras.Model):
  """Content image + bottleneck -> stylized image, all float32 NHWC in [0, 1]."""

  def __init__(self, width: float = 0.25, epsilon: float = EPSILON, for_export: bool = True,
               norms_on_blocks: bool = True, **kwargs):
    super().__init__(**kwargs)
    self.width, self.epsilon, self.for_export = width, epsilon, for_export
    self.norms_on_blocks = norms_on_blocks
    c1, c2, c3 = channels(width)
    conv = lambda *args, **kw: ReflectConv(*args, for_export=for_export, **kw)
    self.contract = [conv(c1, 9, 1, 'relu', name='contract_conv1'),
                     conv(c2, 3, 2, 'relu', name='contract_conv2'),
                     conv(c3, 3, 2, 'relu', name='contract_conv3')]
    self.residual = []
    for block in range(1, NUM_RESIDUAL_BLOCKS + 1):
      self.residual.append([
          (conv(c3, 3, name=f'residual{block}_conv{k}'),
           StyleNorm(c3, epsilon, name=f'residual{block}_conv{k}_norm')) for k in (1, 2)])
    self.expand = [(conv(filters, kernel, name=f'expand_conv{k}'),
                    StyleNorm(filters, epsilon, name=f'expand_conv{k}_norm'))
                   for k, (filters, kernel) in enumerate(((c2, 3), (c1, 3), (3, 9)), start=1)]

  def call(self, inputs):
    content, bottleneck = inputs
    x = content
    for conv in self.contract:
      x = conv(x)
    for (conv1, norm1), (conv2, norm2) in self.residual:
      h = tf.nn.relu(norm1(conv1(x), bottleneck))
      x = x + norm2(conv2(h), bottleneck)
    for k, (conv, norm) in enumerate(self.expand):
      activation = tf.nn.relu if k < 2 else tf.sigmoid
      on_blocks = self.norms_on_blocks and conv.runs_on_blocks(upsampled=k < 2)
      x = (conv.call_upsampled(x, on_blocks) if k < 2 else conv(x, keep_blocks=on_blocks))
      x = activation(norm(x, bottleneck, groups=4 if on_blocks else 1))
      if on_blocks:
        x = tf.nn.depth_to_space(x, 2)
    return x

  def get_config(self):
    return {'width': self.width, 'epsilon': self.epsilon, 'for_export': self.for_export,
            'norms_on_blocks': self.norms_on_blocks, 'name': self.name}


def build(width: float = 0.25, epsilon: float = EPSILON, batch_size: int | None = 1,
          size: int = contract.CONTENT_SIZE, for_export: bool = True,
          norms_on_blocks: bool = True) -> keras.Model:
  """A functional model with the published input shapes (batch 1 by default: what the int8
  converter needs), inputs named for the published tensors' roles. `for_export=False` writes
  padding, upsampling and convolutions in the forms TensorFlow trains fastest (same weights, same
  values); the export forms (slices, 2x2 blocks, sub-pixel convolutions) need sides that are
  multiples of 4."""
  if for_export and size % 4:
    raise ValueError(f'an exported network needs a size that is a multiple of 4, not {size}')
  content = keras.Input((size, size, 3), batch_size=batch_size, name='content_image')
  bottleneck = keras.Input((1, 1, contract.BOTTLENECK_SIZE), batch_size=batch_size,
                           name='style_bottleneck')
  net = TransferNet(width, epsilon, for_export, norms_on_blocks, name='transformer')
  return keras.Model([content, bottleneck], net([content, bottleneck]), name='style_transfer')


def network(model: keras.Model) -> TransferNet:
  """The TransferNet inside a model made by `build`."""
  return model.get_layer('transformer')
