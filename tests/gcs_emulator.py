"""A local Cloud Storage for tests: the `gcp-storage-emulator` server on 127.0.0.1, in memory.

Fixtures (registered for every test by conftest.py's `pytest_plugins`):

  gcs_emulator  (session) starts the server in a subprocess on a free port and points both
                google-cloud-storage's `Client` and Beam's GCSFileSystem at it; yields a
                `GcsEmulator` with helpers to create buckets and upload, list and read objects.
  gcs_bucket    (function) a fresh, uniquely named bucket for one test; yields its name.

Nothing leaves the machine. While the fixture is active:

  STORAGE_EMULATOR_HOST           every `storage.Client` (Beam makes a new one per GCS call, in
                                  this process and in DirectRunner's worker subprocesses, which
                                  inherit the environment) sends its requests to the emulator.
  GOOGLE_APPLICATION_CREDENTIALS  a fake `authorized_user` file holding an access token that
                                  expires in 2999, so `google.auth.default()` succeeds at once and
                                  the token is never refreshed (no call to oauth2.googleapis.com).
                                  Without credentials, Beam's `auth._Credentials` retries
                                  `google.auth.default()` 4 times with backoff (about 45 s per
                                  process, probing the GCE metadata server each time) before it
                                  falls back to an anonymous client.
  GCE_METADATA_HOST, GCE_METADATA_IP, GCE_METADATA_ROOT
                                  a 127.0.0.1 port that is bound but never listens (so a connection
                                  there is refused at once, and nothing else can take the port):
                                  should anything still look for the GCE metadata server, it fails
                                  locally instead of waiting on 169.254.169.254.
  NO_GCE_CHECK=true               google-auth skips the GCE residency check (it compares with the
                                  lower-case "true").
  GOOGLE_CLOUD_PROJECT, CLOUDSDK_CORE_PROJECT
                                  a dummy project, so nothing asks gcloud or the metadata server.
  CLOUDSDK_CONFIG                 an empty folder: a developer's own gcloud credentials and
                                  settings are never read.
  NO_PROXY / no_proxy             127.0.0.1 and localhost bypass any configured HTTP proxy.
and API_ENDPOINT_OVERRIDE, GOOGLE_API_USE_CLIENT_CERTIFICATE, GOOGLE_CLOUD_UNIVERSE_DOMAIN and the
Regional Access Boundary switch are removed. Everything is restored at teardown.

Beam caches the credentials it resolves once per process (`apache_beam.internal.gcp.auth.
_Credentials`), while GCS clients themselves are made anew for each call (Beam 2.77). The fixture
clears that cache on entry (credentials resolved earlier, under another environment, must not be
used against the emulator) and puts the earlier state back at teardown (the fake credentials must
not outlive the emulator). google-auth reads the GCE_METADATA_* and NO_GCE_CHECK variables when
`google.auth.compute_engine._metadata` is first imported, so in this process they only matter if
that happens while the fixture is active; subprocesses always see them.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pathlib
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import pytest

HOST = '127.0.0.1'
PROJECT = 'emulator-test-project'
START_TIMEOUT_SECS = 30
START_ATTEMPTS = 3
# How the emulator logs each request it serves (http.server's request line, then the status).
REQUEST_LINE = re.compile(r'^"(GET|POST|PUT|PATCH|DELETE|HEAD) (\S+) HTTP/[\d.]+" \d+', re.M)

# Valid until 2999, so google-auth never refreshes it (a refresh would go to Google).
FAKE_CREDENTIALS = {
    'type': 'authorized_user',
    'client_id': 'emulator-test-client.apps.googleusercontent.com',
    'client_secret': 'emulator-test-secret',
    'refresh_token': 'emulator-test-refresh-token',
    'token': 'emulator-test-access-token',
    'expiry': '2999-01-01T00:00:00Z',
}


def split_uri(uri: str) -> tuple[str, str]:
  """gs://bucket/name -> (bucket, name)."""
  if not uri.startswith('gs://'):
    raise ValueError(f'not a gs:// URI: {uri!r}')
  bucket, _, name = uri[len('gs://'):].partition('/')
  return bucket, name


