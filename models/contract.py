"""The two style networks behind a small, checked interface.

The published models take float32 RGB in [0, 1] and give silent garbage for anything else, and the
tensor order differs between the int8 and fp16 files; so every tensor is found by name and every
input is checked for shape, dtype, range and finiteness before it reaches the interpreter.
An interpreter is not thread-safe: keep one per DoFn instance (one per thread of use).
"""
from __future__ import annotations

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

STYLE_IMAGE = 'style_image'
CONTENT_IMAGE = 'content_image'
BOTTLENECK = 'mobilenet_conv/Conv/BiasAdd'
STYLIZED_IMAGE = 'transformer/expand/conv3/conv/Sigmoid'

STYLE_SIZE = 256
CONTENT_SIZE = 384
BOTTLENECK_SIZE = 100


class ModelContractError(ValueError):
  """A model file without the tensors (names, shapes, dtypes) the pipeline relies on."""


class BadModelInput(ValueError):
  """An input the network would turn into garbage without complaint."""


class _Network:
  """One interpreter with inputs and output addressed by name."""
  inputs: dict[str, tuple[int, ...]] = {}
  output: tuple[str, tuple[int, ...]] = ('', ())

  def __init__(self, model_path: str, num_threads: int = 1, fast: bool = True):
    """`fast` False skips the XNNPACK delegate, whose set-up (packing the weights) costs a
    quarter of a second or more: enough to check the contract, slow to run."""
    try:
      self._interpreter = _interpreter(model_path, num_threads, fast)
      self._interpreter.allocate_tensors()
    except Exception as e:
      raise ModelContractError(f'{model_path} is not a loadable TFLite model: {e}') from e
    by_name = {d['name']: d for d in self._interpreter.get_input_details()}
    outputs = {d['name']: d for d in self._interpreter.get_output_details()}
    self._input_index = {}
    for name, shape in self.inputs.items():
      self._input_index[name] = _checked(model_path, 'input', by_name, name, shape)['index']
    out_name, out_shape = self.output
    self._output_index = _checked(model_path, 'output', outputs, out_name, out_shape)['index']

  def output_shape(self) -> tuple[int, ...]:
    """The output tensor's shape as the file declares it (dynamic sides show as 1)."""
    return next(tuple(d['shape']) for d in self._interpreter.get_output_details()
                if d['index'] == self._output_index)

  def _run(self, **arrays: np.ndarray) -> np.ndarray:
    for name, array in arrays.items():
      self._interpreter.set_tensor(self._input_index[name], array)
    self._interpreter.invoke()
    return self._interpreter.get_tensor(self._output_index)


def _interpreter(model_path: str, num_threads: int = 1, fast: bool = True) -> Interpreter:
  if fast:
    return Interpreter(model_path=model_path, num_threads=num_threads)
  return Interpreter(model_path=model_path, num_threads=num_threads,
                     experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)


def _checked(model_path, role, details, name, shape):
  """The tensor's details; `shape` None accepts any shape (a dynamic-shape output)."""
  if name not in details:
    raise ModelContractError(
        f'{model_path} has no {role} tensor named {name!r} (it has {sorted(details)})')
  found = details[name]
  if (shape is not None and tuple(found['shape']) != shape) or found['dtype'] != np.float32:
    raise ModelContractError(
        f'{model_path}: {role} {name!r} is {found["dtype"].__name__}{list(found["shape"])}, '
        f'expected float32{list(shape)}')
  return found


def _image_batch(image: np.ndarray, size: int | None, what: str) -> np.ndarray:
  """`image` as a batch of one, checked; `size` None accepts any HxWx3."""
  expected = (size, size, 3) if size else image.shape[:2] + (3,)
  if image.ndim != 3 or image.shape != expected or image.dtype != np.float32:
    raise BadModelInput(f'{what} must be float32 of shape {(size or "H", size or "W", 3)}, '
                        f'got {image.dtype}{image.shape}')
  if not np.isfinite(image).all():
    raise BadModelInput(f'{what} values must lie in [0, 1], got NaN or infinity')
  if image.min() < 0.0 or image.max() > 1.0:
    raise BadModelInput(f'{what} values must lie in [0, 1] (RGB scaled by 1/255), '
                        f'got [{image.min():.3g}, {image.max():.3g}]')
  return image[np.newaxis]


