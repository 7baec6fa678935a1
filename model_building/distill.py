"""Trains the project's own transfer network by distillation from a published one (the teacher).

The student is `transfer_net.TransferNet`, randomly initialized: it never reads the teacher's
weights, only the teacher's outputs for (content crop, bottleneck) pairs:
- content: random 384x384 crops of training photos at random scales, flipped at random, and some
  whole pictures letterboxed with reflect padding, as the pipeline's "fit" frame feeds them;
- bottlenecks: the predictor's outputs for random crops of training paintings (as painted,
  recoloured, and as geometric abstractions in their palettes), blends of two paintings, blends
  with the photo's own bottleneck (the "style strength" of the pipeline), and draws from a
  Gaussian fitted to the paintings' bottlenecks (styles no painting here has).

The teacher's outputs are computed once and cached in `WORKDIR/cache/` (shards of uint8 pictures),
so training costs only the student's steps. Training is seeded, logs to `WORKDIR/log.jsonl`,
checkpoints every `--checkpoint-every` steps and resumes from the last checkpoint when run again
with the same WORKDIR (a session's background processes end when it stops). With
`--average-last N` the export is the mean of the weights over the schedule's last N steps; a
larger `--steps` lengthens a run (a warm restart: the cosine rate rises a little) and its mean
starts afresh in the new window. A `--width` larger than the last checkpoint's widens its
network without changing what it computes (`model_building/widen.py`) and trains on from its
step; give the same `--width` to `--export`:

    M=../shared/models/magenta/magenta_arbitrary-image-stylization-v1-256
    python -m model_building.distill --workdir runs/distill \\
        --teacher ${M}_fp16_transfer_1.tflite --predictor ${M}_int8_prediction_1.tflite \\
        --content '../shared/images/content/*' --content skimage \\
        --styles '../shared/images/style/*' --steps 20000
    python -m model_building.distill --workdir runs/distill ... --export models/data/house

On a machine with a GPU TensorFlow uses it for the student's steps; nothing else changes.
"""
from __future__ import annotations

import argparse
import glob
import json
import logging
import os
import time

import numpy as np
import skimage
import tensorflow as tf
from PIL import Image, ImageChops, ImageDraw, ImageEnhance, ImageFilter

from model_building import export as exporter
from model_building import transfer_net, widen
from models import contract, fetch, imaging

SHARD_SIZE = 64
FLOAT_LAYERS_FILE = 'float_layers.json'  # the int8 export's float layers, if chosen
CACHE_RECIPE = 4  # raise when the sampling of pairs changes: older caches are then refused
LOG = logging.getLogger('distill')


# --------------------------------------------------------------------------- training pairs
def skimage_photos() -> list[str]:
  """Colour photos that ship inside the scikit-image wheel (no download)."""
  folder = os.path.join(os.path.dirname(skimage.__file__), 'data')
  names = ('astronaut.png', 'chelsea.png', 'coffee.png', 'rocket.jpg', 'motorcycle_left.png',
           'ihc.png', 'retina.jpg', 'hubble_deep_field.jpg', 'camera.png', 'coins.png', 'moon.png')
  return [os.path.join(folder, n) for n in names if os.path.exists(os.path.join(folder, n))]


def expand_sources(patterns: list[str]) -> list[str]:
  """Glob patterns (and the word `skimage`) -> sorted, de-duplicated file paths."""
  found = []
  for pattern in patterns:
    found += skimage_photos() if pattern == 'skimage' else glob.glob(pattern)
  return sorted(set(found))


def _open_rgb(path: str) -> Image.Image:
  with open(path, 'rb') as f:
    return imaging.decode(f.read()).image


