"""The whole job against gs://, served by a local Cloud Storage emulator (see gcs_emulator.py).

Content, styles, outputs, manifests and (in one test) the models live in an emulator bucket;
nothing leaves 127.0.0.1.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import uuid
from types import SimpleNamespace

import google.auth
import numpy as np
import pytest
from apache_beam.io.filesystems import FileSystems
from conftest import make_pictures
from gcs_emulator import PROJECT
from PIL import Image

from pipeline import run as job

# Content pictures of `make_pictures` and their sizes (the default --max-size 1024 keeps
# them whole); its styles are warm.png and cool.jpg.
CONTENT_SIZES = {'a/photo.jpg': (320, 200), 'b/photo.jpg': (200, 300), 'b/square.png': (150, 150)}
STYLE_IDS = {'warm', 'cool'}
CACHE_CONTROL = 'public, max-age=600'


def _upload_pictures(gcs, pictures, bucket):
  gcs.upload_tree(pictures / 'content', f'gs://{bucket}/content')
  gcs.upload_tree(pictures / 'styles', f'gs://{bucket}/styles')
  assert len(gcs.list(f'gs://{bucket}/content/')) == 3
  assert len(gcs.list(f'gs://{bucket}/styles/')) == 2


def _run(bucket, models, *extra):
  return job.run([
      '--content', f'gs://{bucket}/content/**', '--styles', f'gs://{bucket}/styles/*',
      '--output', f'gs://{bucket}/out', '--model', models, '--runner', 'DirectRunner', *extra])


def _manifest(gcs, bucket, kind='results', run_id=''):
  rows = []
  for uri in gcs.list(f'gs://{bucket}/out/_manifest/{kind}-{run_id}'):
    if uri.endswith('.jsonl'):
      rows += [json.loads(line) for line in gcs.read(uri).decode().splitlines() if line.strip()]
  return rows


def _outputs(gcs, bucket):
  """Every object in a style folder, out/STYLE_ID/NAME (not the job's own _manifest/, _gallery/
  or index.html)."""
  prefix = f'gs://{bucket}/out/'
  return {uri for uri in gcs.list(prefix)
          if uri[len(prefix):].count('/') == 1 and not uri[len(prefix):].startswith('_')}


def _check_every_pair_written(gcs, bucket, run_id):
  """The six outputs, each a JPEG of its source's size, with one manifest row each."""
  rows = _manifest(gcs, bucket, 'results', run_id)
  assert len(rows) == len(CONTENT_SIZES) * len(STYLE_IDS)
  assert {r['status'] for r in rows} == {'written'}
  prefix = f'gs://{bucket}/content/'
  assert {(r['content_uri'][len(prefix):], r['style_id']) for r in rows} == {
      (content, style) for content in CONTENT_SIZES for style in STYLE_IDS}
  # The two photo.jpg (in a/ and b/) get distinct ids, hence distinct outputs.
  assert len({r['content_id'] for r in rows}) == len(CONTENT_SIZES)
  for row in rows:
    assert row['output_uri'] == f"gs://{bucket}/out/{row['style_id']}/{row['content_id']}.jpg"
  assert _outputs(gcs, bucket) == {r['output_uri'] for r in rows}
  for row in rows:
    picture = Image.open(io.BytesIO(gcs.read(row['output_uri'])))
    assert picture.format == 'JPEG'
    assert picture.size == CONTENT_SIZES[row['content_uri'][len(prefix):]]
  assert _manifest(gcs, bucket, 'failures', run_id) == []
  return rows


def test_beam_filesystems_and_the_client_share_the_emulator(gcs_emulator, gcs_bucket):
  # Credentials resolve at once, offline, and never need a refresh (which would call Google).
  credentials, project = google.auth.default()
  assert credentials.valid and project == PROJECT
  uri = f'gs://{gcs_bucket}/dir/file.bin'
  gcs_emulator.upload(b'from the client', uri)
  with FileSystems.open(uri) as f:
    assert f.read() == b'from the client'
  with FileSystems.create(f'gs://{gcs_bucket}/dir/other.bin') as f:
    f.write(b'from Beam')
  matched = FileSystems.match([f'gs://{gcs_bucket}/dir/*'])[0].metadata_list
  assert sorted(m.path for m in matched) == [uri, f'gs://{gcs_bucket}/dir/other.bin']
  assert gcs_emulator.read(f'gs://{gcs_bucket}/dir/other.bin') == b'from Beam'
  FileSystems.delete([uri])
  assert gcs_emulator.list(f'gs://{gcs_bucket}/') == [f'gs://{gcs_bucket}/dir/other.bin']


