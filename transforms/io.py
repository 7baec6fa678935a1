"""Reading and writing whole files through Beam's FileSystems, for any scheme (local, gs://, ...)."""
from __future__ import annotations

import uuid

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems


def read_bytes(uri: str) -> bytes:
  with FileSystems.open(uri, compression_type=CompressionTypes.UNCOMPRESSED) as f:
    return f.read()


def write_bytes(uri: str, data: bytes, mime_type: str = 'application/octet-stream') -> None:
  """Writes `data` so that no partial file ever shows at `uri`.

  An object store (gs://) makes an object visible only once its upload completes; a local file is
  written under a temporary name in the same folder and renamed into place (atomic on POSIX).
  """
  if FileSystems.get_scheme(uri) not in (None, 'file'):
    with FileSystems.create(uri, mime_type, CompressionTypes.UNCOMPRESSED) as f:
      f.write(data)
    return
  folder, name = uri.rsplit('/', 1) if '/' in uri else ('.', uri)
  partial = FileSystems.join(folder, f'.{name}.{uuid.uuid4().hex[:8]}.partial')
  with FileSystems.create(partial, mime_type, CompressionTypes.UNCOMPRESSED) as f:
    f.write(data)
  FileSystems.rename([partial], [uri])
