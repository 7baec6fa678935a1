"""The style branch: each distinct style image, predicted once, as `(style_id, StyleResult)`."""
from __future__ import annotations

import apache_beam as beam
from apache_beam.metrics import Metrics

from models import imaging, style_bank
from models.contract import StylePredictor
from models.registry import ModelFile
from transforms.models_on_worker import LoadsModel, timed_ms
from transforms.records import METRICS_NAMESPACE, Failure, ImageRef, StyleResult
from transforms.storage import read_bytes


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
  """Distinct style refs -> `(style_id, StyleResult)`, ready to be a side input (`AsDict`)."""

  def __init__(self, refs: list[ImageRef], model: ModelFile, num_threads: int, max_pixels: int,
               max_bytes: int = imaging.DEFAULT_MAX_BYTES):
    super().__init__()
    self._refs = refs
    self._predict = PredictStyle(model, num_threads, max_pixels, max_bytes)

  def expand(self, pbegin):
    return (pbegin
            | 'StyleRefs' >> beam.Create(self._refs)
            | 'Predict' >> beam.ParDo(self._predict))
