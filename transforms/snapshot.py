"""Nightly builds: tonight's snapshot from the last one and tonight's new clips.

* :class:`AssembleSnapshot`: the last snapshot's manifest and fingerprint rows,
  tonight's accepted clips (stored in the audio store) and the upload ids
  processed tonight -> tonight's snapshot manifest and fingerprint rows, the
  delta (tonight's new rows), and the rows removed because their contributor
  withdrew consent.

A row of the last snapshot is carried over unchanged (its ``build_id`` stays
the build that first published it) unless its contributor withdrew consent
(counted ``removed_withdrawn``; listed in the ``withdrawn`` output, whose audio
objects are deleted once the build is published) or its upload was processed
again tonight (counted ``superseded``: the newest version of an upload wins,
accepted or rejected). The carried rows are filtered with side inputs of
tonight's (few) upload ids: no shuffle over the history, and no audio bytes,
which stay in the store.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import apache_beam as beam

from schemas.tables import fingerprint_row, manifest_row
from transforms.common import inc_counter
from transforms.store import audio_uri

__all__ = ['AssembleSnapshot', 'Snapshot', 'STAGE']

STAGE = 'snapshot'
_WITHDRAWN = 'withdrawn'


class _CarryFn(beam.DoFn):
  """A last-snapshot row -> the row, or nothing (superseded), or a withdrawn row."""
  def __init__(self, *, withdrawn: frozenset[str], table: str, build_id: str):
    self._withdrawn = withdrawn
    self._table = table
    self._build_id = build_id

  def process(self, row: dict[str, Any], tonight: dict[str, bool]) -> Iterator:
    if row['contributor_id'] in self._withdrawn:
      inc_counter(STAGE, f'{self._table}.removed_withdrawn')
      if self._table == 'manifests':
        yield beam.pvalue.TaggedOutput(_WITHDRAWN, {
            'clip_id': row['clip_id'], 'audio_path': row['audio']['path'],
            'build_id': self._build_id})
      return
    if row['upload_id'] in tonight:
      inc_counter(STAGE, f'{self._table}.superseded')
      return
    inc_counter(STAGE, f'{self._table}.carried')
    yield row


class Snapshot(NamedTuple):
  manifests: beam.PCollection
  """Every clip of tonight's snapshot, as manifest rows (audio by reference)."""
  fingerprints: beam.PCollection
  """Their fingerprint rows: what tomorrow's build deduplicates against."""
  delta: beam.PCollection
  """Tonight's new manifest rows."""
  withdrawn: beam.PCollection
  """Rows removed for withdrawn consent (:data:`~schemas.tables.WITHDRAWN_SCHEMA`)."""


class AssembleSnapshot(beam.PTransform):
  """Carries the last snapshot over, minus withdrawn and superseded clips, plus tonight's.

  Args:
    previous_manifests: the last snapshot's manifest rows (empty the first night).
    previous_fingerprints: its fingerprint rows.
    processed_ids: the ``upload_id`` of every upload processed tonight.
    withdrawn: contributor ids who withdrew consent.
    audio_root: the audio store (``OUT/audio``) that tonight's rows reference.
    build_id: tonight's build, stamped on new rows.
    pipeline_version: stamped on new rows.

  Input: tonight's accepted clips, split and stored.
  """
  def __init__(self, *, previous_manifests: beam.PCollection,
               previous_fingerprints: beam.PCollection, processed_ids: beam.PCollection,
               withdrawn: frozenset[str], audio_root: str, build_id: str,
               pipeline_version: str):
    super().__init__()
    self._previous_manifests = previous_manifests
    self._previous_fingerprints = previous_fingerprints
    self._processed_ids = processed_ids
    self._withdrawn = frozenset(withdrawn)
    self._audio_root = audio_root
    self._stamp = {'build_id': build_id, 'pipeline_version': pipeline_version}

  def _carry(self, rows: beam.PCollection, table: str, tonight) -> Any:
    return rows | f'Carry{table.title()}' >> beam.ParDo(
        _CarryFn(withdrawn=self._withdrawn, table=table,
                 build_id=self._stamp['build_id']),
        tonight=tonight).with_outputs(_WITHDRAWN, main='rows')

  def expand(self, clips: beam.PCollection) -> Snapshot:
    tonight = beam.pvalue.AsDict(
        self._processed_ids | 'Tonight' >> beam.Map(lambda upload_id: (upload_id, True)))
    audio_root, stamp = self._audio_root, self._stamp
    delta = clips | 'DeltaRows' >> beam.Map(
        lambda clip: manifest_row(clip, **stamp,
                                  audio_uri=audio_uri(audio_root, clip.clip_id)))
    new_prints = clips | 'NewFingerprints' >> beam.Map(fingerprint_row, **stamp)
    manifests = self._carry(self._previous_manifests, 'manifests', tonight)
    prints = self._carry(self._previous_fingerprints, 'fingerprints', tonight)
    return Snapshot(
        manifests=(manifests.rows, delta) | 'SnapshotRows' >> beam.Flatten(),
        fingerprints=(prints.rows, new_prints) | 'SnapshotFingerprints' >> beam.Flatten(),
        delta=delta,
        withdrawn=manifests[_WITHDRAWN])
