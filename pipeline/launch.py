"""Checks made before any picture is stylized, so a mistake costs seconds, not a night.

Stops with a `LaunchError` (a message for a person, no traceback) when: a content pattern matches
nothing or a list file is missing or lists nothing; no style is usable; a model file is missing,
damaged or lacks the expected tensors; the output cannot be written.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import socket
import uuid

from apache_beam.io.filesystems import FileSystems

from models import exports, fetch, imaging, registry, style_bank
from models.contract import ModelContractError, StylePredictor, open_transfer
from pipeline import options, workers
from transforms import incremental, inputs, layout, leftovers, state, storage
from transforms import styles as styles_branch
from transforms.manifest import manifest_dir
from transforms.records import ImageRef


class LaunchError(RuntimeError):
  """The job cannot start; the message says what to fix."""


@dataclasses.dataclass(frozen=True)
class Plan:
  """What the graph is built from: checked inputs and verified models."""
  styles: list[ImageRef]
  prediction: registry.ModelFile | None  # None: not needed (built-in styles only)
  transfer: registry.ModelFile  # sha256 always set: workers load exactly the checked file
  snapshot: str | None = None  # the current state's folder; None: none yet (or --overwrite)
  # blend id -> its (part ref, weight)s; the blend itself is among `styles` (a `blend:` URI)
  blends: dict = dataclasses.field(default_factory=dict)
  # which styles each picture gets; None: every one of `styles`
  assignment: incremental.Assignment | None = None
  # False: --output held nothing at launch, so there is nothing done to read or tidy, and the
  # graph leaves those steps out (a first run, or a one-picture try, starts much sooner)
  history: bool = True


def prepare(job: options.JobSettings) -> Plan:
  _check_content(job.content, job.content_list)
  _check_output_apart(job.content, job.output)
  styles = _usable_styles(job) if job.styles or job.styles_list else []
  blend_names = frozenset(blend.name for blend in job.blends)
  assigned, aliases = _assigned_styles(job.content_list, blend_names, styles)
  # A blend's part named by a list row too is that row's style: one prediction, one id.
  blend_refs, blends = _blended_styles(job.blends, styles + assigned)
  defaults = styles + blend_refs
  if not defaults and not assigned:
    raise LaunchError('no styles: give --styles, --styles-list or --style-blend, or a "styles" '
                      'column in the --content-list')
  parts = [ref for members in blends.values() for ref, _ in members]
  # Built-in styles need no prediction network, unless a strength below 1 asks for the content's
  # own bottleneck.
  needs_prediction = min(job.strengths) < 1.0 or not all(
      style_bank.is_builtin(ref.uri) for ref in styles + parts + assigned)
  styles = defaults + assigned
  assignment = incremental.Assignment(
      tuple(ref.id for ref in defaults), {**aliases, **{ref.uri: ref.id for ref in styles}}
  ) if job.content_list else None
  prediction, transfer = _verified_models(job.model, job.model_dir, needs_prediction)
  # Decided at launch: a run launched into an empty output at the same time as another that
  # finishes first leaves that other's records out of its snapshot (its pairs render again).
  history = job.skip_existing and bool(_match(FileSystems.join(job.output, '**'), limit=1))
  if not job.plan_only:  # a plan writes nothing
    _check_writable(job.output, job.run_id)
    _claim_run_id(job)
  snapshot = state.current_snapshot(job.output) if job.skip_existing else None
  if not job.plan_only:
    _remove_old_state(job.output)
  return Plan(styles, prediction, transfer, snapshot, blends, assignment, history)


def _match(pattern: str, limit: int | None = None) -> list[storage.Found]:
  try:
    return storage.match(pattern, limit)
  except ValueError as e:  # FileSystems' way of saying "no filesystem for this scheme"
    raise LaunchError(f'{pattern}: {e}') from None
  except Exception as e:  # noqa: BLE001 - any failure stops the launch with its message
    raise LaunchError(f'cannot list {pattern}: {type(e).__name__}: {e}') from None


def _check_content(patterns: list[str], list_files: list[str]) -> None:
  """Each pattern must match and each list file be readable; an empty list stops the job only
  when it is all there is (a nightly list of tonight's new pictures may well be empty)."""
  for pattern in patterns:
    if not _match(pattern, limit=1):
      raise LaunchError(f'--content {pattern!r} matched no file: nothing to stylize')
  listed = False
  for list_file in list_files:
    if not _match(list_file, limit=1):
      raise LaunchError(f'--content-list {list_file!r} does not exist')
    try:
      first = next(inputs.read_list_file(list_file), None)  # its format, from the first row
    except Exception as e:  # noqa: BLE001 - any failure stops the launch with its message
      raise LaunchError(f'--content-list {list_file!r}: {e}') from None
    listed = listed or first is not None
  if list_files and not (patterns or listed):
    raise LaunchError(f'--content-list {", ".join(map(repr, list_files))}: no picture listed, '
                      'nothing to stylize')


def _check_output_apart(patterns: list[str], output: str) -> None:
  """The job leaves out what a pattern matches under its output (its own outputs and records:
  `inputs.ContentRefs`): an output at or above a pattern's folder would leave out the catalog."""
  top = output.rstrip('/')
  for pattern in patterns:
    folder = storage.fixed_folder(pattern)
    if folder == top or folder.startswith(top + '/'):
      raise LaunchError(
          f'--output {output!r} holds the pictures --content {pattern!r} matches: the job leaves '
          'out what it finds under its output (its own outputs and records), so it would leave '
          f'out the catalog. Give the outputs a folder of their own (e.g. {folder}/stylized)')


def _usable_styles(job: options.JobSettings) -> list[ImageRef]:
  named: list[tuple[str, str | None]] = []
  for pattern in job.styles:
    if style_bank.is_builtin(pattern):
      try:
        named.extend((style_bank.PREFIX + name, name) for name in style_bank.names(pattern))
      except KeyError as e:
        raise LaunchError(e.args[0]) from None
      continue
    found = sorted(_match(pattern), key=lambda f: f.path)
    if not found:
      raise LaunchError(f'--styles {pattern!r} matched no file')
    named.extend((f.path, None, f.problem) for f in found)
  for list_file in job.styles_list:
    try:
      named.extend(inputs.read_list_file(list_file))
    except Exception as e:  # noqa: BLE001 - any failure stops the launch with its message
      raise LaunchError(f'--styles-list {list_file!r}: {type(e).__name__}: {e}') from None
  styles = [dataclasses.replace(ref, version=_style_version(ref.uri))
            for ref in inputs.style_refs(named)]
  reserved = [ref for ref in styles if ref.id and layout.is_reserved(ref.id)]
  if reserved:
    raise LaunchError('\n'.join(
        f'style id {ref.id!r} ({ref.uri}) is a name the job keeps for its own files '
        f'({layout.MANIFEST_DIR}/, {layout.GALLERY_DIR}/, {layout.GALLERY_PAGE}, anything '
        'starting with "_"): rename the file, or give it another id in a --styles-list'
        for ref in reserved))
  problems = []
  for ref in styles:
    try:
      if ref.problem:
        raise ValueError(ref.problem)
      if style_bank.is_builtin(ref.uri):
        style_bank.names(ref.uri)  # a list file may name one that does not exist
        return styles
      data = storage.read_bytes(ref.uri, job.max_bytes, imaging.check_signature)
      imaging.decode(data, job.max_pixels, min_side=imaging.STYLE_SIZE)
      return styles  # one usable style is enough to start; the rest are checked by the job
    except Exception as e:  # noqa: BLE001 - any failure stops the launch with its message
      problems.append(f'  {ref.uri}: {type(e).__name__}: {e}')
  raise LaunchError('no usable style picture:\n' + '\n'.join(problems or ['  (none given)']))


def _assigned_styles(list_files, blend_names: frozenset[str], known: list[ImageRef]):
  """(the styles that list rows name (a "styles" column) and `known` lacks, as refs; row
  reference -> style id, for references that name a known style in other words). The column is
  read once, distinct values only, so each style is predicted once like any. One that cannot be
  used keeps its problem: the pairs of the rows naming it get dead letters, the job goes on."""
  by_file = {inputs.absolute(ref.uri): ref for ref in known}
  refs, aliases = [], {}
  for list_file in list_files:
    try:
      named = inputs.named_styles(list_file, blend_names)
    except Exception as e:  # noqa: BLE001 - any failure stops the launch with its message
      raise LaunchError(f'--content-list {list_file!r}: {type(e).__name__}: {e}') from None
    for uri in sorted(named):
      if styles_branch.is_blend(uri) and uri[len(styles_branch.BLEND_PREFIX):] in blend_names:
        continue  # a --style-blend: its ref is made with the blends
      same = by_file.get(inputs.absolute(uri))
      if same is None:
        same = by_file[inputs.absolute(uri)] = _assigned_style(uri, {ref.id for ref in known})
        refs.append(same)
      if same.uri != uri:
        aliases[uri] = same.id
  return refs, aliases


def _assigned_style(uri: str, taken: set[str]) -> ImageRef:
  """A style named only in list rows. Its id is its file stem with a hash of its URI (or a
  built-in style's name): stable whatever other rows name, so its outputs never move."""
  problem = None
  if styles_branch.is_blend(uri):
    problem = f'{uri!r}: no --style-blend has this name'
  elif style_bank.is_builtin(uri):
    try:
      if len(style_bank.names(uri)) != 1:
        problem = f'{uri!r} names more than one built-in style'
    except KeyError as e:
      problem = e.args[0]
  elif storage.is_pattern(uri):
    problem = f'{uri!r} is a pattern; a list row names single style pictures'
  if style_bank.is_builtin(uri) and not problem:
    name = uri.split(':', 1)[1]
    style_id = name if name not in taken else f'{name}-{inputs.uri_hash(uri)}'
  else:
    style_id = f'{inputs.file_stem(uri.split(":", 1)[-1])}-{inputs.uri_hash(uri)}'
  return ImageRef(uri, style_id, problem, version=None if problem else _style_version(uri))


def _blended_styles(blends, styles: list[ImageRef]):
  """(a ref for each blend, blend id -> its (part ref, weight)s). A blend's version covers its
  parts' URIs, versions and weights, so a changed part or weight renders its outputs again."""
  taken = {ref.id for ref in styles}
  by_file = {inputs.absolute(ref.uri): ref for ref in styles}
  refs, members = [], {}
  for blend in blends:
    name = blend.name
    if not inputs.SAFE_NAME.match(name) or layout.is_reserved(name) or name in taken:
      why = ('is taken by another style' if name in taken else
             'is a name the job keeps for its own files' if layout.is_reserved(name) else
             'is not a plain name (letters, digits, "_", "-", ".")')
      raise LaunchError(f'--style-blend {name!r}: the name {why}')
    taken.add(name)
    parts = []
    for uri, weight in blend.parts:
      if inputs.absolute(uri) not in by_file:
        _check_blend_part(name, uri)
        by_file[inputs.absolute(uri)] = ImageRef(uri, f'_part-{inputs.uri_hash(uri)}',
                                           version=_style_version(uri))
      parts.append((by_file[inputs.absolute(uri)], weight))
    recipe = [(ref.uri, ref.version, round(weight, 6)) for ref, weight in parts]
    version = hashlib.sha256(json.dumps(recipe).encode()).hexdigest()[:16]
    refs.append(ImageRef(styles_branch.BLEND_PREFIX + name, name, version=version))
    members[name] = tuple(parts)
  return refs, members


def _check_blend_part(name: str, uri: str) -> None:
  """A part is one style: a built-in one, or one picture that exists (no glob)."""
  if style_bank.is_builtin(uri):
    try:
      if len(style_bank.names(uri)) != 1:
        raise KeyError(f'{uri} names more than one built-in style')
    except KeyError as e:
      raise LaunchError(f'--style-blend {name!r}: {e.args[0]}') from None
    return
  if storage.is_pattern(uri):
    raise LaunchError(f'--style-blend {name!r}: {uri!r} is a pattern; a part is one picture')
  if not _match(uri, limit=1):
    raise LaunchError(f'--style-blend {name!r}: style {uri!r} does not exist')


def _style_version(uri: str) -> str | None:
  if style_bank.is_builtin(uri):
    return style_bank.version(uri)
  try:
    return storage.version_of(uri)
  except Exception:  # noqa: BLE001 - no version: its pairs dead-letter later
    return None  # unreadable: the job dead-letters its pairs, with the reason


def _verified_models(spec: str, model_dir: str | None, needs_prediction: bool = True):
  try:
    chosen = registry.resolve_model_set(spec, model_dir)
    verified = [None]
    for model, network in ((chosen.prediction, StylePredictor), (chosen.transfer, open_transfer)):
      if model is chosen.prediction and not needs_prediction:
        continue
      if model.built_from is not None:
        path, digest = exports.local_build(model, other_builds=True)
        verified.append(dataclasses.replace(model, uri=path, sha256=digest))
      else:
        path, digest = fetch.local_copy(model, fresh=model.sha256 is None)
        verified.append(registry.ModelFile(model.uri, digest, model.in_model_dir))
      network(path, fast=False)  # loads it and checks tensor names, shapes and dtypes
    return tuple(verified[-2:])
  except (registry.ModelSpecError, fetch.ModelUnavailable, ModelContractError) as e:
    raise LaunchError(str(e)) from None


def _check_writable(output: str, run_id: str) -> None:
  # Unique per launch: two launches with one run id must reach the run-id claim, not trip over
  # each other's probe.
  probe = FileSystems.join(manifest_dir(output), f'.write-check-{run_id}-{uuid.uuid4().hex}')
  try:
    storage.write_bytes(probe, b'ok')
    FileSystems.delete([probe])
  except Exception as e:  # noqa: BLE001 - any failure stops the launch with its message
    raise LaunchError(f'--output {output!r} is not writable: {type(e).__name__}: {e}') from None
  try:
    for folder in leftovers.remove_abandoned_temp(manifest_dir(output)):
      logging.info('removed %s, left by a killed run', folder)
  except Exception as e:  # noqa: BLE001 - leftovers cost space, never the run
    logging.warning('leftovers of killed runs not removed: %s: %s', type(e).__name__, e)


def _remove_old_state(output: str) -> None:
  try:
    current = state.current_snapshot(output)
    for folder in leftovers.remove_old_snapshots(state.state_dir(output), manifest_dir(output),
                                                 current):
      logging.info('removed %s, an earlier state snapshot', folder)
  except Exception as e:  # noqa: BLE001 - old snapshots cost space, never the run
    logging.warning('earlier state snapshots not removed: %s: %s', type(e).__name__, e)


def _claim_run_id(job: options.JobSettings) -> None:
  """Two runs with one run id would overwrite each other's manifest: the first to claim the id on
  this output keeps it, and any other stops here."""
  claim = FileSystems.join(manifest_dir(job.output), f'run-{job.run_id}.json')
  record = json.dumps({'run_id': job.run_id, 'started_at': job.started_at,
                       'host': socket.gethostname(), 'pid': os.getpid()}).encode()
  try:
    claimed = storage.create_exclusive(claim, record)
  except Exception as e:  # noqa: BLE001 - any failure stops the launch with its message
    raise LaunchError(f'cannot record the run id in {claim}: {type(e).__name__}: {e}') from None
  if not claimed:
    raise LaunchError(f'run id {job.run_id!r} is already used on this output ({claim}): another '
                      'run with it is going on or is recorded there; give another --run-id, or '
                      'leave it out for a unique one')


def for_remote_workers(plan: Plan, beam_options) -> Plan:
  """The plan with model files every remote worker can read (see `pipeline.workers`)."""
  try:
    workers.ship_code(beam_options)
    return dataclasses.replace(
        plan, prediction=plan.prediction and workers.reachable_model(plan.prediction,
                                                                     beam_options),
        transfer=workers.reachable_model(plan.transfer, beam_options))
  except Exception as e:  # noqa: BLE001 - any failure stops the launch with its message
    raise LaunchError(f'cannot prepare the remote workers: {e}') from None
