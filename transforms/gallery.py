"""A contact sheet to look at a run: `{output}/index.html`, content pictures as rows, the source
picture first and then styles (and strengths) as columns, each thumbnail linking to its full
output, failures shown as such and listed below with their reasons.

The page is static and uses relative links only, so it works from a local folder or a bucket.
Thumbnails are made for the pictures the page shows only, under `{output}/_gallery/`; a missing
thumbnail falls back to the full output (a source's, to its name). Which contents the page shows
is known from the listing before any is stylized (`ShownContents`), so the stylizing steps make
the thumbnails of what they write from the pictures they hold; the page's own step makes only
the rest (a skipped output without one, a content the listing did not foresee), reading them
back, after every row is in.
"""
from __future__ import annotations

import bisect
import dataclasses
import html
import logging
import urllib.parse

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from PIL import Image

from models import imaging, rendering
from transforms import layout
from transforms.records import (
  FAILED,
  METRICS_NAMESPACE,
  SKIPPED,
  WRITTEN,
  ManifestRow,
  content_key,
)
from transforms.storage import exists, read_bytes, write_bytes

THUMBNAIL_SIDE = 192


def thumbnail_of(picture: Image.Image, alpha: Image.Image | None = None) -> bytes:
  """A small JPEG of a picture, its transparency (its own, or `alpha`) shown on white."""
  side = THUMBNAIL_SIDE
  size = picture.size if max(picture.size) <= side else imaging.scaled(picture.size, side)
  # A box reduction by whole times first, leaving bicubic less than 2x to do: about half the
  # time of Pillow's default gap, and a thumbnail's worth of detail.
  small = picture.resize(size, Image.Resampling.BICUBIC, reducing_gap=1.0)
  if alpha is not None:
    alpha = alpha.resize(size, Image.Resampling.BICUBIC, reducing_gap=1.0)
  elif 'A' in small.getbands():
    alpha = small.getchannel('A')
  small = small.convert('RGB')
  if alpha is not None:
    small = Image.composite(small, Image.new('RGB', size, imaging.WHITE), alpha)
  return rendering.encode(small, rendering.Rendering(jpeg_quality=80))


def thumbnail_bytes(encoded: bytes) -> bytes:
  """`thumbnail_of` an encoded picture. A JPEG is decoded only about as large as the thumbnail."""
  return thumbnail_of(imaging.decode(encoded, min_side=THUMBNAIL_SIDE, frame='fit').image)


def write_thumbnail(uri: str, picture: Image.Image, of: str,
                    alpha: Image.Image | None = None) -> bool:
  """Writes `thumbnail_of(picture, alpha)` to `uri`; whether it did. Best effort: the page falls
  back to the full picture, so a failure is logged (naming `of`), never raised."""
  try:
    write_bytes(uri, thumbnail_of(picture, alpha), 'image/jpeg')
    return True
  except Exception as e:  # noqa: BLE001 - the gallery is best effort
    logging.warning('thumbnail of %s not written: %s', of, e)
    return False


def _write_thumbnail(row, output: str, made: bool = False) -> None:
  """Work in proportion to what changed: a thumbnail for an output this run wrote (unless the
  writing step `made` it), and for a skipped one only if it has none yet. Best effort."""
  if row.status == FAILED or not row.output_uri or (made and row.status == WRITTEN):
    return
  thumbnail = thumbnail_uri(output, row.output_uri)
  try:
    if row.status == SKIPPED and exists(thumbnail):
      Metrics.counter(METRICS_NAMESPACE, 'thumbnails_kept').inc()
      return
    write_bytes(thumbnail, thumbnail_bytes(read_bytes(row.output_uri)), 'image/jpeg')
    Metrics.counter(METRICS_NAMESPACE, 'thumbnails_written').inc()
  except Exception as e:  # noqa: BLE001 - the gallery is best effort
    logging.warning('thumbnail of %s not written: %s', row.output_uri, e)


