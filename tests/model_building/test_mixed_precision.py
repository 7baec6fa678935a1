"""`int8-mixed` exports: the chosen layers' weights reach their ops through DEQUANTIZE (float
arithmetic) and the others stay int8 kernels; the other kinds are what they were; the choice of
layers (`model_building.mixed_precision`) and the shipped house model made from it."""
from __future__ import annotations

import pathlib

import numpy as np
import pytest
from conftest import ROOT
from tensorflow.lite.python import schema_py_generated as schema
from tensorflow.lite.tools import flatbuffer_utils

from model_building import distill, export, mixed_precision, transfer_net
from model_building.quality import psnr
from models import contract, registry

WIDTH = 0.125
FLOAT = {'contract_conv1', 'residual2_conv1_norm/gamma', 'expand_conv2'}


@pytest.fixture(scope='module')
def network():
  """A small network with random weights: enough to look at its exports."""
  return transfer_net.build(width=WIDTH)


@pytest.fixture(scope='module')
def exports(network):
  """kind -> bytes: int8-weights, int8-storage, and int8-mixed with FLOAT in float."""
  return {'int8-weights': export.to_tflite(network, 'int8-weights'),
          'int8-storage': export.to_tflite(network, 'int8-storage'),
          'int8-mixed': export.to_tflite(network, 'int8-mixed', float_layers=FLOAT)}


def _feeds(data: bytes, names: dict[str, str]) -> dict[str, str]:
  """Layer -> 'int8' (its op reads the int8 constant) or 'float' (through a DEQUANTIZE op), read
  from the flatbuffer; `names` maps the int8 constants' tensor names to layers."""
  model = flatbuffer_utils.convert_bytearray_to_object(bytearray(data))
  graph = model.subgraphs[0]
  kind = lambda op: max(model.operatorCodes[op.opcodeIndex].builtinCode,
                        model.operatorCodes[op.opcodeIndex].deprecatedBuiltinCode)
  loads = {op.outputs[0]: op.inputs[0] for op in graph.operators
           if kind(op) == schema.BuiltinOperator.DEQUANTIZE}
  feeds = {}
  for op in graph.operators:
    if kind(op) == schema.BuiltinOperator.DEQUANTIZE:
      continue
    for index in op.inputs:
      if index < 0:
        continue
      if index in loads:
        assert graph.tensors[index].type == schema.TensorType.FLOAT32
        stored, how = graph.tensors[loads[index]], 'float'
      else:
        stored, how = graph.tensors[index], 'int8'
      if stored.type == schema.TensorType.INT8 and stored.name.decode() in names:
        layer = names[stored.name.decode()]
        assert layer not in feeds  # one op per layer
        feeds[layer] = how
  return feeds


def _weight_names(data: bytes) -> dict[str, tuple[str, tuple[int, ...]]]:
  """int8 constant name -> (its layer, its shape), for a dynamic-range export."""
  model = flatbuffer_utils.convert_bytearray_to_object(bytearray(data))
  graph = model.subgraphs[0]
  constants = [graph.tensors[i] for op in graph.operators for i in op.inputs
               if i >= 0 and graph.tensors[i].type == schema.TensorType.INT8
               and model.buffers[graph.tensors[i].buffer].data is not None]
  layers = list(export.weight_layers(data))
  assert len(constants) == len(layers)
  return {t.name.decode(): (layer, tuple(t.shape)) for t, layer in zip(constants, layers)}


def test_weight_layers_name_every_int8_weight_by_its_keras_layer(exports):
  weights = _weight_names(exports['int8-weights'])
  shapes = {layer: shape for layer, shape in weights.values()}
  assert len(shapes) == len(weights)  # one name per weight
  assert {'contract_conv1', 'residual1_conv1', 'residual5_conv2_norm/beta', 'expand_conv1',
          'expand_conv2', 'expand_conv3'} <= set(shapes)
  c1, c2, c3 = transfer_net.channels(WIDTH)
  # The expand stages' sub-pixel convolutions, named by their order: 4 sub-pixels' channels each.
  assert shapes['expand_conv1'] == (4 * c2, 3, 3, c3)
  assert shapes['expand_conv2'] == (4 * c1, 3, 3, c2)
  assert shapes['residual3_conv1_norm/gamma'] == (c3, 1, 1, 100)
  assert set(export.weight_layers(exports['int8-weights']).values()) == {'int8'}
  assert set(export.weight_layers(exports['int8-storage']).values()) == {'float'}


