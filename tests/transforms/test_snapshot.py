"""AssembleSnapshot: carry the last snapshot over, minus withdrawn and superseded, plus tonight."""

from __future__ import annotations

import apache_beam as beam
import numpy as np
from apache_beam.testing.util import assert_that, equal_to

from tests.conftest import clip_of, local_pipeline
from transforms.snapshot import AssembleSnapshot


def row(upload_id: str, contributor: str, clip_id: str) -> dict:
  return {'upload_id': upload_id, 'contributor_id': contributor, 'clip_id': clip_id,
          'build_id': 'n1', 'audio': {'bytes': None, 'path': f'/o/audio/{clip_id}.flac'}}


def test_snapshot_is_carried_minus_withdrawn_and_superseded_plus_tonight():
  previous = [row('keep', 'c1', 'a' * 32), row('gone', 'c2', 'b' * 32),
              row('again', 'c1', 'c' * 32)]
  prints = [{k: v for k, v in r.items() if k != 'audio'} for r in previous]
  tonight = clip_of(upload_id='again', contributor_id='c1', clip_id='d' * 32, split='train',
                    flac=b'x', fingerprint=np.zeros(4, np.uint32), sample_rate=16000,
                    metrics={'duration_s': 1.0})
  with local_pipeline() as p:
    snap = (p | 'Tonight' >> beam.Create([tonight])) | AssembleSnapshot(
        previous_manifests=p | 'M' >> beam.Create(previous),
        previous_fingerprints=p | 'F' >> beam.Create(prints),
        processed_ids=p | 'Ids' >> beam.Create(['again']),
        withdrawn=frozenset({'c2'}), audio_root='/o/audio', build_id='n2',
        pipeline_version='v')
    assert_that(snap.manifests | beam.Map(lambda r: (r['upload_id'], r['clip_id'][0],
                                                     r['build_id'], r['audio']['bytes'])),
                equal_to([('keep', 'a', 'n1', None), ('again', 'd', 'n2', None)]))
    assert_that(snap.fingerprints | 'FP' >> beam.Map(lambda r: r['upload_id']),
                equal_to(['keep', 'again']), label='fingerprints')
    assert_that(snap.delta | 'D' >> beam.Map(lambda r: r['audio']['path']),
                equal_to([f'/o/audio/dd/{"d" * 32}.flac']), label='delta')
    assert_that(snap.withdrawn, equal_to([{  # content ids only: no upload, no contributor
        'clip_id': 'b' * 32, 'audio_path': f'/o/audio/{"b" * 32}.flac', 'build_id': 'n2'}]),
        label='withdrawn')
