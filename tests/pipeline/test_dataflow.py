"""Dataflow readiness, checked offline: the job graph a dry run builds, and the template the
Dataflow runner writes (staging on the local GCS emulator, no Google project involved)."""
from __future__ import annotations

import io
import json
import tarfile

from apache_beam.options.pipeline_options import SetupOptions
from apache_beam.portability.api import beam_runner_api_pb2
from gcs_emulator import PROJECT

from pipeline import run as job
from pipeline.workers import SETUP_FILE, STAGED_MODELS


def _dataflow_args(pictures, gcs, bucket, models, *extra):
  gcs.upload_tree(pictures / 'content', f'gs://{bucket}/content')
  gcs.upload_tree(pictures / 'styles', f'gs://{bucket}/styles')
  return ['--content', f'gs://{bucket}/content/**', '--styles', f'gs://{bucket}/styles/*',
          '--output', f'gs://{bucket}/out', '--model', models,
          '--runner', 'DataflowRunner', '--project', PROJECT, '--region', 'europe-west1',
          '--temp_location', f'gs://{bucket}/tmp', *extra]


def _producer(proto, pcollection_id):
  return next(t.unique_name for t in proto.components.transforms.values()
              if pcollection_id in t.outputs.values() and not t.subtransforms)


def test_dry_run_builds_the_whole_graph(pictures, tiny_models, gcs_emulator, gcs_bucket):
  outcome = job.run(_dataflow_args(pictures, gcs_emulator, gcs_bucket, tiny_models,
                                   '--dry_run=True'))
  proto = outcome.result.job.proto_pipeline
  names = {t.unique_name for t in proto.components.transforms.values()}
  for step in ('ContentRefs/Match', 'JoinDone', 'PlanPairs', 'PredictStyles/Predict',
               'LoadContent', 'Stylize', 'WriteOutputs', 'DeadLetters', 'DonePairs/ListOutputs',
               'Manifest/Write/WriteShards', 'Manifest/Write/Commit', 'Manifest/State'):
    assert any(n == step or n.startswith(step + '/') for n in names), step
  # The fan-out is a real shuffle: a GroupByKey inside the join.
  assert any(t.spec.urn == 'beam:transform:group_by_key:v1'
             for t in proto.components.transforms.values()
             if t.unique_name.startswith('JoinDone/'))
  # The styles reach Stylize (and PlanPairs) as a side input made from the predictions.
  for step in ('Stylize', 'PlanPairs'):
    transform = next(t for t in proto.components.transforms.values()
                     if t.unique_name.startswith(step + '/') or t.unique_name == step
                     if t.spec.urn == 'beam:transform:pardo:v1')
    payload = beam_runner_api_pb2.ParDoPayload.FromString(transform.spec.payload)
    assert len(payload.side_inputs) == 1, step
    (side,) = payload.side_inputs
    assert _producer(proto, transform.inputs[side]).startswith('PredictStyles/'), step
  # The launcher staged its local model files where the workers can read them, and will ship
  # the packages with setup.py.
  staged = gcs_emulator.list(f'gs://{gcs_bucket}/tmp/{STAGED_MODELS}/')
  assert sorted(uri.rsplit('/', 1)[1] for uri in staged) == [
      'tiny_prediction.tflite', 'tiny_transfer.tflite']
  assert outcome.result.job.options.view_as(SetupOptions).setup_file == SETUP_FILE


def test_template_is_written_with_staged_packages_and_worker_options(
    pictures, tiny_models, gcs_emulator, gcs_bucket, tmp_path):
  template = tmp_path / 'template.json'
  job.run(_dataflow_args(
      pictures, gcs_emulator, gcs_bucket, tiny_models,
      f'--staging_location=gs://{gcs_bucket}/staging', f'--template_location={template}',
      '--number_of_worker_harness_threads=2', '--experiments=use_runner_v2',
      '--sdk_container_image=europe-docker.pkg.dev/p/r/batch-stylize:1',
      '--setup_file', SETUP_FILE))
  description = json.loads(template.read_text())
  text = json.dumps(description)
  assert 'use_runner_v2' in text
  assert 'europe-docker.pkg.dev/p/r/batch-stylize:1' in text
  assert '"number_of_worker_harness_threads": 2' in text
  staged = gcs_emulator.list(f'gs://{gcs_bucket}/staging/')
  sdists = [uri for uri in staged if uri.endswith('/workflow.tar.gz')]  # Beam's name for it
  assert len(sdists) == 1, staged
  with tarfile.open(fileobj=io.BytesIO(gcs_emulator.read(sdists[0]))) as sdist:
    packages = {n.split('/')[1] for n in sdist.getnames() if n.count('/') >= 2}
  assert {'pipeline', 'transforms', 'models'} <= packages
  assert not {'tests', 'model_building', 'benchmarks'} & packages
