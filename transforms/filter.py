"""Stage 5: keep the clips whose metrics pass every configured threshold.

* :class:`FilterQuality`: measured clips -> clips that pass, and rejects whose
  ``reason`` is the first failed rule and ``reasons`` all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import apache_beam as beam

from schemas.config import FilterConfig
from schemas.records import Clip
from transforms.common import RejectUpload, StageFn, StageOutputs, apply_stage

__all__ = ['FilterQuality', 'failed_rules', 'RULES']


class Rule(NamedTuple):
  """A threshold rule: a clip fails it when ``passes(value, threshold)`` is False."""
  reason: str
  metric: str
  threshold_key: str
  passes: Callable[[float, float], bool]
  words: str


def _at_least(value: float, threshold: float) -> bool:
  return value >= threshold


def _at_most(value: float, threshold: float) -> bool:
  return value <= threshold


RULES = (
    Rule('too_short', 'duration_s', 'min_duration_s', _at_least, 'at least'),
    Rule('too_long', 'duration_s', 'max_duration_s', _at_most, 'at most'),
    Rule('clipped', 'clipping_ratio', 'max_clipping_ratio', _at_most, 'at most'),
    Rule('too_quiet', 'loudness_lufs', 'min_loudness_lufs', _at_least, 'at least'),
    Rule('low_snr', 'snr_db', 'min_snr_db', _at_least, 'at least'),
    Rule('no_speech', 'speech_ratio', 'min_speech_ratio', _at_least, 'at least'),
    Rule('narrowband', 'bandwidth_hz', 'min_bandwidth_hz', _at_least, 'at least'),
    Rule('speaking_rate', 'speaking_rate_cps', 'min_speaking_rate_cps', _at_least, 'at least'),
    Rule('speaking_rate', 'speaking_rate_cps', 'max_speaking_rate_cps', _at_most, 'at most'),
)
"""In order; a metric that is None (undefined) fails a rule only for loudness."""


def failed_rules(metrics: dict[str, float | None], config: FilterConfig
                 ) -> list[tuple[str, str]]:
  """``[(reason, detail), ...]`` for every rule the metrics fail."""
  failures = []
  for rule in RULES:
    threshold = getattr(config, rule.threshold_key)
    value = metrics.get(rule.metric)
    if threshold is None:
      continue
    if value is None:
      if rule.reason == 'too_quiet':  # no gated block at all: nothing audible
        failures.append((rule.reason, 'loudness is undefined (no audible 400 ms block)'))
      continue
    if not rule.passes(value, threshold):
      failures.append((rule.reason, f'{rule.metric}={value:.4g}, must be {rule.words} '
                       f'{threshold:g} ({rule.threshold_key})'))
  return failures


class _FilterFn(StageFn):
  STAGE = 'filter'

  def __init__(self, *, config: FilterConfig):
    self._config = config

  def process_clip(self, clip: Clip) -> Clip:
    failures = failed_rules(clip.metrics, self._config)
    if failures:
      reasons = tuple(dict.fromkeys(reason for reason, _ in failures))
      raise RejectUpload(failures[0][0], '; '.join(d for _, d in failures), reasons=reasons)
    return clip


class FilterQuality(beam.PTransform):
  """Rejects clips whose metrics fail a threshold; every failed rule is named.

  Args:
    config: the thresholds; a ``None`` threshold disables its rule.
  """
  def __init__(self, *, config: FilterConfig):
    super().__init__()
    self._config = config

  def expand(self, clips: beam.PCollection) -> StageOutputs:
    return apply_stage(clips, _FilterFn(config=self._config))
