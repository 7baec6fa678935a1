"""Ids and list files: deterministic, unique, and never able to leave the output folder."""
from __future__ import annotations

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to
from conftest import fn_api_pipeline

from transforms import inputs


def test_content_ids_are_deterministic_and_unique_per_uri():
  a = inputs.content_ref('gs://b/x/photo.jpg')
  b = inputs.content_ref('gs://b/y/photo.jpg')
  assert a.id.startswith('photo-') and b.id.startswith('photo-') and a.id != b.id
  assert inputs.content_ref('gs://b/x/photo.jpg') == a


def test_unsafe_characters_are_replaced_in_ids():
  ref = inputs.content_ref('/data/my summer photo (1).jpg')
  assert ref.id.startswith('my_summer_photo_1-')
  assert inputs.content_ref('/data/Zürich straße.png').id.startswith('Zürich_straße-')


@pytest.mark.parametrize('given', ['../../x', '/etc/passwd', 'a/../../b', '.hidden', 'a//b',
                                   'a/', 'C:\\x', 'x' * 300])
def test_list_ids_that_could_escape_are_refused(given):
  ref = inputs.content_ref('/data/a.jpg', given)
  assert ref.id is None and 'not a safe relative name' in ref.problem


def test_safe_list_ids_are_kept():
  assert inputs.content_ref('/data/a.jpg', 'sku/123-b.v2').id == 'sku/123-b.v2'


@pytest.mark.parametrize('given', ['p.s0.50', 'p.s0.00', 'sku/p.w480', 'p.s0.25.w1600'])
def test_list_ids_that_end_like_another_ids_output_are_refused(given):
  """Id `p` at strength 0.5 writes `p.s0.50.jpg`, and at width 480 of several `p.w480.jpg`: an
  id already ending so would share that file, each run overwriting the other's output."""
  ref = inputs.content_ref('/data/a.jpg', given)
  assert ref.id is None and 'ends like the name of another id' in ref.problem


@pytest.mark.parametrize('given', ['p.s0.5', 'p.small', 'shoe.w', 'p.w480x', 'p.s0.50-b', 'w480',
                                   'p.s1.00', 'p.w0', 'p.w007'])
def test_ids_merely_like_those_suffixes_are_kept(given):
  """Names the job never writes: strengths lie in [0, 1) when suffixed, widths are >= 1."""
  assert inputs.content_ref('/data/a.jpg', given).id == given


def test_a_style_id_may_end_like_a_suffix_it_names_a_folder():
  assert [ref.id for ref in inputs.style_refs([('/s/wave.jpg', 'wave.w480')])] == ['wave.w480']


def test_list_rows_are_one_picture_however_they_are_spelled(tmp_path):
  path = tmp_path / 'list.csv'
  path.write_text('uri\nphotos/a.jpg\n./photos/a.jpg\nphotos/x/../a.jpg\n'
                  f'{tmp_path}/photos//a.jpg\ngs://b/x/../a.jpg\n')
  uris = [row.uri for row in inputs.read_list_file(str(path))]
  assert uris == [str(tmp_path / 'photos' / 'a.jpg')] * 4 + ['gs://b/x/../a.jpg']


def test_a_csv_row_with_an_empty_uri_is_a_dead_letter_and_a_blank_row_nothing(tmp_path):
  path = tmp_path / 'list.csv'
  path.write_text('uri,id,styles\na.jpg,a,\n,lost,\n,,\n, ,builtin:great_wave\nb.jpg,,\n')
  rows = list(inputs.read_list_file(str(path)))
  assert [(r.uri.rsplit('/', 1)[-1], r.problem) for r in rows] == [
      ('a.jpg', None), ('list.csv#row2', 'row 2 has an empty "uri"'),
      ('list.csv#row4', 'row 4 has an empty "uri"'), ('b.jpg', None)]


def test_style_ids_dedupe_uris_and_disambiguate_names():
  refs = inputs.style_refs([('/a/wave.jpg', None), ('/b/wave.jpg', None), ('/a/wave.jpg', None),
                            ('/c/scream.png', None)])
  assert [r.uri for r in refs] == ['/a/wave.jpg', '/b/wave.jpg', '/c/scream.png']
  assert refs[2].id == 'scream'
  assert refs[0].id.startswith('wave-') and refs[1].id.startswith('wave-')
  assert refs[0].id != refs[1].id


@pytest.mark.parametrize('name, text', [
    ('list.txt', '# catalog\nx/one.jpg\n\n/abs/two.jpg\n'),
    ('list.csv', 'id,uri\n,x/one.jpg\nsku-2,/abs/two.jpg\n'),
    ('list.jsonl', '{"uri": "x/one.jpg"}\n\n{"uri": "/abs/two.jpg", "id": "sku-2"}\n'),
])
def test_list_file_formats(tmp_path, name, text):
  path = tmp_path / name
  path.write_text(text)
  rows = list(inputs.read_list_file(str(path)))
  assert rows[0] == inputs.ListRow(str(tmp_path / 'x' / 'one.jpg'), None)
  assert rows[1][0] == '/abs/two.jpg'
  assert rows[1][1] in (None, 'sku-2') and rows[1][2] is None


