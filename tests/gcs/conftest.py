"""GCS fixtures: the emulator on loopback, the environment that points Beam at it, a seeded bucket.

The emulator and the environment live for the session; each test that
writes makes its own bucket, so tests do not see each other's objects.
"""

from __future__ import annotations

import itertools

import pytest

from tests.gcs.emulator import GcsEmulator, emulator_env
from tests.gcs.sample import session_sample, upload_files

UPLOADS_BUCKET = 'uploads'
UPLOADS_PREFIX = 'incoming'
_BUCKET_NUMBERS = itertools.count()


@pytest.fixture(scope='session')
def gcs(tmp_path_factory):
  """The running emulator, with this process's environment pointing at it."""
  workdir = str(tmp_path_factory.mktemp('gcs'))
  with GcsEmulator(workdir=workdir) as emulator, emulator_env(emulator.url, workdir=workdir):
    yield emulator


@pytest.fixture(scope='session')
def sample(tmp_path_factory):
  return session_sample(tmp_path_factory)


@pytest.fixture(scope='session')
def uploads_uri(gcs, sample):
  """``gs://uploads/incoming``: the sample's files, as contributors' apps upload them."""
  root, _ = sample
  bucket = gcs.client().create_bucket(UPLOADS_BUCKET)
  for name in upload_files(root):
    bucket.blob(f'{UPLOADS_PREFIX}/{name}').upload_from_filename(f'{root}/{name}')
  return f'gs://{UPLOADS_BUCKET}/{UPLOADS_PREFIX}'


@pytest.fixture(scope='session')
def new_bucket(gcs):
  """Makes an empty bucket and returns its name."""
  def make(prefix: str = 'out') -> str:
    name = f'{prefix}-{next(_BUCKET_NUMBERS)}'
    gcs.client().create_bucket(name)
    return name
  return make
