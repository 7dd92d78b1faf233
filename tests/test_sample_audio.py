"""Tests for pipelines.sample_audio: synthesis determinism and format round trips."""

import io

import av
import numpy as np
import pytest
import soundfile as sf

from pipelines.sample_audio import (
  EXTENSIONS,
  FORMATS,
  Voice,
  encode_audio,
  random_voice,
  synth_speech,
)

_RATE_HZ = 48000
_DURATION_S = 1.5
# AAC decoders return whole 1024-sample frames, so up to 1023 padding samples.
_TOLERANCE_S = 0.05 + 1024 / _RATE_HZ


@pytest.fixture(scope='module')
def clip() -> np.ndarray:
  rng = np.random.default_rng(0)
  return synth_speech(rng, sample_rate=_RATE_HZ, duration_s=_DURATION_S,
                      voice=random_voice(rng))


def _decode(data: bytes, fmt: str) -> tuple[int, int, int]:
  """Returns (frames, channels, sample rate) of an encoded file."""
  if fmt in ('webm_opus', 'm4a_aac'):
    with av.open(io.BytesIO(data)) as container:
      stream = container.streams.audio[0]
      frames = sum(frame.samples for frame in container.decode(stream))
      return frames, stream.codec_context.channels, stream.codec_context.sample_rate
  samples, rate = sf.read(io.BytesIO(data), always_2d=True)
  return samples.shape[0], samples.shape[1], rate


def test_synth_speech_shape_and_level(clip):
  assert clip.dtype == np.float32
  assert clip.shape == (round(_DURATION_S * _RATE_HZ),)
  peak_dbfs = 20 * np.log10(np.max(np.abs(clip)))
  assert -6.5 < peak_dbfs < -2.5
  edge = int(0.3 * _RATE_HZ)
  assert 10 * np.log10(np.mean(clip[:edge].astype(np.float64)**2)) < -65


def test_synth_speech_is_deterministic_per_seed():
  def render(seed):
    return synth_speech(np.random.default_rng(seed), sample_rate=16000,
                        duration_s=1.2, voice=Voice(f0_hz=120.0))
  assert np.array_equal(render(3), render(3))
  assert not np.allclose(render(3), render(4))


def test_formats_and_extensions_agree():
  assert set(EXTENSIONS) == set(FORMATS)


@pytest.mark.parametrize('channels', [1, 2])
@pytest.mark.parametrize('fmt', FORMATS)
def test_round_trip(clip, fmt, channels):
  samples = clip if channels == 1 else np.stack([clip, 0.5 * clip], axis=1)
  frames, got_channels, rate = _decode(
      encode_audio(samples, sample_rate=_RATE_HZ, fmt=fmt), fmt)
  assert rate == _RATE_HZ
  assert got_channels == channels
  assert abs(frames / rate - _DURATION_S) <= _TOLERANCE_S


@pytest.mark.parametrize('fmt', ['webm_opus', 'm4a_aac', 'mp3'])
def test_round_trip_at_44100(clip, fmt):
  frames, _, rate = _decode(encode_audio(clip, sample_rate=44100, fmt=fmt), fmt)
  assert rate == (48000 if fmt == 'webm_opus' else 44100)  # opus runs at 48 kHz
  assert abs(frames / rate - len(clip) / 44100) <= 0.05 + 1024 / 44100


def test_short_clip_keeps_length():
  rng = np.random.default_rng(1)
  samples = synth_speech(rng, sample_rate=16000, duration_s=0.6, voice=random_voice(rng))
  assert samples.shape == (9600,) and np.all(np.isfinite(samples))


def test_unknown_format_raises():
  with pytest.raises(ValueError, match='wav_pcm24'):
    encode_audio(np.zeros(100, np.float32), sample_rate=16000, fmt='wav_pcm24')


def test_ogg_opus_rejects_unsupported_rate():
  with pytest.raises(ValueError, match='44100'):
    encode_audio(np.zeros(100, np.float32), sample_rate=44100, fmt='ogg_opus')


@pytest.mark.parametrize('fmt, low, high', [('webm_opus', 24_000, 64_000),
                                            ('m4a_aac', 64_000, 128_000),
                                            ('mp3', 64_000, 192_000)])
def test_bit_rate_sets_the_size(clip, fmt, low, high):
  small = encode_audio(clip, sample_rate=_RATE_HZ, fmt=fmt, bit_rate=low)
  large = encode_audio(clip, sample_rate=_RATE_HZ, fmt=fmt, bit_rate=high)
  for data in (small, large):
    frames, channels, rate = _decode(data, 'm4a_aac' if fmt == 'mp3' else fmt)
    assert channels == 1 and abs(frames / rate - _DURATION_S) <= _TOLERANCE_S
  # Bytes per second of audio follow the bit rate (containers add a little).
  assert len(small) * 8 / _DURATION_S == pytest.approx(low, rel=0.35)
  assert len(large) > 1.5 * len(small)


def test_bit_rate_is_refused_for_lossless_formats():
  with pytest.raises(ValueError, match='bit_rate'):
    encode_audio(np.zeros(100, np.float32), sample_rate=16000, fmt='flac', bit_rate=64_000)
