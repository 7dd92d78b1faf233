"""Records that flow between stages, and the reject reason codes.

A :class:`Clip` is created for every upload by the discover stage and travels
through the stages, gaining samples, metrics and finally its FLAC bytes. Any
stage may instead turn it into a :class:`Reject`. Every upload ends as exactly
one accepted clip or one reject.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

__all__ = ['Clip', 'Reject', 'REASONS', 'METRIC_FIELDS', 'SPLITS']

SPLITS = ('train', 'dev', 'test')

METRIC_FIELDS = (
    'duration_s', 'peak_dbfs', 'clipping_ratio', 'loudness_lufs', 'snr_db',
    'speech_ratio', 'bandwidth_hz', 'speaking_rate_cps', 'dc_offset', 'dropout_ratio')
"""Quality metrics, as named in the output tables (all float64, nullable)."""

REASONS = {
    # discover
    'missing_sidecar': 'the upload has no NAME.json beside it',
    'missing_audio': 'a sidecar has no audio file beside it',
    'ambiguous_upload': 'several audio files share one sidecar',
    'invalid_metadata': 'the sidecar breaks the metadata contract',
    'missing_contributor': 'the sidecar names no contributor_id',
    'no_consent': 'consent is required and the sidecar does not grant it',
    'consent_withdrawn': 'the contributor withdrew consent (nightly withdrawals list)',
    'duplicate_upload_id': 'another upload has the same upload_id',
    'file_too_large': 'the file is larger than the configured maximum',
    # decode
    'empty_file': 'the file has no bytes',
    'unsupported_format': 'the content is not a supported audio container',
    'undecodable': 'the decoder failed on the content',
    'no_audio_stream': 'the container holds no audio stream',
    'invalid_sample_rate': 'the sample rate is outside the configured range',
    'too_many_channels': 'more channels than the configured maximum',
    'header_too_long': 'the header says the audio is longer than the maximum',
    'no_samples': 'the file decodes to no samples',
    'non_finite_samples': 'the audio contains NaN or infinite samples',
    'decode_timeout': 'decoding took longer than the per-upload time limit',
    'decode_out_of_memory': 'decoding needed more memory than the per-upload bound',
    'decoder_crashed': 'the decoder process died on the upload, also when tried again',
    # trim
    'silence': 'no frame rises above the silence threshold',
    # filter
    'too_short': 'shorter than the minimum duration after trimming',
    'too_long': 'longer than the maximum duration after trimming',
    'clipped': 'too much of the source sits at full scale',
    'too_quiet': 'integrated loudness below the minimum',
    'low_snr': 'estimated SNR below the minimum',
    'no_speech': 'too little of the clip is speech',
    'narrowband': 'bandwidth below the minimum',
    'speaking_rate': 'transcript length does not fit the speech duration',
    'dropouts': 'runs of digital zeros inside speech (lost packets or buffers)',
    # dedup
    'duplicate': 'identical standardized audio was kept from another upload',
    'near_duplicate': 'the same recording, transformed, was kept from another upload',
    # anywhere
    'internal_error': 'an unexpected error; the traceback is in detail',
}


@dataclasses.dataclass
class Clip:
  """One upload on its way to becoming a training clip.

  Source facts describe the file as uploaded; ``samples`` holds the current
  audio (float32 as decoded, int16 once standardized) at ``sample_rate`` Hz.
  """
  source_uri: str
  upload_id: str
  contributor_id: str | None = None
  size_bytes: int = 0
  transcript: str | None = None
  prompt_id: str | None = None
  locale: str | None = None
  uploaded_at: str | None = None
  consent: bool | None = None
  container: str | None = None
  codec: str | None = None
  source_sample_rate: int | None = None
  source_channels: int | None = None
  source_duration_s: float | None = None
  samples: np.ndarray | None = None
  sample_rate: int | None = None
  trim_start_s: float | None = None
  trim_end_s: float | None = None
  metrics: dict[str, float | None] = dataclasses.field(default_factory=dict)
  clip_id: str | None = None
  flac: bytes | None = None
  fingerprint: np.ndarray | None = None
  fingerprint_levels: np.ndarray | None = None
  split: str | None = None

  def replace(self, **changes: Any) -> Clip:
    return dataclasses.replace(self, **changes)


@dataclasses.dataclass(frozen=True)
class Reject:
  """An upload that was not accepted, and why.

  ``reason`` is the first failed rule (a code from :data:`REASONS`),
  ``reasons`` every failed rule, ``detail`` a sentence for a human.
  For duplicates, ``duplicate_of`` names the kept upload and
  ``cross_contributor`` says whether it belongs to another contributor.
  """
  source_uri: str
  upload_id: str
  contributor_id: str | None
  stage: str
  reason: str
  detail: str
  reasons: tuple[str, ...] = ()
  duplicate_of: str | None = None
  cross_contributor: bool | None = None
  source_duration_s: float | None = None
  metrics: dict[str, float | None] = dataclasses.field(default_factory=dict)

  @classmethod
  def of(cls, clip: Clip, *, stage: str, reason: str, detail: str,
         reasons: tuple[str, ...] = (), duplicate_of: str | None = None,
         cross_contributor: bool | None = None) -> Reject:
    if reason not in REASONS:
      raise ValueError(f'reason={reason!r} is not a known reject reason')
    return cls(
        source_uri=clip.source_uri,
        upload_id=clip.upload_id,
        contributor_id=clip.contributor_id,
        stage=stage,
        reason=reason,
        detail=detail,
        reasons=reasons or (reason,),
        duplicate_of=duplicate_of,
        cross_contributor=cross_contributor,
        source_duration_s=clip.source_duration_s,
        metrics=dict(clip.metrics))
