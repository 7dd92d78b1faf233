"""Stage 1: decode every upload to float32 PCM plus the facts of its source.

* :class:`DecodeAudio`: clips -> clips with ``samples`` of shape
  ``(frames, channels)`` at the source rate, and rejects.

The container is recognised from the first bytes, never from the extension.
wav, flac, ogg (vorbis, opus), mp3 and aiff go through soundfile (libsndfile);
webm/matroska, mp4/m4a and ADTS AAC, which browsers and phones record, go
through PyAV (FFmpeg). A header claiming more than the configured duration is
rejected before the audio is decoded; a stream without a usable header is
decoded only up to that limit (the codecs: :mod:`transforms.codecs`).
:class:`DecodeAudio` decodes in a child process
(:mod:`transforms.decode_process`) with a time limit and a memory bound per
upload, so that no crafted file can stall, exhaust or crash the worker.
"""

from __future__ import annotations

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from schemas.config import DecodeConfig
from schemas.records import Clip
from transforms.codecs import Decoded, decode_bytes, sniff_container
from transforms.common import StageFn, StageOutputs, apply_stage, stage_timer
from transforms.decode_process import DecoderProcess
from transforms.metrics import clipping_ratio

# The codecs (transforms.codecs) are re-exported: callers decode with transforms.decode.
__all__ = ['DecodeAudio', 'sniff_container', 'decode_bytes', 'Decoded', 'CHILD_STAGE']

CHILD_STAGE = 'decode_process'
"""``decode_process.us``: the decoder child's CPU per upload, which ``decode.us``
(the worker thread's) does not include."""


class _DecodeFn(StageFn):
  STAGE = 'decode'

  def __init__(self, *, config: DecodeConfig):
    self._config = config
    self._decoder = None

  def setup(self) -> None:
    self._decoder = DecoderProcess(config=self._config)
    self._decoder.start()

  def teardown(self) -> None:
    if self._decoder is not None:
      self._decoder.close()

  def process_clip(self, clip: Clip) -> Clip:
    with FileSystems.open(clip.source_uri,
                          compression_type=CompressionTypes.UNCOMPRESSED) as f:
      data = f.read()
    try:
      decoded = self._decoder.decode(data)
    finally:
      stage_timer(CHILD_STAGE).update(int(self._decoder.last_cpu_s * 1e6))
    frames, channels = decoded.samples.shape
    metrics = dict(clip.metrics, clipping_ratio=clipping_ratio(
        decoded.samples, full_scale=decoded.full_scale,
        min_run=self._config.clipping_min_run))
    return clip.replace(
        samples=decoded.samples, sample_rate=decoded.sample_rate,
        container=decoded.container, codec=decoded.codec,
        source_sample_rate=decoded.sample_rate, source_channels=channels,
        source_duration_s=frames / decoded.sample_rate, metrics=metrics)


class DecodeAudio(beam.PTransform):
  """Decodes each upload and records its source facts and clipping.

  Args:
    config: limits on duration, sample rate and channels.
  """
  def __init__(self, *, config: DecodeConfig):
    super().__init__()
    self._config = config

  def expand(self, clips: beam.PCollection) -> StageOutputs:
    return apply_stage(clips, _DecodeFn(config=self._config))
