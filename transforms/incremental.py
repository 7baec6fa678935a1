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
from transforms import leftovers, progress, state, storage
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
from transforms.write import pair_output, pair_variants


def fingerprint(content: ImageRef, style: ImageRef, strength: float,
                models_sha256: tuple[str, str], render: Rendering) -> str:
  recipe = [content.uri, content.version, style.uri, style.version, strength, *models_sha256,
            render.recipe()]
  # Masks only where used: pairs without one keep the fingerprints they had, whatever --feather.
  if content.mask:
    recipe.append([content.mask, content.mask_version, render.feather])
  elif render.cutout:
    recipe.append(['cutout', render.cutout, render.feather])
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
        recorded_at=row.get('recorded_at'), variants=tuple(row.get('variants') or ())))
  except (ValueError, AttributeError, KeyError, TypeError):
    return None


def _files(record: dict):
  """(file, record) for each file of a done pair: its variants, or its one output."""
  for uri in record.get('variants') or [record['output_uri']]:
    yield uri, record


def _still_there(file_and_groups):
  """The newest record naming a file that still exists, with the file."""
  path, groups = file_and_groups
  recorded = list(groups['recorded'])
  if groups['exists'] and recorded:
    yield path, max(recorded, key=lambda r: (r['recorded_at'] or '', r['run_id'] or ''))


def _whole(output_and_found):
  """A pair made of several files (--sizes) is done only while every one of them exists."""
  _, found = output_and_found
  found = list(found)
  record = max((r for _, r in found), key=lambda r: (r['recorded_at'] or '', r['run_id'] or ''))
  if set(record['variants']) <= {path for path, _ in found}:
    yield record


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
    present = (
        {'recorded': split[0] | 'ByFile' >> beam.FlatMap(_files), 'exists': existing}
        | 'JoinOnFile' >> beam.CoGroupByKey()
        | 'StillThere' >> beam.FlatMap(_still_there)
        | 'OneOrSeveral' >> beam.Partition(lambda item, _: 1 if item[1]['variants'] else 0, 2))
    several = (present[1]
               | 'ByPair' >> beam.Map(lambda item: (item[1]['output_uri'], item))
               | 'PairFiles' >> beam.GroupByKey()
               | 'Whole' >> beam.FlatMap(_whole))
    single = present[0] | 'Records' >> beam.Map(lambda item: item[1])
    return (single, several, split[1]) | 'AllDone' >> beam.Flatten()


@dataclasses.dataclass(frozen=True)
class Assignment:
  """Which styles a picture gets: those its list row names, else the defaults (--styles)."""
  defaults: tuple[str, ...]  # style ids
  by_ref: dict[str, str]  # style reference (URI, builtin:NAME, blend:NAME) -> style id

  def of(self, ref: ImageRef) -> tuple[list[str], list[str]]:
    """(the picture's style ids, sorted; the references that name no style of this run)."""
    if ref.styles is None:
      return sorted(self.defaults), []
    ids = sorted({self.by_ref[s] for s in ref.styles if s in self.by_ref})
    return ids, [s for s in ref.styles if s not in self.by_ref]