def thumbnail_path(relative_output: str) -> str:
  return f'{layout.GALLERY_DIR}/{relative_output.rsplit(".", 1)[0]}.jpg'


def thumbnail_uri(output: str, output_uri: str) -> str:
  """Where the thumbnail of the output file `output_uri` (under `output`) goes."""
  return FileSystems.join(output, thumbnail_path(output_uri[len(output.rstrip('/')) + 1:]))


def source_thumbnail_path(content_id: str) -> str:
  """Under a folder no style can be named for (style ids never start with '_')."""
  return f'{layout.GALLERY_DIR}/_sources/{content_id}.jpg'


def _write_source_thumbnail(rows: list[ManifestRow], output: str, made: bool = False) -> None:
  """A thumbnail of the content picture: when this run wrote one of its outputs (new or changed
  source; unless the loading step `made` it then), or when it has none yet. Best effort."""
  first = rows[0]
  written = any(row.status == WRITTEN for row in rows)
  if not first.content_id or (made and written):
    return
  thumbnail = FileSystems.join(output, source_thumbnail_path(first.content_id))
  try:
    if not written and exists(thumbnail):
      return
    data = read_bytes(first.content_uri, imaging.DEFAULT_MAX_BYTES, imaging.check_signature)
    write_bytes(thumbnail, thumbnail_bytes(data), 'image/jpeg')
  except Exception as e:  # noqa: BLE001 - the gallery is best effort
    logging.warning('thumbnail of source %s not written: %s', first.content_uri, e)


def _column(row: ManifestRow) -> str:
  strength, style = row.strength, row.style_id or '(no style)'
  return style if strength in (None, 1.0) else f'{style} @ {strength:g}'


def _cell(row: ManifestRow, output: str) -> str:
  if row.status == FAILED:
    reason = f'{row.stage}: {row.error_type}: {row.message}'
    return f'<td class="failed" title="{html.escape(reason)}">failed<br><small>' \
           f'{html.escape(row.stage or "")}</small></td>'
  relative = row.output_uri[len(output.rstrip('/')) + 1:]
  full = urllib.parse.quote(relative)
  thumb = urllib.parse.quote(thumbnail_path(relative))
  return (f'<td class="{row.status}"><a href="{full}"><img class="thumb" src="{thumb}" '
          f'onerror="this.onerror=null;this.src=\'{full}\'" loading="lazy" alt=""></a></td>')


def _source_cell(row: ManifestRow) -> str:
  name = html.escape(row.content_id or row.content_uri)
  if not row.content_id:
    return f'<td class="source">{name}</td>'
  thumb = urllib.parse.quote(source_thumbnail_path(row.content_id))
  return (f'<td class="source"><img class="source" src="{thumb}" loading="lazy" alt="{name}" '
          f'onerror="this.replaceWith(this.alt)"><br><small>{name}</small></td>')


def _failure_item(failure: tuple) -> str:
  uri, style_id, strength, stage, error_type, message = map(html.escape, failure)
  at = '' if strength in ('1', '') else f' @ {strength}'
  return f'<li><b>{uri}</b> in <b>{style_id}</b>{at}: {stage}: {error_type}: {message}</li>'



