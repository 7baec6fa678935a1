"""Listing a gs:// glob in name-range slices, on the emulator: the slices together are exactly
the glob's files, each once, with the versions a metadata lookup gives."""
from __future__ import annotations

from transforms import storage

NAMES = ['0001.jpg', '3.jpg', '9z.jpg', 'A.jpg', 'Zebra.jpg', 'alpha.jpg', 'back\\slash.jpg',
         'm[1].jpg', 'zz.jpg', '~tilde.jpg', 'é.jpg', '_under.jpg', 'sub/deep.jpg', 'x.png']


def test_slices_cover_the_glob_exactly_once(gcs_emulator, gcs_bucket):
  root = f'gs://{gcs_bucket}/photos'
  for name in NAMES:
    gcs_emulator.upload(name.encode(), f'{root}/{name}')
  gcs_emulator.upload(b'elsewhere', f'gs://{gcs_bucket}/other/a.jpg')

  shards = storage.listing_shards(f'{root}/*.jpg')
  assert len(shards) > 1 and shards[0][1] is None and shards[-1][2] is None
  found = [f for shard in shards for f in storage.match_shard(shard)]
  expected = {f'{root}/{n}' for n in NAMES if '/' not in n and n.endswith('.jpg')}
  assert sorted(f.path for f in found) == sorted(expected)  # each once, '\\' included
  deep = [f.path for shard in storage.listing_shards(f'{root}/**')
          for f in storage.match_shard(shard)]
  assert sorted(deep) == sorted(f'{root}/{n}' for n in NAMES)
  for f in found:
    assert f.version == storage.version_of(f.path)  # a listing and a lookup agree


def test_a_local_pattern_is_one_walk(tmp_path):
  (tmp_path / 'a.jpg').write_bytes(b'x')
  (shard,) = storage.listing_shards(f'{tmp_path}/*.jpg')
  assert [f.path for f in storage.match_shard(shard)] == [f'{tmp_path}/a.jpg']


def test_an_existence_check_is_one_request(gcs_emulator, gcs_bucket, tmp_path):
  """The gallery checks each thumbnail it keeps: one request, where FileSystems makes several."""
  there = f'gs://{gcs_bucket}/g/there.jpg'
  gcs_emulator.upload(b'x', there)
  start = len(gcs_emulator.requests())
  storage.exists(there)  # this thread's client is made once
  # The client library also fetches a bucket's metadata once per client, on a background thread
  # of its own (for tracing attributes), whenever it gets there: it is left out of each check's
  # count, and must not happen more than once in all.
  bucket_lookup = f'/storage/v1/b/{gcs_bucket}?'
  for uri, expected in ((there, True), (f'gs://{gcs_bucket}/g/absent.jpg', False)):
    before = len(gcs_emulator.requests())
    assert storage.exists(uri) is expected
    made = [r for r in gcs_emulator.requests()[before:] if not r[1].startswith(bucket_lookup)]
    assert len(made) == 1 and made[0][1].startswith(f'/storage/v1/b/{gcs_bucket}/o/'), made
  lookups = [r for r in gcs_emulator.requests()[start:] if r[1].startswith(bucket_lookup)]
  assert len(lookups) <= 1, lookups
  (tmp_path / 'here.jpg').write_bytes(b'x')
  assert storage.exists(str(tmp_path / 'here.jpg')) and not storage.exists(str(tmp_path / 'no'))


def test_a_limited_match_stops_listing_early(gcs_emulator, gcs_bucket, monkeypatch):
  """The launcher asks whether a used output holds anything with `limit=1`: the listing is
  streamed, so that reads one object whatever the output holds, not all of them."""
  root = f'gs://{gcs_bucket}/out'
  names = [f'{root}/warm/{k:03d}.jpg' for k in range(30)] + [f'{root}/_manifest/run-1.json']
  for uri in names:
    gcs_emulator.upload(b'x', uri)
  real, pulled = storage.client(), []

  class Counting:  # the real client, counting the objects its listings hand over
    def list_blobs(self, *args, **kwargs):
      for blob in real.list_blobs(*args, **kwargs):
        pulled.append(blob.name)
        yield blob

  monkeypatch.setattr(storage, 'client', Counting)
  (found,) = storage.match(f'{root}/**', limit=1)
  assert found.path in names and len(pulled) == 1
  assert sorted(f.path for f in storage.match(f'{root}/**')) == sorted(names)
  pulled.clear()  # a name without a glob is one object: its prefix's first
  assert [f.path for f in storage.match(f'{root}/warm/001.jpg')] == [f'{root}/warm/001.jpg']
  assert storage.match(f'{root}/warm') == [] and len(pulled) <= 2
  assert storage.match(f'gs://{gcs_bucket}') == []  # a bare bucket names no file
