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
import logging

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from models import style_bank
from models.rendering import Rendering
from transforms import leftovers, state, storage
from transforms.manifest import manifest_dir
from transforms.records import (
  FAILED,
  METRICS_NAMESPACE,
  PLANNED,
  SKIPPED,
  WRITTEN,
  ContentToDo,
  Failure,
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


def _manifest_lines(readable_file):
  """The lines of one earlier manifest file. Damage costs a counted, named warning and at most
  the re-rendering of the pairs it hides, never the run: undecodable bytes are replaced (the
  line then fails to parse) and an unreadable file is passed over."""
  path = readable_file.metadata.path
  try:
    text = readable_file.read().decode('utf-8', 'replace')
  except Exception as e:  # noqa: BLE001 - any unreadable state is a warning, not a crash
    Metrics.counter(METRICS_NAMESPACE, 'manifest_files_unreadable').inc()
    logging.warning('earlier manifest %s passed over: %s: %s (its pairs may be rendered '
                    'again)', path, type(e).__name__, e)
    return
  damaged = 0
  for line in text.splitlines():
    if line.strip() and (row := _done_row(line)) is None:
      damaged += 1
    elif row:
      yield row
  if damaged:
    Metrics.counter(METRICS_NAMESPACE, 'manifest_lines_unreadable').inc(damaged)
    logging.warning('earlier manifest %s: %d damaged lines passed over (their pairs may be '
                    'rendered again)', path, damaged)


def _done_row(line: str):
  """The snapshot record of a manifest line recording a done pair; () for a well-formed row of
  another kind; None for a damaged line."""
  try:
    row = json.loads(line)
    if row.get('status') not in (WRITTEN, SKIPPED) or not row.get('fingerprint'):
      return ()
    return state.to_record(ManifestRow(
        content_uri=row['content_uri'], content_id=row.get('content_id'),
        style_id=row.get('style_id'), strength=row.get('strength'), status=row['status'],
        model_sha256=row.get('model_sha256') or '', output_uri=row['output_uri'],
        fingerprint=row['fingerprint'], run_id=row.get('run_id'),
        recorded_at=row.get('recorded_at')))
  except (ValueError, AttributeError, KeyError, TypeError):
    return None


def _still_there(output_and_groups):
  """The newest record of an output that still exists."""
  _, groups = output_and_groups
  recorded = list(groups['recorded'])
  if groups['exists'] and recorded:
    yield max(recorded, key=lambda r: (r['recorded_at'] or '', r['run_id'] or ''))


def for_planning(record: dict):
  """A done record as PlanPairs takes it: (content key, (output_uri, fingerprint, when))."""
  return record['content_key'], (record['output_uri'], record['fingerprint'],
                                 (record['recorded_at'] or '', record['run_id'] or ''))


class DonePairs(beam.PTransform):
  """-> the snapshot records of the done outputs: from the current snapshot (or, before there
  is one, the earlier manifests), those of this run's styles checked against a listing of their
  output folders (an output deleted since is not done); those of other styles carried as they
  are, to stay in the state until their style comes back.

  The outputs are listed one style folder per pattern, so the listing spreads over workers."""

  def __init__(self, output: str, style_ids: list[str], snapshot: str | None = None,
               tidy: bool = True):
    super().__init__()
    self._output = output
    self._style_ids = style_ids
    self._snapshot = snapshot
    self._tidy = tidy  # delete the abandoned `.partial` files the listing meets (not in a plan)

  def expand(self, pbegin):
    if self._snapshot:
      recorded = pbegin | 'ReadSnapshot' >> state.ReadSnapshot(self._snapshot)
    else:
      recorded = (
          pbegin
          | 'ManifestGlob' >> beam.Create([FileSystems.join(manifest_dir(self._output),
                                                            'results-*.jsonl')])
          | 'MatchManifests' >> fileio.MatchAll(fileio.EmptyMatchTreatment.ALLOW)
          | 'ReadManifests' >> fileio.ReadMatches()
          | 'DoneRows' >> beam.FlatMap(_manifest_lines))
    styles = set(self._style_ids)
    split = recorded | 'ThisRunsStyles' >> beam.Partition(
        lambda record, _: 0 if record['style_id'] in styles else 1, 2)
    existing = (
        pbegin
        | 'OutputGlobs' >> beam.Create(
            [FileSystems.join(self._output, style_id, '**') for style_id in self._style_ids])
        | 'Shards' >> beam.FlatMap(storage.listing_shards)
        | 'SpreadListing' >> beam.Reshuffle()
        | 'ListOutputs' >> beam.FlatMap(storage.match_shard)
        | 'NotAbandoned' >> beam.Filter(
            lambda found, tidy: not (tidy and leftovers.remove_if_abandoned_partial(found)),
            self._tidy)
        | 'ByPath' >> beam.Map(lambda found: (found.path, True)))
    checked = (
        {'recorded': split[0] | 'ByOutput' >> beam.Map(lambda r: (r['output_uri'], r)),
         'exists': existing}
        | 'JoinOnOutput' >> beam.CoGroupByKey()
        | 'StillThere' >> beam.FlatMap(_still_there))
    return (checked, split[1]) | 'AllDone' >> beam.Flatten()


class PlanPairs(beam.DoFn):
  """(content key, {'ref': refs, 'done': done outputs}) + styles -> ContentToDo, skipped rows, or
  dead letters for pictures whose id another picture already has (the smallest URI keeps it)."""

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
    # No ref: the outputs of a picture no longer in the catalog, nothing to plan.
    keeper = min((ref.uri for ref in refs.values()), default=None)
    for listed in refs.values():
      self._contents.inc()
      yield beam.pvalue.TaggedOutput(PLANNED, len(styles) * len(self._strengths))
      ref = listed
      if ref.uri != keeper:
        yield from self._duplicate(ref, keeper, styles)
        continue
      if ref.version is None and ref.problem is None:
        ref = dataclasses.replace(ref, version=_version_or_none(ref.uri))
      todo = {}
      for style_id, strength, out, fp in self.pairs(ref, styles):
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

  def pairs(self, ref: ImageRef, styles: dict[str, StyleResult]):
    """(style id, strength, output URI or None, fingerprint) of each pair of one picture."""
    for style_id, strength in itertools.product(sorted(styles), self._strengths):
      style = styles[style_id].ref
      # The prediction network makes a pair's bottleneck unless it comes from the style bank.
      predicted = strength < 1.0 or not style_bank.is_builtin(style.uri)
      models = (self._prediction_sha256 if predicted else '', self._transfer_sha256)
      out = ref.id and output_uri(self._output, style_id, ref.id, self._render.extension,
                                  strength)
      yield style_id, strength, out, fingerprint(ref, style, strength, models, self._render)

  def _duplicate(self, ref: ImageRef, keeper: str, styles: dict[str, StyleResult]):
    error = DuplicateId(f'id {ref.id!r} is also given to {keeper}, which keeps it; give this '
                        'picture another id')
    for style_id, strength in itertools.product(sorted(styles), self._strengths):
      yield beam.pvalue.TaggedOutput(
          FAILED, Failure.of(error, 'plan', ref, style_id, strength))


class DuplicateId(ValueError):
  """Two different pictures given one id: one output name, so only one can have it."""


def _version_or_none(uri: str) -> str | None:
  """A missing or unlistable file has no version; reading it later makes the dead letter."""
  try:
    return version_of(uri)
  except Exception:  # noqa: BLE001 - no version: reading it dead-letters
    return None
