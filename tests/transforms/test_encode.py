import io

import apache_beam as beam
import numpy as np
import soundfile as sf
from apache_beam.testing.util import assert_that, equal_to

from tests.conftest import clip_of, local_pipeline
from transforms.encode import EncodeClips, content_id, encode_flac


def pcm(seed):
  return np.random.default_rng(seed).integers(-3000, 3000, 16000).astype(np.int16)


def test_flac_round_trips_exactly():
  x = pcm(0)
  data = encode_flac(x, sample_rate=16000)
  decoded, rate = sf.read(io.BytesIO(data), dtype='int16')
  assert rate == 16000 and data[:4] == b'fLaC'
  np.testing.assert_array_equal(decoded, x)


def test_content_id_depends_on_samples_and_rate_only():
  x = pcm(1)
  assert content_id(x, sample_rate=16000) == content_id(x.copy(), sample_rate=16000)
  assert content_id(x, sample_rate=16000) != content_id(x, sample_rate=22050)
  assert content_id(x, sample_rate=16000) != content_id(pcm(2), sample_rate=16000)
  assert len(content_id(x, sample_rate=16000)) == 32


def test_transform_encodes_and_drops_samples():
  x = pcm(3)
  with local_pipeline() as p:
    out = p | beam.Create([clip_of(x, sample_rate=16000)]) | EncodeClips()
    assert_that(out.clips | beam.Map(lambda c: (c.clip_id, c.samples, c.flac[:4])),
                equal_to([(content_id(x, sample_rate=16000), None, b'fLaC')]))