class PlanPairs(beam.DoFn):
  """(content key, {'ref': refs, 'done': done outputs}) + styles -> ContentToDo, skipped rows, or
  dead letters for pictures whose id another picture already has (the smallest URI keeps it).

  Only assigned pairs exist: a picture's pairs are its styles (`assignment`; None: every style
  of the side input) times the strengths, and each picture's count of them goes to PLANNED."""

  def __init__(self, output: str, render: Rendering, strengths: tuple[float, ...],
               models_sha256: tuple[str, str], assignment: Assignment | None = None):
    super().__init__()
    self._output = output
    self._render = render
    self._strengths = strengths
    self._prediction_sha256, self._transfer_sha256 = models_sha256
    self._assignment = assignment
    self._contents = Metrics.counter(METRICS_NAMESPACE, 'contents')
    self._planned = Metrics.counter(METRICS_NAMESPACE, 'pairs_planned')
    self._skipped = Metrics.counter(METRICS_NAMESPACE, 'pairs_skipped')

  def process(self, grouped, styles: dict[str, StyleResult]):
    _, groups = grouped
    latest = {}  # output_uri -> fingerprint of the latest run that recorded it
    for uri, fp, _ in sorted(groups['done'], key=lambda done: tuple(done[2])):
      latest[uri] = fp
    rows = {}  # a picture listed twice is one picture, with the styles of all its rows
    for ref in groups['ref']:
      rows.setdefault((ref.uri, ref.id, ref.problem), []).append(ref)
    # No ref: the outputs of a picture no longer in the catalog, nothing to plan.
    keeper = min((uri for uri, _, _ in rows), default=None)
    for same in rows.values():
      # Rows of one picture that disagree on its version or mask: the smallest value, whatever
      # order the rows arrive in, so the fingerprint does not flip from run to run.
      listed = dataclasses.replace(
          same[0], version=min((r.version for r in same if r.version), default=None),
          mask=min((r.mask for r in same if r.mask), default=None))
      self._contents.inc()
      assigned = [self.assigned(ref, styles) for ref in same]
      style_ids = sorted({style_id for ids, _ in assigned for style_id in ids})
      unknown = list(dict.fromkeys(name for _, names in assigned for name in names))
      planned = (len(style_ids) + len(unknown) or 1) * len(self._strengths)
      self._planned.inc(planned)
      progress.tally('planned', planned)
      yield beam.pvalue.TaggedOutput(PLANNED, planned)
      yield from self._unassigned(listed, style_ids, unknown)
      ref = listed
      if ref.uri != keeper:
        yield from self._duplicate(ref, keeper, style_ids)
        continue
      if ref.version is None and ref.problem is None:
        ref = dataclasses.replace(ref, version=_version_or_none(ref.uri))
      if ref.mask and ref.mask_version is None:  # a changed mask renders the pairs again
        ref = dataclasses.replace(ref, mask_version=_version_or_none(ref.mask))
      todo = {}
      for style_id, strength, out, fp in self.pairs(ref, styles, style_ids):
        if out and latest.get(out) == fp:
          self._skipped.inc()
          progress.tally('skipped')
          yield beam.pvalue.TaggedOutput(SKIPPED, ManifestRow(
              content_uri=ref.uri, content_id=ref.id, style_id=style_id, strength=strength,
              output_uri=out, status=SKIPPED, model_sha256=self._transfer_sha256,
              fingerprint=fp,
              variants=pair_variants(self._output, style_id, ref.id, self._render, strength)))
        else:
          todo[(style_id, strength)] = fp
      if todo:
        yield ContentToDo(ref, todo)

  def assigned(self, ref: ImageRef, styles: dict[str, StyleResult]):
    """(the picture's style ids, the references of its row that name no style of this run)."""
    if self._assignment is None:
      return sorted(styles), []
    return self._assignment.of(ref)

  def pairs(self, ref: ImageRef, styles: dict[str, StyleResult], style_ids=None):
    """(style id, strength, output URI or None, fingerprint) of each pair of one picture."""
    style_ids = self.assigned(ref, styles)[0] if style_ids is None else style_ids
    for style_id, strength in itertools.product(style_ids, self._strengths):
      style = styles[style_id].ref
      # The prediction network makes a pair's bottleneck unless it comes from the style bank.
      predicted = strength < 1.0 or not style_bank.is_builtin(style.uri)
      models = (self._prediction_sha256 if predicted else '', self._transfer_sha256)
      out = ref.id and pair_output(self._output, style_id, ref.id, self._render, strength)
      yield style_id, strength, out, fingerprint(ref, style, strength, models, self._render)

  def _unassigned(self, ref: ImageRef, style_ids: list[str], unknown: list[str]):
    """Dead letters for a row's style references that name no style of this run, or for a row
    with no styles at all (no styles column value and no --styles)."""
    if not style_ids and not unknown:
      unknown = [None]
    for name in unknown:
      error = UnknownStyle(f'style {name!r} is not one of this run\'s styles' if name else
                           'this row names no styles and the job has no --styles')
      for strength in self._strengths:
        yield beam.pvalue.TaggedOutput(FAILED, Failure.of(error, 'plan', ref, name, strength))

  def _duplicate(self, ref: ImageRef, keeper: str, style_ids: list[str]):
    error = DuplicateId(f'id {ref.id!r} is also given to {keeper}, which keeps it; give this '
                        'picture another id')
    for style_id, strength in itertools.product(style_ids, self._strengths):
      yield beam.pvalue.TaggedOutput(
          FAILED, Failure.of(error, 'plan', ref, style_id, strength))


class UnknownStyle(ValueError):
  """A list row names a style the run does not have (the list changed after the launch read it)."""


class DuplicateId(ValueError):
  """Two different pictures given one id: one output name, so only one can have it."""


def _version_or_none(uri: str) -> str | None:
  """A missing or unlistable file has no version; reading it later makes the dead letter."""
  try:
    return version_of(uri)
  except Exception:  # noqa: BLE001 - no version: reading it dead-letters
    return None
