"""The Keras transfer network: its fast forms compute what the published graph's ops compute, the
importer reproduces a Magenta transfer file in float, and every export keeps the model contract."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from model_building import export, import_published, tiny, transfer_net
from model_building.quality import psnr, ssim
from models import contract, imaging, style_bank


def _inputs(seed=0, count=1):
  rng = np.random.default_rng(seed)
  smooth = lambda: np.asarray(tf.image.resize(rng.random((1, 12, 12, 3)), (384, 384))[0],
                              np.float32).clip(0, 1)
  return ([smooth() for _ in range(count)],
          [rng.normal(0, 3, 100).astype(np.float32) for _ in range(count)])


@pytest.mark.parametrize('pad', [1, 4])
def test_reflect_pad_from_slices_equals_mirror_pad(pad):
  x = tf.constant(np.random.default_rng(pad).random((2, 11, 13, 3)), tf.float32)
  expected = tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode='REFLECT')
  np.testing.assert_array_equal(transfer_net.reflect_pad(x, pad), expected)
  np.testing.assert_array_equal(transfer_net.reflect_pad(x, pad, for_export=False), expected)


def test_upsample_equals_nearest_resize():
  x = tf.constant(np.random.default_rng(0).random((1, 5, 7, 4)), tf.float32)
  np.testing.assert_array_equal(transfer_net.upsample2(x),
                                tf.image.resize(x, (10, 14), 'nearest'))


def _conv_pair(kernel, stride=1, activation=None):
  """The same ReflectConv (same weights) in its training and export forms, and an input."""
  rng = np.random.default_rng(kernel)
  x = tf.constant(rng.random((1, 12, 16, 3)), tf.float32)
  weights = [rng.normal(size=(kernel, kernel, 3, 5)).astype(np.float32),
             rng.normal(size=5).astype(np.float32)]
  layers = [transfer_net.ReflectConv(5, kernel, stride, activation, for_export=f)
            for f in (False, True)]
  for layer in layers:
    layer.build(x.shape)
    layer.conv.set_weights(weights)
  return layers, x


def test_9x9_convolution_on_2x2_blocks_equals_the_plain_convolution():
  (plain, blocks), x = _conv_pair(9, activation='relu')
  expected = plain(x)
  assert expected.shape == (1, 12, 16, 5)
  np.testing.assert_allclose(blocks(x), expected, atol=1e-4)


def test_subpixel_convolution_equals_upsampling_then_convolving():
  (plain, blocks), x = _conv_pair(3)
  expected = plain(transfer_net.upsample2(x))
  assert expected.shape == (1, 24, 32, 5)
  np.testing.assert_allclose(blocks.call_upsampled(x), expected, atol=1e-4)
  np.testing.assert_allclose(plain.call_upsampled(x), expected, atol=1e-4)


def test_a_norm_on_2x2_blocks_equals_the_norm_of_the_picture_they_make():
  rng = np.random.default_rng(1)
  norm = transfer_net.StyleNorm(5)
  bottleneck = tf.constant(rng.normal(size=(1, 1, 1, 100)), tf.float32)
  # Sub-pixel groups with other means and spreads: pooling them wrongly moves the result.
  blocks = tf.constant(rng.normal(size=(1, 6, 8, 20)) * np.repeat([1., 3., .5, 2.], 5)
                       + np.repeat([0., 2., -1., 4.], 5), tf.float32)
  expected = norm(tf.nn.depth_to_space(blocks, 2), bottleneck)
  np.testing.assert_allclose(tf.nn.depth_to_space(norm(blocks, bottleneck, groups=4), 2),
                             expected, atol=1e-5)
  each_group_alone = tf.concat([norm(blocks[..., 5 * g:5 * g + 5], bottleneck) for g in range(4)],
                               axis=-1)
  assert np.abs(tf.nn.depth_to_space(each_group_alone, 2) - expected).max() > 0.1


def test_symmetric_pad_from_slices_equals_mirror_pad():
  x = tf.constant(np.random.default_rng(0).random((1, 5, 6, 2)), tf.float32)
  np.testing.assert_array_equal(transfer_net.reflect_pad(x, 1, mode='SYMMETRIC'),
                                tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], mode='SYMMETRIC'))


@pytest.mark.parametrize('norms_on_blocks', [True, False])
def test_training_and_export_forms_share_weights_and_values(norms_on_blocks):
  import keras
  keras.utils.set_random_seed(0)
  trained = transfer_net.build(width=0.125, batch_size=None, for_export=False)
  exported = transfer_net.build(width=0.125, norms_on_blocks=norms_on_blocks)
  exported.set_weights(trained.get_weights())
  (content,), (bottleneck,) = _inputs()
  args = [content[None], bottleneck.reshape(1, 1, 1, 100)]
  # Sums in another order (blocks, pre-summed sub-pixel taps): float rounding, amplified by a
  # random network's 13 norms, stays under 1e-3; swapped taps or a flipped kernel cost ~1.
  np.testing.assert_allclose(exported(args), trained(args), atol=1e-3)


@pytest.fixture(scope='module')
def magenta_like(tmp_path_factory) -> str:
  return tiny.build_magenta_like(str(tmp_path_factory.mktemp('magenta_like') / 'transfer.tflite'))


@pytest.fixture(scope='module')
def imported(magenta_like):
  """The importer's Keras rebuild of `magenta_like`, made once for the tests that read it."""
  return import_published.load_published(magenta_like)