def test_bad_rows_cost_only_themselves(tmp_path):
  path = tmp_path / 'list.jsonl'
  path.write_bytes(b'{"uri": "a.jpg"}\nnot json\n"b.jpg"\n{"uri": 5}\n{"uri": "caf\xe9.jpg"}\n'
                   b'{"uri": "builtin:starry_night"}\n{"uri": "c.jpg", "id": "sku"}\n')
  rows = list(inputs.read_list_file(str(path)))
  assert len(rows) == 7
  assert [r[2] is None for r in rows] == [True, False, False, False, False, True, True]
  assert rows[5][0] == 'builtin:starry_night'  # not taken as a path beside the list
  assert rows[6] == inputs.ListRow(str(tmp_path / 'c.jpg'), 'sku')
  assert 'row 2 has no usable "uri"' in rows[1][2]


@pytest.mark.parametrize('name, text', [
    ('list.csv', 'uri,id,version\na.jpg,sku-1,2026-11-30T02:00\nb.jpg,,\n'),
    ('list.jsonl', '{"uri": "a.jpg", "id": "sku-1", "version": "2026-11-30T02:00"}\n'
                   '{"uri": "b.jpg"}\n')])
def test_a_version_column_stands_for_the_files_state(tmp_path, name, text):
  """A listed version needs no request to see whether the picture changed (PlanPairs looks one
  up only for a ref without a version)."""
  path = tmp_path / name
  path.write_text(text)
  rows = list(inputs.read_list_file(str(path)))
  assert [(r.id, r.version) for r in rows] == [('sku-1', 'listed:2026-11-30T02:00'), (None, None)]
  assert inputs.content_ref(rows[0].uri, rows[0].id, rows[0].version).version == rows[0].version


def test_csv_list_without_a_uri_column_is_refused(tmp_path):
  path = tmp_path / 'list.csv'
  path.write_text('path,id\na.jpg,1\n')
  with pytest.raises(ValueError, match='needs a "uri" column'):
    list(inputs.read_list_file(str(path)))


def test_styles_always_get_distinct_usable_keys():
  refs = inputs.style_refs([('/a.jpg', 'house'), ('/b.jpg', 'house'), ('/c.jpg', '../x'),
                            ('/d.jpg', None, 'row 4 has no usable "uri"')])
  ids = [r.id for r in refs]
  assert all(ids) and len(set(ids)) == 4
  assert ids[0].startswith('house-') and ids[2].startswith('invalid-')
  assert refs[2].problem and refs[3].problem


def test_content_refs_transform_matches_globs_and_lists(tmp_path):
  for name in ('a.jpg', 'b.png'):
    (tmp_path / name).write_bytes(b'x')
  listing = tmp_path / 'list.csv'
  listing.write_text('uri,id\na.jpg,first\n')
  with fn_api_pipeline() as p:
    refs = p | inputs.ContentRefs([str(tmp_path / '*.*g')], [str(listing)])
    assert_that(refs | beam.Map(lambda r: (r.uri.rsplit('/', 1)[1], r.id.split('-')[0])),
                equal_to([('a.jpg', 'a'), ('b.png', 'b'), ('a.jpg', 'first')]))


def test_content_refs_leave_out_what_a_pattern_matches_under_the_output(tmp_path):
  """An output inside the catalog's folder: its outputs, manifests and thumbnails are the job's
  own, never content (a nightly run would stylize its own outputs, more each night)."""
  for name in ('a.jpg', 'out/warm/a-1234.jpg', 'out/_manifest/run-1.json', 'outside.jpg',
               'output-like/b.jpg'):
    (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / name).write_bytes(b'x')
  with fn_api_pipeline() as p:
    refs = p | inputs.ContentRefs([str(tmp_path / '**')], [], output=str(tmp_path / 'out'))
    assert_that(refs | beam.Map(lambda r: r.uri[len(str(tmp_path)) + 1:]),
                equal_to(['a.jpg', 'outside.jpg', 'output-like/b.jpg']))
  left_out = p.result.metrics().query()['counters']
  assert [c.committed for c in left_out if c.key.metric.name == 'contents_in_output_left_out'] \
      == [2]


def _parquet(path, columns: dict) -> str:
  import pyarrow as pa
  import pyarrow.parquet as pq
  pq.write_table(pa.table(columns), path, row_group_size=2)  # several batches
  return str(path)