@pytest.fixture(scope='module')
def gcs_runs(gcs_emulator, tiny_models, tmp_path_factory):
  """Three runs over one bucket: the first with its models read from the bucket too; a re-run
  that finds everything done; then --overwrite with a --cache-control, on two DirectRunner
  worker processes."""
  bucket = f'runs-{uuid.uuid4().hex[:16]}'
  gcs_emulator.create_bucket(bucket)
  _upload_pictures(gcs_emulator, make_pictures(tmp_path_factory.mktemp('gcs')), bucket)
  for name in sorted(os.listdir(tiny_models)):
    gcs_emulator.upload(os.path.join(tiny_models, name), f'gs://{bucket}/models/{name}')
  cache = tmp_path_factory.mktemp('model_cache')
  with pytest.MonkeyPatch.context() as env:
    env.setenv('STYLIZE_MODEL_CACHE', str(cache))
    first = _run(bucket, f'gs://{bucket}/models', '--run-id', 'first')
    after_first = {uri: gcs_emulator.read(uri) for uri in _outputs(gcs_emulator, bucket)}
    rows_first = _check_every_pair_written(gcs_emulator, bucket, 'first')
    cached = {p.name: p.read_bytes() for p in cache.rglob('*.tflite')}
    again = _run(bucket, tiny_models, '--run-id', 'second')
    after_again = {uri: gcs_emulator.read(uri) for uri in _outputs(gcs_emulator, bucket)}
    multi = _run(bucket, tiny_models, '--run-id', 'multi', '--overwrite',
                 '--direct_running_mode=multi_processing', '--direct_num_workers=2',
                 '--cache-control', CACHE_CONTROL)
  yield SimpleNamespace(bucket=bucket, first=first, again=again, multi=multi,
                        rows_first=rows_first, cached=cached, after_first=after_first,
                        after_again=after_again)
  gcs_emulator.delete_bucket(bucket)


def test_every_pair_is_written_to_gcs_with_its_manifest(gcs_emulator, gcs_runs):
  outcome = gcs_runs.first
  assert outcome.summary['pairs_written'] == 6
  assert outcome.summary['pairs_failed'] == 0
  assert outcome.summary['styles_predicted'] == 2
  assert outcome.summary['content_bottlenecks'] == 0  # full strength: no own bottleneck
  bucket = gcs_runs.bucket
  summary_uri = f"gs://{bucket}/out/_manifest/summary-first.json"
  assert json.loads(gcs_emulator.read(summary_uri))['pairs_written'] == 6
  # Nothing is left behind by the launch-time write check or the manifest's temporary files.
  assert [uri for uri in gcs_emulator.list(f'gs://{bucket}/out/_manifest/')
          if '.write-check-' in uri or '/_manifest/temp-' in uri] == []


def test_outputs_carry_their_type_cache_control_and_provenance(gcs_emulator, gcs_runs):
  """(The last run, on worker processes, set the Cache-Control.)"""
  bucket = gcs_emulator.client.bucket(gcs_runs.bucket)
  rows = _manifest(gcs_emulator, gcs_runs.bucket, 'results', 'multi')
  assert len(rows) == 6
  for row in rows:
    blob = bucket.get_blob(row['output_uri'].split('/', 3)[3])
    assert (blob.content_type, blob.cache_control) == ('image/jpeg', CACHE_CONTROL)
    assert blob.metadata == {'source-uri': row['content_uri'], 'style': row['style_id'],
                             'strength': '1', 'model-sha256': row['model_sha256'],
                             'fingerprint': row['fingerprint']}


def test_models_are_read_from_gcs(tiny_models, gcs_runs):
  # The models came from the bucket: copies of the very files uploaded, in the model cache.
  uploaded = {name: open(os.path.join(tiny_models, name), 'rb').read()
              for name in os.listdir(tiny_models) if name.endswith('.tflite')}
  assert gcs_runs.cached == uploaded and len(gcs_runs.cached) == 2
  transfer = next(data for name, data in uploaded.items() if 'transfer' in name)
  assert {r['model_sha256'] for r in gcs_runs.rows_first} == {hashlib.sha256(transfer).hexdigest()}


def test_a_rerun_on_gcs_skips_what_is_done(gcs_emulator, gcs_runs):
  again = gcs_runs.again
  assert again.summary['pairs_written'] == 0
  assert again.summary['pairs_skipped'] == 6
  second = _manifest(gcs_emulator, gcs_runs.bucket, 'results', 'second')
  assert {r['status'] for r in second} == {'skipped'} and len(second) == 6
  assert {r['output_uri'] for r in second} == set(gcs_runs.after_first)
  assert gcs_runs.after_again == gcs_runs.after_first


def test_overwrite_on_multi_processing_workers_writes_the_same_outputs(gcs_emulator, gcs_runs):
  """--overwrite renders every pair again; worker processes reach the emulator and give the very
  pictures the single-process run gave."""
  multi = gcs_runs.multi
  assert multi.summary['pairs_written'] == 6 and multi.summary['pairs_skipped'] == 0
  assert multi.summary['pairs_failed'] == 0 and multi.summary['styles_predicted'] == 2
  # One Stylize and one PredictStyle interpreter per DoFn instance, at most one per worker each.
  assert 2 <= multi.summary['interpreter_loads'] <= 2 * 2
  rows = _check_every_pair_written(gcs_emulator, gcs_runs.bucket, 'multi')
  assert {r['status'] for r in rows} == {'written'}
  for uri, data in gcs_runs.after_first.items():
    np.testing.assert_array_equal(_pixels(gcs_emulator.read(uri)), _pixels(data))


def _pixels(data: bytes) -> np.ndarray:
  return np.asarray(Image.open(io.BytesIO(data)))
