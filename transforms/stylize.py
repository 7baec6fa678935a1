"""The content branch: read and decode each picture, then stylize it with the styles it needs.

A picture that fails is charged once per style it needed, so every (content, style) pair ends
written, skipped or as a dead letter.
"""
from __future__ import annotations

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from models import imaging, rendering, tiling
from models.contract import StylePredictor, open_transfer
from models.fetch import local_copy
from models.registry import ModelFile
from transforms import gallery
from transforms.models_on_worker import LoadsModel, timed_ms
from transforms.records import (
  FAILED,
  METRICS_NAMESPACE,
  ContentImage,
  ContentToDo,
  Failure,
  StyleResult,
  StylizedImage,
  content_key,
)
from transforms.storage import FileTooLarge, read_bytes


def _charge_every_style(failure: Failure, todo: ContentToDo):
  for style_id, strength in sorted(todo.fingerprints):
    yield beam.pvalue.TaggedOutput(FAILED, failure.for_pair(todo.ref, style_id, strength))


class LoadContent(beam.DoFn):
  """ContentToDo -> ContentImage (decoded, upright, framed for the network). With `gallery_at`
  (the job's output), the contents in the side input `shown` (`gallery.ShownContents`) get their
  gallery thumbnail there, from the picture in hand."""

  def __init__(self, render: rendering.Rendering, max_pixels: int,
               max_bytes: int = imaging.DEFAULT_MAX_BYTES, gallery_at: str | None = None):
    super().__init__()
    self._render = render
    self._max_pixels = max_pixels
    self._max_bytes = max_bytes
    self._gallery_at = gallery_at
    self._read = Metrics.counter(METRICS_NAMESPACE, 'images_read')
    self._failed = Metrics.counter(METRICS_NAMESPACE, 'images_failed')

  def process(self, todo: ContentToDo, shown: frozenset = frozenset()):
    ref = todo.ref
    stage = 'read'
    try:
      if ref.problem:
        raise ValueError(ref.problem)
      if _size(ref.version) > self._max_bytes:  # known from the listing: nothing to read
        raise FileTooLarge(f'the file is {_size(ref.version)} bytes, over {self._max_bytes} '
                           '(--max-bytes)')
      data = read_bytes(ref.uri, self._max_bytes, imaging.check_signature)
      stage = 'decode'
      render = self._render
      masked = bool(ref.mask)
      # Decoded for the network's frame only when nothing else reads the picture's pixels (the
      # content's own style input, for strengths below 1, wants its short side too).
      only_network = render.network_only(masked) and not todo.needs_own_bottleneck()
      decoded = imaging.decode(data, self._max_pixels, render.min_decode_side(masked),
                               render.background, render.keep_metadata,
                               render.frame if only_network else None)
      network_input, box = imaging.content_input(decoded.image, render.frame, decoded.full_size)
      size, crop = rendering.output_size(decoded.full_size, render)
      if size[0] * size[1] > self._max_pixels:  # e.g. a sliver filling a box: a huge frame
        raise imaging.ImageError(f'the output frame would be {size[0]}x{size[1]} pixels, over '
                                 f'the limit of {self._max_pixels} (--max-pixels)')
      source = (_framed(decoded.image, render.frame).resize(size, imaging.RESAMPLE)
                if render.preserve_colour or ref.mask or render.cutout else None)
      alpha = (None if decoded.alpha is None
               else _framed(decoded.alpha, render.frame).resize(size, imaging.RESAMPLE))
      mask, notes = None, decoded.notes
      if ref.mask:  # the row's own mask wins over --cutout
        notes += (f'masked by {ref.mask}',)
        stage = 'read_mask'
        mask_data = read_bytes(ref.mask, self._max_bytes, imaging.check_signature)
        stage = 'decode_mask'
        # Transparent parts of a mask count as black: keep the source there.
        mask_image = imaging.decode(mask_data, self._max_pixels, background=(0, 0, 0)).image
        mask = rendering.mask_at(_framed(mask_image, render.frame), size, render)
        stage = 'decode'
      elif render.cutout:
        notes += (f'cutout {render.cutout}',)
        mask = rendering.mask_at(rendering.cutout_mask(alpha, render), size, render)
        if render.cutout == 'background':
          alpha = None  # the stylized backdrop fills the transparency
      own_style = (imaging.style_input(decoded.image) if todo.needs_own_bottleneck()
                   else None)
      working = (tiling.working_input(decoded.image, render.frame, render.working_size)
                 if render.working_size else None)
    except Exception as e:  # noqa: BLE001 - any failure becomes a dead letter
      if isinstance(e, imaging.ImageError) and stage.startswith('read'):
        stage = stage.replace('read', 'decode')  # refused by its first bytes: not a picture
      self._failed.inc()
      yield from _charge_every_style(Failure.of(e, stage, ref), todo)
      return
    self._read.inc()
    if self._gallery_at and ref.id and content_key(ref.id, ref.uri) in shown:
      gallery.write_thumbnail(FileSystems.join(self._gallery_at, gallery.source_thumbnail_path(
          ref.id)), decoded.image, ref.uri, decoded.alpha)  # on white, as the page's others
    yield ContentImage(todo=todo, network_input=network_input, box=box, size=size, crop=crop,
                       source=source, alpha=alpha, mask=mask, notes=notes,
                       style_input=own_style,
                       working=working, exif=decoded.exif)


