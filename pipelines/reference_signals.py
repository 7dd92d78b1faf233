"""Signals with known truth, for validating the quality metrics.

Speech is real text-to-speech from eSpeak NG (:mod:`pipelines.tts`): read
sentences from the Harvard lists and the like, eight voices, varied speaking
rates. Every signal here is seeded, so the tests and
``python -m pipelines.bench_metrics`` see the same numbers.
"""

from __future__ import annotations

import numpy as np
import soxr

from pipelines import tts
from pipelines.tts import SENTENCES, VOICES

__all__ = ['speech', 'continuous_speech', 'white_noise', 'pink_noise', 'babble',
           'mix_at_snr', 'clip_fraction', 'tone']


def continuous_speech(seed: int, *, sample_rate: int = 16000,
                      duration_s: float = 5.0) -> np.ndarray:
  """``duration_s`` of read sentences by voice ``seed``, without edge silence."""
  engine = tts.engine()
  voice = VOICES[seed % len(VOICES)]
  pieces, total = [], 0
  for k in range(len(SENTENCES)):
    text = SENTENCES[(seed * 5 + k) % len(SENTENCES)]
    piece = engine.say(text, voice=voice, words_per_minute=150 + (seed * 7) % 40,
                       pitch=35 + (seed * 11) % 40)
    pieces.append(piece)
    total += piece.shape[0]
    if total >= duration_s * engine.sample_rate + 1:
      break
  x = np.concatenate(pieces)
  x = soxr.resample(x, engine.sample_rate, sample_rate) if sample_rate != engine.sample_rate \
      else x
  x = x[:int(duration_s * sample_rate)]
  return (x * 0.5 / np.max(np.abs(x))).astype(np.float32)


def speech(seed: int, *, sample_rate: int = 16000, duration_s: float = 5.0) -> np.ndarray:
  """Read speech with 0.3 s of silence on both sides, ``duration_s`` in all."""
  pad = np.zeros(int(0.3 * sample_rate), np.float32)
  body = continuous_speech(seed, sample_rate=sample_rate, duration_s=max(duration_s - 0.6, 0.1))
  return np.concatenate([pad, body, pad])


def white_noise(seed: int, *, samples: int) -> np.ndarray:
  return np.random.default_rng(seed).standard_normal(samples)


def pink_noise(seed: int, *, samples: int) -> np.ndarray:
  """1/f noise of unit variance (white noise shaped in the frequency domain)."""
  spectrum = np.fft.rfft(white_noise(seed, samples=samples))
  spectrum /= np.sqrt(np.arange(1, spectrum.shape[0] + 1))
  x = np.fft.irfft(spectrum, samples)
  return x / np.std(x)


def babble(seed: int, *, samples: int, sample_rate: int = 16000, talkers: int = 6
           ) -> np.ndarray:
  """Several synthetic talkers at once, each at a random offset: unit variance."""
  rng = np.random.default_rng(seed)
  mix = np.zeros(samples)
  for talker in range(talkers):
    voice = continuous_speech(seed * 100 + talker, sample_rate=sample_rate,
                              duration_s=samples / sample_rate)
    mix += np.roll(np.resize(voice, samples), rng.integers(samples))
  return mix / np.std(mix)


def mix_at_snr(clean: np.ndarray, noise: np.ndarray, *, snr_db: float) -> np.ndarray:
  """``clean + g * noise`` with ``g`` set so that the power ratio is ``snr_db``."""
  gain = np.sqrt(np.mean(clean ** 2) / np.mean(noise ** 2) / 10 ** (snr_db / 10))
  return (clean + gain * noise).astype(np.float32)


def clip_fraction(x: np.ndarray, *, fraction: float, full_scale: float = 1.0
                  ) -> tuple[np.ndarray, float]:
  """Scales ``x`` so that ``fraction`` of its samples exceed full scale, clips it.

  Returns the clipped signal and the exact fraction of samples now at full scale.
  """
  if fraction <= 0:
    y = x / np.max(np.abs(x)) * 0.99 * full_scale
    return y.astype(np.float32), 0.0
  level = np.quantile(np.abs(x), 1 - fraction)
  y = np.clip(x / level * full_scale, -full_scale, full_scale)
  return y.astype(np.float32), float(np.mean(np.abs(y) >= full_scale))


def tone(*, frequency_hz: float, amplitude: float, samples: int, sample_rate: int = 16000
         ) -> np.ndarray:
  return amplitude * np.sin(2 * np.pi * frequency_hz * np.arange(samples) / sample_rate)
