"""The job's own flags. Everything else on the command line is a Beam option, passed through."""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import difflib
import math
import os
import re
import secrets

from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions, _BeamArgumentParser
from PIL import ImageColor

from models import imaging, registry, rendering
from transforms import inputs, storage

RUN_ID = re.compile(r'[A-Za-z0-9_][A-Za-z0-9_.-]*')  # it names files: one plain ASCII name
MAX_THREADS = 256  # per interpreter: more than one network can use, short of a system's limit


def _boolean(text: str) -> bool:
  if text.lower() not in ('true', 'false'):
    raise argparse.ArgumentTypeError(f'expected true or false, got {text!r}')
  return text.lower() == 'true'


def _box(text: str) -> tuple[int, int]:
  try:
    width, height = (int(v) for v in text.lower().split('x'))
  except ValueError:
    raise argparse.ArgumentTypeError(f'expected WIDTHxHEIGHT, got {text!r}') from None
  if width < 1 or height < 1:
    raise argparse.ArgumentTypeError(f'box sides must be >= 1, got {text!r}')
  return width, height


def _sizes(text: str) -> tuple[int, ...]:
  try:
    widths = sorted({int(v) for v in text.split(',')})
  except ValueError:
    raise argparse.ArgumentTypeError(f'expected widths such as 480,960,1600, got {text!r}') \
        from None
  if widths[0] < 1:
    raise argparse.ArgumentTypeError(f'widths must be >= 1, got {text!r}')
  return tuple(widths)


def _colour(text: str) -> tuple[int, int, int]:
  try:
    return ImageColor.getrgb(text)[:3]
  except ValueError:
    raise argparse.ArgumentTypeError(f'not a colour: {text!r}') from None


@dataclasses.dataclass(frozen=True)
class Blend:
  """A house style mixed from other styles: NAME and its (style reference, weight) parts, with
  the weights summing to 1."""
  name: str
  parts: tuple[tuple[str, float], ...]


def _blend(text: str) -> Blend:
  """NAME=REF:W[,REF:W...]; a REF may hold ':' itself (gs://, builtin:), so W is after the last."""
  name, _, spec = text.partition('=')
  parts = []
  for part in filter(None, spec.split(',')):
    ref, _, weight = part.rpartition(':')
    try:
      value = float(weight)
    except ValueError:
      value = float('nan')
    if not ref or not math.isfinite(value) or value <= 0:
      raise argparse.ArgumentTypeError(
          f'expected NAME=REF:W[,REF:W...] with weights > 0, got {text!r} (part {part!r})')
    parts.append((ref, value))
  if not name or not parts:
    raise argparse.ArgumentTypeError(f'expected NAME=REF:W[,REF:W...], got {text!r}')
  total = sum(weight for _, weight in parts)
  return Blend(name, tuple((ref, weight / total) for ref, weight in parts))


def _strengths(text: str) -> list[float]:
  try:
    values = [float(v) for v in text.split(',')]
  except ValueError:
    raise argparse.ArgumentTypeError(f'expected numbers, got {text!r}') from None
  if not all(0.0 <= v <= 1.0 for v in values):
    raise argparse.ArgumentTypeError(f'strengths must lie in [0, 1], got {text!r}')
  return values