def _size(version: str | None) -> int:
  """The size in a `size@mtime` version; 0 when unknown."""
  try:
    return int(version.split('@', 1)[0]) if version else 0
  except ValueError:
    return 0


def _framed(image, frame: str):
  """The part of the source the output shows: all of it, or its centre square."""
  return imaging.centre_square(image) if frame == 'square' else image


class Stylize(LoadsModel, beam.DoFn):
  """ContentImage -> one StylizedImage per (style, strength) it needs.

  One transfer interpreter per instance; with strengths below 1, also a prediction interpreter,
  which predicts the content's own bottleneck once per picture to blend with each style's:
  b = strength * b_style + (1 - strength) * b_content.
  """
  network_class = staticmethod(open_transfer)

  def __init__(self, model: ModelFile, num_threads: int, render: rendering.Rendering,
               prediction: ModelFile | None = None, quick_exit: bool = False):
    LoadsModel.__init__(self, model, num_threads, quick_exit)
    beam.DoFn.__init__(self)
    self._render = render
    self._prediction = prediction
    self._predictor = None
    self._stylized = Metrics.counter(METRICS_NAMESPACE, 'pairs_stylized')
    self._own_bottlenecks = Metrics.counter(METRICS_NAMESPACE, 'content_bottlenecks')
    self._inference_ms = Metrics.distribution(METRICS_NAMESPACE, 'inference_ms')

  def setup(self):
    super().setup()
    if self._prediction is not None:
      self._predictor = StylePredictor(local_copy(self._prediction)[0], self._num_threads)
      self._unreported_loads += 1

  def process(self, content: ContentImage, styles: dict[str, StyleResult]):
    ref = content.todo.ref
    own = None
    for (style_id, strength), fp in sorted(content.todo.fingerprints.items()):
      style = styles[style_id]
      if style.error is not None:
        yield beam.pvalue.TaggedOutput(FAILED, style.error.for_pair(ref, style_id, strength))
        continue
      try:
        bottleneck = style.bottleneck
        if strength < 1.0:
          if own is None:
            own = self._predictor.predict(content.style_input)
            self._own_bottlenecks.inc()
          bottleneck = strength * style.bottleneck + (1.0 - strength) * own
        # Timed: the network's work alone, not the resize to the delivered size.
        (out, box), ms = timed_ms(tiling.stylized, self._network, content.network_input,
                                  content.box, content.working, bottleneck)
        painted = imaging.network_output(out, box, content.size)
        picture = rendering.finish(painted, self._render, content.crop, content.source,
                                   content.alpha, content.mask)
      except Exception as e:  # noqa: BLE001 - any failure becomes a dead letter
        yield beam.pvalue.TaggedOutput(FAILED, Failure.of(e, 'stylize', ref, style_id, strength))
        continue
      self._stylized.inc()
      self._inference_ms.update(ms)
      yield StylizedImage(ref=ref, style_id=style_id, strength=strength, fingerprint=fp,
                          picture=picture, notes=content.notes, exif=content.exif)
