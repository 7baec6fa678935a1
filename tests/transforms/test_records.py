"""The one manifest row type, and README's description of it."""
from __future__ import annotations

import dataclasses
import json
import pathlib
import re

import pytest

from models.contract import BadModelInput
from models.rendering import Rendering
from transforms.records import FAILED, ContentImage, Failure, ImageRef, ManifestRow

README = pathlib.Path(__file__).resolve().parents[2] / 'README.md'


def _readme_fields() -> list[str]:
  text = README.read_text(encoding='utf-8')
  table = text[text.index('Every manifest row, in both files'):]
  table = table[:table.index('\n\n', table.index('| field |'))]
  return re.findall(r'^\| `(\w+)` \|', table, flags=re.M)


def test_readme_lists_exactly_the_row_fields_in_order():
  assert _readme_fields() == [f.name for f in dataclasses.fields(ManifestRow)]


def test_a_failure_becomes_a_row_with_its_reason_and_no_output():
  ref = ImageRef('gs://b/in/p.jpg', 'p-1')
  failure = Failure.of(BadModelInput('values must\n lie in [0, 1]'), 'stylize', ref, 'wave', 0.5)
  row = failure.row('sha')
  assert (row.status, row.output_uri, row.fingerprint) == (FAILED, None, None)
  assert (row.content_uri, row.content_id, row.style_id, row.strength) == (
      'gs://b/in/p.jpg', 'p-1', 'wave', 0.5)
  assert (row.stage, row.error_type, row.message) == (
      'stylize', 'BadModelInput', 'values must lie in [0, 1]')
  assert json.loads(row.to_json())['message'] == 'values must lie in [0, 1]'


@pytest.mark.parametrize('record', [ManifestRow, ContentImage, Rendering])
def test_records_with_many_fields_are_built_by_keyword_only(record):
  """Two swapped booleans or sizes cannot pass silently."""
  with pytest.raises(TypeError):
    record('a', 'b', 'c', 1.0, 'written', 'sha')
