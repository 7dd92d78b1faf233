"""pyarrow schemas of the output tables, and the conversion of records to rows.

* :func:`manifest_schema`: ``OUT/builds/ID/manifests/data/SPLIT-*.parquet``, one
  row per accepted clip. ``audio`` is ``struct<bytes, path>`` and the schema
  carries a ``huggingface`` metadata entry, so ``datasets`` reads the column as
  ``Audio`` without extra code.
* :data:`REJECT_SCHEMA`: ``OUT/builds/ID/rejects/part-*.parquet``, one row per
  upload that was not accepted.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

import numpy as np
import pyarrow as pa

from schemas.records import METRIC_FIELDS, Clip, Reject

__all__ = ['manifest_schema', 'REJECT_SCHEMA', 'FINGERPRINT_SCHEMA', 'UPLOAD_STATE_SCHEMA',
           'WITHDRAWN_SCHEMA', 'manifest_row', 'reject_row', 'fingerprint_row',
           'huggingface_features']

_TIMESTAMP = pa.timestamp('us', tz='UTC')
AUDIO_TYPE = pa.struct([('bytes', pa.binary()), ('path', pa.string())])

_SOURCE_FIELDS = [
    pa.field('source_uri', pa.string(), nullable=False),
    pa.field('container', pa.string()),
    pa.field('codec', pa.string()),
    pa.field('source_sample_rate', pa.int32()),
    pa.field('source_channels', pa.int32()),
    pa.field('source_duration_s', pa.float64()),
]
_METRIC_FIELDS = [pa.field(name, pa.float64()) for name in METRIC_FIELDS]
_BUILD_FIELDS = [
    pa.field('build_id', pa.string(), nullable=False),
    pa.field('pipeline_version', pa.string(), nullable=False),
]

_MANIFEST_FIELDS = [
    pa.field('clip_id', pa.string(), nullable=False),
    pa.field('upload_id', pa.string(), nullable=False),
    pa.field('contributor_id', pa.string(), nullable=False),
    # Nullable although always set: datasets applies the Audio feature of the
    # metadata only to a field equal to its own (nullable) Arrow field.
    pa.field('audio', AUDIO_TYPE),
    pa.field('sample_rate', pa.int32(), nullable=False),
    pa.field('transcript', pa.string()),
    pa.field('prompt_id', pa.string()),
    pa.field('locale', pa.string()),
    pa.field('uploaded_at', _TIMESTAMP),
    pa.field('split', pa.string(), nullable=False),
    pa.field('trim_start_s', pa.float64()),
    pa.field('trim_end_s', pa.float64()),
    *_SOURCE_FIELDS,
    *_METRIC_FIELDS,
    *_BUILD_FIELDS,
]

REJECT_SCHEMA = pa.schema([
    pa.field('upload_id', pa.string(), nullable=False),
    pa.field('contributor_id', pa.string()),
    pa.field('source_uri', pa.string(), nullable=False),
    pa.field('stage', pa.string(), nullable=False),
    pa.field('reason', pa.string(), nullable=False),
    pa.field('reasons', pa.list_(pa.string()), nullable=False),
    pa.field('detail', pa.string(), nullable=False),
    pa.field('duplicate_of', pa.string()),
    pa.field('cross_contributor', pa.bool_()),
    pa.field('source_duration_s', pa.float64()),
    *_METRIC_FIELDS,
    *_BUILD_FIELDS,
])


FINGERPRINT_SCHEMA = pa.schema([
    pa.field('clip_id', pa.string(), nullable=False),
    pa.field('upload_id', pa.string(), nullable=False),
    pa.field('contributor_id', pa.string(), nullable=False),
    pa.field('uploaded_at', _TIMESTAMP),
    pa.field('duration_s', pa.float64()),
    pa.field('fingerprint', pa.binary(), nullable=False),  # uint32 little-endian frames
    pa.field('fingerprint_levels', pa.binary()),  # uint8 dB + 120 per frame
    *_BUILD_FIELDS,
])
"""``OUT/builds/ID/fingerprints/part-*.parquet``: one row per accepted clip."""

UPLOAD_STATE_SCHEMA = pa.schema([
    pa.field('stem_sha256', pa.string(), nullable=False),
    pa.field('files', pa.list_(pa.struct([
        pa.field('path_sha256', pa.string(), nullable=False),
        pa.field('size_bytes', pa.int64(), nullable=False),
        pa.field('updated_s', pa.float64(), nullable=False),
    ])), nullable=False),
    pa.field('content_sha256', pa.string(), nullable=False),
    pa.field('build_id', pa.string(), nullable=False),
])
"""Nightly ``OUT/builds/ID/state/uploads/part-*.parquet``: one row per upload (an
audio file and its sidecar, known by the SHA-256 of their common path without
extension) processed by this build or an earlier one: each file's path SHA-256,
size and update time as listed, and the SHA-256 of their content; ``build_id``
is the build that processed that content. No path is stored: a path often
names its contributor, and the state outlives consent withdrawal."""

WITHDRAWN_SCHEMA = pa.schema([
    pa.field('clip_id', pa.string(), nullable=False),
    pa.field('audio_path', pa.string(), nullable=False),
    pa.field('build_id', pa.string(), nullable=False),
])
"""Nightly ``OUT/builds/ID/withdrawn/part-*.parquet``: the clips this build removed
from the snapshot because their contributor withdrew consent, and the audio
objects deleted once it is published. Content ids only: neither the upload nor
its contributor is named."""


def _feature(field: pa.Field, *, sample_rate: int) -> dict[str, Any]:
  if field.name == 'audio':
    return {'_type': 'Audio', 'sampling_rate': sample_rate}
  dtype = str(field.type)
  dtype = {'double': 'float64', 'float': 'float32'}.get(dtype, dtype)
  return {'_type': 'Value', 'dtype': dtype}


def huggingface_features(schema: pa.Schema, *, sample_rate: int) -> dict[str, Any]:
  """The ``datasets`` Features dict describing ``schema``."""
  return {f.name: _feature(f, sample_rate=sample_rate) for f in schema}


def manifest_schema(*, sample_rate: int) -> pa.Schema:
  """The manifest schema, with the Hugging Face features in its metadata."""
  schema = pa.schema(_MANIFEST_FIELDS)
  info = {'info': {'features': huggingface_features(schema, sample_rate=sample_rate)}}
  return schema.with_metadata({b'huggingface': json.dumps(info).encode()})


def _timestamp(value: str | None) -> datetime.datetime | None:
  if value is None:
    return None
  return datetime.datetime.fromisoformat(value.replace('Z', '+00:00'))


def _metrics(metrics: dict[str, float | None]) -> dict[str, float | None]:
  return {name: metrics.get(name) for name in METRIC_FIELDS}


def manifest_row(clip: Clip, *, build_id: str, pipeline_version: str,
                 audio_uri: str | None = None) -> dict[str, Any]:
  """The manifest row of an accepted clip (which must have been encoded).

  Without ``audio_uri`` the FLAC bytes are embedded (``audio.path`` is the
  file name); with it, ``audio.bytes`` is null and ``audio.path`` is the URI of
  the stored FLAC object, which ``datasets``' ``Audio`` decodes from.
  """
  if clip.clip_id is None or clip.split is None or (clip.flac is None and audio_uri is None):
    raise ValueError(f'{clip.source_uri}: clip is not encoded and split yet')
  audio = ({'bytes': clip.flac, 'path': f'{clip.clip_id}.flac'} if audio_uri is None
           else {'bytes': None, 'path': audio_uri})
  return {
      'clip_id': clip.clip_id,
      'upload_id': clip.upload_id,
      'contributor_id': clip.contributor_id,
      'audio': audio,
      'sample_rate': clip.sample_rate,
      'transcript': clip.transcript,
      'prompt_id': clip.prompt_id,
      'locale': clip.locale,
      'uploaded_at': _timestamp(clip.uploaded_at),
      'split': clip.split,
      'trim_start_s': clip.trim_start_s,
      'trim_end_s': clip.trim_end_s,
      'source_uri': clip.source_uri,
      'container': clip.container,
      'codec': clip.codec,
      'source_sample_rate': clip.source_sample_rate,
      'source_channels': clip.source_channels,
      'source_duration_s': clip.source_duration_s,
      **_metrics(clip.metrics),
      'build_id': build_id,
      'pipeline_version': pipeline_version,
  }


def reject_row(reject: Reject, *, build_id: str, pipeline_version: str) -> dict[str, Any]:
  """The rejects-table row of a reject."""
  return {
      'upload_id': reject.upload_id,
      'contributor_id': reject.contributor_id,
      'source_uri': reject.source_uri,
      'stage': reject.stage,
      'reason': reject.reason,
      'reasons': list(reject.reasons),
      'detail': reject.detail,
      'duplicate_of': reject.duplicate_of,
      'cross_contributor': reject.cross_contributor,
      'source_duration_s': reject.source_duration_s,
      **_metrics(reject.metrics),
      'build_id': build_id,
      'pipeline_version': pipeline_version,
  }


def fingerprint_row(clip: Clip, *, build_id: str, pipeline_version: str) -> dict[str, Any]:
  """The fingerprints-table row of an accepted clip."""
  return {
      'clip_id': clip.clip_id,
      'upload_id': clip.upload_id,
      'contributor_id': clip.contributor_id,
      'uploaded_at': _timestamp(clip.uploaded_at),
      'duration_s': clip.metrics.get('duration_s'),
      'fingerprint': clip.fingerprint.astype('<u4').tobytes(),
      'fingerprint_levels': (None if clip.fingerprint_levels is None
                             else clip.fingerprint_levels.astype(np.uint8).tobytes()),
      'build_id': build_id,
      'pipeline_version': pipeline_version,
  }