@pytest.fixture(scope='module')
def exported(imported):
  """kind -> the rebuild exported as that kind (full int8 calibrated on `_inputs(2, 3)`), each
  converted once however many tests look at it."""
  contents, bottlenecks = _inputs(2, 3)
  made = {}

  def export_of(kind: str) -> bytes:
    if kind not in made:
      made[kind] = export.to_tflite(imported, kind, lambda: zip(contents, bottlenecks))
    return made[kind]
  return export_of


def test_importer_reproduces_a_magenta_graph_in_float(magenta_like, imported):
  weights, epsilon, width = import_published.read_weights(magenta_like)
  assert width == 0.125 and epsilon == pytest.approx(1e-5, rel=1e-2)  # stored as float16
  assert len(weights) == 3 + 10 + 3 + 13 * 2  # convolutions + gamma and beta of 13 norms
  model = imported
  contents, bottlenecks = _inputs(1, 2)
  assert import_published.check_equivalence(model, magenta_like, contents, bottlenecks) > 100


def test_importer_refuses_a_model_that_is_not_a_magenta_transformer(tiny_models):
  with pytest.raises(import_published.NotMagentaTransfer, match='convolution|contract'):
    import_published.load_published(f'{tiny_models}/tiny_transfer.tflite')


@pytest.mark.parametrize('kind', export.KINDS)
def test_exports_keep_the_published_contract_and_stay_close_to_float(kind, imported, exported,
                                                                     tmp_path):
  model = imported
  contents, bottlenecks = _inputs(2, 3)
  path = tmp_path / f'{kind}.tflite'
  path.write_bytes(exported(kind))
  transfer = contract.StyleTransfer(str(path))  # checks tensor names, shapes, dtypes
  content, bottleneck = contents[0], bottlenecks[0]
  got = transfer.stylize(content, bottleneck)
  float_out = lambda b: np.asarray(model([content[None], b.reshape(1, 1, 1, 100)]))[0]
  expected, other_style = float_out(bottleneck), float_out(bottlenecks[1])
  # A random network amplifies rounding (the published model's figures are in the test below):
  # the export must still sit far closer to the float output than another style's output does.
  floor = {'float32': 80, 'fp16': 40, 'int8-weights': 20, 'int8-storage': 25, 'int8-mixed': 20,
           'int8': 14}[kind]  # int8-mixed with no float layers named: int8-weights
  assert psnr(got, expected) > max(floor, psnr(other_style, expected) + 3)
  assert got.std() > 0.02  # a picture, not a flat colour


def test_the_fast_export_runs_whole_in_xnnpack(exported, tmp_path):
  """An op XNNPACK does not take (TILE, a 5-D reshape) splits the graph into pieces, and the
  runtime goes back and forth between them: the default export must stay one piece."""
  path = tmp_path / 'fast.tflite'
  path.write_bytes(exported('int8-weights'))
  interpreter = Interpreter(model_path=str(path))
  interpreter.allocate_tensors()
  ops = [op['op_name'] for op in interpreter._get_ops_details()]
  assert ops.count('DELEGATE') == 1
  assert 'TILE' not in ops


