"""The build summary: counts, hours and rejects by reason, in one record.

* :class:`SummarizeBuild`: ``(inputs, accepted clips, rejects)`` -> one dict,
  the body of ``summary.json``.

``inputs`` counts every upload discovered, independently of what the stages
did with it, so that ``inputs == accepted + sum(rejected.values())`` is a real
check that nothing was dropped.
"""

from __future__ import annotations

import collections
from typing import Any

import apache_beam as beam

from schemas.records import SPLITS, Clip, Reject

__all__ = ['SummarizeBuild', 'SummaryFn']

_HOUR_S = 3600.0


def _input_event(_: Any) -> tuple:
  return ('input',)


def _accepted_event(clip: Clip) -> tuple:
  return ('accepted', clip.split, clip.contributor_id, clip.metrics['duration_s'],
          clip.source_duration_s or 0.0)


def _reject_event(reject: Reject) -> tuple:
  return ('rejected', reject.reason, reject.stage, reject.source_duration_s or 0.0)


class SummaryFn(beam.CombineFn):
  """Combines the small events above into the summary dict."""
  def create_accumulator(self) -> dict:
    return {'inputs': 0, 'rejected': collections.Counter(),
            'rejected_by_stage': collections.Counter(), 'seconds_in': 0.0,
            'splits': {s: {'clips': 0, 'seconds': 0.0, 'contributors': set()}
                       for s in SPLITS}}

  def add_input(self, acc: dict, event: tuple) -> dict:
    kind = event[0]
    if kind == 'input':
      acc['inputs'] += 1
    elif kind == 'accepted':
      _, split, contributor, seconds_out, seconds_in = event
      acc['splits'][split]['clips'] += 1
      acc['splits'][split]['seconds'] += seconds_out
      acc['splits'][split]['contributors'].add(contributor)
      acc['seconds_in'] += seconds_in
    else:
      _, reason, stage, seconds_in = event
      acc['rejected'][reason] += 1
      acc['rejected_by_stage'][stage] += 1
      acc['seconds_in'] += seconds_in
    return acc

  def merge_accumulators(self, accumulators) -> dict:
    merged = self.create_accumulator()
    for acc in accumulators:
      merged['inputs'] += acc['inputs']
      merged['rejected'].update(acc['rejected'])
      merged['rejected_by_stage'].update(acc['rejected_by_stage'])
      merged['seconds_in'] += acc['seconds_in']
      for split, part in acc['splits'].items():
        target = merged['splits'][split]
        target['clips'] += part['clips']
        target['seconds'] += part['seconds']
        target['contributors'] |= part['contributors']
    return merged

  def extract_output(self, acc: dict) -> dict:
    splits = {split: {'clips': part['clips'],
                      'hours': round(part['seconds'] / _HOUR_S, 6),
                      'contributors': len(part['contributors'])}
              for split, part in acc['splits'].items()}
    accepted = sum(part['clips'] for part in acc['splits'].values())
    return {
        'inputs': acc['inputs'],
        'accepted': accepted,
        'rejected': dict(sorted(acc['rejected'].items())),
        'rejected_by_stage': dict(sorted(acc['rejected_by_stage'].items())),
        'audio_hours_in': round(acc['seconds_in'] / _HOUR_S, 6),
        'audio_hours_out': round(
            sum(part['seconds'] for part in acc['splits'].values()) / _HOUR_S, 6),
        'contributors': len(set().union(
            *(part['contributors'] for part in acc['splits'].values()))),
        'splits': splits,
    }


class SummarizeBuild(beam.PTransform):
  """Reduces inputs, accepted clips and rejects to one summary dict."""
  def expand(self, pcolls: tuple[beam.PCollection, beam.PCollection, beam.PCollection]
             ) -> beam.PCollection:
    inputs, clips, rejects = pcolls
    events = (
        (inputs | 'InputEvents' >> beam.Map(_input_event)),
        (clips | 'AcceptedEvents' >> beam.Map(_accepted_event)),
        (rejects | 'RejectEvents' >> beam.Map(_reject_event)),
    ) | 'Events' >> beam.Flatten()
    return events | 'Combine' >> beam.CombineGlobally(SummaryFn())
