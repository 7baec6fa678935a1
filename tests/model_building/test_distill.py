"""A tiny distillation run end to end: teacher cache, seeded training, checkpoint, resume, export.

The teacher and predictor are the tiny generated models (the published ones are not needed), the
pictures are generated, and the student is the width-0.125 network; a few steps only."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import gradient_picture
from PIL import Image

from model_building import distill, export, transfer_net
from models import contract


@pytest.fixture(scope='module')
def sources(tmp_path_factory):
  """Generated photos and paintings, only ever read."""
  root = tmp_path_factory.mktemp('sources')
  (root / 'photos').mkdir()
  (root / 'paintings').mkdir()
  for i in range(3):
    gradient_picture(420 + 30 * i, 400, seed=i).save(root / 'photos' / f'p{i}.png')
    gradient_picture(300, 300, seed=20 + i).save(root / 'paintings' / f's{i}.png')
  return root


@pytest.fixture(scope='module')
def first_session(sources, tiny_models, tmp_path_factory):
  """A workdir whose first session ended at step 2 (width 0.125, checkpoint every 2): the start
  that tests of resuming and of widening share. Tests go on in a copy of it."""
  workdir = tmp_path_factory.mktemp('first_session') / 'run'
  _train(sources, tiny_models, workdir, until=2)
  return workdir


EVERY_STEP = ['--checkpoint-every', '1', '--average-last', '2']


@pytest.fixture(scope='module')
def averaged(sources, tiny_models, tmp_path_factory):
  """A 4-step schedule averaging its last 2 steps, checkpointed every step, run in two sessions
  of which the first ends inside the window (at step 3). Tests go on in a copy of it."""
  workdir = tmp_path_factory.mktemp('averaged') / 'run'
  _train(sources, tiny_models, workdir, until=3, extra=EVERY_STEP)
  _train(sources, tiny_models, workdir, extra=EVERY_STEP)
  return workdir


def _copy(workdir, tmp_path):
  shutil.copytree(workdir, tmp_path / 'run')
  return tmp_path / 'run'


def _train(sources, tiny_models, workdir, until=None, extra=()):
  distill.main(['--workdir', str(workdir), '--teacher', f'{tiny_models}/tiny_transfer.tflite',
                '--predictor', f'{tiny_models}/tiny_prediction.tflite',
                '--content', str(sources / 'photos' / '*.png'),
                '--styles', str(sources / 'paintings' / '*.png'),
                '--pairs', '6', '--steps', '4', '--batch', '2', '--width', '0.125',
                '--checkpoint-every', '2', '--no-xla'] + (['--until', str(until)] if until else [])
               + list(extra))


def _log(workdir):
  return [json.loads(line) for line in (workdir / 'log.jsonl').read_text().splitlines()]


def test_cache_train_resume_and_export(sources, tiny_models, first_session, tmp_path):
  workdir = _copy(first_session, tmp_path)  # a session ended at step 2
  cache = np.load(workdir / 'cache' / 'shard-0000.npz')
  assert cache['content'].shape == (6, 384, 384, 3) and cache['content'].dtype == np.uint8
  assert cache['target'].shape == (6, 384, 384, 3) and cache['bottleneck'].shape == (6, 100)
  # The cached targets are the teacher's outputs for the cached inputs.
  teacher = contract.StyleTransfer(f'{tiny_models}/tiny_transfer.tflite')
  expected = teacher.stylize(cache['content'][0] / np.float32(255), cache['bottleneck'][0])
  assert np.abs(cache['target'][0] / 255 - expected).max() <= 0.5 / 255 + 1e-6
  assert [row['step'] for row in _log(workdir)] == [2]

  _train(sources, tiny_models, workdir)  # a later session resumes and finishes
  log = _log(workdir)
  assert [row['step'] for row in log] == [2, 4]
  assert all(np.isfinite(row['loss']) for row in log)
  assert sorted(p.name for p in (workdir / 'checkpoints').glob('ckpt-*.index')) == [
      'ckpt-2.index', 'ckpt-4.index']

  # Resuming changes nothing: an uninterrupted run to step 4 ends with the same weights.
  straight = tmp_path / 'straight'
  (straight / 'cache').mkdir(parents=True)
  for shard in (workdir / 'cache').iterdir():
    (straight / 'cache' / shard.name).write_bytes(shard.read_bytes())
  _train(sources, tiny_models, straight)
  resumed, uninterrupted = (distill.restore_for_export(str(w), 0.125)[0] for w in (workdir,
                                                                                     straight))
  initial = transfer_net.build(width=0.125)
  for a, b in zip(resumed.weights, uninterrupted.weights):
    np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-4)
  assert any(not np.allclose(a.numpy(), c.numpy()) for a, c in zip(resumed.weights,
                                                                    initial.weights))

  out = tmp_path / 'exported'
  distill.main(['--workdir', str(workdir), '--width', '0.125', '--export', str(out)])
  content, bottleneck = cache['content'][1] / np.float32(255), cache['bottleneck'][1]
  initial_out = np.asarray(initial([content[None], bottleneck.reshape(1, 1, 1, 100)]))[0]
  # The exported files hold the trained network: they compute exactly what a fresh export of the
  # restored checkpoint computes. (Not compared with Keras: a 4-step network has near-degenerate
  # instance norms that turn float rounding, e.g. the export's block convolutions summing in
  # another order, into differences of 0.1; exports of real networks are checked against float
  # in test_transfer_net.py.)
  for name, kind in (('house_int8_transfer.tflite', 'int8-storage'),
                     ('house_fp16_transfer.tflite', 'fp16')):
    picture = contract.StyleTransfer(str(out / name)).stylize(content, bottleneck)  # contract
    (tmp_path / 'fresh.tflite').write_bytes(export.to_tflite(resumed, kind))
    fresh = contract.StyleTransfer(str(tmp_path / 'fresh.tflite')).stylize(content, bottleneck)
    np.testing.assert_allclose(picture, fresh, atol=1e-6)
    assert np.abs(picture - initial_out).mean() > 0.05  # not the untrained network


def test_the_export_keeps_the_layers_float_layers_json_names_in_float(first_session, tmp_path):
  """With `mixed_precision`'s choice in the workdir the int8 file is that int8-mixed export."""
  workdir = _copy(first_session, tmp_path)
  chosen = ['contract_conv1', 'expand_conv3']
  (workdir / distill.FLOAT_LAYERS_FILE).write_text(json.dumps(
      {'checkpoint': 'ckpt-2', 'float_layers': chosen}))
  out = tmp_path / 'exported'
  distill.main(['--workdir', str(workdir), '--width', '0.125', '--export', str(out)])
  written = (out / 'house_int8_transfer.tflite').read_bytes()
  model, _ = distill.restore_for_export(str(workdir), 0.125)
  assert written == export.to_tflite(model, 'int8-mixed', float_layers=chosen)
  feeds = export.weight_layers(written)
  assert {layer for layer, how in feeds.items() if how == 'float'} == set(chosen)
  contract.StyleTransfer(str(out / 'house_int8_transfer.tflite'))  # names, shapes, dtypes


