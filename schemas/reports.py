"""Schemas of the per-build reports: the contributor scorecards.

* :data:`CONTRIBUTOR_SCHEMA`: ``OUT/builds/ID/contributors.parquet``, one row
  per contributor (uploads whose sidecar named nobody share one row whose
  ``contributor_id`` is null), so that ``sum(uploads)`` is the build's inputs.
* :func:`reject_column`: the column counting one reject reason.

What a payout or a review queue is computed from:

| column | meaning |
|---|---|
| ``uploads`` | every upload of the contributor in this build (= accepted + rejected) |
| ``accepted``, ``rejected`` | how they ended |
| ``uploaded_hours``, ``accepted_hours`` | source audio, and accepted audio after trimming |
| ``rejects_REASON`` | rejects per reason code (``schemas.records.REASONS``) |
| ``duplicates`` | uploads rejected as ``duplicate`` or ``near_duplicate`` |
| ``duplicates_own`` | of those, copies of the contributor's own kept upload |
| ``duplicates_cross_account`` | copies of another contributor's kept upload |
| ``median_snr_db``, ``median_loudness_lufs`` | over every measured upload, accepted or not |
| ``quality_score`` | 0-100, see :func:`transforms.scorecard.quality_score` |
"""

from __future__ import annotations

import pyarrow as pa

from schemas.records import REASONS

__all__ = ['CONTRIBUTOR_SCHEMA', 'reject_column']


def reject_column(reason: str) -> str:
  """``rejects_REASON``: the scorecard column counting ``reason``."""
  return f'rejects_{reason}'


CONTRIBUTOR_SCHEMA = pa.schema([
    pa.field('contributor_id', pa.string()),
    pa.field('split', pa.string()),
    pa.field('uploads', pa.int64(), nullable=False),
    pa.field('accepted', pa.int64(), nullable=False),
    pa.field('rejected', pa.int64(), nullable=False),
    pa.field('uploaded_hours', pa.float64(), nullable=False),
    pa.field('accepted_hours', pa.float64(), nullable=False),
    pa.field('duplicates', pa.int64(), nullable=False),
    pa.field('duplicates_own', pa.int64(), nullable=False),
    pa.field('duplicates_cross_account', pa.int64(), nullable=False),
    pa.field('median_snr_db', pa.float64()),
    pa.field('median_loudness_lufs', pa.float64()),
    pa.field('quality_score', pa.float64(), nullable=False),
    *[pa.field(reject_column(reason), pa.int64(), nullable=False) for reason in REASONS],
    pa.field('build_id', pa.string(), nullable=False),
    pa.field('pipeline_version', pa.string(), nullable=False),
])