def parser() -> argparse.ArgumentParser:
  """Every multi-word flag also has an underscore form (--max_size), as Beam's and Flex
  Templates' parameters are spelled."""
  p = argparse.ArgumentParser(
      prog='python -m pipeline.run',
      description='Re-render a catalog of pictures in a set of styles with the Magenta '
                  'arbitrary-image-stylization networks. Unknown flags go to Beam '
                  '(--runner, --direct_num_workers, --project, ...).')
  inputs = p.add_argument_group('inputs (local paths, gs:// or any Beam filesystem)')
  inputs.add_argument('--content', action='append', default=[], metavar='GLOB',
                      help='content pictures; repeatable')
  inputs.add_argument('--content-list', '--content_list', action='append', default=[],
                      metavar='FILE',
                      help='list file of content pictures: one URI per line (# starts a '
                           'comment), or .csv/.jsonl '
                           'with a "uri" and an optional "id" column; repeatable')
  inputs.add_argument('--styles', action='append', default=[], metavar='GLOB',
                      help='style pictures; repeatable (the same file twice is one style)')
  inputs.add_argument('--style-blend', '--style_blend', action='append', type=_blend, default=[],
                      metavar='NAME=REF:W[,REF:W...]',
                      help='a style NAME that is the weighted mix of other styles\' bottlenecks '
                           '(weights normalized; REF: a style picture or builtin:NAME), written '
                           'under OUTPUT/NAME/ like any style; repeatable')
  inputs.add_argument('--styles-list', '--styles_list', action='append', default=[],
                      metavar='FILE',
                      help='list file of style pictures, as --content-list')
  p.add_argument('--output', required=True,
                 help='folder or bucket prefix; outputs go to OUTPUT/STYLE_ID/CONTENT_ID.EXT')
  models = p.add_argument_group('models')
  models.add_argument('--model', default=registry.DEFAULT_MODEL,
                      help=f'a registered model set ({", ".join(registry.REGISTRY)}; "house" is '
                           'the embedded one), a folder holding one *transfer*.tflite and at '
                           'most one *prediction*.tflite (e.g. a model_building.optimize '
                           'output), or '
                           'PREDICTION_URI,TRANSFER_URI (default: %(default)s)')
  models.add_argument('--model-dir', '--model_dir', default=None,
                      help='local folder with the published files under their own names, used '
                           f'instead of downloading them (default: ${registry.MODEL_DIR_ENV})')
  models.add_argument('--num-threads', '--num_threads', type=int, default=1,
                      help='threads per interpreter; one interpreter per DoFn instance '
                           '(default: %(default)s)')
  out = p.add_argument_group('rendering')
  out.add_argument('--frame', choices=imaging.FRAMES, default='fit',
                   help='fit: keep the whole picture and its aspect ratio; square: the published '
                        'demo\'s centre crop (default: %(default)s)')
  out.add_argument('--max-size', '--max_size', type=int, default=1024,
                   help='long side of the output: the source\'s, capped at this; 0 for the '
                        'source\'s own size (default: %(default)s)')
  out.add_argument('--box', type=_box, default=None, metavar='WxH',
                   help='deliver at an exact box instead of --max-size (see --box-mode)')
  out.add_argument('--sizes', type=_sizes, default=(), metavar='W[,W...]',
                   help='write each pair at each of these widths, from one inference: '
                        'CONTENT_ID.w480.jpg and so on (instead of --max-size)')
  out.add_argument('--box-mode', '--box_mode', choices=rendering.BOX_MODES, default='fit',
                   help='fit: the whole picture inside the box; fill: cover the box, centre-'
                        'cropped to exactly WxH (default: %(default)s)')
  out.add_argument('--cutout', choices=rendering.CUTOUT_PARTS, default=None,
                   help='stylize only this part of a cut-out (a picture with transparency): '
                        'the product (foreground) or a backdrop behind it (background)')
  out.add_argument('--feather', type=int, default=0, metavar='PX',
                   help='soften the edge of a mask (a list file\'s "mask" column, or --cutout) '
                        'over about PX output pixels (default: %(default)s)')
  out.add_argument('--format', choices=sorted(rendering.FORMATS), default='jpeg',
                   help='output format (default: %(default)s)')
  out.add_argument('--jpeg-quality', '--jpeg_quality', type=int, default=90,
                   help='JPEG and WebP quality (default: %(default)s)')
  out.add_argument('--progressive', nargs='?', const=True, default=False, type=_boolean,
                   metavar='true|false', help='progressive JPEG')
  out.add_argument('--background', type=_colour, default=imaging.WHITE, metavar='#RRGGBB',
                   help='colour that transparent areas are flattened onto (JPEG outputs, and '
                        'what the network sees there) (default: #ffffff)')
  out.add_argument('--working-size', '--working_size', type=int, default=0, metavar='PX',
                   help='paint at this long side instead of 384: finer brush strokes relative to '
                        'the picture, by overlapping colour-matched 384x384 tiles (or in one '
                        'pass with --model magenta-legacy-dynamic); 0: off (default)')
  out.add_argument('--strength', type=_strengths, action='append', default=None,
                   metavar='S[,S...]',
                   help='style strength in [0, 1]: 1 is the full style, lower blends in the '
                        'content\'s own style; several give one output each (default: 1)')
  out.add_argument('--keep-metadata', '--keep_metadata', nargs='?', const=True, default=False,
                   type=_boolean, metavar='true|false',
                   help='copy the source\'s EXIF (camera, dates, GPS) to outputs; off by default')
  out.add_argument('--preserve-colour', '--preserve_colour', nargs='?', const=True,
                   default=False, type=_boolean, metavar='true|false',
                   help='keep the content\'s colours, take only the style\'s texture')
  out.add_argument('--cache-control', '--cache_control', default=None, metavar='VALUE',
                   help='the Cache-Control header of outputs written to gs:// (e.g. "public, '
                        'max-age=86400"; default: the bucket\'s own)')
  out.add_argument('--max-bytes', '--max_bytes', type=int, default=imaging.DEFAULT_MAX_BYTES,
                   help='refuse a picture file larger than this many bytes, before reading it '
                        '(default: %(default)s, 256 MiB)')
  out.add_argument('--max-pixels', '--max_pixels', type=int,
                   default=imaging.DEFAULT_MAX_PIXELS,
                   help='refuse a picture with more pixels than this, before decoding it '
                        '(default: %(default)s)')
  rerun = p.add_mutually_exclusive_group()
  rerun.add_argument('--skip-existing', '--skip_existing', dest='skip_existing', nargs='?',
                     const=True, default=None, type=_boolean, metavar='true|false',
                     help='skip pairs whose output exists and was made from the same source, '
                          'style, models and options, as recorded in earlier manifests (default)')
  rerun.add_argument('--overwrite', dest='skip_existing', action='store_false', default=None,
                     help='render every pair again')
  p.add_argument('--gallery-rows', '--gallery_rows', type=int, default=200,
                 help='write OUTPUT/index.html, a contact sheet of the first N content pictures '
                      'in every style; 0: none (default: %(default)s)')
  p.add_argument('--plan', action='store_true',
                 help='read the inputs and the state, print how many pairs would be rendered, '
                      'skipped and refused, with an estimated time; write nothing')
  p.add_argument('--run-id', '--run_id', default=None,
                 help='names this run\'s manifest files; one run id per output (default: '
                      'the UTC start time and a random suffix, e.g. '
                      '20261128T030000.123456Z-1a2b3c)')
  return p


