"""What flows between the steps, and the dead-letter record every failure becomes."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
from PIL import Image

FAILED = 'failed'  # the tag of every step's dead-letter output
SKIPPED = 'skipped'  # the tag of pairs a re-run finds already done
PLANNED = 'planned'  # the tag of each content's count of pairs, for the run's accounting
WRITTEN = 'written'
METRICS_NAMESPACE = 'batch_stylize'
BLEND_PREFIX = 'blend:'  # the URI a blended style's ref has: it has no file of its own


def content_key(content_id: str | None, content_uri: str) -> bytes:
  """What a content picture's outputs are joined and planned under: its id (the name its outputs
  take, so two pictures given one id meet in one place), or its URI when it has no usable id.
  Bytes, because a file name need not be valid UTF-8 and Beam's string coder insists on it."""
  if content_id:
    return b'id:' + content_id.encode('utf-8', 'surrogateescape')
  return b'uri:' + content_uri.encode('utf-8', 'surrogateescape')


@dataclasses.dataclass(frozen=True)
class ImageRef:
  """An input picture: where it is and the id its outputs are named after (None: not valid)."""
  uri: str
  id: str | None
  problem: str | None = None  # why the id is unusable, found when the row was read
  version: str | None = None  # size@mtime where known: changes when the file changes
  styles: tuple[str, ...] | None = None  # a content's own style references; None: --styles
  mask: str | None = None  # a grayscale picture: where to stylize (white) and not (black)
  mask_version: str | None = None


@dataclasses.dataclass(frozen=True)
class StyleResult:
  """A predicted style: its bottleneck, or why there is none."""
  ref: ImageRef
  bottleneck: np.ndarray | None = None
  error: Failure | None = None


@dataclasses.dataclass(frozen=True)
class ContentToDo:
  """A content picture and the styles it still needs, each with the pair's fingerprint."""
  ref: ImageRef
  fingerprints: dict[tuple[str, float], str]  # (style_id, strength) -> fingerprint of the pair

  def needs_own_bottleneck(self) -> bool:
    return any(strength < 1.0 for _, strength in self.fingerprints)


@dataclasses.dataclass(kw_only=True)
class ContentImage:
  """A decoded content picture, ready for the transfer network, and how to deliver its output."""
  todo: ContentToDo
  network_input: np.ndarray
  box: tuple[int, int, int, int]  # the picture's region of the network's output
  size: tuple[int, int]  # delivered size of the whole frame
  crop: tuple[int, int, int, int] | None = None  # then cut to this ("fill" into a box)
  source: Image.Image | None = None  # the content at `size`, for colour preservation and masks
  mask: Image.Image | None = None  # where the output is stylized (mode L, at `size`)
  alpha: Image.Image | None = None  # the content's transparency at `size`
  notes: tuple[str, ...] = ()
  style_input: np.ndarray | None = None  # the content as a style, for strengths below 1
  working: np.ndarray | None = None  # the content at --working-size, to paint in full
  exif: bytes = b''  # kept only with --keep-metadata


@dataclasses.dataclass(kw_only=True)
class StylizedImage:
  ref: ImageRef
  style_id: str
  strength: float
  fingerprint: str
  picture: Image.Image
  notes: tuple[str, ...] = ()
  exif: bytes = b''


@dataclasses.dataclass(frozen=True)
class Failure:
  """A dead letter: one (content, style) pair that produced no output, and why."""
  content_uri: str
  content_id: str | None
  style_id: str | None
  stage: str
  error_type: str
  message: str
  strength: float | None = None

  @classmethod
  def of(cls, error: BaseException, stage: str, content: ImageRef | None = None,
         style_id: str | None = None, strength: float | None = None) -> Failure:
    message = ' '.join(str(error).split())[:500] or type(error).__name__
    return cls(content.uri if content else '', content.id if content else None, style_id,
               stage, type(error).__name__, message, strength)

  def for_pair(self, content: ImageRef, style_id: str, strength: float) -> Failure:
    """This failure (say, of a style) charged to one (content, style, strength) pair."""
    return dataclasses.replace(self, content_uri=content.uri, content_id=content.id,
                               style_id=style_id, strength=strength)

  def row(self, model_sha256: str) -> ManifestRow:
    return ManifestRow(content_uri=self.content_uri, content_id=self.content_id,
                       style_id=self.style_id, strength=self.strength, status=FAILED,
                       model_sha256=model_sha256, stage=self.stage, error_type=self.error_type,
                       message=self.message)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ManifestRow:
  """One (content, style, strength) pair's outcome: the one shape of every manifest row, written,
  skipped or failed. README's "Output layout" lists these fields; a test holds it to them."""
  content_uri: str
  content_id: str | None
  style_id: str | None
  strength: float | None
  status: str  # WRITTEN, SKIPPED or FAILED
  model_sha256: str  # the transfer model's
  output_uri: str | None = None  # None when failed; with --sizes, the widest file
  variants: tuple[str, ...] = ()  # with --sizes: every file of the pair, narrowest first
  fingerprint: str | None = None  # of everything the output is made from; None when failed
  notes: tuple[str, ...] = ()  # what decoding changed (orientation, colour profile, ...)
  stage: str | None = None  # failed only: the step that failed, the error's type and message
  error_type: str | None = None
  message: str | None = None
  run_id: str | None = None  # stamped by WriteManifest, with the run's start time (UTC)
  recorded_at: str | None = None

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self))
