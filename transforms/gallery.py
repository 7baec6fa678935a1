"""A contact sheet to look at a run: `{output}/index.html`, content pictures as rows, styles (and
strengths) as columns, each thumbnail linking to its full output, failures shown as such.

The page is static and uses relative links only, so it works from a local folder or a bucket.
Thumbnails are made for the pictures the page shows only (read back from their outputs, off the
stylizing path) under `{output}/_gallery/`; a missing thumbnail falls back to the full output.
"""
from __future__ import annotations

import bisect
import html
import io
import logging
import urllib.parse

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from PIL import Image

from models import rendering
from transforms import layout
from transforms.records import FAILED, METRICS_NAMESPACE, SKIPPED, ManifestRow, content_key
from transforms.storage import match, read_bytes, write_bytes

THUMBNAIL_SIDE = 192


def thumbnail_bytes(encoded: bytes) -> bytes:
  """A small JPEG of an encoded output (transparency shown on white)."""
  small = Image.open(io.BytesIO(encoded))
  small.draft('RGB', (THUMBNAIL_SIDE, THUMBNAIL_SIDE))
  small = small.convert('RGBA')
  small.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
  flat = rendering.finish(small.convert('RGB'), rendering.Rendering(), alpha=small.getchannel('A'))
  return rendering.encode(flat, rendering.Rendering(jpeg_quality=80))


def _write_thumbnail(row, output: str) -> None:
  """Work in proportion to what changed: a thumbnail for an output this run wrote, and for a
  skipped one only if it has none yet. Best effort: the page falls back to the full output."""
  if row.status == FAILED or not row.output_uri:
    return
  relative = row.output_uri[len(output.rstrip('/')) + 1:]
  thumbnail = FileSystems.join(output, thumbnail_path(relative))
  try:
    if row.status == SKIPPED and match(thumbnail, limit=1):
      Metrics.counter(METRICS_NAMESPACE, 'thumbnails_kept').inc()
      return
    write_bytes(thumbnail, thumbnail_bytes(read_bytes(row.output_uri)), 'image/jpeg')
    Metrics.counter(METRICS_NAMESPACE, 'thumbnails_written').inc()
  except Exception as e:  # noqa: BLE001 - the gallery is best effort
    logging.warning('thumbnail of %s not written: %s', row.output_uri, e)


def thumbnail_path(relative_output: str) -> str:
  return f'{layout.GALLERY_DIR}/{relative_output.rsplit(".", 1)[0]}.jpg'


def _column(row: ManifestRow) -> str:
  strength = row.strength
  return row.style_id if strength in (None, 1.0) else f'{row.style_id} @ {strength:g}'


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


def render_page(contents: list, output: str, run_id: str) -> str:
  """contents: [(content key, [ManifestRow])] -> the page's HTML; a row is named by its
  content's id, or its URI when it has none."""
  columns = sorted({_column(r) for _, rows in contents for r in rows})
  lines = []
  for _, rows in contents:
    by_column = {_column(r): r for r in rows}
    uri = rows[0].content_uri
    cells = ''.join(_cell(by_column[c], output) if c in by_column else '<td></td>'
                    for c in columns)
    name = rows[0].content_id or uri
    lines.append(f'<tr><th title="{html.escape(uri)}">{html.escape(name)}</th>{cells}</tr>')
  header = ''.join(f'<th>{html.escape(c)}</th>' for c in columns)
  return f'''<!doctype html>
<html><head><meta charset="utf-8"><title>batch-stylize {html.escape(run_id)}</title>
<style>
body {{ font-family: sans-serif; margin: 16px; }}
table {{ border-collapse: collapse; }}
th, td {{ border: 1px solid #ddd; padding: 4px; text-align: center; vertical-align: middle; }}
tbody th {{ max-width: 200px; overflow-wrap: anywhere; font-weight: normal; }}
img.thumb {{ width: {THUMBNAIL_SIDE}px; height: {THUMBNAIL_SIDE}px; object-fit: contain; }}
td.failed {{ background: #fdd; color: #900; width: {THUMBNAIL_SIDE}px; }}
</style></head>
<body>
<h1>Run {html.escape(run_id)}</h1>
<p>Content pictures: {len(contents)} (rows). Styles: {len(columns)} (columns).</p>
<table class="sheet"><thead><tr><th>content</th>{header}</tr></thead>
<tbody>
{chr(10).join(lines)}
</tbody></table>
<script>
window.addEventListener('load', () => {{
  const loaded = [...document.images].filter(i => i.complete && i.naturalWidth > 0);
  document.body.dataset.loaded = loaded.length;
}});
</script>
</body></html>
'''


class WriteGallery(beam.PTransform):
  """Manifest rows -> `{output}/index.html` showing the first `max_rows` content pictures."""

  def __init__(self, output: str, run_id: str, max_rows: int):
    super().__init__()
    self._output = output
    self._run_id = run_id
    self._max_rows = max_rows

  def expand(self, rows):
    output, run_id = self._output, self._run_id
    # The first contents are chosen by a combiner (partial results per bundle, then merged), and
    # only their rows are grouped: the run's other rows are never shuffled for the page.
    chosen = (rows
              | 'ContentKeys' >> beam.Map(_key)
              | 'FirstContents' >> beam.CombineGlobally(SmallestDistinct(self._max_rows)))
    shown = (rows
             | 'ShownRows' >> beam.Filter(lambda r, keys: _key(r) in keys,
                                          keys=beam.pvalue.AsSingleton(chosen))
             | 'ByContent' >> beam.Map(lambda r: (_key(r), r)))
    _ = (shown
         | 'SpreadThumbnails' >> beam.Reshuffle()
         | 'Thumbnails' >> beam.MapTuple(lambda _, row: _write_thumbnail(row, output)))
    return (shown
            | 'Group' >> beam.GroupByKey()
            | 'AsLists' >> beam.MapTuple(lambda key, content_rows: (key, list(content_rows)))
            | 'OnePage' >> beam.combiners.ToList()
            | 'Write' >> beam.Map(lambda contents: _write_page(sorted(contents), output, run_id)))


def _key(row: ManifestRow) -> bytes:
  return content_key(row.content_id, row.content_uri)


class SmallestDistinct(beam.CombineFn):
  """The `n` smallest distinct values, as a set; partial results stay `n` long at most."""

  def __init__(self, n: int):
    super().__init__()
    self._n = n

  def create_accumulator(self):
    return []

  def add_input(self, smallest, value):
    if value not in smallest and (len(smallest) < self._n or value < smallest[-1]):
      bisect.insort(smallest, value)
      del smallest[self._n:]
    return smallest

  def merge_accumulators(self, accumulators):
    return sorted(set().union(*accumulators))[:self._n]

  def extract_output(self, smallest):
    return set(smallest)


def _write_page(contents, output: str, run_id: str) -> None:
  """Renders and writes the page; the gallery is a convenience, so a failure is logged, not
  raised: it never fails the run whose outputs and manifest are written."""
  try:
    page = render_page([(key, list(rows)) for key, rows in contents], output, run_id)
    # A file name that is not valid UTF-8 shows with a replacement character, never a crash.
    write_bytes(FileSystems.join(output, layout.GALLERY_PAGE), page.encode('utf-8', 'replace'),
                'text/html')
  except Exception as e:  # noqa: BLE001 - the gallery is best effort
    logging.warning('gallery not written: %s: %s', type(e).__name__, e)
