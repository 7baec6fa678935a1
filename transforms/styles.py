"""The style branch: each distinct style image, predicted once, as `(style_id, StyleResult)`;
blended house styles mixed from those predictions."""
from __future__ import annotations

import dataclasses

import apache_beam as beam
from apache_beam.metrics import Metrics

from models import imaging, style_bank
from models.contract import StylePredictor
from models.registry import ModelFile
from transforms.models_on_worker import LoadsModel, timed_ms
from transforms.records import BLEND_PREFIX, METRICS_NAMESPACE, Failure, ImageRef, StyleResult
from transforms.storage import read_bytes


def is_blend(uri: str) -> bool:
  return uri.startswith(BLEND_PREFIX)


def mix(blend: ImageRef, parts: tuple[tuple[ImageRef, float], ...],
        predicted: dict[str, StyleResult]) -> tuple[str, StyleResult]:
  """A blend's bottleneck: its parts' bottlenecks weighted (weights sum to 1). A part that failed
  fails the blend, with the part's stage and reason."""
  mixed = 0.0
  for ref, weight in parts:
    result = predicted[ref.id]
    if result.error:
      error = dataclasses.replace(result.error, style_id=blend.id,
                                  message=f'blend part {ref.uri}: {result.error.message}')
      return blend.id, StyleResult(blend, error=error)
    mixed = mixed + weight * result.bottleneck
  Metrics.counter(METRICS_NAMESPACE, 'styles_blended').inc()
  return blend.id, StyleResult(blend, bottleneck=mixed.astype(result.bottleneck.dtype))


class PredictStyle(LoadsModel, beam.DoFn):
  """Style image -> bottleneck. A style that cannot be read or predicted is kept, with its
  failure, so each of its (content, style) pairs is later charged with that failure."""
  network_class = StylePredictor

  def __init__(self, model: ModelFile, num_threads: int, max_pixels: int,
               max_bytes: int = imaging.DEFAULT_MAX_BYTES):
    LoadsModel.__init__(self, model, num_threads)
    beam.DoFn.__init__(self)
    self._max_pixels = max_pixels
    self._max_bytes = max_bytes
    self._predicted = Metrics.counter(METRICS_NAMESPACE, 'styles_predicted')
    self._failed = Metrics.counter(METRICS_NAMESPACE, 'styles_failed')
    self._from_bank = Metrics.counter(METRICS_NAMESPACE, 'styles_from_bank')
    self._prediction_ms = Metrics.distribution(METRICS_NAMESPACE, 'prediction_ms')

  def process(self, ref: ImageRef):
    stage = 'read_style'
    try:
      if ref.problem:
        raise ValueError(ref.problem)
      if style_bank.is_builtin(ref.uri):
        (name,) = style_bank.names(ref.uri)
        self._from_bank.inc()
        yield ref.id, StyleResult(ref, bottleneck=style_bank.load()[name].bottleneck)
        return
      data = read_bytes(ref.uri, self._max_bytes, imaging.check_signature)
      stage = 'decode_style'
      decoded = imaging.decode(data, self._max_pixels, min_side=imaging.STYLE_SIZE)
      stage = 'predict_style'
      bottleneck, ms = timed_ms(self._network.predict, imaging.style_input(decoded.image))
    except Exception as e:  # noqa: BLE001 - any failure becomes a dead letter
      if isinstance(e, imaging.ImageError):
        stage = 'decode_style'  # refused by its first bytes while reading: not a picture
      self._failed.inc()
      yield ref.id, StyleResult(ref, error=Failure.of(e, stage, style_id=ref.id))
      return
    self._predicted.inc()
    self._prediction_ms.update(ms)
    yield ref.id, StyleResult(ref, bottleneck=bottleneck)


class PredictStyles(beam.PTransform):
  """Distinct style refs -> `(style_id, StyleResult)`, ready to be a side input (`AsDict`).

  `blends`: blend id -> its (part ref, weight)s. Every part is predicted once, as any style; a
  part that is not itself one of `refs` serves its blends only (it has no outputs)."""

  def __init__(self, refs: list[ImageRef], model: ModelFile, num_threads: int, max_pixels: int,
               max_bytes: int = imaging.DEFAULT_MAX_BYTES, blends: dict | None = None):
    super().__init__()
    self._refs = refs
    self._blends = blends or {}
    self._predict = PredictStyle(model, num_threads, max_pixels, max_bytes)

  def expand(self, pbegin):
    # A blend ref with a problem (a list row naming no such blend) is predicted: that fails it.
    plain = [ref for ref in self._refs if not is_blend(ref.uri) or ref.problem]
    parts = {ref.uri: ref for members in self._blends.values() for ref, _ in members}
    only_parts = [ref for uri, ref in parts.items() if uri not in {r.uri for r in plain}]
    predicted = (pbegin
                 | 'StyleRefs' >> beam.Create(plain + only_parts)
                 | 'Predict' >> beam.ParDo(self._predict))
    if not self._blends:
      return predicted
    own = {ref.id for ref in plain}
    blends = self._blends
    return ((predicted | 'OwnStyles' >> beam.Filter(lambda item: item[0] in own),
             pbegin
             | 'BlendRefs' >> beam.Create([ref for ref in self._refs
                                           if is_blend(ref.uri) and not ref.problem])
             | 'Mix' >> beam.Map(lambda ref, predicted: mix(ref, blends[ref.id], predicted),
                                 predicted=beam.pvalue.AsDict(predicted)))
            | 'AllStyles' >> beam.Flatten())
