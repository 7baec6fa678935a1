"""Nightly re-runs that finish what is missing without redoing what is done.

A pair's *fingerprint* covers everything its output is made from: the source file's version, the
style file's version, both model files' sha256 and the rendering options. A pair is skipped when
an earlier run's manifest records its output with the same fingerprint and that output still
exists; a changed source, style, model or option, or a deleted output, renders it again.
Existence is checked in bulk, by listing the output prefix once, not one request per file.
"""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from models import style_bank
from models.rendering import Rendering
from transforms.manifest import manifest_dir
from transforms.records import (
  METRICS_NAMESPACE,
  SKIPPED,
  WRITTEN,
  ContentToDo,
  ImageRef,
  ManifestRow,
  StyleResult,
)
from transforms.storage import version_of
from transforms.write import output_uri


def fingerprint(content: ImageRef, style: ImageRef, strength: float,
                models_sha256: tuple[str, str], render: Rendering) -> str:
  recipe = [content.uri, content.version, style.uri, style.version, strength, *models_sha256,
            sorted(dataclasses.asdict(render).items())]
  return hashlib.sha256(json.dumps(recipe).encode()).hexdigest()[:20]


def _done_rows(line: str):
  """(output_uri, (content_uri, fingerprint, when recorded)) of a manifest line that records a
  done pair; a line that is not such a record (damaged, edited by hand) is passed over."""
  try:
    row = json.loads(line)
    if row.get('status') in (WRITTEN, SKIPPED) and row.get('fingerprint'):
      yield row['output_uri'], (row['content_uri'], row['fingerprint'],
                                (row.get('recorded_at', ''), row.get('run_id', '')))
  except (ValueError, AttributeError, KeyError, TypeError):
    Metrics.counter(METRICS_NAMESPACE, 'manifest_lines_unreadable').inc()


def _still_there(output_and_groups):
  _, groups = output_and_groups
  if groups['exists']:
    for content_uri, fp, run_id in groups['recorded']:
      yield content_uri, (output_and_groups[0], fp, run_id)


class DonePairs(beam.PTransform):
  """-> (content_uri, (output_uri, fingerprint, when)) for each recorded output still present.

  The outputs are listed one style folder per pattern, so the listing spreads over workers."""

  def __init__(self, output: str, style_ids: list[str]):
    super().__init__()
    self._output = output
    self._style_ids = style_ids

  def expand(self, pbegin):
    recorded = (
        pbegin
        | 'ManifestGlob' >> beam.Create([FileSystems.join(manifest_dir(self._output),
                                                          'results-*.jsonl')])
        | 'MatchManifests' >> fileio.MatchAll(fileio.EmptyMatchTreatment.ALLOW)
        | 'ReadManifests' >> fileio.ReadMatches()
        | 'Lines' >> beam.FlatMap(lambda f: f.read_utf8().splitlines())
        | 'DoneRows' >> beam.FlatMap(_done_rows))
    existing = (
        pbegin
        | 'OutputGlobs' >> beam.Create(
            [FileSystems.join(self._output, style_id, '**') for style_id in self._style_ids])
        | 'ListOutputs' >> fileio.MatchAll(fileio.EmptyMatchTreatment.ALLOW)
        | 'ByPath' >> beam.Map(lambda metadata: (metadata.path, True)))
    return ({'recorded': recorded, 'exists': existing}
            | 'JoinOnOutput' >> beam.CoGroupByKey()
            | 'StillThere' >> beam.FlatMap(_still_there))


class PlanPairs(beam.DoFn):
  """(content_uri, {'ref': refs, 'done': done outputs}) + styles -> ContentToDo, or skipped rows."""

  def __init__(self, output: str, render: Rendering, strengths: tuple[float, ...],
               models_sha256: tuple[str, str]):
    super().__init__()
    self._output = output
    self._render = render
    self._strengths = strengths
    self._prediction_sha256, self._transfer_sha256 = models_sha256
    self._contents = Metrics.counter(METRICS_NAMESPACE, 'contents')
    self._skipped = Metrics.counter(METRICS_NAMESPACE, 'pairs_skipped')

  def process(self, grouped, styles: dict[str, StyleResult]):
    _, groups = grouped
    latest = {}  # output_uri -> fingerprint of the latest run that recorded it
    for uri, fp, _ in sorted(groups['done'], key=lambda done: tuple(done[2])):
      latest[uri] = fp
    refs = {(ref.uri, ref.id, ref.problem): ref for ref in groups['ref']}  # listed twice: once
    for listed in refs.values():
      self._contents.inc()
      ref = listed
      if ref.version is None and ref.problem is None:
        ref = dataclasses.replace(ref, version=_version_or_none(ref.uri))
      todo = {}
      for style_id, strength in itertools.product(sorted(styles), self._strengths):
        style = styles[style_id].ref
        # The prediction network makes a pair's bottleneck unless it comes from the style bank.
        predicted = strength < 1.0 or not style_bank.is_builtin(style.uri)
        models = (self._prediction_sha256 if predicted else '', self._transfer_sha256)
        fp = fingerprint(ref, style, strength, models, self._render)
        out = ref.id and output_uri(self._output, style_id, ref.id, self._render.extension,
                                    strength)
        if out and latest.get(out) == fp:
          self._skipped.inc()
          yield beam.pvalue.TaggedOutput(SKIPPED, ManifestRow(
              content_uri=ref.uri, content_id=ref.id, style_id=style_id, strength=strength,
              output_uri=out, status=SKIPPED, model_sha256=self._transfer_sha256,
              fingerprint=fp))
        else:
          todo[(style_id, strength)] = fp
      if todo:
        yield ContentToDo(ref, todo)


def _version_or_none(uri: str) -> str | None:
  """A missing or unlistable file has no version; reading it later makes the dead letter."""
  try:
    return version_of(uri)
  except Exception:  # noqa: BLE001 - no version: reading it dead-letters
    return None
