"""Stage 4: measure the quality of each standardized, trimmed clip.

* :class:`MeasureQuality`: clips -> clips whose ``metrics`` hold every field of
  :data:`schemas.records.METRIC_FIELDS` (``clipping_ratio`` comes from the
  decode stage, which sees the source before resampling smooths plateaus).

The metric functions live in :mod:`transforms.metrics`; this stage computes
them once per clip and shares the spectrum and the VAD pass between them.
"""

from __future__ import annotations

import apache_beam as beam
import numpy as np
import soxr
import webrtcvad

from schemas.config import MeasureConfig
from schemas.records import Clip
from transforms import metrics
from transforms.common import StageFn, StageOutputs, apply_stage

__all__ = ['MeasureQuality', 'measure_clip']

VAD_RATES = (8000, 16000, 32000, 48000)


def measure_clip(pcm16: np.ndarray, *, sample_rate: int, transcript: str | None,
                 vad: webrtcvad.Vad, config: MeasureConfig) -> dict[str, float | None]:
  """Every metric of a mono int16 clip except ``clipping_ratio``."""
  x = pcm16.astype(np.float32) / 32768
  duration_s = x.shape[0] / sample_rate
  vad_pcm, vad_rate = pcm16, sample_rate
  if sample_rate not in VAD_RATES:
    vad_pcm = np.round(soxr.resample(x, sample_rate, 16000) * 32767).astype(np.int16)
    vad_rate = 16000
  ratio, voiced = metrics.speech_ratio(vad_pcm, sample_rate=vad_rate, vad=vad)
  spectrum = metrics.power_spectrum(x)
  return {
      'duration_s': duration_s,
      'peak_dbfs': metrics.peak_dbfs(x),
      'loudness_lufs': metrics.loudness_lufs(x, sample_rate=sample_rate),
      'snr_db': metrics.wada_snr_db(x),
      'speech_ratio': ratio,
      'bandwidth_hz': metrics.bandwidth_hz(
          spectrum, sample_rate=sample_rate, threshold_db=config.bandwidth_threshold_db),
      'speaking_rate_cps': metrics.speaking_rate_cps(
          transcript, speech_s=voiced * metrics.VAD_FRAME_S),
      'dc_offset': metrics.dc_offset(x),
  }


class _MeasureFn(StageFn):
  STAGE = 'measure'

  def __init__(self, *, config: MeasureConfig):
    self._config = config
    self._vad = None

  def setup(self):
    self._vad = webrtcvad.Vad(self._config.vad_aggressiveness)

  def process_clip(self, clip: Clip) -> Clip:
    measured = measure_clip(clip.samples, sample_rate=clip.sample_rate,
                            transcript=clip.transcript, vad=self._vad, config=self._config)
    beam.metrics.Metrics.distribution('audio_dataset', 'measure.duration_ms').update(
        int(measured['duration_s'] * 1000))
    return clip.replace(metrics={**clip.metrics, **measured})


class MeasureQuality(beam.PTransform):
  """Computes the quality metrics of each clip.

  Args:
    config: VAD aggressiveness and the bandwidth threshold.
  """
  def __init__(self, *, config: MeasureConfig):
    super().__init__()
    self._config = config

  def expand(self, clips: beam.PCollection) -> StageOutputs:
    return apply_stage(clips, _MeasureFn(config=self._config))
