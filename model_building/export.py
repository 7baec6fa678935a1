"""Converts a Keras transfer network to `.tflite` files the pipeline runs unchanged.

Every export keeps float32 inputs and outputs and the published tensor names and shapes
(`content_image`, `mobilenet_conv/Conv/BiasAdd` -> `transformer/expand/conv3/conv/Sigmoid`), so
`models.contract.StyleTransfer` and `--model` take it like a published file. The kinds:
- `int8-weights`: int8 weights, float activations (dynamic range): no calibration, close to float;
- `int8-storage`: the same int8 weights, each handed to its op by a DEQUANTIZE op, which the runtime
  (XNNPACK included) runs once at load: int8 size, float arithmetic. Dynamic-range ops also round
  each layer's input to int8 on the fly, which costs the small house model fidelity (docs/models.md,
  benchmarks/results/distilled.json);
- `int8-mixed`: `int8-weights`, but the layers named in `float_layers` are fed as `int8-storage`
  feeds them (float arithmetic): int8 kernels only where the rounding costs little
  (`model_building/mixed_precision.py` chooses the layers; `weight_layers` names them);
- `int8`: full integer, calibrated on representative (content, bottleneck) pairs;
- `fp16`: float16 weights, for GPU delegates;
- `float32`: the reference.
"""
from __future__ import annotations

import re
from typing import Callable, Collection, Iterable

import numpy as np
import tensorflow as tf
from tensorflow.lite.python import schema_py_generated as schema
from tensorflow.lite.tools import flatbuffer_utils

from models import contract

KINDS = ('int8-weights', 'int8-storage', 'int8-mixed', 'int8', 'fp16', 'float32')


def publish_names(tflite_bytes: bytes, inputs_by_shape: dict, output: str) -> bytes:
  """Gives the model's inputs and output the published names (converters pick their own)."""
  model = flatbuffer_utils.convert_bytearray_to_object(bytearray(tflite_bytes))
  graph = model.subgraphs[0]
  for index in graph.inputs:
    tensor = graph.tensors[index]
    tensor.name = inputs_by_shape[tuple(int(d) for d in tensor.shape)].encode()
  graph.tensors[graph.outputs[0]].name = output.encode()
  # Signature names are what some runtimes show; keep them in step with the tensors.
  for signature in model.signatureDefs or []:
    for tensor_map in list(signature.inputs or []) + list(signature.outputs or []):
      tensor_map.name = graph.tensors[tensor_map.tensorIndex].name
  return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


# The sub-pixel convolutions of the expand stages run outside their layer's name scope
# (`transfer_net.ReflectConv.call_upsampled` is not a Keras call), so their weights carry no layer
# name; they come in this order in any export (each stage reads the one before).
_UNSCOPED = ('expand_conv1', 'expand_conv2')


def _weights(model) -> list[tuple[object, int, str, bool]]:
  """(op, input position, layer name, whether it is fed float) of each int8 weight an op reads,
  directly (an int8 kernel) or through a DEQUANTIZE op, in graph order."""
  graph = model.subgraphs[0]
  loads = {op.outputs[0]: op.inputs[0] for op in graph.operators
           if _builtin(model, op) == schema.BuiltinOperator.DEQUANTIZE}
  found, unscoped = [], 0
  for op in graph.operators:
    if _builtin(model, op) == schema.BuiltinOperator.DEQUANTIZE:
      continue
    for k, index in enumerate(op.inputs):
      stored = graph.tensors[loads.get(index, index)] if index >= 0 else None
      if (stored is None or stored.type != schema.TensorType.INT8
          or model.buffers[stored.buffer].data is None):
        continue
      layer = _layer_of(stored.name.decode())
      if layer is None:
        layer = _UNSCOPED[unscoped] if unscoped < len(_UNSCOPED) else stored.name.decode()
        unscoped += 1
      found.append((op, k, layer, index in loads))
  return found


def _builtin(model, op) -> int:
  code = model.operatorCodes[op.opcodeIndex]
  return max(code.builtinCode, code.deprecatedBuiltinCode)  # the larger: see the schema


def _layer_of(tensor_name: str) -> str | None:
  """`.../transformer_1/residual1_conv1_norm_1/gamma_1/convolution` -> `residual1_conv1_norm/gamma`:
  the Keras layers the weight lies in, without Keras' call-count suffixes or the op's name (both
  change from one build or converter to the next); a ReflectConv's inner `conv` is left out.
  None for a weight in no layer; the whole name in a network other than `transfer_net`'s."""
  scopes = [re.sub(r'_\d+$', '', part) for part in tensor_name.split('/')[:-1]]
  if 'transformer' not in scopes:
    return tensor_name
  scopes = scopes[scopes.index('transformer') + 1:]
  if scopes[-1:] == ['conv']:
    scopes = scopes[:-1]
  return '/'.join(scopes) or None


