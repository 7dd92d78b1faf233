import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to

from schemas.records import Reject
from tests.conftest import clip_of, local_pipeline
from transforms.summarize import SummarizeBuild


def test_counts_hours_and_reasons():
  clips = [clip_of(upload_id=f'a{i}', contributor_id=f'c{i % 2}', split='train',
                   source_duration_s=4.0, metrics={'duration_s': 3.6}) for i in range(3)]
  rejects = [Reject.of(clip_of(upload_id='r1', source_duration_s=2.0), stage='filter',
                       reason='low_snr', detail='d'),
             Reject.of(clip_of(upload_id='r2'), stage='decode', reason='undecodable',
                       detail='d')]
  with local_pipeline() as p:
    inputs = p | 'Inputs' >> beam.Create(range(5))
    summary = ((inputs, p | 'Clips' >> beam.Create(clips),
                p | 'Rejects' >> beam.Create(rejects)) | SummarizeBuild())
    assert_that(summary, equal_to([{
        'inputs': 5, 'accepted': 3,
        'rejected': {'low_snr': 1, 'undecodable': 1},
        'rejected_by_stage': {'decode': 1, 'filter': 1},
        'audio_hours_in': round(14.0 / 3600, 6),
        'audio_hours_out': round(3 * 3.6 / 3600, 6),
        'contributors': 2,
        'splits': {'train': {'clips': 3, 'hours': round(3 * 3.6 / 3600, 6), 'contributors': 2},
                   'dev': {'clips': 0, 'hours': 0.0, 'contributors': 0},
                   'test': {'clips': 0, 'hours': 0.0, 'contributors': 0}},
    }]))
