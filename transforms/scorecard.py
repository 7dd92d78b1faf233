"""Contributor scorecards: what each contributor uploaded and how it ended.

* :class:`ScoreContributors`: ``(accepted clips, rejects)`` -> one row per
  contributor (:data:`schemas.reports.CONTRIBUTOR_SCHEMA`).
* :func:`quality_score`: the documented 0-100 score.

The rows are what the platform's operations team pays contributors and queues
reviews from: counts, hours, rejects per reason, duplicates (own re-uploads
and copies of another account's upload), and median SNR and loudness over
every measured upload, accepted or not, so that a contributor whose uploads
are all rejected still shows why.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import Any

import apache_beam as beam

from schemas.config import SplitConfig
from schemas.records import REASONS, Clip, Reject
from schemas.reports import reject_column
from transforms.split import split_of

__all__ = ['ScoreContributors', 'quality_score', 'scorecard_row', 'ScorecardFn',
           'DUPLICATE_REASONS']

DUPLICATE_REASONS = ('duplicate', 'near_duplicate')
SNR_FLOOR_DB = 10.0  # the default filter.min_snr_db: clips below it are rejected
SNR_GOOD_DB = 25.0  # WADA-SNR of clean phone speech; it saturates soon above (bench_metrics)
_HOUR_S = 3600.0

Event = tuple  # ('accepted'|'rejected', reason, source_s, kept_s, snr, lufs, cross)


def quality_score(*, uploads: int, accepted: int, duplicates_cross_account: int,
                  median_snr_db: float | None) -> float:
  """A contributor's score, 0 (nothing usable) to 100.

  ``100 * yield * (0.5 + 0.5 * snr_grade)``, rounded to 0.1, where

  * ``yield = max(0, accepted - duplicates_cross_account) / uploads``: the
    share of uploads that became training clips; each copy of another
    account's upload cancels one accepted upload, so copying never pays;
  * ``snr_grade = clamp((median_snr_db - 10) / (25 - 10), 0, 1)``: 0 at the
    default SNR threshold (10 dB), 1 at 25 dB (clean speech); 0 when no upload
    was measured.

  Example: 8 accepted of 10 uploads, no copies, median SNR 17.5 dB ->
  ``100 * 0.8 * 0.75 = 60.0``.
  """
  if uploads <= 0:
    return 0.0
  yield_share = max(0, accepted - duplicates_cross_account) / uploads
  grade = 0.0
  if median_snr_db is not None:
    grade = min(1.0, max(0.0, (median_snr_db - SNR_FLOOR_DB) / (SNR_GOOD_DB - SNR_FLOOR_DB)))
  return round(100.0 * yield_share * (0.5 + 0.5 * grade), 1)


def _accepted_event(clip: Clip) -> tuple[str | None, Event]:
  return clip.contributor_id, ('accepted', None, clip.source_duration_s or 0.0,
                               clip.metrics.get('duration_s') or 0.0,
                               clip.metrics.get('snr_db'), clip.metrics.get('loudness_lufs'),
                               None)


def _reject_event(reject: Reject) -> tuple[str | None, Event]:
  return reject.contributor_id, ('rejected', reject.reason, reject.source_duration_s or 0.0,
                                 0.0, reject.metrics.get('snr_db'),
                                 reject.metrics.get('loudness_lufs'), reject.cross_contributor)


class ScorecardFn(beam.CombineFn):
  """Events of one contributor -> counts, seconds and the measured values."""
  def create_accumulator(self) -> dict:
    return {'accepted': 0, 'reasons': {}, 'source_s': 0.0, 'accepted_s': 0.0,
            'own': 0, 'cross': 0, 'snr': [], 'lufs': []}

  def add_input(self, acc: dict, event: Event) -> dict:
    kind, reason, source_s, kept_s, snr, lufs, cross = event
    acc['source_s'] += source_s
    if kind == 'accepted':
      acc['accepted'] += 1
      acc['accepted_s'] += kept_s
    else:
      acc['reasons'][reason] = acc['reasons'].get(reason, 0) + 1
      if reason in DUPLICATE_REASONS:
        acc['cross' if cross else 'own'] += 1
    if snr is not None:
      acc['snr'].append(snr)
    if lufs is not None:
      acc['lufs'].append(lufs)
    return acc

  def merge_accumulators(self, accumulators: Iterable[dict]) -> dict:
    merged = self.create_accumulator()
    for acc in accumulators:
      for key in ('accepted', 'source_s', 'accepted_s', 'own', 'cross', 'snr', 'lufs'):
        merged[key] += acc[key]
      for reason, count in acc['reasons'].items():
        merged['reasons'][reason] = merged['reasons'].get(reason, 0) + count
    return merged

  def extract_output(self, acc: dict) -> dict:
    return acc


def _median(values: list[float]) -> float | None:
  return statistics.median(values) if values else None


def scorecard_row(contributor_id: str | None, acc: dict, *, split_config: SplitConfig,
                  build_id: str, pipeline_version: str) -> dict[str, Any]:
  """The contributors-table row of one contributor's combined events."""
  rejected = sum(acc['reasons'].values())
  uploads = acc['accepted'] + rejected
  median_snr = _median(acc['snr'])
  return {
      'contributor_id': contributor_id,
      'split': split_of(contributor_id, config=split_config) if contributor_id else None,
      'uploads': uploads,
      'accepted': acc['accepted'],
      'rejected': rejected,
      'uploaded_hours': acc['source_s'] / _HOUR_S,
      'accepted_hours': acc['accepted_s'] / _HOUR_S,
      'duplicates': acc['own'] + acc['cross'],
      'duplicates_own': acc['own'],
      'duplicates_cross_account': acc['cross'],
      'median_snr_db': median_snr,
      'median_loudness_lufs': _median(acc['lufs']),
      'quality_score': quality_score(uploads=uploads, accepted=acc['accepted'],
                                     duplicates_cross_account=acc['cross'],
                                     median_snr_db=median_snr),
      **{reject_column(reason): acc['reasons'].get(reason, 0) for reason in REASONS},
      'build_id': build_id,
      'pipeline_version': pipeline_version,
  }


class ScoreContributors(beam.PTransform):
  """``(accepted clips, rejects)`` -> one scorecard row (a dict) per contributor.

  Args:
    split_config: names each contributor's split (a pure function of the id).
    build_id: stamped on every row.
    pipeline_version: stamped on every row.
  """
  def __init__(self, *, split_config: SplitConfig, build_id: str, pipeline_version: str):
    super().__init__()
    self._row_args = {'split_config': split_config, 'build_id': build_id,
                      'pipeline_version': pipeline_version}

  def expand(self, pcolls: tuple[beam.PCollection, beam.PCollection]) -> beam.PCollection:
    clips, rejects = pcolls
    return (
        ((clips | 'AcceptedEvents' >> beam.Map(_accepted_event)),
         (rejects | 'RejectEvents' >> beam.Map(_reject_event)))
        | 'Events' >> beam.Flatten()
        | 'PerContributor' >> beam.CombinePerKey(ScorecardFn())
        | 'Rows' >> beam.Map(lambda keyed, args: scorecard_row(*keyed, **args),
                             self._row_args))