def test_int8_storage_keeps_int8_weights_but_computes_in_float(exported):
  from tensorflow.lite.python import schema_py_generated as schema
  from tensorflow.lite.tools import flatbuffer_utils
  hybrid = exported('int8-weights')
  stored = exported('int8-storage')
  assert len(stored) < len(hybrid) * 1.05  # still int8-sized
  parsed = flatbuffer_utils.convert_bytearray_to_object(bytearray(stored))
  graph, opcodes = parsed.subgraphs[0], parsed.operatorCodes
  kind = lambda op: max(opcodes[op.opcodeIndex].builtinCode,
                        opcodes[op.opcodeIndex].deprecatedBuiltinCode)
  convolutions = [op for op in graph.operators if kind(op) == schema.BuiltinOperator.CONV_2D]
  loads = [op for op in graph.operators if kind(op) == schema.BuiltinOperator.DEQUANTIZE]
  assert convolutions and len(loads) >= len(convolutions) // 2
  for op in convolutions:  # every convolution's filter arrives as float
    assert graph.tensors[op.inputs[1]].type == schema.TensorType.FLOAT32
  for op in loads:  # ...from an int8 constant
    assert graph.tensors[op.inputs[0]].type == schema.TensorType.INT8


def test_dequantize_at_load_refuses_a_model_without_int8_weights(exported):
  with pytest.raises(ValueError, match='no int8 weights'):
    export.dequantize_at_load(exported('float32'))


def test_full_int8_needs_representative_pairs(imported):
  with pytest.raises(ValueError, match='representative'):
    export.to_tflite(imported, 'int8')


def test_the_published_fp16_model_is_rebuilt_exactly(shared):
  source = str(shared / 'models' / 'magenta' /
               'magenta_arbitrary-image-stylization-v1-256_fp16_transfer_1.tflite')
  model = import_published.load_published(source)
  contents = [imaging.content_input(imaging.decode(
      (shared / 'images' / 'content' / name).read_bytes()).image, 'square')[0]
              for name in ('lion.jpg', 'coffee.png')]
  bank = style_bank.load()
  bottlenecks = [bank['the_scream'].bottleneck, bank['great_wave'].bottleneck]
  assert import_published.check_equivalence(model, source, contents, bottlenecks) > 100
  # Stated tolerances of the exports against the float rebuild on fixed real inputs.
  tolerances = {'int8-weights': (0.97, 30.0), 'int8-storage': (0.997, 44.0), 'int8': (0.85, 24.0),
                'fp16': (0.999, 45.0)}
  pairs = list(zip(contents, bottlenecks))
  for kind, (min_ssim, min_psnr) in tolerances.items():
    data = export.to_tflite(model, kind, lambda: iter(pairs))
    assert len(data) < (600_000 if kind == 'fp16' else 400_000)
    transfer = _loaded(data)
    for content, bottleneck in pairs:
      got = transfer.stylize(content, bottleneck)
      expected = np.asarray(model([content[None], bottleneck.reshape(1, 1, 1, 100)]))[0]
      assert ssim(got, expected) > min_ssim and psnr(got, expected) > min_psnr, kind


def _loaded(data: bytes) -> contract.StyleTransfer:
  import tempfile
  with tempfile.NamedTemporaryFile(suffix='.tflite') as f:
    f.write(data)
    f.flush()
    return contract.StyleTransfer(f.name)


def test_the_published_int8_model_is_refused_as_a_source(magenta_dir):
  with pytest.raises(import_published.NotMagentaTransfer, match='fp16'):
    import_published.read_weights(
        f'{magenta_dir}/magenta_arbitrary-image-stylization-v1-256_int8_transfer_1.tflite')


def test_the_slowed_tiny_stand_in_keeps_the_contract_and_costs_more(tmp_path, tiny_models):
  """benchmarks.endtoend --stand-in: the same names and shapes as the tiny model, outputs in
  [0, 1] that still follow the content, and more work per picture (more tensors)."""
  _, slowed = tiny.build(str(tmp_path), layers=2)
  plain = contract.StyleTransfer(f'{tiny_models}/tiny_transfer.tflite')
  stand_in = contract.StyleTransfer(slowed)
  (content,), (bottleneck,) = _inputs(3)
  out = stand_in.stylize(content, bottleneck)
  assert out.shape == (384, 384, 3) and 0 <= out.min() and out.max() <= 1
  assert np.corrcoef(out.ravel(), plain.stylize(content, bottleneck).ravel())[0, 1] > 0.9
  assert (len(stand_in._interpreter.get_tensor_details())
          > len(plain._interpreter.get_tensor_details()) + 4)
  with pytest.raises(ValueError, match='layers must be 0 or more'):
    tiny.build(str(tmp_path / 'refused'), layers=-1)
