import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to

from tests.conftest import clip_of, local_pipeline
from transforms.dedup import DeduplicateExact


def encoded(upload_id, clip_id, uploaded_at=None, snr=20.0, clipping=0.0):
  return clip_of(upload_id=upload_id, clip_id=clip_id, uploaded_at=uploaded_at, flac=b'f',
                 metrics={'snr_db': snr, 'clipping_ratio': clipping})


def test_keeps_one_per_content_deterministically():
  clips = [
      encoded('late', 'A', '2026-11-02T00:00:00Z'),
      encoded('early', 'A', '2026-11-01T00:00:00Z'),
      encoded('undated', 'A'),
      encoded('solo', 'B'),
      encoded('clipped', 'C', '2026-10-01T00:00:00Z', clipping=0.1),
      encoded('b-id', 'C', '2026-11-01T00:00:00Z'),
      encoded('a-id', 'C', '2026-11-01T00:00:00Z'),
  ]
  with local_pipeline() as p:
    out = p | beam.Create(clips) | DeduplicateExact()
    assert_that(out.clips | beam.Map(lambda c: c.upload_id),
                equal_to(['early', 'solo', 'a-id']), label='kept')
    assert_that(out.rejected | 'Bad' >> beam.Map(
        lambda r: (r.upload_id, r.reason, r.duplicate_of, r.stage)),
        equal_to([('late', 'duplicate', 'early', 'dedup'),
                  ('undated', 'duplicate', 'early', 'dedup'),
                  ('clipped', 'duplicate', 'a-id', 'dedup'),
                  ('b-id', 'duplicate', 'a-id', 'dedup')]), label='rejects')
