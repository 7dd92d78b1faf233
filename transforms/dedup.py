"""Stage 7: keep one clip of each identical standardized audio.

* :class:`DeduplicateExact`: encoded clips -> one clip per ``clip_id``; the
  others are rejected with reason ``duplicate`` and ``duplicate_of`` naming
  the upload that was kept.

The kept clip is chosen deterministically: least clipping in its source, then
highest SNR, then earliest ``uploaded_at`` (clips without one last), then
``upload_id``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import apache_beam as beam

from schemas.records import Clip
from transforms.common import StageFn, StageOutputs, apply_stage, inc_counter

__all__ = ['DeduplicateExact', 'survivor_order']


def survivor_order(clip: Clip) -> tuple:
  """Sort key: the first clip of a group of duplicates is kept."""
  clipping = clip.metrics.get('clipping_ratio')
  snr = clip.metrics.get('snr_db')
  return (clipping if clipping is not None else math.inf,
          -snr if snr is not None else math.inf,
          clip.uploaded_at is None, clip.uploaded_at or '', clip.upload_id)


class _KeepOneFn(StageFn):
  STAGE = 'dedup'

  def process(self, element: tuple[str, Iterable[Clip]]) -> Iterator:
    clip_id, clips = element
    kept, *duplicates = sorted(clips, key=survivor_order)
    inc_counter(self.STAGE, 'groups')
    yield from super().process(kept)
    for clip in duplicates:
      yield self.reject(
          clip, 'duplicate', f'identical standardized audio (clip {clip_id}) is kept '
          f'from upload {kept.upload_id!r} ({kept.source_uri})',
          duplicate_of=kept.upload_id,
          cross_contributor=clip.contributor_id != kept.contributor_id)

  def process_clip(self, clip: Clip) -> Clip:
    return clip


class DeduplicateExact(beam.PTransform):
  """Groups clips by content id and keeps one of each group."""
  def expand(self, clips: beam.PCollection) -> StageOutputs:
    grouped = (clips
               | 'ByClipId' >> beam.Map(lambda clip: (clip.clip_id, clip))
               | 'GroupByClipId' >> beam.GroupByKey())
    return apply_stage(grouped, _KeepOneFn())
