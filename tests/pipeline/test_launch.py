"""Mistakes that stop the job at launch, with a clear message and nothing written."""
from __future__ import annotations

import os
import shutil

import pytest

from pipeline import launch, options
from pipeline import run as job
from pipeline.launch import LaunchError


def _args(pictures, models, out, **overrides):
  flags = {'--content': str(pictures / 'content' / '**'),
           '--styles': str(pictures / 'styles' / '*'),
           '--output': str(out), '--model': models}
  flags.update(overrides)
  return [part for flag, value in flags.items() for part in (flag, value)] + [
      '--runner', 'DirectRunner']


def _nothing_written(out):
  return not out.exists() or not [f for _, _, files in os.walk(out) for f in files]


def test_content_pattern_matching_nothing(pictures, tiny_models, tmp_path):
  out = tmp_path / 'out'
  with pytest.raises(LaunchError, match="--content .*nothing.jpg' matched no file"):
    job.run(_args(pictures, tiny_models, out, **{'--content': str(tmp_path / 'nothing.jpg')}))
  assert _nothing_written(out)


def test_all_styles_unusable(pictures, tiny_models, tmp_path):
  (tmp_path / 'bad').mkdir()
  (tmp_path / 'bad' / 'a.jpg').write_bytes(b'')
  (tmp_path / 'bad' / 'b.png').write_text('not a picture')
  out = tmp_path / 'out'
  with pytest.raises(LaunchError, match='no usable style picture:\n.*a.jpg.*\n.*b.png'):
    job.run(_args(pictures, tiny_models, out, **{'--styles': str(tmp_path / 'bad' / '*')}))
  assert _nothing_written(out)


def test_damaged_model_file(pictures, tiny_models, tmp_path):
  models = tmp_path / 'models'
  models.mkdir()
  for role in ('prediction', 'transfer'):
    data = open(os.path.join(tiny_models, f'tiny_{role}.tflite'), 'rb').read()
    (models / f'my_{role}.tflite').write_bytes(data if role == 'prediction' else data[:1000])
  out = tmp_path / 'out'
  with pytest.raises(LaunchError, match='my_transfer.tflite is not a loadable TFLite model'):
    job.run(_args(pictures, str(models), out))
  assert _nothing_written(out)


def test_checksum_mismatch_of_a_registered_model(pictures, tmp_path):
  fake = tmp_path / 'fake'
  fake.mkdir()
  for name in ('magenta_arbitrary-image-stylization-v1-256_int8_prediction_1.tflite',
               'magenta_arbitrary-image-stylization-v1-256_int8_transfer_1.tflite'):
    (fake / name).write_bytes(b'not the published model')
  with pytest.raises(LaunchError, match='has sha256 .* expected af6ad4b2'):
    job.run(_args(pictures, 'magenta-int8', tmp_path / 'out', **{'--model-dir': str(fake)}))


def test_unreadable_output(pictures, tiny_models, tmp_path):
  blocker = tmp_path / 'file'
  blocker.write_text('a file where the output folder should be')
  with pytest.raises(LaunchError, match='is not writable'):
    job.run(_args(pictures, tiny_models, blocker / 'out'))


def test_unsupported_scheme(pictures, tiny_models, tmp_path):
  with pytest.raises(LaunchError, match='ftp://host/x/\\*.jpg'):
    job.run(_args(pictures, tiny_models, tmp_path / 'out', **{'--content': 'ftp://host/x/*.jpg'}))


def test_a_style_named_several_ways_is_one_style(pictures, tiny_models, tmp_path):
  """A glob, a path, and an absolute and a relative list row all naming warm.png: the job plans
  (and so predicts) it once."""
  listed = pictures / 'styles.txt'
  listed.write_text(f"{pictures / 'styles' / 'warm.png'}\n# a comment\n\nstyles/warm.png\n")
  settings, _ = options.parse(_args(pictures, tiny_models, tmp_path / 'out') + [
      '--styles', str(pictures / 'styles' / 'warm.png'), '--styles-list', str(listed)])
  plan = launch.prepare(settings)
  assert sorted((ref.id, ref.uri) for ref in plan.styles) == [
      ('cool', str(pictures / 'styles' / 'cool.jpg')),
      ('warm', str(pictures / 'styles' / 'warm.png'))]


def test_command_line_says_what_is_missing(capsys):
  with pytest.raises(SystemExit):
    job.run(['--output', 'x', '--styles', 'y'])
  assert '--content GLOB or --content-list FILE' in capsys.readouterr().err


