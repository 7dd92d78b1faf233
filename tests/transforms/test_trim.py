import apache_beam as beam
import numpy as np
from apache_beam.testing.util import assert_that, equal_to

from schemas.config import TrimConfig
from tests.conftest import clip_of, local_pipeline
from transforms.trim import TrimSilence, sound_span

RATE = 16000


def tone_in_silence(lead_s, tone_s, tail_s, level=0.3):
  t = np.arange(int(tone_s * RATE)) / RATE
  tone = level * np.sin(2 * np.pi * 300 * t)
  x = np.concatenate([np.zeros(int(lead_s * RATE)), tone, np.zeros(int(tail_s * RATE))])
  return np.round(x * 32767).astype(np.int16)


def test_span_keeps_padding_around_sound():
  pcm = tone_in_silence(1.0, 2.0, 1.5)
  start, stop = sound_span(pcm, sample_rate=RATE, config=TrimConfig(padding_s=0.2))
  assert abs(start / RATE - 0.8) <= 0.03  # within one 25 ms frame
  assert abs(stop / RATE - 3.2) < 0.03


def test_quiet_sound_below_floor_is_silence():
  assert sound_span(tone_in_silence(0.5, 1.0, 0.5, level=1e-4), sample_rate=RATE,
                    config=TrimConfig()) is None


def test_transform_trims_and_rejects_silence():
  clips = [clip_of(tone_in_silence(1.0, 2.0, 1.0), upload_id='tone', sample_rate=RATE),
           clip_of(np.zeros(RATE * 2, np.int16), upload_id='quiet', sample_rate=RATE)]
  with local_pipeline() as p:
    out = p | beam.Create(clips) | TrimSilence(config=TrimConfig(padding_s=0.1))
    assert_that(out.clips | beam.Map(lambda c: (c.upload_id, round(c.trim_start_s, 1),
                                                round(c.trim_end_s, 1))),
                equal_to([('tone', 0.9, 0.9)]), label='clips')
    assert_that(out.rejected | 'Bad' >> beam.Map(lambda r: (r.upload_id, r.reason)),
                equal_to([('quiet', 'silence')]), label='rejects')