def test_int8_mixed_feeds_only_the_named_layers_float(exports):
  names = {name: layer for name, (layer, _) in _weight_names(exports['int8-weights']).items()}
  feeds = _feeds(exports['int8-mixed'], names)
  assert set(feeds) == set(names.values())
  assert {layer for layer, how in feeds.items() if how == 'float'} == FLOAT
  assert export.weight_layers(exports['int8-mixed']) == feeds
  assert len(exports['int8-mixed']) < len(exports['int8-weights']) * 1.05  # still int8-sized


def test_int8_mixed_keeps_the_contract_and_lies_between_the_others(exports, tmp_path):
  rng = np.random.default_rng(0)
  content = np.clip(rng.random((1, 1, 3)) + rng.normal(0, 0.1, (384, 384, 3)), 0, 1)
  content = content.astype(np.float32)
  bottleneck = rng.normal(0, 1, 100).astype(np.float32)
  out = {}
  for kind, data in exports.items():
    (tmp_path / f'{kind}.tflite').write_bytes(data)
    out[kind] = contract.StyleTransfer(str(tmp_path / f'{kind}.tflite')).stylize(content,
                                                                                 bottleneck)
  assert not np.array_equal(out['int8-mixed'], out['int8-weights'])
  assert not np.array_equal(out['int8-mixed'], out['int8-storage'])
  assert psnr(out['int8-mixed'], out['int8-storage']) > 20


def test_the_other_kinds_are_unchanged_and_bound_int8_mixed(network, exports):
  everything = list(export.weight_layers(exports['int8-weights']))
  assert export.dequantize_at_load(exports['int8-weights']) == exports['int8-storage']
  assert export.to_tflite(network, 'int8-mixed', float_layers=everything) == exports['int8-storage']
  assert export.to_tflite(network, 'int8-mixed') == exports['int8-weights']


def test_unknown_layers_and_float_layers_for_other_kinds_are_refused(network, exports):
  with pytest.raises(ValueError, match='no int8 weights in layers'):
    export.dequantize_at_load(exports['int8-weights'], {'contract_conv9'})
  with pytest.raises(ValueError, match='int8-mixed'):
    export.to_tflite(network, 'int8-weights', float_layers=['contract_conv1'])


def test_choose_ranks_by_gain_against_float_and_drops_layers_it_does_without(exports):
  """A scorer whose float-referenced gains rank `ranked_first` first although only `needed`
  brings the teacher-referenced score within the tolerance: the first is added, then dropped."""
  layers = list(export.weight_layers(exports['int8-weights']))
  ranked_first, needed = layers[3], layers[7]

  def score(data):
    int8 = {layer for layer, how in export.weight_layers(data).items() if how == 'int8'}
    others = len(int8 - {ranked_first, needed}) * 1e-4
    return {'ssim': 0.9 - 0.008 * (needed in int8) - others, 'psnr_db': 25.0,
            'ssim_vs_float': 1 - 0.01 * (ranked_first in int8) - 0.005 * (needed in int8) - others}
  choice = mixed_precision.choose(exports['int8-weights'], exports['int8-storage'], score, 0.005)
  assert choice['float_layers'] == [needed]
  assert choice['int8_kernel_layers'] == len(layers) - 1
  assert list(choice['alone_in_float'])[:2] == [ranked_first, needed]
  tuning = choice['tuning']
  assert tuning['int8-storage']['ssim'] - tuning['int8-mixed']['ssim'] <= 0.005
  assert tuning['int8-storage']['ssim'] - tuning['int8-weights']['ssim'] > 0.005


def test_the_shipped_house_model_is_its_checkpoints_export(tmp_path):
  """`distill --export` remakes the embedded file byte for byte, in the form training/house's
  float_layers.json (when there) chooses: nothing is measured at export."""
  written = distill.export(str(ROOT / 'training' / 'house'), 0.3, str(tmp_path))
  int8 = next(path for kind, path in written.items() if kind.startswith('int8'))
  assert pathlib.Path(int8).read_bytes() == pathlib.Path(registry.HOUSE_TRANSFER).read_bytes()
