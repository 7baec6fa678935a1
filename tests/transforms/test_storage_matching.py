"""The job's own glob matching and guarded reads: every name is matched, nothing is waited on."""
from __future__ import annotations

import os
import threading

import pytest
from conftest import gradient_picture

from models import imaging
from transforms import storage

NAMES = ['plain.jpg', 'back\\slash.jpg', 'star*.jpg', 'q[1].jpg', 'what?.jpg', ' lead space.jpg',
         'tab\tname.jpg', 'new\nline.jpg', 'émoji 📷.jpg', os.fsdecode(b'caf\xe9.jpg')]


@pytest.fixture
def folder(tmp_path):
  for name in NAMES:
    gradient_picture(8, 6).save(os.path.join(tmp_path, name), 'JPEG')
  (tmp_path / 'sub').mkdir()
  gradient_picture(8, 6).save(tmp_path / 'sub' / 'deep.jpg')
  (tmp_path / 'folder.jpg').mkdir()
  os.mkfifo(tmp_path / 'fifo.jpg')
  os.symlink(tmp_path / 'nowhere', tmp_path / 'dangling.jpg')
  os.symlink(tmp_path / 'loop.jpg', tmp_path / 'loop.jpg')
  return tmp_path


def test_star_matches_every_name_in_its_folder_and_nothing_below(folder):
  found = {os.path.basename(f.path): f for f in storage.match(f'{folder}/*')}
  assert set(found) == set(NAMES) | {'fifo.jpg', 'dangling.jpg', 'loop.jpg'}  # no folders
  assert all(found[n].problem is None and found[n].version for n in NAMES)
  assert found['fifo.jpg'].problem == 'not a regular file: a FIFO'
  assert 'dangling' in found['dangling.jpg'].problem and found['loop.jpg'].problem


def test_double_star_crosses_folders_and_patterns_keep_their_meaning(folder):
  everything = {os.path.relpath(f.path, folder) for f in storage.match(f'{folder}/**')}
  assert 'sub/deep.jpg' in everything and set(NAMES) <= everything
  assert {os.path.basename(f.path) for f in storage.match(f'{folder}/*/deep.jpg')} == {'deep.jpg'}
  assert {os.path.basename(f.path) for f in storage.match(f'{folder}/q?1?.jpg')} == {'q[1].jpg'}
  assert {os.path.basename(f.path) for f in storage.match(f'{folder}/[bp]*')} == {
      'back\\slash.jpg', 'plain.jpg'}


def test_a_pattern_naming_an_existing_file_is_that_file(folder):
  (found,) = storage.match(f'{folder}/q[1].jpg')  # as a glob it would mean "q1.jpg"
  assert found.path.endswith('/q[1].jpg') and found.problem is None
  assert storage.match(f'{folder}/star*.jpg', limit=5)[0].path.endswith('star*.jpg')


def test_relative_patterns_give_relative_paths(folder, monkeypatch):
  monkeypatch.chdir(folder)
  assert [f.path for f in storage.match('sub/*')] == ['sub/deep.jpg']
  assert 'plain.jpg' in [f.path for f in storage.match('*.jpg')]


def _finishes(function, seconds=10.0):
  """Runs `function` in a thread; (finished in time, what it raised or returned)."""
  box = {}

  def call():
    try:
      box['value'] = function()
    except Exception as e:  # noqa: BLE001 - the test looks at what was raised
      box['value'] = e
  thread = threading.Thread(target=call, daemon=True)
  thread.start()
  thread.join(seconds)
  return not thread.is_alive(), box.get('value')


def test_a_fifo_is_refused_without_being_opened(folder):
  done, value = _finishes(lambda: storage.read_bytes(str(folder / 'fifo.jpg')))
  assert done, 'reading a FIFO must not wait for a writer'
  assert isinstance(value, storage.NotARegularFile) and 'FIFO' in str(value)


def test_a_large_file_is_refused_having_read_no_more_than_the_limit(tmp_path):
  big = tmp_path / 'zeros.jpg'
  big.write_bytes(b'\xff\xd8\xff' + b'\0' * 5_000_000)  # a JPEG signature, then junk
  with pytest.raises(storage.FileTooLarge, match='over 1000000 bytes'):
    storage.read_bytes(str(big), 1_000_000)
  assert len(storage.read_bytes(str(big), 6_000_000)) == 5_000_003


def test_junk_is_refused_by_its_first_bytes(tmp_path):
  junk = tmp_path / 'zeros.jpg'
  junk.write_bytes(b'\0' * 3_000_000)
  seen = []

  def check(head):
    seen.append(len(head))
    imaging.check_signature(head)
  with pytest.raises(imaging.ImageError, match='not an image format'):
    storage.read_bytes(str(junk), None, check)
  assert seen == [storage.HEAD_BYTES]  # the rest was never read


@pytest.mark.parametrize('fmt', ['JPEG', 'PNG', 'GIF', 'WEBP', 'TIFF', 'BMP', 'TGA'])
def test_every_picture_format_passes_the_signature_check(tmp_path, fmt):
  path = tmp_path / f'p.{fmt.lower()}'
  gradient_picture(16, 12).save(path, fmt)
  imaging.check_signature(path.read_bytes()[:storage.HEAD_BYTES])


@pytest.mark.parametrize('junk', [b'', b'\0' * 100, b'hello world', b'<svg/>', b'%PDF-1.4'])
def test_what_is_no_picture_fails_the_signature_check(junk):
  with pytest.raises(imaging.ImageError):
    imaging.check_signature(junk)
