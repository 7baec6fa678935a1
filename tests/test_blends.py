"""Blended house styles (--style-blend): parsing, the mix, the launch checks and whole runs."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from models import contract, imaging, registry
from pipeline import launch, options
from pipeline import run as job
from transforms.records import Failure, ImageRef, StyleResult
from transforms.styles import mix


def test_a_blend_is_parsed_with_normalized_weights_and_refs_holding_colons():
  blend = options._blend('house=gs://b/a.jpg:1,builtin:great_wave:3')
  assert blend == options.Blend('house', (('gs://b/a.jpg', 0.25), ('builtin:great_wave', 0.75)))


@pytest.mark.parametrize('text', ['house', 'house=', '=a.jpg:1', 'house=a.jpg', 'house=a.jpg:0',
                                  'house=a.jpg:-1', 'house=a.jpg:nan', 'house=:2'])
def test_a_malformed_blend_stops_the_job_at_launch(text, capsys):
  with pytest.raises(SystemExit):
    options.parse(['--content', 'x.jpg', '--style-blend', text, '--output', 'out'])
  assert '--style-blend' in capsys.readouterr().err


def test_the_mix_is_the_weighted_mean_and_a_failed_part_fails_the_blend():
  a, b = ImageRef('/s/a.jpg', 'a'), ImageRef('/s/b.jpg', '_part-1')
  blend = ImageRef('blend:house', 'house')
  predicted = {'a': StyleResult(a, bottleneck=np.full(100, 1.0, np.float32)),
               '_part-1': StyleResult(b, bottleneck=np.full(100, 5.0, np.float32))}
  name, result = mix(blend, ((a, 0.25), (b, 0.75)), predicted)
  assert name == 'house' and result.ref == blend and result.error is None
  np.testing.assert_allclose(result.bottleneck, np.full(100, 4.0))
  assert result.bottleneck.dtype == np.float32
  predicted['_part-1'] = StyleResult(b, error=Failure.of(OSError('gone'), 'read_style',
                                                         style_id='_part-1'))
  _, failed = mix(blend, ((a, 0.25), (b, 0.75)), predicted)
  assert failed.bottleneck is None
  assert (failed.error.stage, failed.error.style_id) == ('read_style', 'house')
  assert failed.error.message == 'blend part /s/b.jpg: gone'


def _args(pictures, tiny_models, output, *more):
  return ['--content', str(pictures / 'content' / '**'), '--output', str(output),
          '--model', tiny_models, '--format', 'png', *more]


def _outputs(output):
  return {p.relative_to(output).as_posix(): np.asarray(Image.open(p), np.float32)
          for p in output.rglob('*.png') if not p.relative_to(output).parts[0].startswith('_')}


def test_a_blend_is_written_like_any_style_and_rerendered_when_its_recipe_changes(
    pictures, tiny_models, tmp_path):
  out = tmp_path / 'out'
  warm, cool = pictures / 'styles' / 'warm.png', pictures / 'styles' / 'cool.jpg'
  blend = f'house={warm}:1,{cool}:3'
  first = job.run(_args(pictures, tiny_models, out, '--styles', str(warm),
                        '--style-blend', blend)).summary
  assert (first['pairs_expected'], first['pairs_written'], first['accounted']) == (6, 6, True)
  assert first['styles_predicted'] == 2 and first['styles_blended'] == 1
  outputs = _outputs(out)
  # warm has outputs of its own; cool, only a part of the blend, has none.
  assert {name.split('/')[0] for name in outputs} == {'warm', 'house'}
  for name in [n for n in outputs if n.startswith('house/')]:
    assert np.abs(outputs[name] - outputs[name.replace('house/', 'warm/')]).mean() > 1
  rows = [json.loads(line) for f in (out / '_manifest').glob('results-*.jsonl')
          for line in f.read_text().splitlines()]
  assert {r['style_id'] for r in rows} == {'warm', 'house'}

  again = job.run(_args(pictures, tiny_models, out, '--styles', str(warm),
                        '--style-blend', blend)).summary
  assert (again['pairs_written'], again['pairs_skipped']) == (0, 6)
  # Another weight: the blend's outputs are rendered again, warm's are not.
  reweighed = job.run(_args(pictures, tiny_models, out, '--styles', str(warm),
                            '--style-blend', f'house={warm}:1,{cool}:1')).summary
  assert (reweighed['pairs_written'], reweighed['pairs_skipped']) == (3, 3)


def test_blends_alone_need_no_other_style_and_built_in_parts_no_prediction(
    pictures, tiny_models, tmp_path):
  outcome = job.run(_args(pictures, tiny_models, tmp_path / 'out', '--style-blend',
                          'calm=builtin:great_wave:1,builtin:starry_night:1')).summary
  assert (outcome['pairs_written'], outcome['styles_from_bank'], outcome['styles_predicted']) == (
      3, 2, 0)
  assert len(list((tmp_path / 'out' / 'calm').glob('*.png'))) == 3


@pytest.mark.parametrize('blend, message', [
    ('warm=builtin:great_wave:1', "the name is taken by another style"),
    ('_gallery=builtin:great_wave:1', 'the name is a name the job keeps for its own files'),
    ('a/b=builtin:great_wave:1', 'is not a plain name'),
    ('house=builtin:all:1', 'names more than one built-in style'),
    ('house=builtin:no_such_style:1', 'no_such_style'),
    ('house=STYLES/*.jpg:1', 'is a pattern; a part is one picture'),
    ('house=STYLES/missing.jpg:1', 'does not exist'),
])
def test_a_bad_blend_stops_the_job_at_launch(pictures, tiny_models, tmp_path, blend, message):
  blend = blend.replace('STYLES', str(pictures / 'styles'))
  settings, _ = options.parse(_args(pictures, tiny_models, tmp_path / 'out', '--styles',
                                    str(pictures / 'styles' / 'warm.png'),
                                    '--style-blend', blend))
  with pytest.raises(launch.LaunchError, match='--style-blend') as error:
    launch.prepare(settings)
  assert message in str(error.value)
  assert not (tmp_path / 'out').exists()


def test_a_blend_of_real_paintings_mixes_their_predicted_bottlenecks(shared, magenta_dir,
                                                                    tmp_path):
  """With the published networks: a 1:3 blend of two paintings is 1:3 of their bottlenecks, and
  its picture is neither painting's."""
  night, wave = (shared / 'images' / 'style' / name for name in (
      'van_gogh_night_cafe.jpg', 'hokusai_great_wave_crop.jpg'))
  photo = shared / 'images' / 'content' / 'golden_gate_sq.jpg'
  out = tmp_path / 'out'
  outcome = job.run(['--content', str(photo), '--styles', str(night), '--styles', str(wave),
                     '--style-blend', f'dusk={night}:1,{wave}:3', '--output', str(out),
                     '--model', 'magenta-int8', '--model-dir', magenta_dir,
                     '--format', 'png']).summary
  assert (outcome['pairs_written'], outcome['styles_predicted']) == (3, 2)
  model = registry.resolve_model_set('magenta-int8', magenta_dir).prediction.uri
  predictor = contract.StylePredictor(model)
  bottleneck = {p: predictor.predict(imaging.style_input(imaging.decode(p.read_bytes()).image))
                for p in (night, wave)}
  expected = 0.25 * bottleneck[night] + 0.75 * bottleneck[wave]
  assert np.abs(expected - bottleneck[wave]).mean() > 0.01  # the two paintings differ
  pictures = {d.name: np.asarray(Image.open(next(d.glob('*.png'))), np.float32)
              for d in out.iterdir() if not d.name.startswith('_') and d.is_dir()}
  assert set(pictures) == {'van_gogh_night_cafe', 'hokusai_great_wave_crop', 'dusk'}
  for painting in ('van_gogh_night_cafe', 'hokusai_great_wave_crop'):
    assert np.abs(pictures['dusk'] - pictures[painting]).mean() > 2
