import apache_beam as beam
import numpy as np
from apache_beam.testing.util import assert_that, equal_to

from tests.conftest import clip_of, local_pipeline, speech
from transforms.standardize import StandardizeAudio, standardize


def test_downmix_resample_quantize():
  left = speech(1, sample_rate=48000, duration_s=2.0)
  stereo = np.stack([left, left], axis=1)
  pcm = standardize(stereo, sample_rate=48000, target_rate=16000)
  assert pcm.dtype == np.int16 and pcm.ndim == 1
  assert pcm.shape[0] == 32000
  mono = standardize(left[:, None], sample_rate=48000, target_rate=16000)
  np.testing.assert_array_equal(pcm, mono)


def test_opposite_channels_cancel_and_full_scale_saturates():
  x = speech(2, sample_rate=16000)
  assert not np.any(standardize(np.stack([x, -x], axis=1), sample_rate=16000,
                                target_rate=16000))
  loud = standardize(np.full((10, 1), 4.0, np.float32), sample_rate=16000, target_rate=16000)
  assert np.all(loud == 32767)


def test_transform_sets_rate_and_int16():
  clips = [clip_of(speech(3, sample_rate=44100)[:, None], sample_rate=44100)]
  with local_pipeline() as p:
    out = p | beam.Create(clips) | StandardizeAudio(sample_rate_hz=16000)
    assert_that(out.clips | beam.Map(lambda c: (c.sample_rate, c.samples.dtype.name,
                                                c.samples.shape[0])),
                equal_to([(16000, 'int16', 48000)]), label='clips')
    assert_that(out.rejected, equal_to([]), label='rejects')
