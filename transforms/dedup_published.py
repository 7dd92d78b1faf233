"""Stage 7a (nightly builds): reject clips whose audio an earlier build published.

* :class:`DeduplicatePublished`: encoded clips, and rows of the clips published
  by earlier builds -> the clips whose ``clip_id`` (the content hash of the
  standardized audio) is not published yet; the others are rejected with reason
  ``duplicate`` and ``duplicate_of`` naming the published upload.

A clip whose ``upload_id`` is the published row's own is that upload processed
again (its files were overwritten): it is not a duplicate of itself, and it
goes on to replace its earlier row in the snapshot.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import apache_beam as beam

from schemas.records import Clip
from transforms.common import StageFn, StageOutputs, apply_stage, inc_counter

__all__ = ['DeduplicatePublished', 'STAGE']

STAGE = 'dedup_published'


class _AgainstPublishedFn(StageFn):
  """(clip_id, {'clips': [Clip], 'published': [row]}) -> clips, or duplicate rejects."""
  STAGE = STAGE

  def process(self, element: tuple[str, dict[str, list]]) -> Iterator:
    clip_id, joined = element
    published = sorted(joined['published'], key=lambda row: row['upload_id'])
    for clip in joined['clips']:
      earlier = [row for row in published if row['upload_id'] != clip.upload_id]
      if not earlier:
        yield from super().process(clip)
        continue
      inc_counter(self.STAGE, 'received')
      kept = earlier[0]
      yield self.reject(
          clip, 'duplicate', f'identical standardized audio (clip {clip_id}) was published '
          f'by build {kept.get("build_id")!r} from upload {kept["upload_id"]!r}',
          duplicate_of=kept['upload_id'],
          cross_contributor=clip.contributor_id != kept.get('contributor_id'))

  def process_clip(self, clip: Clip) -> Clip:
    return clip


class DeduplicatePublished(beam.PTransform):
  """Rejects clips whose content an earlier build published.

  Args:
    published: rows (dicts) of the published clips with ``clip_id``,
      ``upload_id``, ``contributor_id`` and ``build_id``, e.g. the
      fingerprint rows of the last snapshot.
  """
  def __init__(self, *, published: beam.PCollection):
    super().__init__()
    self._published = published

  def expand(self, clips: beam.PCollection) -> StageOutputs:
    by_id = clips | 'ByClipId' >> beam.Map(lambda clip: (clip.clip_id, clip))
    published = self._published | 'PublishedByClipId' >> beam.Map(_keyed)
    joined = ({'clips': by_id, 'published': published}
              | 'JoinPublished' >> beam.CoGroupByKey()
              | 'WithClips' >> beam.Filter(lambda element: bool(element[1]['clips'])))
    return apply_stage(joined, _AgainstPublishedFn())


def _keyed(row: dict[str, Any]) -> tuple[str, dict[str, Any]]:
  return row['clip_id'], {name: row.get(name) for name in
                          ('upload_id', 'contributor_id', 'build_id')}
