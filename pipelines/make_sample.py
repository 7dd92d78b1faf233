"""Generate the embedded sample: about 60 realistic uploads from 8 contributors.

    python -m pipelines.make_sample --out data/sample/uploads [--seed 7]

Read sentences (eSpeak NG text-to-speech, one voice per contributor, over each
contributor's own device noise floor) at 44.1 and 48 kHz in every supported
format (wav, flac, ogg vorbis, ogg opus, mp3, webm/opus, m4a/aac; some stereo),
with the sentence as transcript, plus the uploads a real platform receives and
must reject: silence, pure noise, a heavily clipped clip, one too short, one
with dropouts, a corrupt file, an empty file, a missing sidecar, a broken
sidecar, one without consent, an exact duplicate, and a re-encoded duplicate
uploaded from a second account. :func:`make_sample` returns
what the build should do with each upload, which the end-to-end test checks.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys

import numpy as np
import soxr

from pipelines import tts
from pipelines.sample_audio import EXTENSIONS, FORMATS, encode_audio
from pipelines.tts import SENTENCES, VOICES, Espeak
from schemas.config import SplitConfig
from transforms.split import split_of

__all__ = ['make_sample', 'ACCEPTED']

ACCEPTED = 'accepted'
CLIPS_PER_CONTRIBUTOR = 6
_START = datetime.datetime(2026, 11, 1, 8, 0, tzinfo=datetime.timezone.utc)


def _contributor_ids(rng: np.random.Generator) -> list[str]:
  """Eight ids whose stable split puts six in train, one in dev, one in test."""
  wanted = {'train': 6, 'dev': 1, 'test': 1}
  ids = []
  while sum(wanted.values()):
    candidate = f'contrib-{rng.integers(16 ** 6):06x}'
    split = split_of(candidate, config=SplitConfig())
    if wanted[split]:
      wanted[split] -= 1
      ids.append(candidate)
  return ids


class _Reader:
  """A contributor reading prompts: a voice, a pitch, a pace and a device noise floor."""
  def __init__(self, engine: Espeak, rng: np.random.Generator, index: int):
    self._engine = engine
    self._rng = rng
    self.voice = VOICES[index % len(VOICES)]
    self.pitch = int(rng.integers(30, 70))
    self.words_per_minute = int(rng.integers(145, 185))
    self.noise_dbfs = float(rng.uniform(-68, -58))

  def read(self, text: str, *, sample_rate: int) -> np.ndarray:
    """The sentence with 0.3-0.6 s of room noise before and after, peak -3 to -6 dBFS."""
    voice = self._engine.say(text, voice=self.voice, pitch=self.pitch,
                             words_per_minute=self.words_per_minute)
    voice = soxr.resample(voice, self._engine.sample_rate, sample_rate)
    voice *= 10 ** (self._rng.uniform(-6, -3) / 20) / np.max(np.abs(voice))
    lead, tail = (np.zeros(int(self._rng.uniform(0.3, 0.6) * sample_rate)) for _ in range(2))
    x = np.concatenate([lead, voice, tail])
    x += 10 ** (self.noise_dbfs / 20) * self._rng.standard_normal(x.shape[0])
    return x.astype(np.float32)


class _Writer:
  """Writes uploads and sidecars, and records what the build should make of them."""
  def __init__(self, root: str):
    self.root = root
    self.expected: dict[str, str] = {}
    self.count = 0

  def add(self, name: str, data: bytes, sidecar: dict | bytes | None, *, expect: str) -> None:
    path = os.path.join(self.root, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
      f.write(data)
    if sidecar is not None:
      stem = os.path.splitext(path)[0]
      with open(stem + '.json', 'wb') as f:
        f.write(sidecar if isinstance(sidecar, bytes) else json.dumps(sidecar).encode())
    upload_id = (sidecar.get('upload_id') if isinstance(sidecar, dict) else None) or \
        os.path.splitext(name)[0]
    self.expected[upload_id] = expect
    self.count += 1


def _sidecar(contributor: str, index: int, transcript: str | None = None,
             **extra) -> dict:
  uploaded = _START + datetime.timedelta(minutes=7 * index)
  doc = {'contributor_id': contributor, 'consent': True, 'locale': 'en-US',
         'prompt_id': f'p{index:04d}', 'uploaded_at': uploaded.isoformat().replace(
             '+00:00', 'Z')}
  if transcript is not None:
    doc['transcript'] = transcript
  doc.update(extra)
  return doc


def make_sample(root: str, *, seed: int = 7) -> dict[str, str]:
  """Writes the sample uploads under ``root``.

  Returns:
    ``{upload_id: 'accepted' or the expected reject reason}``.
  """
  rng = np.random.default_rng(seed)
  writer = _Writer(root)
  contributors = _contributor_ids(rng)
  readers = {c: _Reader(tts.engine(), rng, i) for i, c in enumerate(contributors)}
  counter = 0
  kept_wavs = []
  for c_index, contributor in enumerate(contributors):
    for k in range(CLIPS_PER_CONTRIBUTOR):
      counter += 1
      fmt = FORMATS[(c_index + k) % len(FORMATS)]
      rate = 48000 if fmt in ('ogg_opus', 'webm_opus') or counter % 2 else 44100
      transcript = SENTENCES[(3 * c_index + k) % len(SENTENCES)]
      speech = readers[contributor].read(transcript, sample_rate=rate)
      if counter % 5 == 0:
        speech = np.stack([speech, speech * 0.9], axis=1)
      name = f'{contributor}/take-{k:02d}{EXTENSIONS[fmt]}'
      writer.add(name, encode_audio(speech, sample_rate=rate, fmt=fmt),
                 _sidecar(contributor, counter, transcript), expect=ACCEPTED)
      if fmt == 'wav_pcm16':
        kept_wavs.append((name, speech, rate, contributor, transcript, counter))

  first, second, other = contributors[0], contributors[1], contributors[2]

  def speech_clip(text: str, rate: int = 48000) -> np.ndarray:
    return readers[first].read(text, sample_rate=rate)

  def wav(x: np.ndarray, rate: int = 48000) -> bytes:
    return encode_audio(x, sample_rate=rate, fmt='wav_pcm16')

  writer.add(f'{first}/silence.wav', wav(np.zeros(48000 * 3, np.float32)),
             _sidecar(first, 101, 'nothing at all'), expect='silence')
  noise = (0.1 * rng.standard_normal(48000 * 4)).astype(np.float32)
  writer.add(f'{second}/noise.wav', wav(noise), _sidecar(second, 102), expect='low_snr')
  clipped = np.clip(speech_clip(SENTENCES[0]) * 12, -1, 1)
  writer.add(f'{first}/clipped.wav', wav(clipped), _sidecar(first, 103), expect='clipped')
  writer.add(f'{second}/short.flac',
             encode_audio(speech_clip('Yes.'), sample_rate=48000, fmt='flac'),
             _sidecar(second, 104), expect='too_short')
  writer.add(f'{other}/corrupt.wav', bytes(rng.integers(0, 256, 4000, dtype=np.uint8)),
             _sidecar(other, 105), expect='unsupported_format')
  truncated = encode_audio(speech_clip(SENTENCES[1]), sample_rate=48000, fmt='flac')[:60]
  writer.add(f'{other}/truncated.flac', truncated, _sidecar(other, 106), expect='undecodable')
  writer.add(f'{other}/empty.webm', b'', _sidecar(other, 107), expect='empty_file')
  writer.add(f'{second}/no-sidecar.wav', wav(speech_clip(SENTENCES[2])), None,
             expect='missing_sidecar')
  writer.add(f'{second}/broken-sidecar.wav', wav(speech_clip(SENTENCES[3])),
             b'{"contributor_id": "x", ', expect='invalid_metadata')
  writer.add(f'{second}/no-consent.wav', wav(speech_clip(SENTENCES[4])),
             _sidecar(second, 108, consent=False), expect='no_consent')
  gaps = speech_clip(SENTENCES[6])
  for start_s in np.arange(0.8, 3.0, 0.25):  # a phone dropping 30 ms buffers
    gaps[int(start_s * 48000):int((start_s + 0.03) * 48000)] = 0
  writer.add(f'{second}/packet-loss.wav', wav(gaps), _sidecar(second, 111, SENTENCES[6]),
             expect='dropouts')
  # A phone app that saves AAC under a .wav name: the content decides, so it is accepted.
  said = 'My phone saved this recording under a name that does not fit it.'
  phone = encode_audio(readers[other].read(said, sample_rate=44100), sample_rate=44100,
                       fmt='m4a_aac')
  writer.add(f'{other}/phone-upload.wav', phone, _sidecar(other, 109, said), expect=ACCEPTED)

  name, speech, rate, contributor, transcript, index = kept_wavs[0]
  with open(os.path.join(root, name), 'rb') as f:
    original = f.read()
  writer.add(f'{contributor}/take-again.wav', original,
             _sidecar(contributor, index + 200, transcript), expect='duplicate')
  # The same recording again, as mp3 from another account: caught by near-dedup.
  writer.add(f'{second}/reencoded.mp3', encode_audio(speech, sample_rate=rate, fmt='mp3'),
             _sidecar(second, 110, transcript), expect='near_duplicate')
  return writer.expected


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--out', required=True, help='directory to write the uploads into')
  parser.add_argument('--seed', type=int, default=7)
  args = parser.parse_args(argv)
  if os.path.exists(args.out) and os.listdir(args.out):
    print(f'{args.out} exists and is not empty; remove it to regenerate', file=sys.stderr)
    return 1
  expected = make_sample(args.out, seed=args.seed)
  print(f'wrote {len(expected)} sample uploads to {args.out}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