def test_an_output_name_with_glob_characters_is_refused(pictures, tiny_models, tmp_path, capsys):
  out = tmp_path / 'night[1]'
  with pytest.raises(SystemExit):
    job.run(_args(pictures, tiny_models, out))
  assert "holds *, ? or [" in capsys.readouterr().err and _nothing_written(out)


@pytest.mark.parametrize('flags, said', [
    (['--output', ''], '--output is empty'),
    (['--output', '  '], '--output is empty'),
    (['--run-id', '../../escaped'], 'one plain name'),
    (['--run-id', 'a/b'], 'one plain name'),
    (['--run-id', 'x*y'], 'one plain name'),
    (['--run-id', '.hidden'], 'one plain name'),
    (['--num-threads', '100000'], 'at most 256 threads'),
    (['--run-id', 'r1\n'], 'one plain name'),
    (['--run-id', 'r\u00e91'], 'one plain name'),
    (['--overwrite', '--skip-existing'], 'not allowed with argument'),
    (['--skip_existing=true', '--overwrite'], 'not allowed with argument'),
    (['--skip-ex', '--overwrite'], 'not allowed with argument'),
])
def test_unsafe_or_contradictory_flags_stop_at_launch(pictures, tiny_models, tmp_path, capsys,
                                                      monkeypatch, flags, said):
  """An unset $OUT must not write into the folder the job runs in, a run id not outside the
  output, and of two contradicting flags neither may silently win."""
  here = tmp_path / 'here'
  here.mkdir()
  monkeypatch.chdir(here)
  out = tmp_path / 'out'
  with pytest.raises(SystemExit):
    job.run(_args(pictures, tiny_models, out) + flags)
  assert said in capsys.readouterr().err
  assert _nothing_written(out) and not os.listdir(here) and not (tmp_path / 'escaped').exists()


def test_a_plain_run_id_and_many_threads_are_taken(pictures, tiny_models, tmp_path):
  settings, _ = options.parse(_args(pictures, tiny_models, tmp_path / 'out') + [
      '--run-id', 'nightly-2026.12.07_a', '--num-threads', '256', '--overwrite'])
  assert (settings.run_id, settings.num_threads, settings.skip_existing) == (
      'nightly-2026.12.07_a', 256, False)


def test_a_content_path_is_one_picture_however_it_is_spelled(pictures, monkeypatch):
  """A content id hashes its URI: relative and roundabout spellings of one file, or of one list
  file, become the same absolute path (outputs do not move with the folder the job runs in)."""
  photo = str(pictures / 'content' / 'a' / 'photo.jpg')
  monkeypatch.chdir(pictures)
  spellings = ['content/a/photo.jpg', './content/a/photo.jpg', 'content/b/../a/photo.jpg', photo]
  parsed = {options.parse(['--content', s, '--content-list', s.replace('photo.jpg', 'l.csv'),
                           '--styles', 'builtin:all', '--output', 'o'])[0] for s in spellings}
  assert {(p.content, p.content_list) for p in parsed} == {((photo,), (photo[:-9] + 'l.csv',))}
  monkeypatch.chdir(pictures / 'content' / 'a')
  assert options.parse(['--content', 'photo.jpg', '--styles', 'x', '--output', 'o'])[0].content \
      == (photo,)
  assert options.parse(['--content', 'gs://b/x/../y/*.jpg', '--styles', 'x', '--output', 'o']
                       )[0].content == ('gs://b/x/../y/*.jpg',)  # a bucket's names are its own


@pytest.mark.parametrize('name, data', [
    ('list.csv', b'uri,id\n'), ('list.txt', b''), ('list.txt', b'# only a comment\n\n'),
    ('list.jsonl', b'\n'), ('list.parquet', []), ('list.parquet', [None, None])])
def test_content_lists_with_no_rows_stop_at_launch_when_they_are_all_there_is(
    pictures, tiny_models, tmp_path, name, data):
  """Alone, an empty list is a mistake; beside a pattern that matches, it is a night with nothing
  new on that list."""
  listing = tmp_path / name
  if isinstance(data, list):
    import pyarrow as pa
    import pyarrow.parquet as pq
    pq.write_table(pa.table({'uri': pa.array(data, pa.string())}), listing)
  else:
    listing.write_bytes(data)
  out = tmp_path / 'out'
  args = _args(pictures, tiny_models, out)
  only_list = args.copy()
  only_list[args.index('--content')] = '--content-list'
  only_list[args.index('--content') + 1] = str(listing)
  with pytest.raises(LaunchError, match='no picture listed, nothing to stylize'):
    job.run(only_list)
  assert _nothing_written(out)
  settings, _ = options.parse(args + ['--content-list', str(listing)])
  assert launch.prepare(settings).styles


