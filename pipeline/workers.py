"""What a remote runner's workers need that the launcher has: our packages and the model files.

On Dataflow the job ships `pipeline`, `transforms` and `models` with `setup.py` (passed for the
user when they did not name it or a container image), and a model file that lies on the
launcher's disk is copied once to `--temp_location`, where every worker can read it; workers then
cache it on local disk, verified by sha256 (`models.fetch`).
"""
from __future__ import annotations

import dataclasses
import os

from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import (
  GoogleCloudOptions,
  PipelineOptions,
  SetupOptions,
  StandardOptions,
  WorkerOptions,
)

from models.registry import ModelFile
from transforms import storage

SETUP_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'setup.py')
STAGED_MODELS = 'batch-stylize-models'


def is_remote(options: PipelineOptions) -> bool:
  return 'dataflow' in str(options.view_as(StandardOptions).runner or '').lower()


def ship_code(options: PipelineOptions) -> None:
  """Passes --setup_file for the user, unless they named one or a custom container."""
  setup = options.view_as(SetupOptions)
  if setup.setup_file or options.view_as(WorkerOptions).sdk_container_image:
    return
  if not os.path.exists(SETUP_FILE):
    raise ValueError('the workers need this job\'s code: run from a source checkout (so '
                     f'{SETUP_FILE} exists), or pass --setup_file or --sdk_container_image')
  setup.setup_file = SETUP_FILE


def reachable_model(model: ModelFile, options: PipelineOptions) -> ModelFile:
  """The model as workers can read it: a launcher-local file is staged under --temp_location."""
  if FileSystems.get_scheme(model.uri) is not None:
    return model
  temp = options.view_as(GoogleCloudOptions).temp_location
  if not temp:
    raise ValueError(f'the model file {model.uri} is on this machine only; give --temp_location '
                     'gs://... to stage it for the workers, or --model with gs:// URIs')
  staged = FileSystems.join(temp, STAGED_MODELS, model.sha256[:16], model.name)
  if not storage.match(staged, limit=1):
    with open(model.uri, 'rb') as f:
      storage.write_bytes(staged, f.read())
  return dataclasses.replace(model, uri=staged)
