import apache_beam as beam
import numpy as np
from apache_beam.testing.util import assert_that, equal_to

from pipelines import reference_signals as ref
from schemas.config import MeasureConfig
from schemas.records import METRIC_FIELDS
from tests.conftest import clip_of, local_pipeline
from transforms.measure import MeasureQuality, make_vad, measure_clip


def pcm(seed, rate=16000, duration_s=3.0):
  x = ref.speech(seed, sample_rate=rate, duration_s=duration_s)
  return np.round(x * 32767).astype(np.int16)


def test_every_metric_is_sane_on_speech():
  m = measure_clip(pcm(1), sample_rate=16000, transcript='hello there my friend',
                   vad=make_vad(), config=MeasureConfig())
  assert m['duration_s'] == 3.0
  assert -20 < m['peak_dbfs'] <= 0
  assert -40 < m['loudness_lufs'] < -10
  assert m['snr_db'] > 20
  assert 0.5 < m['speech_ratio'] <= 1
  assert 7000 < m['bandwidth_hz'] <= 8000
  assert 3 < m['speaking_rate_cps'] < 15
  assert abs(m['dc_offset']) < 0.01
  assert m['dropout_ratio'] == 0.0


def test_vad_runs_at_rates_it_does_not_support():
  m = measure_clip(pcm(2, rate=22050), sample_rate=22050, transcript=None,
                   vad=make_vad(), config=MeasureConfig())
  assert m['speech_ratio'] > 0.5 and m['speaking_rate_cps'] is None


def test_transform_fills_every_metric_field():
  clips = [clip_of(pcm(3), sample_rate=16000, transcript='abc',
                   metrics={'clipping_ratio': 0.0})]
  with local_pipeline() as p:
    out = p | beam.Create(clips) | MeasureQuality(config=MeasureConfig())
    assert_that(out.clips | beam.Map(lambda c: sorted(k for k, v in c.metrics.items()
                                                      if v is not None)),
                equal_to([sorted(METRIC_FIELDS)]), label='clips')
    assert_that(out.rejected, equal_to([]), label='rejects')