@pytest.mark.parametrize('text', ['{"float_layers": []}', '{"float_layers": "contract_conv2"}',
                                  '[]', '{"checkpoint": "ckpt-2"}', 'not json'])
def test_a_float_layers_file_that_names_no_layers_is_refused(tmp_path, text):
  (tmp_path / distill.FLOAT_LAYERS_FILE).write_text(text)
  with pytest.raises(ValueError, match=distill.FLOAT_LAYERS_FILE):
    distill.float_layers(str(tmp_path))
  assert distill.float_layers(str(tmp_path / 'absent')) is None
  (tmp_path / distill.FLOAT_LAYERS_FILE).write_text('{"float_layers": ["contract_conv2"]}')
  assert distill.float_layers(str(tmp_path))['float_layers'] == ['contract_conv2']


def test_weight_averaging_exports_the_mean_of_the_last_checkpoints(averaged):
  """`--average-last 2` with a checkpoint every step: the export holds the mean of the weights at
  steps 3 and 4 (not step 2's, outside the window), also when a session ended inside the window."""
  _assert_exports_the_mean_of(averaged, 3, 4)
  # Before the window a checkpoint holds no mean.
  assert not distill._holds_average(str(averaged / 'checkpoints' / 'ckpt-2'))


def _assert_exports_the_mean_of(workdir, first, last):
  """The export of `workdir` holds the mean of the (differing) weights at steps first..last."""
  at = []
  for step in range(first, last + 1):
    at.append(transfer_net.build(width=0.125))
    distill.restore_weights(at[-1], str(workdir / 'checkpoints' / f'ckpt-{step}'))
  exported, _ = distill.restore_for_export(str(workdir), 0.125)
  for k, mean in enumerate(exported.weights):
    np.testing.assert_allclose(mean.numpy(), np.mean([m.weights[k].numpy() for m in at], axis=0),
                               atol=1e-6)
  assert any(not np.allclose(a.numpy(), b.numpy()) for a, b in zip(at[0].weights, at[-1].weights))


