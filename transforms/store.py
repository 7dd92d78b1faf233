"""Nightly builds: the content-addressed audio store, written once per clip.

* :class:`StoreAudio`: encoded clips -> the same clips, once each clip's FLAC
  is stored at :func:`audio_uri`: ``AUDIO_ROOT/HH/CLIP_ID.flac``, where
  ``CLIP_ID`` is the clip's content hash (:func:`~transforms.encode.content_id`)
  and ``HH`` its first two hex digits (a few thousand objects per prefix at
  most, for listings and local directories).

An object is written once: if it exists it is left alone (a rerun of a killed
night, or a clip published before), so audio is never re-encoded or rewritten
on later nights; snapshot manifests reference it by URI. An object is written
beside its name and renamed, so a run killed mid-write never leaves a partial
object under a final name. The path derives from the content hash only, never
from upload metadata. A failure to store fails the run (it is retried, not
turned into a reject), so no manifest references missing audio.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from schemas.records import Clip
from transforms.common import inc_counter

__all__ = ['StoreAudio', 'audio_uri', 'STAGE']

STAGE = 'store'
_CLIP_ID_RE = re.compile(r'^[0-9a-f]{32}$')


def audio_uri(audio_root: str, clip_id: str) -> str:
  """Where the clip's FLAC lives: ``AUDIO_ROOT/HH/CLIP_ID.flac``."""
  if not isinstance(clip_id, str) or not _CLIP_ID_RE.match(clip_id):
    raise ValueError(f'clip_id={clip_id!r} is not a content hash of 32 hex digits')
  return f'{audio_root.rstrip("/")}/{clip_id[:2]}/{clip_id}.flac'


class _StoreFn(beam.DoFn):
  def __init__(self, *, audio_root: str):
    self._audio_root = audio_root

  def process(self, clip: Clip) -> Iterator[Clip]:
    inc_counter(STAGE, 'received')
    uri = audio_uri(self._audio_root, clip.clip_id)
    if FileSystems.exists(uri):
      inc_counter(STAGE, 'already_stored')
    else:
      tmp = f'{uri}.{uuid.uuid4().hex[:12]}.tmp'
      with FileSystems.create(tmp, mime_type='audio/flac',
                              compression_type=CompressionTypes.UNCOMPRESSED) as f:
        f.write(clip.flac)
      FileSystems.rename([tmp], [uri])
      inc_counter(STAGE, 'stored')
      inc_counter(STAGE, 'stored_bytes', len(clip.flac))
    inc_counter(STAGE, 'emitted')
    yield clip


class StoreAudio(beam.PTransform):
  """Stores each clip's FLAC in the content-addressed audio store, once.

  Args:
    audio_root: the store's root, ``OUT/audio`` (local or ``gs://``).
  """
  def __init__(self, *, audio_root: str):
    super().__init__()
    self._audio_root = audio_root.rstrip('/')

  def expand(self, clips: beam.PCollection) -> beam.PCollection:
    return clips | 'Store' >> beam.ParDo(_StoreFn(audio_root=self._audio_root))
