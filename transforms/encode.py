"""Stage 6: encode each accepted clip as FLAC and name it by its content.

* :class:`EncodeClips`: clips of int16 samples -> clips carrying ``flac`` bytes
  and ``clip_id``; the samples are dropped so that only the compact FLAC
  crosses the shuffles that follow.

``clip_id`` is the first 32 hex digits of the SHA-256 of the sample rate and the
little-endian PCM: identical standardized audio has the same id, whatever file
it came from.
"""

from __future__ import annotations

import hashlib
import io

import apache_beam as beam
import numpy as np
import soundfile as sf

from schemas.records import Clip
from transforms.common import StageFn, StageOutputs, apply_stage

__all__ = ['EncodeClips', 'content_id', 'encode_flac']


def content_id(pcm16: np.ndarray, *, sample_rate: int) -> str:
  """The content hash that names a clip."""
  digest = hashlib.sha256(f'pcm_s16le:{sample_rate}:'.encode())
  digest.update(np.ascontiguousarray(pcm16, dtype='<i2').tobytes())
  return digest.hexdigest()[:32]


def encode_flac(pcm16: np.ndarray, *, sample_rate: int) -> bytes:
  """A complete FLAC file (PCM_16, mono) of the samples."""
  buffer = io.BytesIO()
  sf.write(buffer, pcm16, sample_rate, format='FLAC', subtype='PCM_16')
  return buffer.getvalue()


class _EncodeFn(StageFn):
  STAGE = 'encode'

  def process_clip(self, clip: Clip) -> Clip:
    return clip.replace(
        flac=encode_flac(clip.samples, sample_rate=clip.sample_rate),
        clip_id=content_id(clip.samples, sample_rate=clip.sample_rate),
        samples=None)


class EncodeClips(beam.PTransform):
  """FLAC-encodes each clip and gives it its content id."""
  def expand(self, clips: beam.PCollection) -> StageOutputs:
    return apply_stage(clips, _EncodeFn())
