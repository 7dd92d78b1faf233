"""A real GCS JSON-API server on loopback, and the environment that points clients at it.

:class:`GcsEmulator` runs ``gcp-storage-emulator`` (a PyPI package) in memory
in a subprocess on a free port of 127.0.0.1. :func:`emulator_env` is what a
process needs to use it through Beam's GcsIO without waiting for credentials:

* ``STORAGE_EMULATOR_HOST`` (with its scheme) sends google-cloud-storage to it;
* ``GOOGLE_APPLICATION_CREDENTIALS`` names an ``authorized_user`` file whose
  access token is valid until 2999, so ``google.auth.default()`` answers at
  once and never refreshes. Without it, Beam's credential discovery
  (``apache_beam.internal.gcp.auth``) retries for about 20 s in every process,
  the driver and each worker, before it falls back to an anonymous client;
* ``GOOGLE_CLOUD_PROJECT`` spares the project lookup (which would run
  ``gcloud``), and ``NO_GCE_CHECK`` the metadata-server probe.

The variables are set in ``os.environ``, so the worker processes of the
FnApiRunner, the job service and the worker pool inherit them.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

__all__ = ['GcsEmulator', 'emulator_env', 'free_port', 'PROJECT']

PROJECT = 'audio-dataset-test'
_CREDENTIALS = {'type': 'authorized_user', 'client_id': 'emulator', 'client_secret': 'emulator',
                'refresh_token': 'emulator', 'token': 'emulator',
                'expiry': '2999-01-01T00:00:00Z'}


def free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


class GcsEmulator:
  """``gcp-storage-emulator`` in memory, in a subprocess, on a free loopback port.

  Args:
    workdir: the subprocess's working directory and log file's place.
    start_timeout_s: how long to wait for it to answer.
  """
  def __init__(self, *, workdir: str, start_timeout_s: float = 30.0):
    self._workdir = workdir
    self._timeout_s = start_timeout_s
    self._process: subprocess.Popen | None = None
    self.url = ''

  def start(self) -> GcsEmulator:
    port = free_port()
    self.url = f'http://127.0.0.1:{port}'
    log = open(os.path.join(self._workdir, 'emulator.log'), 'wb')  # noqa: SIM115
    self._process = subprocess.Popen(
        [sys.executable, '-m', 'gcp_storage_emulator', 'start', '--host', '127.0.0.1',
         '--port', str(port), '--in-memory', '--quiet'],
        cwd=self._workdir, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    deadline = time.monotonic() + self._timeout_s
    while True:
      try:
        with urllib.request.urlopen(f'{self.url}/', timeout=1) as response:
          if response.status == 200:
            return self
      except OSError:
        pass
      if self._process.poll() is not None or time.monotonic() > deadline:
        self.stop()
        raise RuntimeError(f'the GCS emulator did not start on {self.url}; see '
                           f'{self._workdir}/emulator.log')
      time.sleep(0.1)

  def stop(self) -> None:
    if self._process is not None and self._process.poll() is None:
      self._process.terminate()
      try:
        self._process.wait(timeout=10)
      except subprocess.TimeoutExpired:
        self._process.kill()
        self._process.wait()
    self._process = None

  def client(self, *, url: str | None = None) -> storage.Client:
    """A client of the emulator (or of ``url``, e.g. a proxy in front of it)."""
    return storage.Client(project=PROJECT, credentials=AnonymousCredentials(),
                          client_options={'api_endpoint': url or self.url})

  def __enter__(self) -> GcsEmulator:
    return self.start()

  def __exit__(self, *exc) -> None:
    self.stop()


@contextlib.contextmanager
def emulator_env(url: str, *, workdir: str) -> Iterator[dict[str, str]]:
  """Points this process and its future children at the GCS server ``url``."""
  credentials = os.path.join(workdir, 'emulator-credentials.json')
  with open(credentials, 'w', encoding='utf-8') as f:
    json.dump(_CREDENTIALS, f)
  env = {'STORAGE_EMULATOR_HOST': url, 'GOOGLE_APPLICATION_CREDENTIALS': credentials,
         'GOOGLE_CLOUD_PROJECT': PROJECT, 'NO_GCE_CHECK': 'true'}
  saved = {name: os.environ.get(name) for name in env}
  os.environ.update(env)
  try:
    yield env
  finally:
    for name, value in saved.items():
      if value is None:
        os.environ.pop(name, None)
      else:
        os.environ[name] = value