def test_a_lengthened_schedule_averages_only_its_own_window(sources, tiny_models, averaged,
                                                           tmp_path):
  """A run finished at step 4 (mean of steps 3 and 4), then lengthened to 6 steps: the export is
  the mean of steps 5 and 6, the new schedule's window, with nothing of the old mean in it."""
  workdir = _copy(averaged, tmp_path)
  _train(sources, tiny_models, workdir, extra=EVERY_STEP + ['--steps', '6'])
  _assert_exports_the_mean_of(workdir, 5, 6)


def test_the_psnr_weight_adds_mean_log_mse_to_the_loss(sources, tiny_models, tmp_path):
  """Each logged loss is L1 + (1 - SSIM) / 2 - W x PSNR / 10 (means over the logged steps are
  linear in them); the log gives the held-out PSNR beside the held-out SSIM."""
  _train(sources, tiny_models, tmp_path / 'run',
         extra=['--psnr-weight', '0.5', '--holdout-content', str(sources / 'photos' / 'p2.png'),
                '--holdout-styles', str(sources / 'paintings' / 's2.png')])
  log = _log(tmp_path / 'run')
  for row in log:
    assert 5 < row['train_psnr'] < 60
    expected = row['l1'] + 0.5 * (1 - row['train_ssim']) - 0.5 * row['train_psnr'] / 10
    assert row['loss'] == pytest.approx(expected, abs=1e-3)
  assert 5 < log[-1]['holdout_psnr'] < 60 and 0 < log[-1]['holdout_ssim'] <= 1


@pytest.mark.parametrize('window', ['-1', '5'])
def test_an_averaging_window_outside_the_schedule_is_a_clear_error(sources, tiny_models, tmp_path,
                                                                   capsys, window):
  with pytest.raises(SystemExit):
    _train(sources, tiny_models, tmp_path / 'run', extra=['--average-last', window])
  assert '--average-last must be between 0 and --steps (4)' in capsys.readouterr().err
  assert not (tmp_path / 'run' / 'cache').exists()  # refused before any work


def test_a_negative_psnr_weight_is_a_clear_error(sources, tiny_models, tmp_path, capsys):
  with pytest.raises(SystemExit):
    _train(sources, tiny_models, tmp_path / 'run', extra=['--psnr-weight', '-0.1'])
  assert '--psnr-weight must be 0 or more' in capsys.readouterr().err
  assert not (tmp_path / 'run' / 'cache').exists()  # refused before any work


