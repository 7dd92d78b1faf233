"""The build's profile: distributions and breakdowns for the card and the report.

* :class:`ProfileBuild`: ``(accepted clips, rejects)`` -> one dict:
  ``histograms`` (fixed bins of :data:`HISTOGRAMS`, accepted and rejected
  uploads counted apart) and ``locales`` (clips, hours and speakers per locale
  and split).

Fixed bins make the combine exact and small however many clips there are: a
value below the first edge counts in the first bin, one above the last edge
in the last bin. Uploads rejected before they were measured have no metrics
and are counted as ``missing``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import apache_beam as beam

from schemas.records import SPLITS, Clip, Reject

__all__ = ['ProfileBuild', 'ProfileFn', 'HISTOGRAMS', 'bin_edges', 'UNKNOWN_LOCALE']

#: metric -> (first edge, last edge, bin width), in the metric's unit.
HISTOGRAMS = {
    'duration_s': (0.0, 30.0, 1.0),
    'snr_db': (-10.0, 100.0, 5.0),  # WADA-SNR saturates at 100 dB on clean audio
    'loudness_lufs': (-70.0, 0.0, 2.5),
    'speech_ratio': (0.0, 1.0, 0.05),
}
UNKNOWN_LOCALE = 'unknown'
_OUTCOMES = ('accepted', 'rejected')


def bin_edges(metric: str) -> list[float]:
  low, high, width = HISTOGRAMS[metric]
  count = round((high - low) / width)
  return [round(low + i * width, 6) for i in range(count + 1)]


def _bin(metric: str, value: float) -> int:
  low, high, width = HISTOGRAMS[metric]
  count = round((high - low) / width)
  return min(count - 1, max(0, math.floor((value - low) / width)))


def _clip_event(clip: Clip) -> tuple:
  return ('accepted', clip.metrics, clip.locale or UNKNOWN_LOCALE, clip.split,
          clip.contributor_id, clip.metrics.get('duration_s') or 0.0)


def _reject_event(reject: Reject) -> tuple:
  return ('rejected', reject.metrics, None, None, None, 0.0)


class ProfileFn(beam.CombineFn):
  """Events -> histogram counts and per-locale, per-split totals."""
  def create_accumulator(self) -> dict:
    return {
        'histograms': {metric: {outcome: [0] * (len(bin_edges(metric)) - 1)
                                for outcome in _OUTCOMES} for metric in HISTOGRAMS},
        'missing': {metric: {outcome: 0 for outcome in _OUTCOMES} for metric in HISTOGRAMS},
        'locales': {},
    }

  def add_input(self, acc: dict, event: tuple) -> dict:
    outcome, metrics, locale, split, contributor, seconds = event
    for metric in HISTOGRAMS:
      value = metrics.get(metric)
      if value is None or not math.isfinite(value):
        acc['missing'][metric][outcome] += 1
      else:
        acc['histograms'][metric][outcome][_bin(metric, value)] += 1
    if outcome == 'accepted':
      part = acc['locales'].setdefault(locale, {}).setdefault(
          split, {'clips': 0, 'seconds': 0.0, 'contributors': set()})
      part['clips'] += 1
      part['seconds'] += seconds
      part['contributors'].add(contributor)
    return acc

  def merge_accumulators(self, accumulators: Iterable[dict]) -> dict:
    merged = self.create_accumulator()
    for acc in accumulators:
      for metric in HISTOGRAMS:
        for outcome in _OUTCOMES:
          counts = merged['histograms'][metric][outcome]
          for i, count in enumerate(acc['histograms'][metric][outcome]):
            counts[i] += count
          merged['missing'][metric][outcome] += acc['missing'][metric][outcome]
      for locale, splits in acc['locales'].items():
        for split, part in splits.items():
          target = merged['locales'].setdefault(locale, {}).setdefault(
              split, {'clips': 0, 'seconds': 0.0, 'contributors': set()})
          target['clips'] += part['clips']
          target['seconds'] += part['seconds']
          target['contributors'] |= part['contributors']
    return merged

  def extract_output(self, acc: dict) -> dict:
    histograms = {
        metric: {'edges': bin_edges(metric), **acc['histograms'][metric],
                 'missing': acc['missing'][metric]}
        for metric in HISTOGRAMS}
    locales = {
        locale: {split: {'clips': part['clips'], 'hours': part['seconds'] / 3600.0,
                         'contributors': len(part['contributors'])}
                 for split, part in sorted(splits.items(), key=lambda s: SPLITS.index(s[0]))}
        for locale, splits in sorted(acc['locales'].items())}
    return {'histograms': histograms, 'locales': locales}


class ProfileBuild(beam.PTransform):
  """``(accepted clips, rejects)`` -> one profile dict (see the module docstring)."""
  def expand(self, pcolls: tuple[beam.PCollection, beam.PCollection]) -> beam.PCollection:
    clips, rejects = pcolls
    return (((clips | 'AcceptedEvents' >> beam.Map(_clip_event)),
             (rejects | 'RejectEvents' >> beam.Map(_reject_event)))
            | 'Events' >> beam.Flatten()
            | 'Combine' >> beam.CombineGlobally(ProfileFn()))