@dataclasses.dataclass
class GcsEmulator:
  """The running emulator, and a google-cloud-storage client talking to it."""
  endpoint: str  # http://127.0.0.1:PORT
  project: str
  log_path: pathlib.Path
  client: object  # google.cloud.storage.Client

  def create_bucket(self, name: str) -> str:
    self.client.create_bucket(name)
    return name

  def upload(self, source: bytes | str | os.PathLike, uri: str,
             content_type: str | None = None) -> str:
    """Uploads bytes, or the local file at `source`, to gs://bucket/name; returns the URI."""
    bucket, name = split_uri(uri)
    blob = self.client.bucket(bucket).blob(name)
    if isinstance(source, bytes):
      blob.upload_from_string(source, content_type=content_type or 'application/octet-stream')
    else:
      blob.upload_from_filename(os.fspath(source), content_type=content_type)
    return uri

  def upload_tree(self, folder: str | os.PathLike, uri_prefix: str) -> list[str]:
    """Uploads every file under a local folder, keeping relative paths; returns the URIs."""
    folder = pathlib.Path(folder)
    uris = []
    for path in sorted(p for p in folder.rglob('*') if p.is_file()):
      name = path.relative_to(folder).as_posix()
      uris.append(self.upload(path, f"{uri_prefix.rstrip('/')}/{name}"))
    return uris

  def list(self, uri_prefix: str) -> list[str]:
    """The gs:// URIs of all objects whose names start with the prefix, sorted."""
    bucket, prefix = split_uri(uri_prefix)
    return sorted(f'gs://{bucket}/{blob.name}'
                  for blob in self.client.list_blobs(bucket, prefix=prefix or None))

  def read(self, uri: str) -> bytes:
    bucket, name = split_uri(uri)
    return self.client.bucket(bucket).blob(name).download_as_bytes()

  def requests(self) -> list[tuple[str, str]]:
    """(method, path) of every request the emulator has served so far, from its log."""
    text = self.log_path.read_text(errors='replace')
    return REQUEST_LINE.findall(text)

  def delete_bucket(self, name: str) -> None:
    """Deletes the bucket and everything in it."""
    bucket = self.client.bucket(name)
    for blob in list(self.client.list_blobs(name)):
      blob.delete()
    bucket.delete()


def _free_port() -> int:
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.bind((HOST, 0))
    return s.getsockname()[1]


def _answers(endpoint: str) -> bool:
  try:
    with urllib.request.urlopen(endpoint + '/', timeout=2) as response:
      return response.status == 200 and response.read().strip() == b'OK'
  except (OSError, urllib.error.URLError):
    return False


def _start_server(log_path: pathlib.Path) -> tuple[subprocess.Popen, str]:
  """Starts the emulator on a free port; retries on another port if that one was taken."""
  failures = []
  for _ in range(START_ATTEMPTS):
    port = _free_port()
    endpoint = f'http://{HOST}:{port}'
    with open(log_path, 'ab') as log:
      process = subprocess.Popen(
          [sys.executable, '-m', 'gcp_storage_emulator', 'start', '--host', HOST,
           '--port', str(port), '--in-memory'],
          cwd=log_path.parent, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
          env={**os.environ, 'PYTHONUNBUFFERED': '1'})
    deadline = time.monotonic() + START_TIMEOUT_SECS
    while time.monotonic() < deadline and process.poll() is None:
      if _answers(endpoint):
        return process, endpoint
      time.sleep(0.05)
    _stop_server(process)
    failures.append(f'port {port}: exit code {process.returncode}')
  raise RuntimeError(f'gcp-storage-emulator did not start ({"; ".join(failures)}); '
                     f'its log: {log_path}\n{log_path.read_text(errors="replace")[-4000:]}')