@pytest.mark.parametrize('output', ['content', '.', 'content/b'])
def test_an_output_holding_the_pictures_stops_at_launch(pictures, tiny_models, tmp_path, output):
  """What a pattern matches under --output is left out as the job's own: an output at or above
  the pattern's folder would leave out the catalog itself, and the run would render nothing."""
  out = pictures / output
  with pytest.raises(LaunchError, match='holds the pictures --content .* matches'):
    job.run(_args(pictures, tiny_models, out,
                  **{'--content': str(pictures / 'content' / 'b' / '*.png')}))
  assert not (out / '_manifest').exists()
  inside = options.parse(_args(pictures, tiny_models, pictures / 'content' / 'out'))[0]
  assert launch.prepare(inside).styles  # inside the catalog's folder: its files are left out


@pytest.mark.parametrize('args, direct', [
    ([], True), (['--runner', 'DirectRunner'], True), (['--runner', 'direct'], True),
    (['--runner', 'apache_beam.runners.direct.direct_runner.DirectRunner'], True),
    (['--runner', 'DirectRunner', '--streaming'], False),
    (['--runner', 'DataflowRunner'], False), (['--runner', 'PrismRunner'], False)])
def test_the_direct_runner_runs_on_its_batch_engine_without_trying_prism(args, direct):
  from apache_beam.options.pipeline_options import PipelineOptions
  from apache_beam.runners.portability.fn_api_runner.fn_runner import FnApiRunner
  engine = job._direct_engine(PipelineOptions(args))
  assert isinstance(engine, FnApiRunner) if direct else engine is None


@pytest.mark.parametrize('beam_args, wanted', [
    ([], ['--direct_running_mode=multi_threading', '--direct_num_workers=4']),
    (['--runner', 'DirectRunner'], ['--direct_running_mode=multi_threading',
                                    '--direct_num_workers=4']),
    (['--direct_num_workers=2'], []),  # the command says how: left as it is
    (['--direct_running_mode', 'in_memory'], []),
    (['--runner=DataflowRunner'], []),
])
def test_the_command_runs_locally_on_every_core_unless_told_otherwise(monkeypatch, beam_args,
                                                                     wanted):
  monkeypatch.setattr(job.os, 'sched_getaffinity', lambda pid: set(range(4)))
  assert job.local_parallelism(beam_args) == wanted


def test_one_core_keeps_the_single_threaded_runner(monkeypatch):
  monkeypatch.setattr(job.os, 'sched_getaffinity', lambda pid: {0})
  assert job.local_parallelism([]) == []


def _labels(settings, plan) -> set[str]:
  import apache_beam as beam
  p = beam.Pipeline()
  job.build(p, settings, plan)
  labels = set()

  class Labels(beam.pipeline.PipelineVisitor):
    def enter_composite_transform(self, node):
      labels.add(node.full_label)

  p.visit(Labels())
  return labels


def test_a_first_run_into_an_empty_output_leaves_out_reading_what_is_done(pictures, tiny_models,
                                                                          tmp_path):
  """Nothing at --output: nothing is done and nothing is left to tidy, so the graph has no steps
  for them (a first run starts sooner). Anything there, a killed run's abandoned file even, and the
  steps are in; --overwrite never reads what is done."""
  out = tmp_path / 'out'
  settings, _ = options.parse(_args(pictures, tiny_models, out, **{'--run-id': 'r1'}))
  first = launch.prepare(settings)
  assert first.history is False and 'DonePairs' not in _labels(settings, first)
  for k, leftover in enumerate(('.a.jpg.0123abcd.partial', 'warm/a.jpg')):
    shutil.rmtree(out)
    (out / leftover).parent.mkdir(parents=True)
    (out / leftover).write_bytes(b'x')
    settings, _ = options.parse(_args(pictures, tiny_models, out, **{'--run-id': f'r2-{k}'}))
    plan = launch.prepare(settings)
    assert plan.history is True and 'DonePairs' in _labels(settings, plan), leftover
  settings, _ = options.parse(_args(pictures, tiny_models, out, **{'--run-id': 'r3'}) +
                              ['--overwrite'])
  assert launch.prepare(settings).history is False