def _bottleneck_batch(bottleneck: np.ndarray) -> np.ndarray:
  bottleneck = np.asarray(bottleneck, dtype=np.float32).reshape(-1)
  if bottleneck.shape != (BOTTLENECK_SIZE,) or not np.isfinite(bottleneck).all():
    raise BadModelInput(f'a style bottleneck must be {BOTTLENECK_SIZE} finite floats, '
                        f'got shape {bottleneck.shape}')
  return bottleneck.reshape(1, 1, 1, BOTTLENECK_SIZE)


class StylePredictor(_Network):
  """Style image (256x256 RGB in [0, 1]) -> 100-float style bottleneck."""
  inputs = {STYLE_IMAGE: (1, STYLE_SIZE, STYLE_SIZE, 3)}
  output = (BOTTLENECK, (1, 1, 1, BOTTLENECK_SIZE))

  def predict(self, style_image: np.ndarray) -> np.ndarray:
    batch = _image_batch(style_image, STYLE_SIZE, 'style image')
    return self._run(**{STYLE_IMAGE: batch}).reshape(BOTTLENECK_SIZE).copy()


class StyleTransfer(_Network):
  """Content image (384x384 RGB in [0, 1]) + bottleneck -> stylized 384x384 RGB in [0, 1]."""
  inputs = {CONTENT_IMAGE: (1, CONTENT_SIZE, CONTENT_SIZE, 3),
            BOTTLENECK: (1, 1, 1, BOTTLENECK_SIZE)}
  output = (STYLIZED_IMAGE, (1, CONTENT_SIZE, CONTENT_SIZE, 3))

  def stylize(self, content_image: np.ndarray, bottleneck: np.ndarray) -> np.ndarray:
    batch = _image_batch(content_image, CONTENT_SIZE, 'content image')
    out = self._run(**{CONTENT_IMAGE: batch, BOTTLENECK: _bottleneck_batch(bottleneck)})
    return out[0].copy()


class DynamicStyleTransfer(StyleTransfer):
  """A transfer network whose output follows its input's size (the 2019 dynamic-range release):
  it paints a whole picture of any size in one pass."""
  output = (STYLIZED_IMAGE, None)

  def stylize_any(self, content_image: np.ndarray, bottleneck: np.ndarray) -> np.ndarray:
    """Stylizes an HxWx3 picture of any size; returns HxWx3."""
    height, width = _image_batch(content_image, None, 'content image').shape[1:3]
    # The network halves the picture twice and doubles it back: sides must be multiples of 4.
    padded = np.pad(content_image, ((0, -height % 4), (0, -width % 4), (0, 0)), mode='reflect')
    batch = padded[np.newaxis]
    index = self._input_index[CONTENT_IMAGE]
    if tuple(self._interpreter.get_tensor(index).shape) != batch.shape:
      self._interpreter.resize_tensor_input(index, batch.shape)
      self._interpreter.allocate_tensors()
    out = self._run(**{CONTENT_IMAGE: batch, BOTTLENECK: _bottleneck_batch(bottleneck)})
    return out[0, :height, :width].copy()


def open_transfer(model_path: str, num_threads: int = 1, fast: bool = True) -> StyleTransfer:
  """The right wrapper for a transfer model file: fixed 384x384 output, or dynamic shape."""
  peek = DynamicStyleTransfer(model_path, fast=False)  # no delegate: milliseconds
  shape = peek.output_shape()
  kind = StyleTransfer if shape == StyleTransfer.output[1] else DynamicStyleTransfer
  return kind(model_path, num_threads, fast)
