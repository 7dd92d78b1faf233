"""Stage 3: cut leading and trailing silence, keeping some padding.

* :class:`TrimSilence`: clips of int16 samples -> trimmed clips, and a
  ``silence`` reject for clips in which nothing rises above the threshold.

A 25 ms frame (10 ms hop) counts as sound when its RMS level is within
``top_db`` of the loudest frame and above ``floor_dbfs``. The kept span runs
from the first to the last sound frame, widened by ``padding_s`` on each side.
"""

from __future__ import annotations

import apache_beam as beam
import numpy as np

from schemas.config import TrimConfig
from schemas.records import Clip
from transforms.common import RejectUpload, StageFn, StageOutputs, apply_stage
from transforms.metrics import frame_signal

__all__ = ['TrimSilence', 'sound_span']

FRAME_S = 0.025
HOP_S = 0.010


def sound_span(pcm16: np.ndarray, *, sample_rate: int, config: TrimConfig
               ) -> tuple[int, int] | None:
  """``(start, stop)`` sample indices of the padded sound span, or None."""
  x = pcm16.astype(np.float32) / 32768
  frame, hop = int(FRAME_S * sample_rate), int(HOP_S * sample_rate)
  frames = frame_signal(x, frame=frame, hop=hop)
  if frames.shape[0] == 0:
    frames = x[None, :]
  level_db = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-20)
  threshold = max(level_db.max() - config.top_db, config.floor_dbfs)
  loud = np.flatnonzero(level_db > threshold)
  if loud.size == 0:
    return None
  pad = int(config.padding_s * sample_rate)
  start = max(0, loud[0] * hop - pad)
  stop = min(x.shape[0], loud[-1] * hop + frame + pad)
  return int(start), int(stop)


class _TrimFn(StageFn):
  STAGE = 'trim'

  def __init__(self, *, config: TrimConfig):
    self._config = config

  def process_clip(self, clip: Clip) -> Clip:
    span = sound_span(clip.samples, sample_rate=clip.sample_rate, config=self._config)
    if span is None:
      raise RejectUpload('silence', f'no 25 ms frame rises above '
                         f'{self._config.floor_dbfs:g} dBFS')
    start, stop = span
    return clip.replace(samples=clip.samples[start:stop],
                        trim_start_s=start / clip.sample_rate,
                        trim_end_s=(clip.samples.shape[0] - stop) / clip.sample_rate)


class TrimSilence(beam.PTransform):
  """Trims leading and trailing silence.

  Args:
    config: the relative (``top_db``) and absolute (``floor_dbfs``) thresholds
      and the padding kept around the sound.
  """
  def __init__(self, *, config: TrimConfig):
    super().__init__()
    self._config = config

  def expand(self, clips: beam.PCollection) -> StageOutputs:
    return apply_stage(clips, _TrimFn(config=self._config))
