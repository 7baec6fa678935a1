"""Encoding stylized pictures and writing them to `{output}/{style_id}/{content_id}.{ext}`."""
from __future__ import annotations

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from models import rendering
from transforms import gallery, progress
from transforms.records import (
  FAILED,
  METRICS_NAMESPACE,
  WRITTEN,
  Failure,
  ManifestRow,
  StylizedImage,
  content_key,
)
from transforms.storage import write_bytes


def output_uri(output: str, style_id: str, content_id: str, extension: str,
               strength: float = 1.0, width: int | None = None) -> str:
  """Full style keeps the plain name; a weaker strength is named (`photo-1a2b.s0.50.jpg`), and
  so is one width of several (`photo-1a2b.w480.jpg`)."""
  suffix = '' if strength == 1.0 else f'.s{strength:.2f}'
  suffix += '' if width is None else f'.w{width}'
  return FileSystems.join(output, style_id, f'{content_id}{suffix}.{extension}')


def pair_output(output: str, style_id: str, content_id: str, render: rendering.Rendering,
                strength: float = 1.0) -> str:
  """The file a pair is known by: its only one, or its widest with `sizes`."""
  return output_uri(output, style_id, content_id, render.extension, strength,
                    max(render.sizes) if render.sizes else None)


def pair_variants(output: str, style_id: str, content_id: str, render: rendering.Rendering,
                  strength: float = 1.0) -> tuple[str, ...]:
  """Every file of a pair with `sizes`, narrowest first (the manifest's `variants`); else ()."""
  return tuple(output_uri(output, style_id, content_id, render.extension, strength, width)
               for width in render.sizes)


class WriteOutput(beam.DoFn):
  """StylizedImage -> a written file, and its manifest row. On a bucket the object also says
  where it came from (`provenance`), for a CDN or a person looking at it. The side input `shown`
  (`gallery.ShownContents`): the contents whose outputs get their gallery thumbnail here, from
  the picture in hand."""

  def __init__(self, output: str, render: rendering.Rendering, model_sha256: str,
               cache_control: str | None = None):
    super().__init__()
    self._output = output
    self._render = render
    self._model_sha256 = model_sha256
    self._cache_control = cache_control
    self._written = Metrics.counter(METRICS_NAMESPACE, 'pairs_written')
    self._thumbnails = Metrics.counter(METRICS_NAMESPACE, 'thumbnails_written')

  def process(self, item: StylizedImage, shown: frozenset = frozenset()):
    """Writes every file of the pair (one per width with `sizes`): a pair whose files are not
    all written is a dead letter, and the next run makes it again as a whole."""
    stage, written, picture = 'encode', [], None
    try:
      for width, picture in rendering.variants(item.picture, self._render):
        uri = output_uri(self._output, item.style_id, item.ref.id, self._render.extension,
                         item.strength, width)
        stage = 'encode'
        data = rendering.encode(picture, self._render, item.exif)
        stage = 'write'
        write_bytes(uri, data, rendering.MIME_TYPES[self._render.fmt], self._cache_control,
                    self.provenance(item))
        written.append(uri)
    except Exception as e:  # noqa: BLE001 - any failure becomes a dead letter
      yield beam.pvalue.TaggedOutput(
          FAILED, Failure.of(e, stage, item.ref, item.style_id, item.strength))
      return
    self._written.inc()
    progress.tally('written')
    if content_key(item.ref.id, item.ref.uri) in shown and gallery.write_thumbnail(
        gallery.thumbnail_uri(self._output, written[-1]), picture, written[-1]):
      self._thumbnails.inc()
    yield ManifestRow(content_uri=item.ref.uri, content_id=item.ref.id, style_id=item.style_id,
                      strength=item.strength, output_uri=written[-1], status=WRITTEN,
                      model_sha256=self._model_sha256, fingerprint=item.fingerprint,
                      notes=tuple(item.notes),
                      variants=tuple(written) if self._render.sizes else ())

  def provenance(self, item: StylizedImage) -> dict[str, str]:
    """The custom metadata of an output object (x-goog-meta-*)."""
    source = item.ref.uri.encode('utf-8', 'surrogateescape').decode('utf-8', 'replace')
    return {'source-uri': source, 'style': item.style_id, 'strength': f'{item.strength:g}',
            'model-sha256': self._model_sha256, 'fingerprint': item.fingerprint}
