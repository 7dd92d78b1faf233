"""Stage 8: assign each clip to train, dev or test by its contributor.

* :class:`AssignSplit`: clips -> clips with ``split`` set.

The split is a pure function of ``contributor_id`` (SHA-256 mapped to [0, 1)
and cut at the configured ratios), so splits are speaker-disjoint and a
contributor stays in the same split in every build with the same ratios.
"""

from __future__ import annotations

import hashlib

import apache_beam as beam

from schemas.config import SplitConfig
from schemas.records import SPLITS, Clip
from transforms.common import StageFn, StageOutputs, apply_stage

__all__ = ['AssignSplit', 'split_of']


def split_of(contributor_id: str, *, config: SplitConfig) -> str:
  """``'train'``, ``'dev'`` or ``'test'`` for a contributor."""
  digest = hashlib.sha256(contributor_id.encode('utf-8')).digest()
  position = int.from_bytes(digest[:8], 'big') / 2 ** 64
  edge = 0.0
  for split in SPLITS:
    edge += getattr(config, split)
    if position < edge:
      return split
  return next(split for split in reversed(SPLITS) if getattr(config, split) > 0)


class _SplitFn(StageFn):
  STAGE = 'split'

  def __init__(self, *, config: SplitConfig):
    self._config = config

  def process_clip(self, clip: Clip) -> Clip:
    return clip.replace(split=split_of(clip.contributor_id, config=self._config))


class AssignSplit(beam.PTransform):
  """Sets each clip's split from its contributor id.

  Args:
    config: the train/dev/test ratios (summing to 1).
  """
  def __init__(self, *, config: SplitConfig):
    super().__init__()
    self._config = config

  def expand(self, clips: beam.PCollection) -> StageOutputs:
    return apply_stage(clips, _SplitFn(config=self._config))
