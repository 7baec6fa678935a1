"""The run's tables: bundles' shards committed to Beam-style names, only the committed ones, every
row once, whatever the order of events."""
from __future__ import annotations

import json

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.util import assert_that, equal_to
from conftest import fn_api_pipeline

from transforms import tables

SCHEMA = pa.schema([('key', pa.string()), ('n', pa.int64())])


def _tables(out):
  return {'lines': tables.Table(str(out / 'lines'), '.jsonl'),
          'rows': tables.Table(str(out / 'sub' / 'part'), '.parquet', SCHEMA)}


def _bundle(writer, elements):
  """One bundle through the DoFn, as a runner drives it; its outputs."""
  writer.start_bundle()
  for element in elements:
    writer.process(element)
  return [windowed.value for windowed in writer.finish_bundle()]


def test_each_bundles_shard_gets_its_final_name_and_the_rest_goes(tmp_path):
  temp = tmp_path / 'temp-r1'
  writer = tables._WriteShards(_tables(tmp_path), str(temp))
  first = _bundle(writer, [('lines', '{"a": 1}'), ('rows', {'key': 'a', 'n': 1})])
  # Rows past a Parquet batch are written out as the bundle goes, not held to its end.
  many = [('rows', {'key': f'k{i}', 'n': i}) for i in range(tables.PARQUET_BATCH_ROWS + 5)]
  second = _bundle(writer, [('lines', '{"b": 2}'), *many])
  failed_attempt = _bundle(writer, [('lines', '{"lost": 0}')])  # the runner never commits it

  files = tables.commit(_tables(tmp_path), str(temp), first + second)

  assert files['lines'] == [str(tmp_path / 'lines-00000-of-00002.jsonl'),
                            str(tmp_path / 'lines-00001-of-00002.jsonl')]
  assert sorted(line for path in files['lines'] for line in open(path).read().splitlines()) == [
      '{"a": 1}', '{"b": 2}']
  parquet = pa.concat_tables([pq.read_table(path) for path in files['rows']])
  assert parquet.schema.equals(SCHEMA) and parquet.num_rows == len(many) + 1
  assert sorted(parquet.column('n').to_pylist()) == sorted([1, *range(len(many))])
  # Its batches were gathered into one row group, not one group per batch.
  assert [pq.ParquetFile(path).metadata.num_row_groups for path in files['rows']] == [1, 1]
  assert not temp.exists() and failed_attempt  # the uncommitted shard went with the folder


def test_a_retried_commit_finds_its_files_moved_and_carries_on(tmp_path):
  temp = tmp_path / 'temp-r1'
  shards = _bundle(tables._WriteShards(_tables(tmp_path), str(temp)), [('lines', '"x"')])
  assert tables.commit(_tables(tmp_path), str(temp), shards) == tables.commit(
      _tables(tmp_path), str(temp), shards)
  assert (tmp_path / 'lines-00000-of-00001.jsonl').read_text() == '"x"\n'


def test_a_table_without_rows_gets_one_empty_file(tmp_path):
  files = tables.commit(_tables(tmp_path), str(tmp_path / 'temp-r1'), [])
  assert (tmp_path / 'lines-00000-of-00001.jsonl').read_bytes() == b''
  (empty,) = files['rows']
  table = pq.read_table(empty)
  assert table.num_rows == 0 and table.schema.equals(SCHEMA)


def test_a_shard_that_cannot_be_moved_fails_the_commit_with_its_names(tmp_path):
  temp = tmp_path / 'temp-r1'
  shards = _bundle(tables._WriteShards(_tables(tmp_path), str(temp)), [('lines', '"x"')])
  (tmp_path / 'lines-00000-of-00001.jsonl').mkdir()  # something in the way
  with pytest.raises(OSError, match='lines-00000-of-00001.jsonl.*IsADirectoryError'):
    tables.commit(_tables(tmp_path), str(temp), shards)


@pytest.mark.parametrize('row, error', [
    ({'key': 'a'}, "columns \\['key'\\], the table \\['key', 'n'\\]"),  # would be a null
    ({'key': 'a', 'n': 1, 'extra': 2}, 'extra'),  # would be dropped
    ({'key': 'a', 'n': 'one'}, 'one'),  # not an integer
])
def test_a_row_that_does_not_fit_its_table_fails_the_bundle(tmp_path, row, error):
  writer = tables._WriteShards(_tables(tmp_path), str(tmp_path / 'temp-r1'))
  with pytest.raises((ValueError, TypeError, pa.ArrowException), match=error):
    _bundle(writer, [('rows', {'key': 'b', 'n': 2}), ('rows', row)])


def test_in_a_pipeline_then_runs_once_after_the_files_with_the_side_inputs(tmp_path):
  def then(files, total):
    return sum(len(open(path).read().splitlines()) for path in files['lines']), total

  with fn_api_pipeline() as p:
    lines = p | beam.Create([json.dumps(i) for i in range(20)])
    total = lines | beam.combiners.Count.Globally()
    done = (lines
            | beam.Map(lambda line: ('lines', line))
            | tables.WriteTables({'lines': _tables(tmp_path)['lines']}, str(tmp_path / 'temp'),
                                 then=then, total=beam.pvalue.AsSingleton(total)))
    assert_that(done, equal_to([(20, 20)]))


def test_a_commit_retried_after_part_of_its_moves_finishes_them(tmp_path):
  temp = tmp_path / 'temp-r1'
  writer = tables._WriteShards(_tables(tmp_path), str(temp))
  shards = _bundle(writer, [('lines', '"a"')]) + _bundle(writer, [('lines', '"b"')])
  first = min(path for _, path in shards)
  # The first attempt moved one shard, then died.
  (temp / first.rsplit('/', 1)[1]).rename(tmp_path / 'lines-00000-of-00002.jsonl')
  files = tables.commit(_tables(tmp_path), str(temp), shards)
  assert sorted(open(path).read() for path in files['lines']) == ['"a"\n', '"b"\n']
  assert not temp.exists()


def test_a_failure_after_the_files_fails_the_pipeline(tmp_path):
  def then(files):
    raise OSError('the summary cannot be written')

  p = fn_api_pipeline()
  _ = (p | beam.Create([('lines', '"x"')])
       | tables.WriteTables({'lines': _tables(tmp_path)['lines']}, str(tmp_path / 'temp'),
                            then=then))
  with pytest.raises(Exception, match='the summary cannot be written'):
    p.run().wait_until_finish()