@dataclasses.dataclass(frozen=True, kw_only=True)
class JobSettings:
  """The job's own settings, checked and complete: what every step is built from."""
  content: tuple[str, ...]
  content_list: tuple[str, ...]
  styles: tuple[str, ...]
  styles_list: tuple[str, ...]
  blends: tuple[Blend, ...]
  output: str  # absolute when local, so manifests and listings name files alike
  model: str
  model_dir: str | None
  num_threads: int
  rendering: rendering.Rendering
  strengths: tuple[float, ...]  # sorted, rounded to 2 decimals as output names carry them
  max_pixels: int
  max_bytes: int
  skip_existing: bool
  gallery_rows: int
  run_id: str
  started_at: str  # UTC, ISO 8601: stamps every manifest row
  cache_control: str | None = None  # of gs:// outputs; metadata only, not in fingerprints
  plan_only: bool = False  # --plan: count what a run would do, write nothing


def default_run_id(now: datetime.datetime) -> str:
  """The UTC start time to the microsecond and a random suffix: unique, and sorted by time."""
  return f'{now:%Y%m%dT%H%M%S}.{now:%f}Z-{secrets.token_hex(3)}'


def _beam_parser() -> argparse.ArgumentParser:
  """A parser of every option Beam knows, built as `PipelineOptions.get_all_options` builds it."""
  beam_parser = _BeamArgumentParser(allow_abbrev=False)
  for options_class in {str(c): c for c in PipelineOptions.__subclasses__()}.values():
    options_class._add_argparse_args(beam_parser)  # as Beam itself gathers them
  return beam_parser


