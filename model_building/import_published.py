"""Loads the weights of a published Magenta transfer `.tflite` (which the user supplies) into the
Keras `TransferNet`, and checks that the two compute the same thing.

The weights are read with the LiteRT interpreter: each convolution of the published graph is found
by its output tensor's name (`.../contract/conv1/Relu`, `.../residual1/conv2/Conv2D`,
`.../StyleNorm/Conv_1/BiasAdd`...), and its filter and bias constants are followed back through any
DEQUANTIZE op (fp16 files store them as float16; int8 weights are dequantized too). A file that
quantizes its activations (the published int8 one) is refused: it is not the float network.
Nothing read here is ever written into the repository: it lives in memory and in the files the
user asks for.
"""
from __future__ import annotations

import re

import numpy as np

from model_building import quality, transfer_net
from models import contract
from models.contract import Interpreter, OpResolverType

# Output-name patterns of the published convolutions -> the Keras layer (and sub-layer) they fill.
_CONV = re.compile(r'(contract/conv\d|residual/residual\d/conv\d|expand/conv\d)(?:/conv)?/'
                   r'(?:Relu|Conv2D|BiasAdd)$')
_NORM = re.compile(r'(residual/residual\d/conv\d|expand/conv\d)(?:/conv)?/StyleNorm/'
                   r'(Conv|Conv_1)/BiasAdd$')
_NORM_ADD = re.compile(r'StyleNorm/batchnorm/add$')  # variance + epsilon


class NotMagentaTransfer(ValueError):
  """A transfer model whose graph is not the Magenta transformer this definition rebuilds."""


def _layer_name(scope: str) -> str:
  """'residual/residual2/conv1' -> 'residual2_conv1'; 'expand/conv3' -> 'expand_conv3'."""
  parts = scope.split('/')
  return '_'.join(parts[-2:]) if parts[0] == 'residual' else '_'.join(parts)


def _constant(interp, details: dict, producers: dict, index: int) -> np.ndarray:
  """The float value of a constant tensor, through a DEQUANTIZE op and int8 quantization."""
  if index in producers:
    index = producers[index]
  d = details[index]
  value = interp.get_tensor(index)
  if value.dtype in (np.int8, np.uint8, np.int32) and d['quantization_parameters']['scales'].size:
    q = d['quantization_parameters']
    axis = q['quantized_dimension']
    shape = [1] * value.ndim
    if q['scales'].size > 1:
      shape[axis] = -1
    zero_points, scales = q['zero_points'].reshape(shape), q['scales'].reshape(shape)
    value = (value.astype(np.float32) - zero_points) * scales
  return value.astype(np.float32)


def read_weights(tflite_path: str) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], float, float]:
  """{keras weight path: (kernel HWIO, bias)}, the norm epsilon and the width multiplier."""
  interp = Interpreter(model_path=tflite_path,
                       experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
  interp.allocate_tensors()
  details = {d['index']: d for d in interp.get_tensor_details()}
  ops = interp._get_ops_details()
  if any(op['op_name'] == 'QUANTIZE' for op in ops):
    raise NotMagentaTransfer(
        f'{tflite_path} quantizes its activations (an int8 model): its float network cannot be '
        'recovered exactly. Give the fp16 transfer model as the source.')
  producers = {op['outputs'][0]: op['inputs'][0] for op in ops if op['op_name'] == 'DEQUANTIZE'}
  weights, epsilons = {}, set()
  # A converter may fuse ops and join their names with ';': the first name is the op's own.
  name_of = lambda index: details[index]['name'].split(';')[0]
  for op in ops:
    if op['op_name'] == 'ADD' and _NORM_ADD.search(name_of(op['outputs'][0])):
      scalars = [i for i in op['inputs'] if details[i]['shape'].size == 0 or
                 int(np.prod(details[i]['shape'])) == 1]
      epsilons.update(round(float(_constant(interp, details, producers, i).reshape(-1)[0]), 12)
                      for i in scalars)
    if op['op_name'] != 'CONV_2D':
      continue
    out_name = name_of(op['outputs'][0])
    norm, conv = _NORM.search(out_name), _CONV.search(out_name)
    if norm:
      key = f'{_layer_name(norm.group(1))}_norm/{"gamma" if norm.group(2) == "Conv_1" else "beta"}'
    elif conv:
      key = _layer_name(conv.group(1))
    else:
      raise NotMagentaTransfer(f'{tflite_path}: unexpected convolution {out_name!r}')
    # OHWI -> HWIO
    kernel = _constant(interp, details, producers, op['inputs'][1]).transpose(1, 2, 3, 0)
    bias = _constant(interp, details, producers, op['inputs'][2])
    weights[key] = (kernel, bias)
  if len(epsilons) != 1:
    raise NotMagentaTransfer(f'{tflite_path}: expected one instance-norm epsilon, found {epsilons}')
  if 'contract_conv1' not in weights:
    raise NotMagentaTransfer(f'{tflite_path}: no transformer/contract/conv1 convolution: '
                       'not a Magenta style transfer model')
  width = weights['contract_conv1'][0].shape[-1] / 32
  return weights, epsilons.pop(), width


def load_published(tflite_path: str, batch_size: int | None = 1):
  """A Keras model (see `transfer_net.build`) holding the published file's weights."""
  weights, epsilon, width = read_weights(tflite_path)
  model = transfer_net.build(width=width, epsilon=epsilon, batch_size=batch_size)
  net = transfer_net.network(model)
  expected = {}
  for layer in net.contract + [c for block in net.residual for c, _ in block] + [
      c for c, _ in net.expand]:
    expected[layer.name] = layer.conv
  for norm in [n for block in net.residual for _, n in block] + [n for _, n in net.expand]:
    expected[f'{norm.name}/gamma'] = norm.gamma
    expected[f'{norm.name}/beta'] = norm.beta
  if set(expected) != set(weights):
    raise NotMagentaTransfer(f'{tflite_path}: layers differ from the rebuild: missing '
                       f'{sorted(set(expected) - set(weights))}, extra '
                       f'{sorted(set(weights) - set(expected))}')
  for key, conv in expected.items():
    kernel, bias = weights[key]
    if tuple(conv.kernel.shape) != kernel.shape:
      raise NotMagentaTransfer(f'{tflite_path}: {key} kernel is {kernel.shape}, '
                         f'the rebuild expects {tuple(conv.kernel.shape)}')
    conv.set_weights([kernel, bias])
  return model


def check_equivalence(model, tflite_path: str, contents: list[np.ndarray],
                      bottlenecks: list[np.ndarray], min_psnr: float = 100.0) -> float:
  """Runs the Keras model and the source file on the same inputs; returns the lowest PSNR and
  raises if it falls under `min_psnr` (the rebuild must compute what the source computes)."""
  source = contract.StyleTransfer(tflite_path)
  worst = float('inf')
  for content in contents:
    for bottleneck in bottlenecks:
      expected = source.stylize(content, bottleneck)
      got = model([content[None], np.reshape(bottleneck, (1, 1, 1, -1)).astype(np.float32)])
      worst = min(worst, quality.psnr(np.asarray(got)[0], expected))
  if worst < min_psnr:
    raise NotMagentaTransfer(f'the Keras rebuild of {tflite_path} differs from it: '
                             f'PSNR {worst:.1f} dB '
                       f'< {min_psnr} dB')
  return worst