def random_content(picture: Image.Image, rng: np.random.Generator, size: int) -> np.ndarray:
  """A `size`x`size` float [0, 1] crop at a random scale (or the whole picture letterboxed)."""
  if rng.random() < 0.25:  # the pipeline's "fit" frame: whole picture + reflect padding
    pixels, _ = imaging.fit_and_mirror(picture, size)
  else:
    short = min(picture.size)
    side = int(short * rng.uniform(0.35, 1.0)) if short > size else short
    left = int(rng.integers(0, picture.width - side + 1))
    top = int(rng.integers(0, picture.height - side + 1))
    crop = picture.crop((left, top, left + side, top + side)).resize((size, size),
                                                                       imaging.RESAMPLE)
    pixels = imaging.to_unit_float(crop)
  if rng.random() < 0.5:
    pixels = pixels[:, ::-1]
  return np.ascontiguousarray(pixels, dtype=np.float32)


def style_crops(painting: Image.Image, rng: np.random.Generator, count: int) -> list[np.ndarray]:
  """The predictor's input for the whole painting and for `count - 1` random crops of it."""
  crops = [imaging.style_input(painting)]
  for _ in range(count - 1):
    short = min(painting.size)
    side = int(short * rng.uniform(0.5, 1.0))
    left = int(rng.integers(0, painting.width - side + 1))
    top = int(rng.integers(0, painting.height - side + 1))
    crops.append(imaging.style_input(painting.crop((left, top, left + side, top + side))))
  return crops


def recolour(painting: Image.Image, rng: np.random.Generator) -> Image.Image:
  """`painting` with its hues turned by a random angle and its saturation and contrast changed: a
  style no painting here has, yet a painter's. A dozen paintings leave held-out ones far outside
  the Gaussian fitted to their bottlenecks; one recolouring of each brings them much nearer
  (training/README.md), and the student then meets such styles in training."""
  hue, saturation, value = painting.convert('HSV').split()
  turn = int(rng.integers(256))
  hue = hue.point(lambda h: (h + turn) % 256)
  turned = Image.merge('HSV', (hue, saturation, value)).convert('RGB')
  turned = ImageEnhance.Color(turned).enhance(rng.uniform(0.5, 1.6))
  return ImageEnhance.Contrast(turned).enhance(rng.uniform(0.7, 1.3))