def _stop_server(process: subprocess.Popen) -> None:
  if process.poll() is None:
    process.terminate()
    try:
      process.wait(timeout=10)
    except subprocess.TimeoutExpired:
      process.kill()
      process.wait()


@contextlib.contextmanager
def _fresh_beam_credentials():
  """Beam resolves credentials once per process; resolve them again under the emulator's
  environment, and put the earlier state back afterwards."""
  try:
    from apache_beam.internal.gcp import auth
  except ImportError:  # Beam absent: nothing is cached
    yield
    return
  cache = auth._Credentials
  with cache._credentials_lock:
    saved = (cache._credentials_init, cache._credentials)
    cache._credentials_init, cache._credentials = False, None
  try:
    yield
  finally:
    with cache._credentials_lock:
      cache._credentials_init, cache._credentials = saved


def _with_loopback(value: str | None) -> str:
  names = [n for n in (value or '').split(',') if n]
  return ','.join(names + [n for n in (HOST, 'localhost') if n not in names])


@pytest.fixture(scope='session')
def gcs_emulator(tmp_path_factory):
  """The running emulator (a `GcsEmulator`), with the environment pointing Cloud Storage at it."""
  with running(tmp_path_factory.mktemp('gcs_emulator')) as emulator:
    yield emulator


@contextlib.contextmanager
def running(folder: pathlib.Path):
  """Starts the emulator (its files and log in `folder`) and points Cloud Storage at it; yields a
  `GcsEmulator`. The fixture's body, usable outside pytest too (the benchmarks count requests)."""
  from google.auth.credentials import AnonymousCredentials
  from google.cloud import storage

  log_path = folder / 'emulator.log'
  credentials_path = folder / 'fake_credentials.json'
  credentials_path.write_text(json.dumps(FAKE_CREDENTIALS))
  (folder / 'gcloud').mkdir()

  # Bound, never listening: a connection to it is refused at once, and no one else can take it.
  dead_end = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
  dead_end.bind((HOST, 0))
  dead_end_address = f'{HOST}:{dead_end.getsockname()[1]}'

  process, endpoint = _start_server(log_path)
  env = pytest.MonkeyPatch()
  try:
    env.setenv('STORAGE_EMULATOR_HOST', endpoint)
    env.setenv('GOOGLE_APPLICATION_CREDENTIALS', str(credentials_path))
    env.setenv('GOOGLE_CLOUD_PROJECT', PROJECT)
    env.setenv('CLOUDSDK_CORE_PROJECT', PROJECT)
    env.setenv('CLOUDSDK_CONFIG', str(folder / 'gcloud'))
    for name in ('GCE_METADATA_HOST', 'GCE_METADATA_ROOT', 'GCE_METADATA_IP'):
      env.setenv(name, dead_end_address)
    env.setenv('NO_GCE_CHECK', 'true')
    env.setenv('NO_PROXY', _with_loopback(os.environ.get('NO_PROXY')))
    env.setenv('no_proxy', _with_loopback(os.environ.get('no_proxy')))
    for name in ('API_ENDPOINT_OVERRIDE', 'GOOGLE_API_USE_CLIENT_CERTIFICATE',
                 'GOOGLE_CLOUD_UNIVERSE_DOMAIN',
                 'GOOGLE_SDK_EXPERIMENTAL_PYTHON_REGIONAL_ACCESS_BOUNDARY_LOOKUP_ENABLED'):
      env.delenv(name, raising=False)
    client = storage.Client(project=PROJECT, credentials=AnonymousCredentials(),
                            client_options={'api_endpoint': endpoint})
    with _fresh_beam_credentials():
      yield GcsEmulator(endpoint, PROJECT, log_path, client)
  finally:
    env.undo()
    _stop_server(process)
    dead_end.close()


@pytest.fixture
def gcs_bucket(gcs_emulator):
  """A new, empty bucket in the emulator, for this test alone; yields its name."""
  name = f'test-{uuid.uuid4().hex[:16]}'
  gcs_emulator.create_bucket(name)
  yield name
  gcs_emulator.delete_bucket(name)
