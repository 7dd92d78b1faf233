"""The decoder child process: real files past the time limit and the memory bound,
and a child killed mid-upload (retried once, then a reject)."""

from __future__ import annotations

import io
import os
import signal
import threading
import time

import numpy as np
import pytest
import soundfile as sf

from pipelines.sample_audio import encode_audio
from schemas.config import DecodeConfig
from tests.conftest import speech
from transforms.common import RejectUpload
from transforms.decode_process import DecoderProcess


def flac(samples: np.ndarray, rate: int, subtype: str = 'PCM_16') -> bytes:
  buffer = io.BytesIO()
  sf.write(buffer, samples, rate, format='FLAC', subtype=subtype)
  return buffer.getvalue()


@pytest.fixture
def decoder_of():
  made = []

  def make(**limits) -> DecoderProcess:
    made.append(DecoderProcess(config=DecodeConfig(**limits)))
    return made[-1]
  yield make
  for decoder in made:
    decoder.close()


def test_decodes_like_decode_bytes_and_keeps_its_rejects(decoder_of):
  decoder = decoder_of()
  x = speech(1, sample_rate=48000)
  decoded = decoder.decode(encode_audio(x, sample_rate=48000, fmt='webm_opus'))
  assert decoded.sample_rate == 48000 and decoded.codec == 'opus'
  assert decoded.samples.shape == (len(x), 1)
  first = decoder.pid
  with pytest.raises(RejectUpload) as e:
    decoder.decode(b'RIFF\x10\x00\x00\x00WAVEfmt nonsense')
  assert e.value.reason == 'undecodable' and 'libsndfile' in e.value.detail
  assert decoder.pid == first  # a reject does not cost a new child


def test_an_upload_past_the_time_limit_is_stopped_and_rejected(decoder_of):
  # 30 s of stereo Opus in 200 kB: about 0.2 s to decode, four times the limit.
  rng = np.random.default_rng(0)
  data = encode_audio(rng.uniform(-0.3, 0.3, (48000 * 30, 2)).astype(np.float32),
                      sample_rate=48000, fmt='webm_opus')
  small = encode_audio(speech(2), sample_rate=16000, fmt='wav_pcm16')
  decoder = decoder_of(timeout_s=0.05)
  assert decoder.decode(small).samples.shape[0] == 48000  # the child has loaded its codecs
  first = decoder.pid
  started = time.monotonic()
  with pytest.raises(RejectUpload) as e:
    decoder.decode(data)
  assert e.value.reason == 'decode_timeout' and '0.05 s' in e.value.detail
  assert time.monotonic() - started < 2  # stopped, not waited for
  with pytest.raises(ProcessLookupError):
    os.kill(first, 0)
  assert decoder.decode(small).samples.shape[0] == 48000  # a fresh child takes over


def test_an_upload_past_the_memory_bound_is_rejected(decoder_of):
  # 100 s of 8 channels at 48 kHz decode to 154 MB of float32; the bound is 64 MB.
  data = flac(np.zeros((48000 * 100, 8), np.int16), 48000)
  assert len(data) < 2_000_000
  decoder = decoder_of(max_memory_mb=64)
  with pytest.raises(RejectUpload) as e:
    decoder.decode(data)
  assert e.value.reason == 'decode_out_of_memory' and '64 MB' in e.value.detail
  assert decoder.decode(flac(np.zeros((16000, 1), np.int16), 16000)).samples.shape == (16000, 1)


def kill_children(decoder: DecoderProcess, times: int) -> threading.Thread:
  """Kills each of the decoder's next ``times`` children as soon as it appears.

  At once, not after a delay: a child starts in about 0.2 s (it loads no Beam) and
  decodes a few seconds of FLAC in milliseconds, so a later kill could miss the upload.
  """
  def kill():
    killed = set()
    while len(killed) < times:
      pid = decoder.pid
      if pid is not None and pid not in killed:
        os.kill(pid, signal.SIGKILL)
        killed.add(pid)
      time.sleep(0.01)
  thread = threading.Thread(target=kill, daemon=True)
  thread.start()
  return thread


def test_a_child_killed_mid_upload_is_replaced_and_the_upload_tried_again(decoder_of):
  data = encode_audio(speech(3), sample_rate=16000, fmt='flac')
  decoder = decoder_of()
  killer = kill_children(decoder, times=1)
  decoded = decoder.decode(data)  # the first child dies at its import or decode
  killer.join(timeout=30)
  assert decoded.samples.shape == (48000, 1)


def test_a_child_killed_twice_on_one_upload_is_a_reject_that_says_how(decoder_of):
  data = encode_audio(speech(4), sample_rate=16000, fmt='flac')
  decoder = decoder_of()
  killer = kill_children(decoder, times=2)
  with pytest.raises(RejectUpload) as e:
    decoder.decode(data)
  killer.join(timeout=30)
  assert e.value.reason == 'decoder_crashed'
  assert e.value.detail.count('was killed by SIGKILL') == 2
  assert decoder.decode(data).samples.shape == (48000, 1)
