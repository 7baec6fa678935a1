"""The names the job keeps for itself at the top of `--output`: no style id may take one.

Outputs go to `OUTPUT/STYLE_ID/...`, so a style named like one of the job's own files or folders
would write among them (or turn the gallery page into a folder). Every name the job writes at the
top starts with `_`, but for the gallery's page, which keeps the name a browser opens by default.
"""
from __future__ import annotations

MANIFEST_DIR = '_manifest'
STATE_DIR = '_state'
GALLERY_DIR = '_gallery'
GALLERY_PAGE = 'index.html'


def is_reserved(style_id: str) -> bool:
  """Case-insensitive, as some filesystems are."""
  return style_id.startswith('_') or style_id.lower() == GALLERY_PAGE