def test_same_seed_same_cache(sources, tiny_models, tmp_path):
  for run in ('a', 'b'):
    distill.build_cache(str(tmp_path / run), f'{tiny_models}/tiny_transfer.tflite',
                        f'{tiny_models}/tiny_prediction.tflite',
                        sorted(str(p) for p in (sources / 'photos').glob('*.png')),
                        sorted(str(p) for p in (sources / 'paintings').glob('*.png')),
                        pairs=3, seed=7)
  a, b = (np.load(tmp_path / run / 'cache' / 'shard-0000.npz') for run in ('a', 'b'))
  np.testing.assert_array_equal(a['content'], b['content'])
  np.testing.assert_array_equal(a['bottleneck'], b['bottleneck'])
  # A cache is never reused for other inputs.
  with pytest.raises(SystemExit, match='seed'):
    distill.build_cache(str(tmp_path / 'a'), f'{tiny_models}/tiny_transfer.tflite',
                        f'{tiny_models}/tiny_prediction.tflite',
                        sorted(str(p) for p in (sources / 'photos').glob('*.png')),
                        sorted(str(p) for p in (sources / 'paintings').glob('*.png')),
                        pairs=3, seed=8)


def test_a_glob_that_matches_nothing_is_a_clear_error(sources, tiny_models, tmp_path, capsys):
  with pytest.raises(SystemExit):
    distill.main(['--workdir', str(tmp_path / 'w'),
                  '--teacher', f'{tiny_models}/tiny_transfer.tflite',
                  '--predictor', f'{tiny_models}/tiny_prediction.tflite',
                  '--content', str(sources / 'photos' / '*.typo'),
                  '--styles', str(sources / 'paintings' / '*.png')])
  assert 'no training photos' in capsys.readouterr().err


def test_bottleneck_mix_paintings_blends_strengths_and_unseen_styles():
  # Paintings at the corners of a triangle and a photo at the origin tell the kinds apart: a
  # painting, a blend of two or a strength blend has a zero coordinate; a Gaussian draw (around
  # the triangle's centre, in its plane) has none.
  styles, own = np.eye(3), np.zeros(3)
  rng = np.random.default_rng(0)
  draws = np.array([distill.random_bottleneck(styles, own, rng) for _ in range(2000)])
  assert np.isfinite(draws).all()
  unseen = np.all(np.abs(draws) > 1e-9, axis=1)
  assert 0.10 < unseen.mean() < 0.20
  np.testing.assert_allclose(draws[unseen].sum(axis=1), 1.0, atol=1e-6)  # the paintings' plane
  assert (draws[unseen] < 0).any()  # beyond the triangle: not only blends
  paintings = np.all(np.isin(draws, (0.0, 1.0)), axis=1)
  assert 0.45 < paintings.mean() < 0.58  # also blends of a painting with itself
  # One painting alone has no spread to fit: its bottleneck is used as it is.
  single = np.array([distill.random_bottleneck(styles[:1], own, rng) for _ in range(200)])
  assert np.isfinite(single).all() and (single[:, 1:] == 0).all()


def test_a_cache_made_by_another_sampling_recipe_is_refused(sources, tiny_models, tmp_path,
                                                             monkeypatch):
  make = lambda: distill.build_cache(
      str(tmp_path), f'{tiny_models}/tiny_transfer.tflite', f'{tiny_models}/tiny_prediction.tflite',
      sorted(str(p) for p in (sources / 'photos').glob('*.png')),
      sorted(str(p) for p in (sources / 'paintings').glob('*.png')), pairs=2, seed=7)
  make()
  monkeypatch.setattr(distill, 'CACHE_RECIPE', distill.CACHE_RECIPE + 1)
  with pytest.raises(SystemExit, match='recipe'):
    make()


def test_recolour_turns_hues_and_keeps_the_picture():
  # A painting of three flat colour bands: recolouring must change the colours (so the predictor
  # sees a new style) but keep the layout, and the same seed must give the same variant.
  bands = np.zeros((60, 90, 3), np.uint8)
  bands[:, :30], bands[:, 30:60], bands[:, 60:] = (200, 40, 40), (40, 160, 60), (50, 60, 190)
  painting = Image.fromarray(bands)
  hues = lambda picture: np.asarray(picture.convert('HSV'))[..., 0].astype(int)
  turned = [distill.recolour(painting, np.random.default_rng(seed)) for seed in range(6)]
  assert all(t.size == painting.size and t.mode == 'RGB' for t in turned)
  for t in turned:
    shift = (hues(t) - hues(painting)) % 256
    assert np.ptp(shift[:, 5:25]) <= 2 and np.ptp(shift[:, 65:85]) <= 2  # each band stays flat
  assert len({int(((hues(t) - hues(painting)) % 256)[30, 15]) for t in turned}) >= 4
  again = distill.recolour(painting, np.random.default_rng(3))
  assert np.array_equal(np.asarray(again), np.asarray(turned[3]))


