"""The Flex Template's parameters match the job's real flags (no drift), and the sdist that
workers install holds the runtime code only."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import tarfile

import pytest
from conftest import ROOT

from pipeline import options

METADATA = json.loads((ROOT / 'flex_template' / 'metadata.json').read_text())
PARAMETERS = {p['name']: p for p in METADATA['parameters']}
# Flags a scheduled job does not take: --model-dir names a folder on the launcher's own disk,
# and --plan only prints, on a launcher nobody watches.
NOT_TEMPLATED = {'model_dir', 'plan'}
# dest -> the flag spelled like it (--overwrite is another spelling of skip_existing=false).
ACTIONS = {a.dest: a for a in options.parser()._actions
           if f'--{a.dest}' in a.option_strings and a.dest != 'help'}


def test_every_job_flag_is_a_template_parameter_and_back():
  assert set(PARAMETERS) == set(ACTIONS) - NOT_TEMPLATED


@pytest.mark.parametrize('name', sorted(PARAMETERS))
def test_parameter_spelling_and_requiredness(name):
  action = ACTIONS[name]
  assert f'--{name}' in action.option_strings  # Flex Templates pass --name=value
  assert PARAMETERS[name]['isOptional'] == (not action.required)


@pytest.mark.parametrize('name', ['frame', 'format', 'box_mode', 'cutout'])
def test_choice_regexes_accept_exactly_the_choices(name):
  regex = re.compile(PARAMETERS[name]['regexes'][0])
  assert all(regex.match(choice) for choice in ACTIONS[name].choices)
  assert not regex.match('something-else')


def test_template_values_parse_as_the_job_expects():
  argv = [f'--{name}={value}' for name, value in {
      'content': 'gs://b/in/*.jpg', 'styles': 'gs://b/s/*', 'output': 'gs://b/out',
      'max_size': '2048', 'jpeg_quality': '85', 'skip_existing': 'false', 'frame': 'square',
      'num_threads': '2', 'max_pixels': '1000', 'format': 'png', 'model': 'magenta-fp16',
      'run_id': 'nightly-1', 'box': '640x480', 'box_mode': 'fill', 'progressive': 'true',
      'background': '#102030', 'preserve_colour': 'true'}.items()]
  for name, parameter in PARAMETERS.items():
    value = next((a.split('=', 1)[1] for a in argv if a.startswith(f'--{name}=')), None)
    if value is not None:
      assert any(re.match(r, value) for r in parameter['regexes']), name
  job, beam_args = options.parse(argv + ['--runner=DataflowRunner'])
  assert (job.rendering.max_size, job.rendering.jpeg_quality, job.skip_existing,
          job.rendering.frame, job.num_threads) == (2048, 85, False, 'square', 2)
  assert job.rendering.box == (640, 480) and job.rendering.background == (16, 32, 48)
  assert job.rendering.progressive and job.rendering.preserve_colour
  assert beam_args == ['--runner=DataflowRunner']


def test_sdist_holds_the_runtime_packages_only(tmp_path):
  subprocess.run([sys.executable, '-m', 'build', '--sdist', '--no-isolation', '-o', str(tmp_path),
                  str(ROOT)], check=True, capture_output=True)
  (archive,) = tmp_path.glob('*.tar.gz')
  with tarfile.open(archive) as sdist:
    names = [n.split('/', 1)[1] for n in sdist.getnames() if '/' in n]
  code = {n for n in names if n.endswith('.py')}
  packages = {n.split('/')[0] for n in code if '/' in n}
  assert packages == {'pipeline', 'transforms', 'models'}
  assert code - {n for n in code if n.split('/')[0] in packages} == {'setup.py'}
  shipped_elsewhere = ('tests', 'benchmarks', 'model_building', 'training')
  assert not [n for n in names if n.startswith(shipped_elsewhere) or n.endswith('.tflite')]


def test_no_job_flag_takes_the_name_of_a_beam_option():
  """A job flag named like one of Beam's (--region, say) would swallow it: Dataflow would never
  see its region."""
  from apache_beam.options.pipeline_options import PipelineOptions
  beam_options = set(PipelineOptions([]).get_all_options())
  assert 'region' in beam_options and 'runner' in beam_options
  assert not {a.dest for a in options.parser()._actions} & beam_options
