"""Shared fixtures: a local TestPipeline that never downloads Prism, tiny uploads."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import soxr
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline

from pipelines import tts
from pipelines.runner import LOCAL_RUNNER
from pipelines.sample_audio import encode_audio, random_voice, synth_speech
from schemas.records import Clip


def local_pipeline() -> TestPipeline:
  """A TestPipeline on the in-process FnApiRunner (no Prism, no network)."""
  return TestPipeline(runner=LOCAL_RUNNER, options=PipelineOptions([]))


@pytest.fixture
def pipeline():
  return local_pipeline


def speech(seed: int = 0, *, sample_rate: int = 16000, duration_s: float = 3.0) -> np.ndarray:
  """Deterministic speech-like float32 audio."""
  rng = np.random.default_rng(seed)
  return synth_speech(rng, sample_rate=sample_rate, duration_s=duration_s,
                      voice=random_voice(rng))


def write_upload(root: str, name: str, data: bytes, sidecar: dict | bytes | None) -> str:
  """Writes ``root/name`` and, unless None, its sidecar; returns the audio path."""
  path = os.path.join(root, name)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'wb') as f:
    f.write(data)
  if sidecar is not None:
    with open(os.path.splitext(path)[0] + '.json', 'wb') as f:
      f.write(sidecar if isinstance(sidecar, bytes) else json.dumps(sidecar).encode())
  return path


def wav_bytes(samples: np.ndarray, *, sample_rate: int = 16000) -> bytes:
  return encode_audio(samples, sample_rate=sample_rate, fmt='wav_pcm16')


def clip_of(samples: np.ndarray | None = None, **fields) -> Clip:
  """A Clip with sensible defaults for transform tests."""
  fields.setdefault('source_uri', f'/uploads/{fields.get("upload_id", "u")}.wav')
  fields.setdefault('upload_id', 'u')
  fields.setdefault('contributor_id', 'c')
  return Clip(samples=samples, **fields)


@pytest.fixture(scope='session')
def espeak_takes() -> dict[str, np.ndarray]:
  """eSpeak NG reading a prompt; reading it again a little faster and lower (a
  second take as alike as eSpeak NG makes them); and the first with babble of
  three other voices at 20 dB SNR."""
  engine = tts.engine()
  text = 'Please call Stella and ask her'

  def say(words: str, **voice) -> np.ndarray:
    return soxr.resample(engine.say(words, **voice), engine.sample_rate, 16000)

  first = say(text, voice='en-us')
  babble = sum(np.resize(say(words, voice=voice), len(first))
               for words, voice in [('Seven bright stars were shining above the hills', 'en-us+f2'),
                                    ('A large market opens its doors every morning', 'en+m7'),
                                    ('Four hours of steady work faced us before', 'en-us+f5')])
  babble *= np.sqrt(np.mean(first ** 2) / np.mean(babble ** 2) / 100)
  return {'first': first, 'again': say(text, voice='en-us', pitch=46, words_per_minute=170),
          'noisy': first + babble}