def test_abstraction_paints_new_shapes_in_the_paintings_palette():
  # The same three-band painting: its abstraction must keep the painting's hues (and only those)
  # while laying them out anew, differently for each seed and the same for the same seed.
  bands = np.zeros((60, 90, 3), np.uint8)
  bands[:, :30], bands[:, 30:60], bands[:, 60:] = (200, 40, 40), (40, 160, 60), (50, 60, 190)
  painting = Image.fromarray(bands)
  palette = np.asarray(painting.convert('HSV'))[0, [15, 45, 75], 0].astype(int)
  made = [distill.abstraction(painting, np.random.default_rng(seed), size=128) for seed in range(4)]
  for picture in made:
    assert picture.size == (128, 128) and picture.mode == 'RGB'
    hsv = np.asarray(picture.convert('HSV')).astype(int)
    gap = np.abs((hsv[..., 0][..., None] - palette + 128) % 256 - 128)  # to each palette hue
    assert np.all(gap.min(axis=-1) <= 12)
    assert all(np.mean(gap[..., k] <= 12) > 0.02 for k in range(3))  # every colour is used
    red_in_left_third = np.mean(np.argmax(np.asarray(picture)[:, :42], axis=-1) == 0)
    assert red_in_left_third < 0.9  # shapes, not the painting's bands
  assert len({np.asarray(p).tobytes() for p in made}) == 4
  again = distill.abstraction(painting, np.random.default_rng(2), size=128)
  assert np.array_equal(np.asarray(again), np.asarray(made[2]))


def test_a_larger_width_goes_on_from_the_narrower_checkpoint(sources, tiny_models, first_session,
                                                             tmp_path):
  """`--width` above the checkpoint's widens its network (model_building/widen.py) and trains on
  from its step; the wider checkpoints then resume and export at the new width."""
  workdir, wider = _copy(first_session, tmp_path), ['--width', '0.25']  # at step 2, width 0.125
  narrow = transfer_net.build(width=0.125)
  distill.restore_weights(narrow, str(workdir / 'checkpoints' / 'ckpt-2'))
  _train(sources, tiny_models, workdir, until=3, extra=wider + ['--checkpoint-every', '1'])
  after_one_step = transfer_net.build(width=0.25)
  distill.restore_weights(after_one_step, str(workdir / 'checkpoints' / 'ckpt-3'))
  # The first 9x9 kernel's old output channels moved by one small step, not back to a random start.
  old = narrow.weights[0].numpy()
  new = after_one_step.weights[0].numpy()[..., :old.shape[-1]]
  assert np.abs(new - old).max() < 0.01 < np.abs(
      transfer_net.build(width=0.25).weights[0].numpy()[..., :old.shape[-1]] - old).max()
  with pytest.raises(ValueError, match='another --width'):
    distill.restore_weights(transfer_net.build(width=0.125),
                            str(workdir / 'checkpoints' / 'ckpt-3'))

  _train(sources, tiny_models, workdir, extra=wider)  # resumes the wide checkpoint
  assert [row['step'] for row in _log(workdir)] == [2, 3, 4]
  out = tmp_path / 'exported'
  distill.main(['--workdir', str(workdir), '--width', '0.25', '--export', str(out)])
  model = contract.StyleTransfer(str(out / 'house_int8_transfer.tflite'))  # the contract
  assert model.stylize(np.full((384, 384, 3), 0.5, np.float32), np.zeros(100, np.float32)).shape \
      == (384, 384, 3)
