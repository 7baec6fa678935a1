"""`--plan`: the counts a run would have, from the real inputs and state, with nothing written."""
from __future__ import annotations

import os

import pytest

from pipeline import run as job


def _tree(folder) -> dict:
  """Every file and folder under `folder`, with its size and modification time."""
  found = {}
  for root, folders, files in os.walk(folder):
    for name in folders + files:
      path = os.path.join(root, name)
      found[path] = (os.path.getsize(path), os.stat(path).st_mtime_ns)
  return found


def _args(pictures, tiny_models, output, *more):
  return ['--content', str(pictures / 'content' / '**'), '--styles',
          str(pictures / 'styles' / '*'), '--output', str(output), '--model', tiny_models,
          '--format', 'png', *more]


def test_a_plan_counts_what_a_run_then_does_and_writes_nothing(pictures, tiny_models, tmp_path,
                                                                capsys):
  output = tmp_path / 'out'
  first = job.run(_args(pictures, tiny_models, output, '--plan')).summary
  assert not output.exists()  # not even the run's claim or a write probe
  assert (first['pictures'], first['pairs'], first['render'], first['skip'],
          first['refuse']) == (3, 6, 6, 0, 0)
  assert first['inference_ms'] > 0
  assert first['inference_core_hours'] == pytest.approx(6 * first['inference_ms'] / 3.6e6,
                                                        abs=1e-3)
  assert 'render: 6' in capsys.readouterr().out

  done = job.run(_args(pictures, tiny_models, output)).summary
  assert done['pairs_written'] == 6
  # A new picture and a deleted output: two pictures' worth of pairs to render, the rest skipped.
  (pictures / 'content' / 'b' / 'square.png').rename(pictures / 'content' / 'b' / 'new.png')
  os.remove(sorted((output / 'warm').glob('photo-*.png'))[0])
  before = _tree(output)
  again = job.run(_args(pictures, tiny_models, output, '--plan')).summary
  assert _tree(output) == before
  assert (again['render'], again['skip'], again['refuse']) == (3, 3, 0)
  # What the plan said is what the run does.
  rerun = job.run(_args(pictures, tiny_models, output)).summary
  assert (rerun['pairs_written'], rerun['pairs_skipped']) == (3, 3)


def test_a_plan_counts_refused_rows_and_duplicate_ids(pictures, tiny_models, tmp_path):
  listed = tmp_path / 'list.csv'
  listed.write_text('uri,id\n'
                    f"{pictures / 'content' / 'a' / 'photo.jpg'},same\n"
                    f"{pictures / 'content' / 'b' / 'photo.jpg'},same\n"
                    f"{pictures / 'content' / 'b' / 'square.png'},../escape\n")
  outcome = job.run(['--content-list', str(listed), '--styles', str(pictures / 'styles' / '*'),
                     '--output', str(tmp_path / 'out'), '--model', tiny_models,
                     '--plan']).summary
  # One id kept by the smallest URI; its twin and the unsafe id are refused, in both styles.
  assert (outcome['render'], outcome['skip'], outcome['refuse']) == (2, 0, 4)
  assert not (tmp_path / 'out').exists()
