"""The compact state: a snapshot of every done pair, published whole or not at all, read in
parallel, and damage costing a warning and at most a re-render."""
from __future__ import annotations

import json
import os
import time

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.testing.util import assert_that, equal_to
from conftest import fn_api_pipeline

from transforms import leftovers, state
from transforms.incremental import DonePairs
from transforms.manifest import WriteManifest
from transforms.records import FAILED, SKIPPED, WRITTEN, ManifestRow


def _started(run_id: str) -> str:
  """Run rK started on day K."""
  return f'2026-01-{int(run_id[1:]):02d}T00:00:00+00:00'


def _row(content_id, status, run_id, style='warm', fp=None, out='/out'):
  return ManifestRow(content_uri=f'/in/{content_id}.jpg', content_id=content_id, style_id=style,
                     strength=1.0, status=status, model_sha256='m',
                     output_uri=None if status == FAILED else f'{out}/{style}/{content_id}.jpg',
                     fingerprint=None if status == FAILED else fp or f'fp-{content_id}-{run_id}',
                     run_id=run_id, recorded_at=_started(run_id))


def _publish(out, run_id, before, rows):
  """The run's snapshot, as the job publishes it: by its manifest step, after the other tables."""
  with fn_api_pipeline() as p:
    outcomes = tuple(p | f'Outcome{k}' >> beam.Create(rows if k == 0 else []) for k in range(4))
    _ = outcomes | WriteManifest(str(out), run_id, 'm', _started(run_id), with_state=True,
                                 before=p | 'Before' >> beam.Create(before))
  return state.current_snapshot(str(out))


def _assert_snapshot(folder, expected):
  with fn_api_pipeline() as p:
    records = p | state.ReadSnapshot(folder)
    assert_that(records | beam.Map(lambda r: (r['output_uri'], r['fingerprint'], r['run_id'])),
                equal_to(expected))


def test_a_snapshot_holds_the_newest_record_of_every_done_output(tmp_path):
  before = [state.to_record(_row('a', WRITTEN, 'r1')), state.to_record(_row('b', WRITTEN, 'r1')),
            state.to_record(_row('c', WRITTEN, 'r1', style='gone'))]
  rows = [_row('a', SKIPPED, 'r2', fp='fp-a-r1'), _row('b', FAILED, 'r2'),
          _row('d', WRITTEN, 'r2', out=str(tmp_path))]
  folder = _publish(tmp_path, 'r2', before, rows)
  assert folder == str(tmp_path / '_state' / 'snapshots' / 'r2')
  pointer = json.loads((tmp_path / '_state' / 'CURRENT.json').read_text())
  assert pointer == {'snapshot': 'snapshots/r2', 'run_id': 'r2', 'files': 1}
  _assert_snapshot(folder, [
      ('/out/warm/a.jpg', 'fp-a-r1', 'r2'),  # this run's skip, newer than r1's record
      ('/out/warm/b.jpg', 'fp-b-r1', 'r1'),  # failed now: the earlier output still stands
      ('/out/gone/c.jpg', 'fp-c-r1', 'r1'),  # another style's, carried as it is
      (f'{tmp_path}/warm/d.jpg', 'fp-d-r2', 'r2')])
  (part,) = (tmp_path / '_state' / 'snapshots' / 'r2').glob('*.parquet')
  table = pq.read_table(part)  # a plain Parquet file, as pandas, DuckDB or BigQuery read it
  assert table.num_rows == 4 and table.schema.equals(state.SCHEMA)


def test_a_name_that_is_not_utf8_keeps_its_bytes_in_the_key(tmp_path):
  row = ManifestRow(content_uri=os.fsdecode(b'/in/caf\xe9.jpg'), content_id=None,
                    style_id='warm', strength=1.0, status=WRITTEN, model_sha256='m',
                    output_uri='/out/warm/x.jpg', fingerprint='f')
  record = state.to_record(row)
  assert record['content_key'] == b'uri:/in/caf\xe9.jpg'
  assert record['content_uri'] == '/in/caf\ufffd.jpg'


def test_a_damaged_snapshot_file_is_passed_over_with_a_warning(tmp_path, caplog):
  folder = _publish(tmp_path, 'r1', [], [_row('a', WRITTEN, 'r1')])
  (part,) = (tmp_path / '_state' / 'snapshots' / 'r1').glob('*.parquet')
  (tmp_path / '_state' / 'snapshots' / 'r1' / 'part-junk.parquet').write_bytes(b'PAR1 torn')
  with fn_api_pipeline() as p:
    records = p | state.ReadSnapshot(folder)
    assert_that(records | beam.Map(lambda r: r['output_uri']), equal_to(['/out/warm/a.jpg']))
  assert 'part-junk.parquet passed over' in caplog.text and part.exists()


def test_a_damaged_pointer_falls_back_to_the_manifests(tmp_path, caplog):
  assert state.current_snapshot(str(tmp_path)) is None  # none yet: no warning
  assert caplog.text == ''
  (tmp_path / '_state').mkdir()
  (tmp_path / '_state' / 'CURRENT.json').write_bytes(b'{"snaps')
  assert state.current_snapshot(str(tmp_path)) is None
  assert 'CURRENT.json is unreadable' in caplog.text


def test_done_pairs_check_this_runs_styles_and_carry_the_others(tmp_path):
  out = tmp_path / 'out'
  (out / 'warm').mkdir(parents=True)
  (out / 'warm' / 'a.jpg').write_bytes(b'x')  # b.jpg was deleted since
  rows = [_row('a', WRITTEN, 'r1', out=str(out)), _row('b', WRITTEN, 'r1', out=str(out)),
          _row('c', WRITTEN, 'r1', style='cool', out=str(out))]
  folder = _publish(out, 'r1', [], rows)
  with fn_api_pipeline() as p:
    done = p | DonePairs(str(out), ['warm'], folder)
    assert_that(done | beam.Map(lambda r: os.path.relpath(r['output_uri'], out)),
                equal_to(['warm/a.jpg', 'cool/c.jpg']))


def test_old_snapshots_go_once_their_run_ended(tmp_path):
  out = tmp_path / 'out'
  for run_id in ('r1', 'r2', 'r3'):
    folder = _publish(out, run_id, [], [_row('a', WRITTEN, run_id)])
  for marker in (out / '_manifest').glob('complete-*.json'):
    if marker.name != 'complete-r1.json':
      marker.unlink()  # r2 and r3 did not end
  removed = leftovers.remove_old_snapshots(state.state_dir(str(out)), str(out / '_manifest'),
                                           folder)
  assert removed == [state.snapshot_dir(str(out), 'r1')]  # r2 may still be running; r3 current
  later = time.time() + leftovers.TEMP_STALE_AFTER_S + 5
  assert leftovers.remove_old_snapshots(state.state_dir(str(out)), str(out / '_manifest'),
                                        folder, now=later) == [state.snapshot_dir(str(out), 'r2')]
  assert sorted(p.name for p in (out / '_state' / 'snapshots').iterdir()) == ['r3']
