import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to

from schemas.config import FilterConfig
from tests.conftest import clip_of, local_pipeline
from transforms.filter import FilterQuality, failed_rules

GOOD = {'duration_s': 4.0, 'clipping_ratio': 0.0, 'loudness_lufs': -23.0, 'snr_db': 30.0,
        'speech_ratio': 0.8, 'bandwidth_hz': 7800.0, 'speaking_rate_cps': 12.0}


def test_good_metrics_pass():
  assert failed_rules(GOOD, FilterConfig()) == []


def test_every_failed_rule_is_reported_in_order():
  bad = {**GOOD, 'duration_s': 0.5, 'snr_db': 3.0, 'speaking_rate_cps': 60.0}
  reasons = [reason for reason, _ in failed_rules(bad, FilterConfig())]
  assert reasons == ['too_short', 'low_snr', 'speaking_rate']
  detail = failed_rules(bad, FilterConfig())[1][1]
  assert detail == 'snr_db=3 < 10 (min_snr_db)'
  assert failed_rules(bad, FilterConfig())[2][1] == (
      'speaking_rate_cps=60 > 35 (max_speaking_rate_cps)')


def test_disabled_rules_and_undefined_metrics():
  assert failed_rules({**GOOD, 'bandwidth_hz': 3000.0}, FilterConfig()) == []
  narrow = failed_rules({**GOOD, 'bandwidth_hz': 3000.0}, FilterConfig(min_bandwidth_hz=6000))
  assert [r for r, _ in narrow] == ['narrowband']
  assert failed_rules({**GOOD, 'speaking_rate_cps': None}, FilterConfig()) == []
  assert [r for r, _ in failed_rules({**GOOD, 'loudness_lufs': None}, FilterConfig())] == [
      'too_quiet']


def test_transform_rejects_with_all_reasons():
  clips = [clip_of(upload_id='ok', metrics=GOOD),
           clip_of(upload_id='bad', metrics={**GOOD, 'clipping_ratio': 0.2,
                                             'speech_ratio': 0.1})]
  with local_pipeline() as p:
    out = p | beam.Create(clips) | FilterQuality(config=FilterConfig())
    assert_that(out.clips | beam.Map(lambda c: c.upload_id), equal_to(['ok']), label='ok')
    assert_that(out.rejected | 'Bad' >> beam.Map(lambda r: (r.upload_id, r.reason, r.reasons,
                                                            r.metrics['snr_db'])),
                equal_to([('bad', 'clipped', ('clipped', 'no_speech'), 30.0)]), label='bad')