def _refuse_unknown(p: argparse.ArgumentParser, beam_args: list[str]) -> None:
  """Beam only warns about an argument it cannot parse, and the job would run with its defaults:
  a nightly job must stop instead, with a suggestion where one is close."""
  beam_parser = _beam_parser()
  _, unknown = beam_parser.parse_known_args(beam_args)
  if not unknown:
    return
  known = [name for action in p._actions + beam_parser._actions
           for name in action.option_strings if name.startswith('--')]
  problems, stray = [], []
  for k, arg in enumerate(unknown):
    name = arg.split('=', 1)[0]
    if not name.startswith('-'):
      if not (k and unknown[k - 1].startswith('-') and '=' not in unknown[k - 1]):
        stray.append(arg)  # not the value of an unknown flag
      continue
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
    problems.append(f'unknown argument {name}' + (f' (did you mean {close[0]}?)' if close else ''))
  if stray:
    more = f' and {len(stray) - 1} more' if len(stray) > 1 else ''
    problems.append(f'unexpected value {stray[0]!r}{more} (a glob the shell expanded? quote it: '
                    "--content 'photos/*.jpg')")
  p.error('; '.join(problems) + '. Arguments are the job\'s own (--help) or Beam pipeline '
          'options.')


def parse(argv: list[str]) -> tuple[JobSettings, list[str]]:
  """(job settings, Beam flags). Fails with a usage message on a bad job flag, and on any
  argument that neither the job nor Beam knows."""
  p = parser()
  job, beam_args = p.parse_known_args(argv)
  _refuse_unknown(p, beam_args)
  if not (job.content or job.content_list):
    p.error('give the content pictures: --content GLOB or --content-list FILE')
  if not (job.styles or job.styles_list or job.style_blend or job.content_list):
    p.error('give the styles: --styles GLOB, --styles-list FILE, --style-blend, or a "styles" '
            'column in a --content-list')
  if min(job.num_threads, job.max_pixels, job.max_bytes) < 1 or min(
      job.max_size, job.gallery_rows, job.working_size, job.feather) < 0:
    p.error('--num-threads, --max-pixels and --max-bytes must be >= 1; --max-size, '
            '--gallery-rows, --working-size and --feather >= 0')
  if job.sizes and job.box:
    p.error('--sizes and --box both set the output size: give one')
  if not 1 <= job.jpeg_quality <= 95:
    p.error('--jpeg-quality must be between 1 and 95')
  if not job.output.strip():
    p.error('--output is empty: give the folder or bucket prefix to write to (an unset shell '
            'variable?)')
  if job.run_id is not None and not RUN_ID.fullmatch(job.run_id):
    p.error(f'--run-id {job.run_id!r}: a run id names files in the output, so it is one plain '
            'name (letters, digits, "_", "-" and "."; not starting with "." or "-")')
  if job.num_threads > MAX_THREADS:
    p.error(f'--num-threads {job.num_threads}: at most {MAX_THREADS} threads per interpreter')
  if storage.is_pattern(job.output):
    p.error(f'--output {job.output!r} holds *, ? or [: the job lists its output with patterns, '
            'where such a name would hide what is done there; choose a name without them')
  output = job.output
  if FileSystems.get_scheme(output) is None:
    output = os.path.abspath(output)
  content, content_list = (tuple(map(inputs.absolute, uris))
                           for uris in (job.content, job.content_list))
  now = datetime.datetime.now(datetime.timezone.utc)
  settings = JobSettings(
      content=content, content_list=content_list,
      styles=tuple(job.styles), styles_list=tuple(job.styles_list),
      blends=tuple(job.style_blend), output=output,
      model=job.model, model_dir=job.model_dir, num_threads=job.num_threads,
      rendering=rendering.Rendering(
          frame=job.frame, max_size=job.max_size, box=job.box, box_mode=job.box_mode,
          fmt=job.format, jpeg_quality=job.jpeg_quality, progressive=job.progressive,
          background=job.background, preserve_colour=job.preserve_colour,
          working_size=job.working_size, keep_metadata=job.keep_metadata, sizes=job.sizes,
          feather=job.feather, cutout=job.cutout),
      strengths=tuple(sorted({round(v, 2) for values in job.strength or [[1.0]] for v in values})),
      max_pixels=job.max_pixels, max_bytes=job.max_bytes,
      skip_existing=job.skip_existing is not False,  # None: neither flag given
      gallery_rows=job.gallery_rows, run_id=job.run_id or default_run_id(now),
      started_at=now.isoformat(timespec='microseconds'), cache_control=job.cache_control,
      plan_only=job.plan)
  return settings, beam_args