def render_page(contents: list, output: str, run_id: str, failures: list = (),
                failed: int = 0) -> str:
  """contents: [(content key, [ManifestRow])] -> the page's HTML; a row is named by its
  content's id, or its URI when it has none. `failures`: the listed failures (`_failure`), of
  `failed` in the run."""
  columns = sorted({_column(r) for _, rows in contents for r in rows})
  lines = []
  for _, rows in contents:
    by_column = {_column(r): r for r in rows}
    uri = rows[0].content_uri
    cells = ''.join(_cell(by_column[c], output) if c in by_column else '<td></td>'
                    for c in columns)
    name = rows[0].content_id or uri
    lines.append(f'<tr><th title="{html.escape(uri)}">{html.escape(name)}</th>'
                 f'{_source_cell(rows[0])}{cells}</tr>')
  header = '<th>source</th>' + ''.join(f'<th>{html.escape(c)}</th>' for c in columns)
  more = (f' (the first {len(failures)} shown; all of them are in '
          f'<code>{layout.MANIFEST_DIR}/failures-{html.escape(run_id)}-*.jsonl</code>)'
          if failed > len(failures) else '')
  failure_list = (f'<h2 id="failures">Failures: {failed}{more}</h2>\n<ul class="failures">\n'
                  + '\n'.join(map(_failure_item, failures)) + '\n</ul>' if failed else
                  '<h2 id="failures">Failures: none</h2>')
  return f'''<!doctype html>
<html><head><meta charset="utf-8"><title>batch-stylize {html.escape(run_id)}</title>
<style>
body {{ font-family: sans-serif; margin: 16px; }}
table {{ border-collapse: collapse; }}
th, td {{ border: 1px solid #ddd; padding: 4px; text-align: center; vertical-align: middle; }}
tbody th {{ max-width: 200px; overflow-wrap: anywhere; font-weight: normal; }}
img.thumb {{ width: {THUMBNAIL_SIDE}px; height: {THUMBNAIL_SIDE}px; object-fit: contain; }}
td.failed {{ background: #fdd; color: #900; width: {THUMBNAIL_SIDE}px; }}
img.source {{ max-width: {THUMBNAIL_SIDE}px; max-height: {THUMBNAIL_SIDE}px; }}
ul.failures {{ color: #900; overflow-wrap: anywhere; }}
</style></head>
<body>
<h1>Run {html.escape(run_id)}</h1>
<p>Content pictures: {len(contents)} (rows). Styles: {len(columns)} (columns).</p>
<table class="sheet"><thead><tr><th>content</th>{header}</tr></thead>
<tbody>
{chr(10).join(lines)}
</tbody></table>
{failure_list}
<script>
window.addEventListener('load', () => {{
  const loaded = kind => [...document.querySelectorAll('img.' + kind)].filter(
      i => i.complete && i.naturalWidth > 0).length;
  document.body.dataset.loaded = loaded('thumb');
  document.body.dataset.sources = loaded('source');
}});
</script>
</body></html>
'''


class ShownContents(beam.PTransform):
  """(content key, anything) for every listed content -> one frozenset: the first `n` distinct
  keys, the contents the page will show (`ContactSheet` picks the same from the rows). A side
  input for the steps that hold the pictures, which make these contents' thumbnails."""

  def __init__(self, n: int):
    super().__init__()
    self._n = n

  def expand(self, keyed):
    return keyed | 'Keys' >> beam.Keys() | 'First' >> beam.CombineGlobally(FirstKeys(self._n))


class FirstKeys(beam.CombineFn):
  """The `n` smallest distinct values, as a frozenset: a picture listed on several rows (per-item
  styles, overlapping globs) counts once. Each partial result holds at most `n`."""

  def __init__(self, n: int):
    super().__init__()
    self._n = n

  def create_accumulator(self):
    return []  # sorted

  def add_input(self, keys, key):
    at = bisect.bisect_left(keys, key)
    if at < self._n and (at == len(keys) or keys[at] != key):
      keys.insert(at, key)
      del keys[self._n:]
    return keys

  def merge_accumulators(self, accumulators):
    return sorted(set().union(*accumulators))[:self._n]

  def extract_output(self, keys):
    return frozenset(keys)


