import apache_beam as beam
from apache_beam.testing.util import assert_that

from schemas.records import Reject
from tests.conftest import clip_of, local_pipeline
from transforms.profile import HISTOGRAMS, ProfileBuild, bin_edges


def test_fixed_bins_locales_and_missing_metrics():
  clips = [clip_of(upload_id=f'u{i}', contributor_id=f'c{i % 2}', split=split, locale=locale,
                   metrics={'duration_s': d, 'snr_db': 12.0, 'loudness_lufs': -23.0,
                            'speech_ratio': 0.9})
           for i, (d, split, locale) in enumerate([(1.5, 'train', 'en-US'),
                                                   (45.0, 'train', 'en-US'),
                                                   (3.0, 'dev', None)])]
  rejects = [Reject.of(clip_of(upload_id='r', metrics={'duration_s': -1.0}), stage='filter',
                       reason='too_short', detail='d'),
             Reject.of(clip_of(upload_id='s'), stage='decode', reason='undecodable', detail='d')]
  with local_pipeline() as p:
    profile = ((p | 'Clips' >> beam.Create(clips), p | 'Rejects' >> beam.Create(rejects))
               | ProfileBuild())

    def check(result):
      (profile,) = result
      duration = profile['histograms']['duration_s']
      assert duration['edges'] == bin_edges('duration_s')
      assert len(duration['accepted']) == len(duration['edges']) - 1 == 30
      assert duration['accepted'][1] == 1 and duration['accepted'][3] == 1
      assert duration['accepted'][-1] == 1  # 45 s counts in the last bin
      assert duration['rejected'][0] == 1 and sum(duration['rejected']) == 1
      assert duration['missing'] == {'accepted': 0, 'rejected': 1}
      assert profile['histograms']['snr_db']['missing'] == {'accepted': 0, 'rejected': 2}
      assert set(profile['histograms']) == set(HISTOGRAMS)
      assert profile['locales']['en-US']['train']['clips'] == 2
      assert profile['locales']['en-US']['train']['contributors'] == 2
      assert abs(profile['locales']['en-US']['train']['hours'] * 3600 - 46.5) < 1e-9
      assert profile['locales']['unknown'] == {'dev': {'clips': 1, 'hours': 3.0 / 3600,
                                                       'contributors': 1}}
    assert_that(profile, check)


def test_bin_edges():
  assert bin_edges('speech_ratio')[:3] == [0.0, 0.05, 0.1]
  assert bin_edges('speech_ratio')[-1] == 1.0
