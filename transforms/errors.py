"""The exception a stage raises to reject an upload; no Beam, so that the decoder child
(:mod:`transforms.decode_process`) can raise it without loading Beam.

* :class:`RejectUpload` (re-exported by :mod:`transforms.common`).
"""

from __future__ import annotations

__all__ = ['RejectUpload']


class RejectUpload(Exception):
  """Raised by a stage when an upload cannot be accepted.

  Args:
    reason: a code from :data:`schemas.records.REASONS`.
    detail: one sentence for a human, naming the offending value.
    reasons: every failed rule when several failed (defaults to ``(reason,)``).
    duplicate_of: the upload kept instead of this one, for duplicates.
    cross_contributor: for duplicates, whether the kept upload is another
      contributor's.
  """
  def __init__(self, reason: str, detail: str, *, reasons: tuple[str, ...] = (),
               duplicate_of: str | None = None, cross_contributor: bool | None = None):
    super().__init__(f'{reason}: {detail}')
    self.reason = reason
    self.detail = detail
    self.reasons = reasons
    self.duplicate_of = duplicate_of
    self.cross_contributor = cross_contributor