class WriteGallery(beam.PTransform):
  """Manifest rows -> `{output}/index.html` showing the first `max_rows` content pictures.
  `made`: `ShownContents`, when the writing steps made those contents' thumbnails."""

  def __init__(self, output: str, run_id: str, max_rows: int, made=None):
    super().__init__()
    self._output = output
    self._run_id = run_id
    self._max_rows = max_rows
    self._made = made

  def expand(self, rows):
    output, run_id = self._output, self._run_id
    # One combiner picks what the page shows (partial results per bundle, then merged): the run's
    # other rows are never shuffled for the page, and the graph stays small.
    sheet = rows | 'Sheet' >> beam.CombineGlobally(ContactSheet(self._max_rows))
    if self._made is None:
      thumbnails = beam.MapTuple(lambda _, content_rows: _write_thumbnails(content_rows, output))
    else:
      thumbnails = beam.MapTuple(
          lambda key, content_rows, made=(): _write_thumbnails(content_rows, output, key in made),
          made=beam.pvalue.AsSingleton(self._made))
    _ = (sheet
         | 'ShownContents' >> beam.FlatMap(lambda shown: shown.contents)
         | 'SpreadThumbnails' >> beam.Reshuffle()
         | 'Thumbnails' >> thumbnails)
    return sheet | 'Write' >> beam.Map(
        lambda shown: _write_page(shown.contents, output, run_id, shown.failures, shown.failed))


def _key(row: ManifestRow) -> bytes:
  return content_key(row.content_id, row.content_uri)


def _failure(row: ManifestRow) -> tuple[str, ...]:
  """A failed row as the page lists it: comparable strings (sorted by source, then style)."""
  return (row.content_uri, row.style_id or '', f'{row.strength:g}' if row.strength else '',
          row.stage or '', row.error_type or '', row.message or '')


@dataclasses.dataclass
class Shown:
  """What the page shows: the rows of the first contents by key (sorted), the first failures by
  name, and how many pairs failed in all."""
  contents: list[tuple[bytes, list[ManifestRow]]]
  failures: list[tuple[str, ...]]
  failed: int


class ContactSheet(beam.CombineFn):
  """Rows -> `Shown`, keeping at most `n` contents and `n` failures in any partial result."""

  def __init__(self, n: int):
    super().__init__()
    self._n = n

  def create_accumulator(self):
    # content key -> its rows; those keys, sorted; the smallest failures, sorted; failures counted
    return {}, [], [], 0

  def add_input(self, accumulator, row):
    contents, keys, failures, failed = accumulator
    key = _key(row)
    if key in contents:
      contents[key].append(row)
    elif len(keys) < self._n or key < keys[-1]:
      contents[key] = [row]
      bisect.insort(keys, key)
      if len(keys) > self._n:
        del contents[keys.pop()]
    if row.status == FAILED:
      failed += 1
      failure = _failure(row)
      if len(failures) < self._n or failure < failures[-1]:
        bisect.insort(failures, failure)
        del failures[self._n:]
    return contents, keys, failures, failed

  def merge_accumulators(self, accumulators):
    merged, failures, failed = {}, [], 0
    for contents, _, some, count in accumulators:
      for key, rows in contents.items():
        merged.setdefault(key, []).extend(rows)
      failures += some
      failed += count
    keys = sorted(merged)[:self._n]
    return {key: merged[key] for key in keys}, keys, sorted(failures)[:self._n], failed

  def extract_output(self, accumulator):
    contents, keys, failures, failed = accumulator
    return Shown([(key, contents[key]) for key in keys], failures, failed)


def _write_thumbnails(rows: list[ManifestRow], output: str, made: bool = False) -> None:
  """One content's: its source's, then its outputs' (`made`: by the steps that wrote them)."""
  _write_source_thumbnail(rows, output, made)
  for row in rows:
    _write_thumbnail(row, output, made)


def _write_page(contents, output: str, run_id: str, failures: list, failed: int) -> None:
  """Renders and writes the page; the gallery is a convenience, so a failure is logged, not
  raised: it never fails the run whose outputs and manifest are written."""
  try:
    page = render_page(contents, output, run_id, failures, failed)
    # A file name that is not valid UTF-8 shows with a replacement character, never a crash.
    write_bytes(FileSystems.join(output, layout.GALLERY_PAGE), page.encode('utf-8', 'replace'),
                'text/html')
  except Exception as e:  # noqa: BLE001 - the gallery is best effort
    logging.warning('gallery not written: %s: %s', type(e).__name__, e)
