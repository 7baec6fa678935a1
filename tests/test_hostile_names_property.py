"""Property: whatever names, list rows and ids a catalog has, the job ends, accounts for every
pair, writes nothing outside --output, and its gallery is well-formed HTML with every name
escaped. Hypothesis generates the catalogs (unicode, control characters, glob metacharacters,
separators, names that are not UTF-8, long names, duplicate and hostile ids)."""
from __future__ import annotations

import csv
import html.parser
import os
import shutil
import tempfile
import urllib.parse

from conftest import gradient_picture, read_manifest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline import run as job

_TEXT = st.text(st.characters(blacklist_categories=('Cs',), blacklist_characters='/\0'),
                min_size=1, max_size=30)
_SPECIAL = st.sampled_from(['*', '?', '[', ']', '[!a]', '\\', '**', ' ', '\t', '\n', '\r', '\x1b',
                            '<img src=x onerror=alert(1)>', '&amp;', '"', "'", '%2F', '..', 'é',
                            '\u202e', 'index.html', '_manifest', 'x' * 120])
_NAMES = st.builds(
    lambda parts, ext, raw: ''.join(parts) + (os.fsdecode(b'\xe9\xff') if raw else '') + ext,
    st.lists(st.one_of(_TEXT, _SPECIAL), min_size=1, max_size=3),
    st.sampled_from(['.jpg', '.png', '.JPG', '']), st.booleans()).filter(
        lambda n: n not in ('.', '..') and len(os.fsencode(n)) <= 240)
_IDS = st.one_of(st.sampled_from(['', 'sku', 'sku', 'a/b', '../x', '/abs', 'a//b', '_manifest',
                                  'index.html', 'x' * 250, 'é/ü', ' sku ']), _TEXT)
_ALLOWED_TAGS = {'html', 'head', 'meta', 'title', 'style', 'body', 'h1', 'p', 'table', 'thead',
                 'tbody', 'tr', 'th', 'td', 'a', 'img', 'br', 'small', 'script', 'h2', 'ul',
                 'li', 'b', 'code'}


class _Page(html.parser.HTMLParser):
  def __init__(self):
    super().__init__()
    self.tags, self.links = [], []

  def handle_starttag(self, tag, attrs):
    self.tags.append(tag)
    self.links += [value for name, value in attrs if name in ('href', 'src') and value]


def _files_outside(root: str, out: str) -> set[str]:
  found = set()
  for folder, subfolders, names in os.walk(root):
    subfolders[:] = [s for s in subfolders if os.path.join(folder, s) != out]
    found |= {os.path.join(folder, n) for n in names}
  return found


@settings(max_examples=8, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(names=st.lists(_NAMES, min_size=1, max_size=6, unique=True),
       listed=st.lists(st.tuples(st.integers(0, 5), _IDS), max_size=5))
def test_any_catalog_ends_accounted_and_contained(tiny_models, names, listed):
  root = tempfile.mkdtemp()
  try:
    catalog, out = os.path.join(root, 'catalog'), os.path.join(root, 'out')
    os.makedirs(catalog)
    paths = []
    for k, name in enumerate(names):
      path = os.path.join(catalog, name)
      gradient_picture(40, 30, k).save(path, 'PNG')
      paths.append(path)
    gradient_picture(300, 300).save(os.path.join(root, 'warm.png'))
    list_file = os.path.join(root, 'list.csv')
    with open(list_file, 'w', newline='', encoding='utf-8', errors='surrogateescape') as f:
      writer = csv.writer(f)
      writer.writerow(['uri', 'id'])
      writer.writerows((os.path.relpath(paths[k % len(paths)], root), given)
                       for k, given in listed)
    before = _files_outside(root, out)

    lists = ['--content-list', list_file] if listed else []  # an empty list stops at launch
    outcome = job.run(['--content', os.path.join(catalog, '*'), *lists,
                       '--styles', os.path.join(root, 'warm.png'), '--output', out,
                       '--model', tiny_models, '--runner', 'DirectRunner'])

    rows = read_manifest(_Path(out))
    summary = outcome.summary
    assert summary['accounted'] and summary['pairs_expected'] == len(rows)
    assert set(paths) <= {r['content_uri'] for r in rows}, 'every file in the folder is matched'
    for row in rows:
      if row['status'] == 'written':
        real = os.path.realpath(row['output_uri'])
        assert real.startswith(os.path.realpath(out) + os.sep) and os.path.isfile(real)
    assert _files_outside(root, out) == before, 'nothing is written outside --output'

    page = _Page()
    with open(os.path.join(out, 'index.html'), encoding='utf-8') as f:
      page.feed(f.read())
    assert set(page.tags) <= _ALLOWED_TAGS and page.tags.count('script') == 1
    for link in page.links:
      target = urllib.parse.unquote(link)
      assert not urllib.parse.urlsplit(link).scheme and not target.startswith('/')
      assert '..' not in target.split('/')
  finally:
    shutil.rmtree(root, ignore_errors=True)


def _Path(path: str):  # noqa: N802 - read_manifest takes a pathlib.Path
  import pathlib
  return pathlib.Path(path)
