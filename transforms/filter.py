"""Stage 5: keep the clips whose metrics pass every configured threshold.

* :class:`FilterQuality`: measured clips -> clips that pass, and rejects whose
  ``reason`` is the first failed rule and ``reasons`` all of them.
"""

from __future__ import annotations

from typing import NamedTuple

import apache_beam as beam

from schemas.config import FilterConfig
from schemas.records import Clip
from transforms.common import RejectUpload, StageFn, StageOutputs, apply_stage

__all__ = ['FilterQuality', 'failed_rules', 'RULES']


class Rule(NamedTuple):
  """A threshold rule on one metric: ``minimum`` rules fail below, others above."""
  reason: str
  metric: str
  threshold_key: str
  minimum: bool


RULES = (
    Rule('too_short', 'duration_s', 'min_duration_s', True),
    Rule('too_long', 'duration_s', 'max_duration_s', False),
    Rule('clipped', 'clipping_ratio', 'max_clipping_ratio', False),
    Rule('too_quiet', 'loudness_lufs', 'min_loudness_lufs', True),
    Rule('low_snr', 'snr_db', 'min_snr_db', True),
    Rule('no_speech', 'speech_ratio', 'min_speech_ratio', True),
    Rule('narrowband', 'bandwidth_hz', 'min_bandwidth_hz', True),
    Rule('speaking_rate', 'speaking_rate_cps', 'min_speaking_rate_cps', True),
    Rule('speaking_rate', 'speaking_rate_cps', 'max_speaking_rate_cps', False),
    Rule('dropouts', 'dropout_ratio', 'max_dropout_ratio', False),
)
"""In order. A metric that is None (undefined) fails a rule only for loudness:
no 400 ms block above the gate means nothing audible."""


def failed_rules(metrics: dict[str, float | None], config: FilterConfig
                 ) -> list[tuple[str, str]]:
  """``[(reason, 'snr_db=4.1 < 10 (min_snr_db)'), ...]`` for every failed rule."""
  failures = []
  for rule in RULES:
    threshold = getattr(config, rule.threshold_key)
    value = metrics.get(rule.metric)
    if threshold is None:
      continue
    if value is None:
      if rule.reason == 'too_quiet':
        failures.append((rule.reason, f'loudness_lufs=null < {threshold:g} '
                         f'({rule.threshold_key}): no audible 400 ms block'))
      continue
    failed = value < threshold if rule.minimum else value > threshold
    if failed:
      failures.append((rule.reason, f'{rule.metric}={value:.3g} '
                       f'{"<" if rule.minimum else ">"} {threshold:g} ({rule.threshold_key})'))
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
