"""Nightly builds: consent withdrawal at the door.

* :class:`RejectWithdrawn`: discovered clips -> the clips of contributors who
  have not withdrawn consent; the others are rejected with reason
  ``consent_withdrawn`` before any of their audio is decoded or stored.

Clips of those contributors published by earlier builds are removed from the
snapshot by :class:`~transforms.snapshot.AssembleSnapshot`.
"""

from __future__ import annotations

from collections.abc import Iterable

import apache_beam as beam

from schemas.records import Clip
from transforms.common import RejectUpload, StageFn, StageOutputs, apply_stage

__all__ = ['RejectWithdrawn', 'STAGE']

STAGE = 'withdraw'


class _WithdrawnFn(StageFn):
  STAGE = STAGE

  def __init__(self, *, contributors: frozenset[str]):
    self._contributors = contributors

  def process_clip(self, clip: Clip) -> Clip:
    if clip.contributor_id in self._contributors:
      raise RejectUpload('consent_withdrawn',
                         f'contributor {clip.contributor_id!r} withdrew consent: the upload '
                         'is not processed and none of its audio is kept')
    return clip


class RejectWithdrawn(beam.PTransform):
  """Rejects the uploads of contributors who withdrew consent.

  Args:
    contributors: the withdrawn contributor ids (from the withdrawals file,
      read before the pipeline starts).
  """
  def __init__(self, *, contributors: Iterable[str]):
    super().__init__()
    self._contributors = frozenset(contributors)

  def expand(self, clips: beam.PCollection) -> StageOutputs:
    return apply_stage(clips, _WithdrawnFn(contributors=self._contributors))