def abstraction(painting: Image.Image, rng: np.random.Generator, size: int = 512) -> Image.Image:
  """A geometric abstraction in `painting`'s palette over its brushwork: hard-edged shapes in
  flat colours, a kind of painting the twelve here lack. Held-out paintings then lie nearer the
  fitted Gaussian still (training/README.md)."""
  counts = painting.quantize(8).convert('RGB').getcolors(8)  # (count, colour) pairs
  colours = [colour for _, colour in sorted(counts, reverse=True)]
  pick = lambda: colours[int(rng.integers(len(colours)))]
  canvas = Image.new('RGB', (size, size), colours[0])
  draw = ImageDraw.Draw(canvas)
  for _ in range(int(rng.integers(15, 60))):
    x, y = rng.uniform(0, size, 2)
    radius = rng.uniform(20, size / 2.5)
    angles = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(3, 7))))
    points = [(x + radius * rng.uniform(0.3, 1) * np.cos(a),
               y + radius * rng.uniform(0.3, 1) * np.sin(a)) for a in angles]
    roll = rng.random()
    if roll < 0.6:
      draw.polygon(points, fill=pick(), outline=pick())
    elif roll < 0.8:
      draw.ellipse([x - radius / 2, y - radius / 2, x + radius / 2, y + radius / 2], fill=pick())
    else:
      draw.line(points, fill=pick(), width=int(rng.integers(2, 12)))
  brushwork = painting.convert('L').resize(canvas.size).filter(ImageFilter.DETAIL)
  brushwork = brushwork.point(lambda v: 128 + (v - 128) // 2).convert('RGB')
  return ImageChops.overlay(canvas, brushwork)


def random_bottleneck(styles: np.ndarray, own: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """A painting's bottleneck, a blend of two, a blend with the photo's own (strength), or an
  unseen style: a draw from a Gaussian fitted to the paintings' bottlenecks.

  The student maps a bottleneck to its norms' scales and shifts linearly, so a direction of the
  100 that no training bottleneck takes keeps its random start, and a held-out painting that takes
  it is rendered wrong: a few crops of each painting leave part of a held-out painting's
  bottleneck outside their span; 16 crops each span all 100 (`build_cache`), and the Gaussian
  draws fill the space between the paintings instead of a dozen clusters."""
  pick = lambda: styles[rng.integers(len(styles))]
  roll = rng.random()
  if roll < 0.45:
    return pick()
  if roll < 0.65:
    t = rng.uniform(0.2, 0.8)
    return t * pick() + (1 - t) * pick()
  if roll < 0.85:
    r = rng.uniform(0.1, 0.9)
    return r * own + (1 - r) * pick()
  if len(styles) < 2:  # no spread to fit
    return pick()
  return rng.multivariate_normal(styles.mean(axis=0), np.cov(styles, rowvar=False),
                                 check_valid='ignore')


def build_cache(workdir: str, teacher_path: str, predictor_path: str, content: list[str],
                styles: list[str], pairs: int, seed: int, size: int = contract.CONTENT_SIZE,
                crops_per_style: int = 16, threads: int = 2) -> list[str]:
  """Writes (or completes) the shards of teacher outputs; returns their paths. Resumable: each
  shard is seeded by its own number and written atomically."""
  folder = os.path.join(workdir, 'cache')
  os.makedirs(folder, exist_ok=True)
  _check_cache_inputs(folder, {
      'recipe': CACHE_RECIPE, 'teacher_sha256': fetch.sha256_of(teacher_path), 'seed': seed,
      'pairs': pairs, 'size': size, 'crops_per_style': crops_per_style,
      'content': [os.path.basename(p) for p in content],
      'styles': [os.path.basename(p) for p in styles]})
  shards = [os.path.join(folder, f'shard-{i:04d}.npz') for i in range(-(-pairs // SHARD_SIZE))]
  missing = [i for i, path in enumerate(shards) if not os.path.exists(path)]
  if not missing:
    return shards
  teacher = contract.StyleTransfer(teacher_path, threads)
  predictor = contract.StylePredictor(predictor_path, threads)
  rng = np.random.default_rng(seed)
  paintings = [_open_rgb(p) for p in styles]
  variants = [v for painting in paintings
              for v in (painting, recolour(painting, rng), abstraction(painting, rng))]
  style_bank = np.stack([predictor.predict(crop) for variant in variants
                         for crop in style_crops(variant, rng, crops_per_style)])
  photos = [_open_rgb(p) for p in content]
  own = [predictor.predict(imaging.style_input(photo)) for photo in photos]
  for i in missing:
    shard_rng = np.random.default_rng([seed, i])
    images, bottlenecks, targets = [], [], []
    for _ in range(min(SHARD_SIZE, pairs - i * SHARD_SIZE)):
      k = int(shard_rng.integers(len(photos)))
      image = random_content(photos[k], shard_rng, size)
      bottleneck = random_bottleneck(style_bank, own[k], shard_rng).astype(np.float32)
      target = teacher.stylize(image, bottleneck)
      images.append(np.rint(image * 255).astype(np.uint8))
      bottlenecks.append(bottleneck)
      targets.append(np.rint(target * 255).astype(np.uint8))
    tmp = shards[i] + '.tmp.npz'
    np.savez(tmp, content=np.stack(images), bottleneck=np.stack(bottlenecks),
             target=np.stack(targets))
    os.replace(tmp, shards[i])
    LOG.info('teacher cache: shard %d/%d written', i + 1, len(shards))
  return shards


def _check_cache_inputs(folder: str, inputs: dict) -> None:
  """A cache is reused only for the inputs it was made from (`meta.json` records them)."""
  meta = os.path.join(folder, 'meta.json')
  if os.path.exists(meta):
    with open(meta, encoding='utf-8') as f:
      recorded = json.load(f)
    if recorded != inputs:
      changed = sorted(k for k in inputs if recorded.get(k) != inputs[k])
      raise SystemExit(f'{folder} was made from other inputs ({", ".join(changed)} differ): '
                       'give another --workdir, or delete the cache to rebuild it')
    return
  if any(name.startswith('shard-') for name in os.listdir(folder)):
    LOG.warning('%s has no meta.json (an early cache): assuming it matches these inputs', folder)
  with open(meta, 'w', encoding='utf-8') as f:
    json.dump(inputs, f, indent=1)


def load_cache(shards: list[str]) -> dict[str, np.ndarray]:
  data = {key: [] for key in ('content', 'bottleneck', 'target')}
  for shard in shards:
    with np.load(shard) as part:
      for key, parts in data.items():
        parts.append(part[key])
  return {key: np.concatenate(parts) for key, parts in data.items()}


# --------------------------------------------------------------------------- training
def fast_ssim(a, b, window: int = 8, stride: int = 4):
  """Mean SSIM over uniform `window` boxes: a cheap stand-in for `tf.image.ssim` (whose Gaussian
  window costs more than the student's own backward pass on a CPU) to train against."""
  c1, c2 = 0.01 ** 2, 0.03 ** 2
  pool = lambda x: tf.nn.avg_pool2d(x, window, stride, 'VALID')
  mean_a, mean_b = pool(a), pool(b)
  var_a = pool(a * a) - mean_a * mean_a
  var_b = pool(b * b) - mean_b * mean_b
  cov = pool(a * b) - mean_a * mean_b
  score = ((2 * mean_a * mean_b + c1) * (2 * cov + c2)) / (
      (mean_a * mean_a + mean_b * mean_b + c1) * (var_a + var_b + c2))
  return tf.reduce_mean(score)


def train(workdir: str, data: dict, steps: int, batch: int, seed: int, width: float,
          learning_rate: float, checkpoint_every: int, holdout: dict | None = None,
          log_every: int = 25, xla: bool = True, until: int | None = None,
          average_last: int = 0, psnr_weight: float = 0.0) -> dict:
  """Runs (or resumes) training to `steps` (the schedule's length), stopping early at `until`;
  returns the last logged figures.

  With `average_last`, each checkpoint of the schedule's last `average_last` steps is also folded
  into a running mean of the weights, kept in the checkpoint, which `export` then writes (weight
  averaging, as SWA: at the schedule's low learning rate the weights still jitter from checkpoint
  to checkpoint, and their mean is nearer the valley's floor; training/README.md has the gain).

  The loss is L1 + (1 - SSIM) / 2, plus `psnr_weight` x the batch's mean log10 MSE per picture
  (-PSNR / 10): the benchmark's mean PSNR is a mean of logs, which L1 does not pull on directly."""
  tf.keras.utils.set_random_seed(seed)
  size = data['content'].shape[1]
  model = transfer_net.build(width=width, batch_size=None, size=size, for_export=False)
  schedule = tf.keras.optimizers.schedules.CosineDecay(learning_rate, steps, alpha=0.05)
  # Clipped: a near-constant channel makes 1/sqrt(variance) steep enough to overflow Adam's
  # squared gradients (seen in tiny networks); a trained network's gradients are far smaller.
  optimizer = tf.keras.optimizers.Adam(schedule, clipvalue=1.0)
  step = tf.Variable(0, dtype=tf.int64)
  optimizer.build(model.trainable_variables)
  # Keras 3 layers are not tf.train trackables: the checkpoint names the variables explicitly.
  core = {'model_weights': list(model.weights),
          'optimizer_variables': list(optimizer.variables), 'step': step}
  average = [tf.Variable(tf.zeros_like(w), trainable=False) for w in model.weights]
  averaged = tf.Variable(0, dtype=tf.int64)  # how many checkpoints `average` holds
  checkpoint = tf.train.Checkpoint(**core, average_weights=average, averaged=averaged)
  manager = tf.train.CheckpointManager(checkpoint, os.path.join(workdir, 'checkpoints'), 3)
  if manager.latest_checkpoint:
    narrower, at = _narrower_network(manager.latest_checkpoint, width)
    if narrower is not None:
      # A larger --width than the checkpoint's: go on from its weights (their mean when it holds
      # one) in the wider network, computing the same; the optimizer starts afresh.
      widen.widen(narrower, model, np.random.default_rng([seed, at]))
      step.assign(at)
      LOG.info('widened the width-%s network of %s to width %s',
               transfer_net.network(narrower).width, manager.latest_checkpoint, width)
    elif _layout(manager.latest_checkpoint) == 'explicit':
      # A checkpoint written before weight averaging existed has no average: restore the rest.
      has_average = _holds_average(manager.latest_checkpoint)
      (checkpoint if has_average else tf.train.Checkpoint(**core)).restore(
          manager.latest_checkpoint).assert_existing_objects_matched()
    else:  # an early checkpoint: weights and step only, the optimizer starts afresh
      restore_weights(model, manager.latest_checkpoint)
      step.assign(tf.train.load_checkpoint(manager.latest_checkpoint).get_tensor(
          'step/.ATTRIBUTES/VARIABLE_VALUE'))
    if int(averaged) != _checkpoints_averaged(int(step), steps, average_last, checkpoint_every):
      # The mean held is of another schedule's window (the run was lengthened, or averaging was
      # switched off or on): start it afresh, so that the export is this schedule's mean.
      averaged.assign(0)
      for mean in average:
        mean.assign(tf.zeros_like(mean))
      LOG.info('the weight mean of %s is not this schedule\'s: starting it afresh',
               manager.latest_checkpoint)
    # The learning-rate schedule counts the optimizer's iterations: keep them at the step.
    optimizer.iterations.assign(int(step))
    _truncate_log(os.path.join(workdir, 'log.jsonl'), int(step))
    LOG.info('resumed from %s at step %d', manager.latest_checkpoint, int(step))
  n = len(data['content'])

  @tf.function(jit_compile=xla)  # XLA: faster steps on CPU
  def train_step(content, bottleneck, target):
    with tf.GradientTape() as tape:
      out = model([content, bottleneck], training=True)
      l1, ssim = tf.reduce_mean(tf.abs(out - target)), fast_ssim(out, target)
      log_mse = tf.reduce_mean(tf.math.log(tf.reduce_mean(tf.square(out - target), [1, 2, 3])
                                           + 1e-10)) / np.log(10.0)
      loss = l1 + 0.5 * (1.0 - ssim) + psnr_weight * log_mse
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return loss, l1, ssim, -10.0 * log_mse

  def batch_at(k):
    # Each step's batch depends only on (seed, step): a resumed run sees the same data order.
    idx = np.random.default_rng([seed, k]).choice(n, size=min(batch, n), replace=False)
    return (tf.constant(data['content'][idx], tf.float32) / 255.0,
            tf.constant(data['bottleneck'][idx].reshape(-1, 1, 1, contract.BOTTLENECK_SIZE)),
            tf.constant(data['target'][idx], tf.float32) / 255.0)

  log_path = os.path.join(workdir, 'log.jsonl')
  last, started, window = {}, time.time(), []
  stop = min(steps, until or steps)
  while int(step) < stop:
    loss, l1, ssim, psnr = train_step(*batch_at(int(step)))
    step.assign_add(1)
    window.append(tuple(float(v) for v in (loss, l1, ssim, psnr)))
    k = int(step)
    if k % log_every == 0 or k == stop:
      loss_m, l1_m, ssim_m, psnr_m = np.mean(window, axis=0)
      last = {'step': k, 'loss': round(float(loss_m), 5), 'l1': round(float(l1_m), 5),
              'train_ssim': round(float(ssim_m), 4), 'train_psnr': round(float(psnr_m), 2),
              'seconds_per_step': round((time.time() - started) / len(window), 3),
              'time': time.strftime('%Y-%m-%dT%H:%M:%S')}
      if holdout is not None and (k % (log_every * 8) == 0 or k == stop):
        ssim_h, psnr_h = evaluate(model, holdout)
        last.update(holdout_ssim=round(ssim_h, 4), holdout_psnr=round(psnr_h, 2))
      with open(log_path, 'a', encoding='utf-8') as f:
        f.write(json.dumps(last) + '\n')
      LOG.info('%s', last)
      window, started = [], time.time()
    if k % checkpoint_every == 0 or k == stop:
      # Only on the regular checkpoints (and the last), not where `until` cut a session short, so
      # that a resumed run averages the same weights as an uninterrupted one.
      if _averages_at(k, steps, average_last, checkpoint_every):
        averaged.assign_add(1)
        for mean, weight in zip(average, model.weights):
          mean.assign_add((weight - mean) / tf.cast(averaged, mean.dtype))
      manager.save(checkpoint_number=k)
  return last


def _averages_at(k: int, steps: int, average_last: int, checkpoint_every: int) -> bool:
  """Whether the checkpoint at step `k` is folded into the schedule's weight mean."""
  return bool(average_last) and k > steps - average_last and (k % checkpoint_every == 0
                                                              or k == steps)


def _checkpoints_averaged(step: int, steps: int, average_last: int, checkpoint_every: int) -> int:
  """How many checkpoints a run of this schedule has folded into its mean by `step`."""
  return sum(_averages_at(k, steps, average_last, checkpoint_every) for k in range(1, step + 1))


def evaluate(model, pairs: dict) -> tuple[float, float]:
  """Mean SSIM and PSNR (dB) of the model's outputs against the teacher's on `pairs`."""
  scores, psnrs = [], []
  for i in range(0, len(pairs['content']), 4):
    content = tf.constant(pairs['content'][i:i + 4], tf.float32) / 255.0
    bottleneck = tf.constant(pairs['bottleneck'][i:i + 4].reshape(-1, 1, 1,
                                                                  contract.BOTTLENECK_SIZE))
    target = tf.constant(pairs['target'][i:i + 4], tf.float32) / 255.0
    out = model([content, bottleneck])
    scores += list(tf.image.ssim(out, target, 1.0).numpy())
    psnrs += list(tf.image.psnr(out, target, 1.0).numpy())
  return float(np.mean(scores)), float(np.mean(psnrs))


def _truncate_log(path: str, step: int) -> None:
  """Drops log rows past the checkpoint a run resumes from (those steps are run again)."""
  if not os.path.exists(path):
    return
  with open(path, encoding='utf-8') as f:
    rows = [line for line in f if line.strip() and json.loads(line)['step'] <= step]
  with open(path, 'w', encoding='utf-8') as f:
    f.writelines(rows)


def _layout(path: str) -> str:
  names = {name for name, _ in tf.train.list_variables(path)}
  return 'explicit' if 'model_weights/0/.ATTRIBUTES/VARIABLE_VALUE' in names else 'optimizer'


def _holds_average(path: str) -> bool:
  """Whether the checkpoint holds a mean of weights (`train`'s `average_last`)."""
  reader = tf.train.load_checkpoint(path)
  return (reader.has_tensor('averaged/.ATTRIBUTES/VARIABLE_VALUE')
          and reader.get_tensor('averaged/.ATTRIBUTES/VARIABLE_VALUE') > 0)


def restore_weights(model, path: str, averaged: bool = False) -> None:
  """Loads a checkpoint's student weights (or, `averaged`, their running mean) into `model`
  (any batch size and form of `build`).

  Checkpoints name them `model_weights/i` (`average_weights/i`); the first ones written by this
  script held them only as the optimizer's `_trainable_variables/i`. All are in `model.weights`
  order."""
  reader = tf.train.load_checkpoint(path)
  key = ('average_weights/{}/.ATTRIBUTES/VARIABLE_VALUE' if averaged else
         'model_weights/{}/.ATTRIBUTES/VARIABLE_VALUE' if _layout(path) == 'explicit' else
         'optimizer/_trainable_variables/{}/.ATTRIBUTES/VARIABLE_VALUE')
  for i, variable in enumerate(model.weights):
    value = reader.get_tensor(key.format(i))
    if value.shape != tuple(variable.shape):
      raise ValueError(f'{path}: weight {i} ({variable.path}) is {value.shape} in the checkpoint, '
                       f'{tuple(variable.shape)} in the model: was it trained with another '
                       '--width?')
    variable.assign(value)


def _narrower_network(path: str, width: float):
  """(the checkpoint's network with its weights, its step) when it is narrower than `width` (its
  trunk has fewer channels); else (None, None)."""
  reader = tf.train.load_checkpoint(path)
  # Weight 4 is contract_conv3's kernel, whose outputs are the trunk's channels.
  key = ('model_weights/4/.ATTRIBUTES/VARIABLE_VALUE' if _layout(path) == 'explicit' else
         'optimizer/_trainable_variables/4/.ATTRIBUTES/VARIABLE_VALUE')
  trunk = reader.get_tensor(key).shape[-1]
  if trunk >= transfer_net.channels(width)[2]:
    return None, None
  model = transfer_net.build(width=trunk / transfer_net.channels(1.0)[2], batch_size=None,
                             for_export=False)
  restore_weights(model, path, averaged=_holds_average(path))
  return model, int(reader.get_tensor('step/.ATTRIBUTES/VARIABLE_VALUE'))


def restore_for_export(workdir: str, width: float):
  """The latest checkpoint's weights (their running mean when it holds one) in a batch-1,
  384x384 model (what the converters need), in the form the embedded house file was exported
  in: its sha256 names it in fingerprints, so an export in a faster form is a new model."""
  model = transfer_net.build(width=width, batch_size=1, norms_on_blocks=False)
  latest = tf.train.latest_checkpoint(os.path.join(workdir, 'checkpoints'))
  if not latest:
    raise SystemExit(f'no checkpoint under {workdir}/checkpoints: train first')
  restore_weights(model, latest, averaged=_holds_average(latest))
  return model, latest


def float_layers(workdir: str) -> dict | None:
  """WORKDIR/float_layers.json (`model_building.mixed_precision`'s choice), or None. A file that
  names no layers is refused, not read as "none": the export would silently change form."""
  path = os.path.join(workdir, FLOAT_LAYERS_FILE)
  if not os.path.exists(path):
    return None
  try:
    with open(path, encoding='utf-8') as f:
      choice = json.load(f)
  except ValueError as e:
    raise ValueError(f'{path} is not JSON ({e}): rerun model_building.mixed_precision') from e
  layers = choice.get('float_layers') if isinstance(choice, dict) else None
  if not (isinstance(layers, list) and layers and all(isinstance(x, str) for x in layers)):
    raise ValueError(f'{path} names no layers to keep in float ("float_layers": a list of layer '
                     'names, as model_building.mixed_precision writes it)')
  return choice


def export(workdir: str, width: float, out_dir: str) -> dict[str, str]:
  """Writes the student as int8 and fp16 `.tflite` with the published tensor names.

  The int8 file is `int8-mixed` (int8 kernels but for the layers WORKDIR/float_layers.json names,
  which compute in float) when the workdir has that choice, else `int8-storage` (int8 weights,
  float arithmetic): the choice is read, never measured again, so an export is reproducible."""
  model, latest = restore_for_export(workdir, width)
  choice = float_layers(workdir)
  if choice and choice.get('checkpoint') != os.path.basename(latest):
    LOG.warning('%s was chosen for %s, not %s: rerun model_building.mixed_precision',
                FLOAT_LAYERS_FILE, choice.get('checkpoint'), os.path.basename(latest))
  os.makedirs(out_dir, exist_ok=True)
  written = {}
  for kind, name in (('int8-mixed' if choice else 'int8-storage', 'house_int8_transfer.tflite'),
                     ('fp16', 'house_fp16_transfer.tflite')):
    path = os.path.join(out_dir, name)
    layers = choice['float_layers'] if kind == 'int8-mixed' else ()
    with open(path, 'wb') as f:
      f.write(exporter.to_tflite(model, kind, float_layers=layers))
    written[kind] = path
  LOG.info('exported %s -> %s', latest, written)
  return written


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--workdir', required=True,
                      help='cache, checkpoints and log live here (local paths only, as for all '
                           'of this trainer\'s files)')
  parser.add_argument('--teacher', help='the published transfer .tflite to learn from (fp16)')
  parser.add_argument('--predictor', help='the published prediction .tflite (for bottlenecks)')
  parser.add_argument('--content', action='append', default=[],
                      help='glob of training photos (repeatable); "skimage" adds the photos '
                           'shipped in the scikit-image wheel')
  parser.add_argument('--styles', action='append', default=[],
                      help='glob of training paintings (repeatable)')
  parser.add_argument('--holdout-content', action='append', default=[],
                      help='photos kept out of training, for the held-out SSIM in the log')
  parser.add_argument('--holdout-styles', action='append', default=[])
  parser.add_argument('--pairs', type=int, default=1024, help='cached training pairs')
  parser.add_argument('--size', type=int, default=contract.CONTENT_SIZE,
                      help='training crop side (keep 384: instance norm statistics follow it)')
  parser.add_argument('--steps', type=int, default=20000,
                      help='length of the run (and of its learning-rate schedule)')
  parser.add_argument('--until', type=int, help='stop after this step (resume later)')
  parser.add_argument('--batch', type=int, default=8)
  parser.add_argument('--width', type=float, default=0.25,
                      help='channel multiplier (0.25: the published network\'s 8, 16, 32 '
                           'channels); larger than the checkpoint\'s, it widens that network')
  parser.add_argument('--learning-rate', type=float, default=2e-3)
  parser.add_argument('--checkpoint-every', type=int, default=100)
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--average-last', type=int, default=0, metavar='N',
                      help='export the mean of the weights at the checkpoints of the schedule\'s '
                           'last N steps (weight averaging) instead of the last weights')
  parser.add_argument('--psnr-weight', type=float, default=0.0, metavar='W',
                      help='add W x mean log10 MSE per picture (-PSNR/10) to the loss')
  parser.add_argument('--no-xla', action='store_true', help='train without XLA compilation')
  parser.add_argument('--export', metavar='OUT_DIR', help='export the latest checkpoint and stop')
  args = parser.parse_args(argv)
  logging.basicConfig(level=logging.INFO, format='%(asctime)s %(message)s')
  os.makedirs(args.workdir, exist_ok=True)
  if args.export:
    export(args.workdir, args.width, args.export)
    return
  if not 0 <= args.average_last <= args.steps:
    parser.error(f'--average-last must be between 0 and --steps ({args.steps}), '
                 f'not {args.average_last}')
  if args.psnr_weight < 0:
    parser.error(f'--psnr-weight must be 0 or more (a negative one rewards error), not '
                 f'{args.psnr_weight}')
  if not (args.teacher and args.predictor and args.content and args.styles):
    parser.error('training needs --teacher, --predictor, --content and --styles')
  real = lambda paths: [os.path.realpath(p) for p in paths]
  held_content = set(real(expand_sources(args.holdout_content)))
  held_styles = set(real(expand_sources(args.holdout_styles)))
  # A held-out picture stays out of training in either role (paintings may be content too).
  held = held_content | held_styles
  content = [c for c in expand_sources(args.content) if os.path.realpath(c) not in held]
  styles = [s for s in expand_sources(args.styles) if os.path.realpath(s) not in held]
  if not content or not styles:
    parser.error(f'no training {"photos" if not content else "paintings"}: the --content/--styles '
                 'globs match nothing outside the held-out files')
  LOG.info('training on %d photos x %d paintings', len(content), len(styles))
  shards = build_cache(args.workdir, args.teacher, args.predictor, content, styles, args.pairs,
                       args.seed, args.size)
  holdout = None
  if held_content and held_styles:
    # Sorted: a set's order changes from one process to the next, and the cache follows it.
    holdout = load_cache(build_cache(os.path.join(args.workdir, 'holdout'), args.teacher,
                                     args.predictor, sorted(held_content), sorted(held_styles),
                                     min(32, args.pairs), args.seed + 1, args.size))
  train(args.workdir, load_cache(shards), args.steps, args.batch, args.seed, args.width,
        args.learning_rate, args.checkpoint_every, holdout, xla=not args.no_xla,
        until=args.until, average_last=args.average_last, psnr_weight=args.psnr_weight)


if __name__ == '__main__':
  main()