def test_a_parquet_list_reads_like_a_csv_one(tmp_path):
  """What a warehouse export is: the same columns, read a record batch at a time."""
  parquet = _parquet(tmp_path / 'list.parquet', {
      'uri': ['x/one.jpg', '/abs/two.jpg', None, 'c.jpg', 'd.jpg'],
      'id': ['sku-1', None, 'sku-3', '', 'sku-5'],
      'version': ['v1', None, None, '7', None],
      'extra': [1, 2, 3, 4, 5]})
  (tmp_path / 'list.csv').write_text(
      'uri,id,version,extra\nx/one.jpg,sku-1,v1,1\n/abs/two.jpg,,,2\n,sku-3,,3\nc.jpg,,7,4\n'
      'd.jpg,sku-5,,5\n')
  rows = list(inputs.read_list_file(parquet))
  assert rows[0] == inputs.ListRow(str(tmp_path / 'x' / 'one.jpg'), 'sku-1', version='listed:v1')
  assert rows[1] == inputs.ListRow('/abs/two.jpg', None)
  assert rows[2].problem == 'row 3 has an empty "uri"'  # a null cell: an empty one
  assert [r.uri for r in rows[3:]] == [str(tmp_path / 'c.jpg'), str(tmp_path / 'd.jpg')]
  csv_rows = list(inputs.read_list_file(str(tmp_path / 'list.csv')))
  assert [r for r in rows if not r.problem] == [r for r in csv_rows if not r.problem]
  assert csv_rows[2].problem == rows[2].problem  # a dead letter in both
  null_rows = _parquet(tmp_path / 'nulls.parquet', {'uri': [None, 'a.jpg', None],
                                                    'id': [None, None, None]})
  assert [r.uri for r in inputs.read_list_file(null_rows)] == [str(tmp_path / 'a.jpg')]


def test_a_parquet_list_without_a_uri_column_is_refused(tmp_path):
  with pytest.raises(ValueError, match='needs a "uri" column'):
    list(inputs.read_list_file(_parquet(tmp_path / 'list.parquet', {'path': ['a.jpg']})))


@pytest.mark.parametrize('name', ['list.csv', 'list.jsonl', 'list.parquet'])
def test_a_styles_column_assigns_a_rows_own_styles(tmp_path, name):
  cells = ['s/warm.png; builtin:great_wave;house', '', None, ' gs://b/cool.jpg ;s/warm.png;']
  uris = ['a.jpg', 'b.jpg', 'c.jpg', 'd.jpg']
  path = tmp_path / name
  if name.endswith('.parquet'):
    _parquet(path, {'uri': uris, 'styles': cells})
  elif name.endswith('.csv'):
    path.write_text('uri,styles\n' + ''.join(f'{u},"{c or ""}"\n' for u, c in zip(uris, cells)))
  else:
    import json
    path.write_text(''.join(json.dumps({'uri': u, **({'styles': c} if c is not None else {})})
                            + '\n' for u, c in zip(uris, cells)))
  rows = list(inputs.read_list_file(str(path), frozenset({'house'})))
  warm = str(tmp_path / 's' / 'warm.png')
  assert [r.styles for r in rows] == [
      (warm, 'builtin:great_wave', 'blend:house'), None, None, ('gs://b/cool.jpg', warm)]
  assert inputs.named_styles(str(path), frozenset({'house'})) == {
      warm, 'builtin:great_wave', 'blend:house', 'gs://b/cool.jpg'}


def test_a_list_without_a_styles_column_is_not_read_for_styles(tmp_path):
  import csv
  path = tmp_path / 'list.csv'
  # A field over the csv module's limit: reading the rows would raise; the header alone does not.
  path.write_text('uri,id\na.jpg,' + 'x' * (csv.field_size_limit() + 10) + '\n')
  with pytest.raises(csv.Error):
    list(inputs.read_list_file(str(path)))
  assert inputs.named_styles(str(path)) == set()


def test_cells_as_exports_write_them_missing_values_arrays_and_whole_floats(tmp_path):
  """pandas writes an integer column with gaps as floats and gaps as NaN; BigQuery exports an
  ARRAY<STRING> as a list; blanks are empty."""
  path = _parquet(tmp_path / 'list.parquet', {
      'uri': ['a.jpg', 'b.jpg', 'c.jpg'],
      'id': [123.0, float('nan'), 7.5],
      'version': [float('nan'), 2.0, None],
      'styles': [['x.jpg', 'builtin:great_wave'], [], None],
      'mask': ['  ', None, 'm.png']})
  rows = list(inputs.read_list_file(path))
  assert [r.id for r in rows] == ['123', None, '7.5']
  assert [r.version for r in rows] == [None, 'listed:2', None]
  assert [r.styles for r in rows] == [(str(tmp_path / 'x.jpg'), 'builtin:great_wave'), None, None]
  assert [r.mask for r in rows] == [None, None, str(tmp_path / 'm.png')]
