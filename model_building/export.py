"""Converts a Keras transfer network to `.tflite` files the pipeline runs unchanged.

Every export keeps float32 inputs and outputs and the published tensor names and shapes
(`content_image`, `mobilenet_conv/Conv/BiasAdd` -> `transformer/expand/conv3/conv/Sigmoid`), so
`models.contract.StyleTransfer` and `--model` take it like a published file. The kinds:
- `int8-weights`: int8 weights, float activations (dynamic range): no calibration, close to float;
- `int8-storage`: the same int8 weights, each handed to its op by a DEQUANTIZE op, which the runtime
  (XNNPACK included) runs once at load: int8 size, float arithmetic. Dynamic-range ops also round
  each layer's input to int8 on the fly, which costs the small house model fidelity (docs/models.md,
  benchmarks/results/distilled.json);
- `int8`: full integer, calibrated on representative (content, bottleneck) pairs;
- `fp16`: float16 weights, for GPU delegates;
- `float32`: the reference.
"""
from __future__ import annotations

from typing import Callable, Iterable

import numpy as np
import tensorflow as tf
from tensorflow.lite.python import schema_py_generated as schema
from tensorflow.lite.tools import flatbuffer_utils

from models import contract

KINDS = ('int8-weights', 'int8-storage', 'int8', 'fp16', 'float32')


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


def dequantize_at_load(tflite_bytes: bytes) -> bytes:
  """Feeds every int8 constant (the weights of a dynamic-range model) to its op through a
  DEQUANTIZE op, so that the op computes in float; the constants stay int8 in the file."""
  model = flatbuffer_utils.convert_bytearray_to_object(bytearray(tflite_bytes))
  graph = model.subgraphs[0]
  code = schema.OperatorCodeT()
  code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.DEQUANTIZE
  code.version = 4  # per-channel int8 input
  model.operatorCodes.append(code)
  loads = []
  for op in graph.operators:
    for k, index in enumerate(op.inputs):
      weights = graph.tensors[index] if index >= 0 else None
      if (weights is None or weights.type != schema.TensorType.INT8
          or model.buffers[weights.buffer].data is None):
        continue
      unpacked = schema.TensorT()
      unpacked.shape, unpacked.type = weights.shape, schema.TensorType.FLOAT32
      unpacked.name, unpacked.buffer = weights.name + b'/dequantized', 0
      graph.tensors.append(unpacked)
      op.inputs[k] = len(graph.tensors) - 1
      load = schema.OperatorT()
      load.opcodeIndex = len(model.operatorCodes) - 1
      load.inputs, load.outputs = [index], [op.inputs[k]]
      loads.append(load)
  if not loads:
    raise ValueError('no int8 weights to dequantize: is this a dynamic-range model?')
  graph.operators = loads + list(graph.operators)  # constants only: they can run first
  return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


Representative = Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]]


def to_tflite(model, kind: str, representative: Representative | None = None) -> bytes:
  """`model` (built by `transfer_net.build`, batch 1) as a `.tflite` of the given kind.

  `representative` yields (content 384x384x3, bottleneck 100) float32 pairs; `int8` needs it.
  """
  if kind not in KINDS:
    raise ValueError(f'unknown export kind {kind!r}; choose from {KINDS}')
  converter = tf.lite.TFLiteConverter.from_keras_model(model)
  if kind == 'fp16':
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]
  elif kind in ('int8-weights', 'int8-storage'):
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
  return publish_names(
      converted,
      {(1, size, size, 3): contract.CONTENT_IMAGE,
       (1, 1, 1, contract.BOTTLENECK_SIZE): contract.BOTTLENECK},
      contract.STYLIZED_IMAGE)
