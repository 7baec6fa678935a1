"""DirectRunner's multi-process mode: workers in other processes give the same outputs."""
from __future__ import annotations

import numpy as np
from conftest import read_manifest
from PIL import Image

from pipeline import run as job


def test_multi_processing_gives_the_same_outputs_as_one_process(pictures, tiny_models, tmp_path):
  common = ['--content', str(pictures / 'content' / '**'), '--styles',
            str(pictures / 'styles' / '*'), '--model', tiny_models, '--format', 'png',
            '--runner', 'DirectRunner']
  single = job.run(common + ['--output', str(tmp_path / 'single')])
  multi = job.run(common + ['--output', str(tmp_path / 'multi'),
                            '--direct_running_mode=multi_processing', '--direct_num_workers=2'])

  def pictures_by_pair(out):
    return {(r['content_id'], r['style_id']): np.asarray(Image.open(r['output_uri']))
            for r in read_manifest(out)}
  one, many = pictures_by_pair(tmp_path / 'single'), pictures_by_pair(tmp_path / 'multi')
  assert sorted(one) == sorted(many) and len(one) == 6
  for pair, picture in one.items():
    np.testing.assert_array_equal(picture, many[pair])
  assert multi.summary['pairs_written'] == single.summary['pairs_written'] == 6
  assert multi.summary['styles_predicted'] == 2
  # One Stylize and one PredictStyle interpreter per DoFn instance, at most one per worker each.
  assert 2 <= multi.summary['interpreter_loads'] <= 2 * 2
