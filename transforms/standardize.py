"""Stage 2: mono, the configured sample rate, 16-bit PCM.

* :class:`StandardizeAudio`: clips with decoded float samples -> clips whose
  ``samples`` are 1-D int16 at ``sample_rate_hz``.

Channels are averaged, resampling uses soxr's high-quality filter, and the
result is quantized once to 16 bits, so every later stage measures exactly the
samples that are shipped as FLAC.
"""

from __future__ import annotations

import apache_beam as beam
import numpy as np
import soxr

from schemas.records import Clip
from transforms.common import StageFn, StageOutputs, apply_stage

__all__ = ['StandardizeAudio', 'standardize']


def standardize(samples: np.ndarray, *, sample_rate: int, target_rate: int) -> np.ndarray:
  """Downmixes ``(frames, channels)`` float audio, resamples it, returns int16."""
  mono = samples.mean(axis=1) if samples.ndim == 2 else samples
  mono = np.ascontiguousarray(mono, dtype=np.float32)
  if sample_rate != target_rate:
    mono = soxr.resample(mono, sample_rate, target_rate, quality='HQ')
  return np.round(np.clip(mono, -1.0, 32767 / 32768) * 32768).astype(np.int16)


class _StandardizeFn(StageFn):
  STAGE = 'standardize'

  def __init__(self, *, sample_rate_hz: int):
    self._rate = sample_rate_hz

  def process_clip(self, clip: Clip) -> Clip:
    pcm = standardize(clip.samples, sample_rate=clip.sample_rate, target_rate=self._rate)
    return clip.replace(samples=pcm, sample_rate=self._rate)


class StandardizeAudio(beam.PTransform):
  """Turns decoded audio into mono int16 at one sample rate.

  Args:
    sample_rate_hz: the output rate (the config's ``sample_rate_hz``).
  """
  def __init__(self, *, sample_rate_hz: int):
    super().__init__()
    self._rate = sample_rate_hz

  def expand(self, clips: beam.PCollection) -> StageOutputs:
    return apply_stage(clips, _StandardizeFn(sample_rate_hz=self._rate))
