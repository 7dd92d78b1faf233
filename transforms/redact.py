"""Rejects that must not name their upload: no consent, or a withdrawn contributor.

* :class:`RedactRejects`: rejects -> the same rejects, with those of uploads
  without consent (reason ``no_consent``) and those of contributors who
  withdrew consent (whatever the reason) stripped of everything that
  identifies the upload or its contributor.

Consent is what allows an upload to be processed at all, so an upload without
it appears in no output: not in the manifests, the audio, the scorecards, the
report, and not by its id, path or contributor in the rejects table either.
It still leaves one row there, so that conservation holds row for row (inputs
= accepted + rejected, and the rejects table holds every reject): that row
keeps only the stage and the reason, and its ``upload_id`` and ``source_uri``
are empty. The summary counts it under its reason like any other reject.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import apache_beam as beam

from schemas.records import Reject
from transforms.common import inc_counter

__all__ = ['RedactRejects', 'redact', 'WITHHELD', 'STAGE']

STAGE = 'redact'
WITHHELD = ''
"""The ``upload_id`` and ``source_uri`` of a redacted reject."""

_DETAILS = {
    'no_consent': 'the sidecar does not grant consent: nothing of the upload is kept',
    'withdrawn': 'the contributor withdrew consent: nothing of the upload is kept',
}


def redact(reject: Reject, *, withdrawn: frozenset[str]) -> Reject:
  """``reject`` itself, or its anonymous row if its upload must not be named."""
  if reject.contributor_id is not None and reject.contributor_id in withdrawn:
    why = 'withdrawn'
  elif reject.reason == 'no_consent':
    why = 'no_consent'
  else:
    return reject
  return dataclasses.replace(
      reject, upload_id=WITHHELD, source_uri=WITHHELD, contributor_id=None,
      detail=_DETAILS[why], duplicate_of=None, cross_contributor=None,
      source_duration_s=None, metrics={})


def _redact_counted(reject: Reject, withdrawn: frozenset[str]) -> Reject:
  redacted = redact(reject, withdrawn=withdrawn)
  if redacted is not reject:
    inc_counter(STAGE, f'redacted.{reject.reason}')
  return redacted


class RedactRejects(beam.PTransform):
  """Strips the rejects of uploads without consent of their ids, path and contributor.

  Args:
    withdrawn: contributor ids whose consent is withdrawn (nightly builds); their
      rejects are redacted whatever their reason.
  """
  def __init__(self, *, withdrawn: Iterable[str] = ()):
    super().__init__()
    self._withdrawn = frozenset(withdrawn)

  def expand(self, rejects: beam.PCollection) -> beam.PCollection:
    return rejects | 'Redact' >> beam.Map(_redact_counted, self._withdrawn)
