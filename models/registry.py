"""The published Magenta model sets, and how a `--model` value names the files to use.

A model set is a prediction network (style image -> bottleneck) plus a transfer network
(content image + bottleneck -> stylized image). The published files live at
`PUBLISHED_BASE_URL`; `--model-dir` (or $STYLIZE_MODEL_DIR) points at a folder holding copies under
their published file names, which is how tests and offline machines use them.
"""
from __future__ import annotations

import dataclasses
import os

from apache_beam.io.filesystems import FileSystems

PUBLISHED_BASE_URL = (
    'https://storage.googleapis.com/download.tensorflow.org/models/tflite/'
    'task_library/style_transfer/android/')
MODEL_DIR_ENV = 'STYLIZE_MODEL_DIR'


@dataclasses.dataclass(frozen=True)
class ModelFile:
  """A model file: where to get it and, when known, the sha256 it must have."""
  uri: str
  sha256: str | None = None
  in_model_dir: str | None = None  # its path under --model-dir, if not its own name
  embedded: bool = False  # ships inside this package: --model-dir does not replace it
  built_from: ModelFile | None = None  # made on the launcher from this file (`models.exports`)
  recipe: str | None = None  # how it is made from `built_from`: what it computes
  build: int = 1  # the builder's revision: same recipe, other float rounding; caches key on it

  @property
  def name(self) -> str:
    return self.uri.rstrip('/').rsplit('/', 1)[-1]

  @property
  def identity(self) -> str | None:
    """What fingerprints and manifests name the model by: its sha256, or for a built model its
    recipe and its source's sha256, so a rebuild with other bytes (another TensorFlow patch
    release) re-renders nothing."""
    if self.built_from is not None:
      return f'{self.recipe}@{self.built_from.sha256}'
    return self.sha256


@dataclasses.dataclass(frozen=True)
class ModelSet:
  name: str
  prediction: ModelFile
  transfer: ModelFile


def _published(file_name: str, sha256: str, base_url: str = PUBLISHED_BASE_URL,
               in_model_dir: str | None = None) -> ModelFile:
  return ModelFile(base_url + file_name, sha256, in_model_dir)


FAST_RECIPE = 'int8-weights/1'  # model_building.fast_export's; a new one re-renders catalogs
FAST_BUILD = 2  # 2: the expand stages' norms on 2x2 blocks (faster; same sums, other rounding)
_FP16_TRANSFER = _published(
    'magenta_arbitrary-image-stylization-v1-256_fp16_transfer_1.tflite',
    '53b5243ed5aa33e408db7976c8a8e51a90a0f7708fd122a31428cd00fbdf6aa6')
_INT8_PREDICTION = _published(
    'magenta_arbitrary-image-stylization-v1-256_int8_prediction_1.tflite',
    'af6ad4b2e7aeba0675f32636082ab915ced5375229a3f8aff7e714c6213f5ed2')

REGISTRY: dict[str, ModelSet] = {
    # CPU default: both networks quantized to int8.
    'magenta-int8': ModelSet(
        'magenta-int8', _INT8_PREDICTION,
        _published('magenta_arbitrary-image-stylization-v1-256_int8_transfer_1.tflite',
                   '7a1550643cf034a4d813c0aa276976cd15da4141b4f1ec3631db1d0d9c8e2cd1')),
    # fp16 transfer (closer to float, slower on CPU); the int8 predictor's bottleneck fits it.
    'magenta-fp16': ModelSet('magenta-fp16', _INT8_PREDICTION, _FP16_TRANSFER),
    # The default: the fp16 transfer's weights exported with int8 weights and float activations,
    # built once per launcher machine (models/exports.py): closer to float than the int8 file,
    # and faster, most of all on CPUs with int8 dot-product instructions.
    'magenta-fast': ModelSet(
        'magenta-fast', _INT8_PREDICTION,
        ModelFile('built:magenta-fast', built_from=_FP16_TRANSFER, recipe=FAST_RECIPE,
                  build=FAST_BUILD)),
    # The older (2019) dynamic-range release: its output follows the input's size, so with
    # --working-size it paints a whole large picture in one pass (slower, no tiles).
    'magenta-legacy-dynamic': ModelSet(
        'magenta-legacy-dynamic', _INT8_PREDICTION,
        _published('style_transfer_quantized_dynamic.tflite',
                   '69b191c1f1f3f6520634293803a528469015a00269f982ebd38b7850f68d9341',
                   'https://storage.googleapis.com/download.tensorflow.org/models/tflite/'
                   'arbitrary_style_transfer/', 'legacy/style_transfer_quantized_dynamic.tflite')),
}
DEFAULT_MODEL = 'magenta-fast'
# The project's own transfer network (model_building/distill.py: distilled from the published fp16
# one, trained from scratch), shipped in the package so the job runs offline with built-in styles;
# other styles still use the published predictor.
HOUSE_TRANSFER = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data', 'house',
                              'house_int8_transfer.tflite')
REGISTRY['house'] = ModelSet('house', _INT8_PREDICTION, ModelFile(HOUSE_TRANSFER, embedded=True))


class ModelSpecError(ValueError):
  """A `--model` value that names no usable model set."""


def resolve_model_set(spec: str, model_dir: str | None = None) -> ModelSet:
  """Turns a `--model` value into the two files to use.

  `spec` is a registered name, a folder (local or any FileSystems scheme) holding one
  `*transfer*.tflite` and at most one `*prediction*.tflite` (without one, the default set's), or
  `PREDICTION_URI,TRANSFER_URI`.
  For a registered name, `model_dir` (default $STYLIZE_MODEL_DIR) replaces the download URL with a
  local folder holding the files under their published names; their sha256 is still checked.
  """
  model_dir = model_dir or os.environ.get(MODEL_DIR_ENV) or None
  if spec in REGISTRY:
    chosen = REGISTRY[spec]
    if not model_dir:
      return chosen
    def in_dir(f: ModelFile) -> ModelFile:
      if f.embedded:
        return f
      if f.built_from is not None:
        return dataclasses.replace(f, built_from=in_dir(f.built_from))
      return ModelFile(FileSystems.join(model_dir, f.in_model_dir or f.name), f.sha256)
    return ModelSet(chosen.name, in_dir(chosen.prediction), in_dir(chosen.transfer))
  if ',' in spec:
    prediction, transfer = (part.strip() for part in spec.split(',', 1))
    return ModelSet(spec, ModelFile(prediction), ModelFile(transfer))
  transfer = _one_match(spec, 'transfer')
  # A folder with a transfer network only (what `python -m model_building.optimize` writes) uses the
  # default set's prediction network: every Magenta transfer model takes its bottleneck.
  prediction = _one_match(spec, 'prediction', optional=True) or resolve_model_set(
      DEFAULT_MODEL, model_dir).prediction
  return ModelSet(spec, prediction, transfer)


def _one_match(folder: str, role: str, optional: bool = False) -> ModelFile | None:
  pattern = FileSystems.join(folder, f'*{role}*.tflite')
  try:
    found = sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)
  except Exception as e:
    raise ModelSpecError(f'--model {folder!r}: cannot list {pattern}: {e}') from e
  if optional and not found:
    return None
  if len(found) != 1:
    raise ModelSpecError(
        f'--model {folder!r} is not a registered model set ({", ".join(REGISTRY)}), and as a '
        f'folder it must hold exactly one {pattern!r}; found {len(found)}. You can also name the '
        'two files: --model PREDICTION_URI,TRANSFER_URI')
  return ModelFile(found[0])
