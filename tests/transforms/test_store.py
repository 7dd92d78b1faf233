"""StoreAudio: content-addressed, written once, never under a user-supplied name."""

from __future__ import annotations

import glob
import os

import apache_beam as beam
import pytest

from tests.conftest import clip_of, local_pipeline
from transforms.store import StoreAudio, audio_uri

CLIP_ID = '0123456789abcdef0123456789abcdef'


def test_audio_uri_derives_from_the_content_hash_only():
  assert audio_uri('/o/audio', CLIP_ID) == f'/o/audio/01/{CLIP_ID}.flac'
  for bad in ('../../x', CLIP_ID.upper(), CLIP_ID[:-1], None):
    with pytest.raises(ValueError, match='clip_id'):
      audio_uri('/o/audio', bad)


def test_objects_are_written_once_and_never_rewritten(tmp_path):
  root = str(tmp_path / 'audio')
  clip = clip_of(upload_id='../../escape', clip_id=CLIP_ID, flac=b'fLaC first')
  with local_pipeline() as p:
    _ = (p | beam.Create([clip])) | StoreAudio(audio_root=root)
  path = audio_uri(root, CLIP_ID)
  with open(path, 'rb') as f:
    assert f.read() == b'fLaC first'
  with local_pipeline() as p:
    _ = (p | beam.Create([clip.replace(flac=b'fLaC again')])) | StoreAudio(audio_root=root)
  with open(path, 'rb') as f:
    assert f.read() == b'fLaC first'
  assert [os.path.relpath(p, root) for p in glob.glob(f'{root}/**', recursive=True)
          if os.path.isfile(p)] == [f'01/{CLIP_ID}.flac']