def weight_layers(tflite_bytes: bytes) -> dict[str, str]:
  """Layer name -> how its int8 weights reach it ('int8' kernel, or 'float' through DEQUANTIZE),
  in graph order: the names `dequantize_at_load` and `to_tflite(..., float_layers=)` take."""
  model = flatbuffer_utils.convert_bytearray_to_object(bytearray(tflite_bytes))
  return {layer: 'float' if fed_float else 'int8' for _, _, layer, fed_float in _weights(model)}


def dequantize_at_load(tflite_bytes: bytes, layers: Collection[str] | None = None) -> bytes:
  """Feeds every int8 constant (the weights of a dynamic-range model) to its op through a
  DEQUANTIZE op, so that the op computes in float; the constants stay int8 in the file.

  With `layers` (names as `weight_layers` gives them), only those layers' weights: the other ops
  keep their int8 kernels."""
  model = flatbuffer_utils.convert_bytearray_to_object(bytearray(tflite_bytes))
  graph = model.subgraphs[0]
  weights = _weights(model)
  if layers is not None:
    unknown = set(layers) - {layer for _, _, layer, _ in weights}
    if unknown:
      raise ValueError(f'no int8 weights in layers {sorted(unknown)}; the model\'s are '
                       f'{[layer for _, _, layer, _ in weights]}')
    weights = [w for w in weights if w[2] in layers]
  weights = [w for w in weights if not w[3]]  # those fed float already stay as they are
  if not weights:
    if layers is None:
      raise ValueError('no int8 weights to dequantize: is this a dynamic-range model?')
    return tflite_bytes
  code = schema.OperatorCodeT()
  code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.DEQUANTIZE
  code.version = 4  # per-channel int8 input
  model.operatorCodes.append(code)
  loads = []
  for op, k, _, _ in weights:
    index = op.inputs[k]
    stored = graph.tensors[index]
    unpacked = schema.TensorT()
    unpacked.shape, unpacked.type = stored.shape, schema.TensorType.FLOAT32
    unpacked.name, unpacked.buffer = stored.name + b'/dequantized', 0
    graph.tensors.append(unpacked)
    op.inputs[k] = len(graph.tensors) - 1
    load = schema.OperatorT()
    load.opcodeIndex = len(model.operatorCodes) - 1
    load.inputs, load.outputs = [index], [op.inputs[k]]
    loads.append(load)
  graph.operators = loads + list(graph.operators)  # constants only: they can run first
  return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


Representative = Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]]


def to_tflite(model, kind: str, representative: Representative | None = None,
              float_layers: Collection[str] = ()) -> bytes:
  """`model` (built by `transfer_net.build`, batch 1) as a `.tflite` of the given kind.

  `representative` yields (content 384x384x3, bottleneck 100) float32 pairs; `int8` needs it.
  `float_layers` (`int8-mixed` only) names the layers that compute in float.
  """
  if kind not in KINDS:
    raise ValueError(f'unknown export kind {kind!r}; choose from {KINDS}')
  if float_layers and kind != 'int8-mixed':
    raise ValueError(f'float_layers is for int8-mixed exports, not {kind!r}')
  converter = tf.lite.TFLiteConverter.from_keras_model(model)
  if kind == 'fp16':
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]
  elif kind in ('int8-weights', 'int8-storage', 'int8-mixed'):
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
  elif kind == 'int8':
    if representative is None:
      raise ValueError('a full-int8 export needs representative (content, bottleneck) pairs')
    content_name, bottleneck_name = (i.name for i in model.inputs)

    def dataset():
      for content, bottleneck in representative():
        yield {content_name: np.asarray(content, np.float32)[None],
               bottleneck_name: np.reshape(bottleneck, (1, 1, 1, -1)).astype(np.float32)}

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = dataset
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.float32
    converter.inference_output_type = tf.float32
  size = int(model.inputs[0].shape[1])
  converted = converter.convert()
  if kind == 'int8-storage':
    converted = dequantize_at_load(converted)
  elif kind == 'int8-mixed':
    converted = dequantize_at_load(converted, set(float_layers))
  return publish_names(
      converted,
      {(1, size, size, 3): contract.CONTENT_IMAGE,
       (1, 1, 1, contract.BOTTLENECK_SIZE): contract.BOTTLENECK},
      contract.STYLIZED_IMAGE)
