"""Bad inputs derived from generated pictures, for the fault-injection tests (no binary junk
committed): each builder writes one file and returns its path."""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from conftest import gradient_picture
from PIL import Image


def _png_chunk(kind: bytes, data: bytes) -> bytes:
  return (struct.pack('>I', len(data)) + kind + data
          + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff))


def decompression_bomb(path, side: int = 40000):
  """A ~100-byte PNG header claiming side x side pixels: refused before any decoding."""
  header = struct.pack('>IIBBBBB', side, side, 8, 0, 0, 0, 0)  # 8-bit grayscale
  data = zlib.compress(b'\x00' * 1024)
  path.write_bytes(b'\x89PNG\r\n\x1a\n' + _png_chunk(b'IHDR', header)
                   + _png_chunk(b'IDAT', data) + _png_chunk(b'IEND', b''))
  return path


def truncated_jpeg(path):
  buffer = io.BytesIO()
  gradient_picture(300, 200).save(buffer, 'JPEG')
  path.write_bytes(buffer.getvalue()[: buffer.tell() // 2])
  return path


def png_with_corrupt_chunk(path):
  buffer = io.BytesIO()
  gradient_picture(120, 80).save(buffer, 'PNG')
  data = bytearray(buffer.getvalue())
  start = data.index(b'IDAT') + 4
  data[start + 20: start + 60] = bytes(40)  # damaged compressed pixels, CRC left stale
  path.write_bytes(bytes(data))
  return path


def exif_rotated_jpeg(path, orientation: int = 6):
  exif = Image.Exif()
  exif[0x0112] = orientation
  gradient_picture(60, 40).save(path, 'JPEG', exif=exif)
  return path


def animated_gif(path):
  frames = [gradient_picture(40, 30, seed) for seed in (1, 2)]
  frames[0].save(path, 'GIF', save_all=True, append_images=frames[1:])
  return path


def sixteen_bit_png(path):
  levels = np.asarray(gradient_picture(64, 48).convert('L'), np.uint16) * 257
  Image.fromarray(levels).save(path)
  return path


def palette_with_transparency(path):
  picture = gradient_picture(50, 40).convert('P', palette=Image.Palette.ADAPTIVE, colors=16)
  picture.info['transparency'] = 0
  picture.save(path, transparency=0)
  return path
