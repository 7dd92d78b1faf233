import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from schemas.config import SplitConfig
from schemas.records import REASONS, Reject
from schemas.reports import CONTRIBUTOR_SCHEMA, reject_column
from tests.conftest import clip_of, local_pipeline
from transforms.scorecard import ScoreContributors, quality_score
from transforms.split import split_of


def test_quality_score_follows_its_documented_formula():
  assert quality_score(uploads=10, accepted=8, duplicates_cross_account=0,
                       median_snr_db=17.5) == 60.0
  assert quality_score(uploads=10, accepted=10, duplicates_cross_account=0,
                       median_snr_db=40.0) == 100.0
  assert quality_score(uploads=4, accepted=2, duplicates_cross_account=0,
                       median_snr_db=5.0) == 25.0
  # each copy of another account's upload cancels one accepted upload
  assert quality_score(uploads=20, accepted=10, duplicates_cross_account=10,
                       median_snr_db=40.0) == 0.0
  assert quality_score(uploads=3, accepted=0, duplicates_cross_account=0,
                       median_snr_db=None) == 0.0
  assert quality_score(uploads=0, accepted=0, duplicates_cross_account=0,
                       median_snr_db=None) == 0.0


def _reject(upload_id, contributor, reason, *, snr=None, cross=None):
  clip = clip_of(upload_id=upload_id, contributor_id=contributor, source_duration_s=2.0,
                 metrics={} if snr is None else {'snr_db': snr, 'loudness_lufs': -30.0})
  return Reject.of(clip, stage='x', reason=reason, detail='d', cross_contributor=cross,
                   duplicate_of='kept' if cross is not None else None)


def test_one_row_per_contributor_with_counts_duplicates_and_medians():
  clips = [clip_of(upload_id=f'a{i}', contributor_id='alice', source_duration_s=4.0,
                   metrics={'duration_s': 3.6, 'snr_db': snr, 'loudness_lufs': -20.0})
           for i, snr in enumerate([20.0, 30.0, 40.0])]
  rejects = [_reject('a9', 'alice', 'low_snr', snr=5.0),
             _reject('a8', 'alice', 'duplicate', cross=False),
             _reject('b1', 'bob', 'near_duplicate', cross=True),
             _reject('b2', 'bob', 'near_duplicate', cross=True),
             _reject('x', None, 'missing_sidecar')]
  with local_pipeline() as p:
    rows = ((p | 'Clips' >> beam.Create(clips), p | 'Rejects' >> beam.Create(rejects))
            | ScoreContributors(split_config=SplitConfig(), build_id='b1',
                                pipeline_version='v'))
    assert_that(rows | beam.Map(lambda r: (
        r['contributor_id'], r['split'], r['uploads'], r['accepted'], r['rejected'],
        round(r['uploaded_hours'] * 3600, 6), round(r['accepted_hours'] * 3600, 6),
        r['duplicates'], r['duplicates_own'], r['duplicates_cross_account'],
        r['median_snr_db'], r['median_loudness_lufs'], r['quality_score'],
        r[reject_column('low_snr')], r[reject_column('near_duplicate')], r['build_id'])),
        equal_to([
            ('alice', split_of('alice', config=SplitConfig()), 5, 3, 2, 16.0, 10.8, 1, 1, 0,
             25.0, -20.0, quality_score(uploads=5, accepted=3, duplicates_cross_account=0,
                                        median_snr_db=25.0), 1, 0, 'b1'),
            ('bob', split_of('bob', config=SplitConfig()), 2, 0, 2, 4.0, 0.0, 2, 0, 2,
             None, None, 0.0, 0, 2, 'b1'),
            (None, None, 1, 0, 1, 2.0, 0.0, 0, 0, 0, None, None, 0.0, 0, 0, 'b1'),
        ]))


def test_rows_fit_the_table_schema():
  import pyarrow as pa

  from transforms.scorecard import ScorecardFn, scorecard_row
  fn = ScorecardFn()
  acc = fn.add_input(fn.create_accumulator(), ('rejected', 'clipped', 1.0, 0.0, 3.0, -9.0,
                                               None))
  row = scorecard_row('c', acc, split_config=SplitConfig(), build_id='b', pipeline_version='v')
  table = pa.Table.from_pylist([row], schema=CONTRIBUTOR_SCHEMA)
  assert set(table.column_names) == {f.name for f in CONTRIBUTOR_SCHEMA}
  assert all(table.column(reject_column(r))[0].as_py() == (r == 'clipped') for r in REASONS)
  with pytest.raises(KeyError):
    _ = row['rejects_not_a_reason']
