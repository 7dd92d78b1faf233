"""Benchmark near-duplicate detection on an evaluation set synthesized here.

    python -m pipelines.bench_dedup [--originals 300] [--seed 0] [--out results.json]
                                    [--speech formant|espeak] [--workers N] [--quick]

Builds the evaluation set, prints precision, recall and false-positive rate per
transform and per hard-negative kind, times the dedup stage (a Beam run of
:class:`~transforms.near_dedup.DeduplicateNear` on the in-memory FnApiRunner) at
1x, 4x and 16x the set size, and writes everything as JSON.

The evaluation set (every clip goes through the pipeline's own decode,
standardize and trim functions, then :func:`~transforms.fingerprint.fingerprint`):

* Originals: readings of prompts (:func:`~pipelines.sample_audio.sentence_words`,
  2-10 words from a 60-word vocabulary, so prompts share words) by speakers
  (:func:`~pipelines.sample_audio.synth_take`, ten originals each; with
  ``--speech espeak``, eSpeak NG voices at their own pitch and pace reading
  the words of :data:`pipelines.tts.SENTENCES`), each
  speaker recording on their own device (a band-pass of 80-250 Hz to
  3.8-7.5 kHz) at their own level (peaks 0-12 dB under synth_speech's),
  uploaded at 16, 44.1 or 48 kHz as wav, flac, webm/opus, m4a/aac or mp3.
* Copies of every original's decoded upload: 6 of the 12 transforms of
  :data:`TRANSFORMS` (original ``i`` gets transforms ``5i .. 5i+5`` mod 12, so
  each transform gets half of the originals), and a combination of 2-4
  transforms from different families (edges, noise, gain, resampling, stereo,
  codec, applied in that order).
* Hard negatives per original: ``second_take`` (same speaker, same device, same
  prompt, another performance; with eSpeak NG, whose readings vary word by word
  only as :func:`_espeak_take` draws, also 4-10 % faster or slower and 3-8
  pitch units higher or lower), ``other_speaker`` (the same prompt read by
  another speaker), ``shared_words`` (same speaker and device, a prompt sharing
  the first half of its words); and every pair of one speaker's originals
  (``same_speaker_other_prompt``: different prompts, which share words).

Clips shorter than ``filter.min_duration_s`` after trimming are left out: the
filter stage rejects them as ``too_short`` before dedup sees them.

Pair metrics compare each original with its copies (recall) and with its hard
negatives (false-positive rate): a pair is detected when the stage would make
it a candidate (both fingerprints comparable, LSH keys aligned in
``min_aligned_blocks`` parts) and it matches at ``max_ber``. Set metrics come
from the Beam run at 1x, originals uploaded first: a copy rejected as
``near_duplicate`` of a clip of its own recording is a true positive, any other
rejection a false positive (precision = true / all rejects). The ``history``
column repeats the run with the originals given as published reference rows.

Timing: the dedup stage on the FnApiRunner (in memory, one core) at 1x, 4x and
16x the set, minus a baseline run that only makes and counts the clips. Replica
``r`` of the set has every id suffixed and every fingerprint word's 32 bits
rotated by ``r`` places, as if each band moved up ``r`` places: distances within
a replica are unchanged, replicas do not match each other (best BER over 0.42),
and structured patterns (a voice's harmonic comb) still collide across replicas
as they would across real talkers, so key buckets grow with the set.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import glob
import json
import multiprocessing
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import apache_beam as beam
import numpy as np
import scipy.fft
import scipy.signal
import soxr
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.publish import write_json
from pipelines.sample_audio import (
  encode_audio,
  random_voice,
  sentence_words,
  synth_take,
)
from pipelines.tts import SENTENCES
from pipelines.tts import engine as tts_engine
from schemas.config import ConfigError, DecodeConfig, NearDedupConfig, TrimConfig, load_config
from schemas.records import Clip, Reject
from transforms.decode import decode_bytes
from transforms.fingerprint import (
  aligned_blocks,
  fingerprint_with_levels,
  is_low_information,
  loud_ber,
  lsh_key_arrays,
  match,
  unmatched_speech_s,
)
from transforms.near_dedup import DeduplicateNear
from transforms.standardize import standardize
from transforms.trim import sound_span

__all__ = ['EvalClip', 'build_eval_set', 'pair_metrics', 'main', 'TRANSFORMS',
           'NEGATIVE_KINDS', 'rotate_words']

RATE_HZ = 16000  # synthesis and the pipeline's standard rate
NATIVE_RATES_HZ = (16000, 44100, 48000)
NATIVE_FORMATS = ('wav_pcm16', 'flac', 'webm_opus', 'm4a_aac', 'mp3')
OTHER_RATES_HZ = (11025, 12000, 22050, 24000, 32000, 44100, 48000)
# name -> (sample_audio format, bit rate in bit/s)
CODECS = {'mp3_64k': ('mp3', 64_000), 'webm_opus_24k': ('webm_opus', 24_000),
          'm4a_aac_64k': ('m4a_aac', 64_000)}
TRANSFORMS = ('mp3_64k', 'webm_opus_24k', 'm4a_aac_64k', 'resample_8k', 'resample_other',
              'gain', 'pad_silence', 'pad_room_noise', 'trim', 'white_noise_20db',
              'babble_noise_20db', 'stereo')
FAMILIES = {'edges': ('pad_silence', 'pad_room_noise', 'trim'),
            'noise': ('white_noise_20db', 'babble_noise_20db'),
            'gain': ('gain',), 'resample': ('resample_8k', 'resample_other'),
            'stereo': ('stereo',), 'codec': tuple(CODECS)}
SINGLES_PER_ORIGINAL = 6
COMBINATIONS_PER_ORIGINAL = 1
NEGATIVE_KINDS = ('second_take', 'other_speaker', 'shared_words',
                  'same_speaker_other_prompt')
ORIGINALS_PER_SPEAKER = 10
SNR_DB = 20.0
_DECODE = DecodeConfig()
_TRIM = TrimConfig()
_BABBLE_TRACKS, _BABBLE_TALKERS, _BABBLE_S = 8, 6, 12.0


class EvalClip(NamedTuple):
  """One upload of the evaluation set, as the dedup stage sees it."""
  upload_id: str
  recording: str        # clips of one recording are true duplicates of each other
  kind: str             # 'original', a transform, 'combination' or a hard-negative kind
  original: str         # upload_id of the original this clip was made from or against
  contributor_id: str
  uploaded_at: str
  duration_s: float
  detail: str
  fingerprint: np.ndarray
  levels: np.ndarray  # uint8 per word (fingerprint_with_levels)


@dataclasses.dataclass(frozen=True)
class _Speaker:
  voice: object  # a sample_audio.Voice, or an eSpeak NG voice name
  device_sos: np.ndarray
  level_db: float
  pitch: int = 50  # eSpeak NG only
  words_per_minute: int = 165


def _speakers(seed: int, count: int) -> list[_Speaker]:
  rng = np.random.default_rng([seed, 1])
  speakers = []
  for index in range(count):
    voice = random_voice(rng)
    sos = np.vstack([
        scipy.signal.butter(2, rng.uniform(80, 250), 'highpass', fs=RATE_HZ, output='sos'),
        scipy.signal.butter(4, rng.uniform(3800, 7500), 'lowpass', fs=RATE_HZ, output='sos')])
    level_db, pitch, pace = float(rng.uniform(-12, 0)), rng.integers(30, 71), rng.integers(140, 191)
    if _SPEECH[0] == 'espeak':
      voice = _ESPEAK_VOICES[index % len(_ESPEAK_VOICES)]
    speakers.append(_Speaker(voice, sos, level_db, int(pitch), int(pace)))
  return speakers


_SPEECH = ['formant']  # or 'espeak'; set in each worker
_ESPEAK_VOICES = tuple(f'{language}+{variant}'
                       for language in ('en-us', 'en', 'en-gb-x-rp', 'en-gb-scotland')
                       for variant in ('m1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7',
                                       'f1', 'f2', 'f3', 'f4', 'f5'))
"""One eSpeak NG voice per speaker (48: the 30 speakers of 300 originals never share one)."""
_VOCABULARY = tuple(sorted({w.strip('.,').lower() for s in SENTENCES for w in s.split()}))


def _espeak_take(words: tuple[int, ...], speaker: _Speaker, take_seed: int) -> np.ndarray:
  """eSpeak NG reading the words at the speaker's pitch and pace.

  eSpeak NG reads a text the same way every time, sample for sample, which no
  person does: every take is performed word by word (SSML prosody), each word
  5-15 % faster or slower and up to 8 % higher or lower than the speaker's
  norm, with a 40-160 ms pause before a quarter of them, as the take's seed
  draws. Takes after the first (``take_seed % 2``) also change the pace by
  4-10 % and the pitch by 3-8 units overall.
  """
  engine = tts_engine()
  rng = np.random.default_rng([take_seed, 4])
  pitch, pace = speaker.pitch, speaker.words_per_minute
  if take_seed % 2:
    pace = round(pace * (1 + rng.choice([-1, 1]) * rng.uniform(0.04, 0.10)))
    pitch = int(np.clip(pitch + rng.choice([-1, 1]) * rng.integers(3, 9), 0, 99))
  parts = []
  for i, w in enumerate(words):
    if i and rng.random() < 0.25:
      parts.append(f'<break time="{int(rng.integers(40, 161))}ms"/>')
    rate = 100 + rng.choice([-1, 1]) * int(rng.integers(5, 16))
    parts.append(f'<prosody rate="{rate}%" pitch="{int(rng.integers(-8, 9)):+d}%">'
                 f'{_VOCABULARY[w % len(_VOCABULARY)]}</prosody>')
  x = soxr.resample(engine.say(f'<speak>{" ".join(parts)}</speak>', voice=speaker.voice,
                               pitch=pitch, words_per_minute=pace, ssml=True),
                    engine.sample_rate, RATE_HZ)
  x *= 10 ** (rng.uniform(-5.5, -3.5) / 20) / max(np.max(np.abs(x)), 1e-9)
  edge = np.zeros(int(0.3 * RATE_HZ))
  x = np.concatenate([edge, x, edge])
  return x + 10 ** (rng.uniform(-68, -58) / 20) * _pink(rng, len(x), RATE_HZ)


def _record(words: tuple[int, ...], speaker: _Speaker, take_seed: int) -> np.ndarray:
  """A take through the speaker's device at the speaker's level, float at 16 kHz."""
  if _SPEECH[0] == 'espeak':
    x = _espeak_take(words, speaker, take_seed)
  else:
    x = synth_take(words, voice=speaker.voice, take_seed=take_seed, sample_rate=RATE_HZ)
  x = scipy.signal.sosfilt(speaker.device_sos, x) * 10 ** (speaker.level_db / 20)
  return x.astype(np.float32)


def _active_power(x: np.ndarray, *, sample_rate: int) -> float:
  """Mean power over 20 ms frames within 30 dB of the loudest (the speech)."""
  frame = sample_rate // 50
  frames = x[:len(x) // frame * frame].reshape(-1, frame).astype(np.float64)
  power = np.mean(frames ** 2, axis=1)
  return float(np.mean(power[power >= power.max() * 1e-3]))


def _mix(x: np.ndarray, noise: np.ndarray, *, sample_rate: int, snr_db: float) -> np.ndarray:
  """``x`` plus ``noise`` scaled to ``snr_db`` below x's active speech power."""
  gain = np.sqrt(_active_power(x, sample_rate=sample_rate) / 10 ** (snr_db / 10)
                 / np.mean(noise.astype(np.float64) ** 2))
  return (x + gain * noise).astype(np.float32)


def _babble_track(args: tuple[int, int, str]) -> np.ndarray:
  """Several talkers at equal power reading long prompts at once, 16 kHz."""
  seed, index, _SPEECH[0] = args
  rng = np.random.default_rng([seed, 2, index])
  n = int(_BABBLE_S * RATE_HZ)
  out = np.zeros(n)
  for talker in _speakers(seed * 1000 + index, _BABBLE_TALKERS):
    words = sentence_words(int(rng.integers(2**31)), min_words=18, max_words=18)
    x = _record(words, talker, int(rng.integers(2**31)))
    x = np.resize(x[int(0.3 * RATE_HZ):], n)
    out += x / np.sqrt(np.mean(x.astype(np.float64) ** 2))
  return out.astype(np.float32)


def encode(samples: np.ndarray, *, sample_rate: int, codec: str) -> bytes:
  """Encodes float audio (n,) or (n, channels) with a bit rate from :data:`CODECS`."""
  fmt, bit_rate = CODECS[codec]
  return encode_audio(samples, sample_rate=sample_rate, fmt=fmt, bit_rate=bit_rate)


def _pipeline_view(data: bytes) -> tuple[np.ndarray, np.ndarray, float]:
  """What the pipeline's measure stage sees: decoded, standardized, trimmed
  int16 at 16 kHz; returns its fingerprint, levels and duration."""
  decoded = decode_bytes(data, config=_DECODE)
  pcm = standardize(decoded.samples, sample_rate=decoded.sample_rate, target_rate=RATE_HZ)
  span = sound_span(pcm, sample_rate=RATE_HZ, config=_TRIM)
  pcm = pcm[span[0]:span[1]] if span else pcm[:0]
  return (*fingerprint_with_levels(pcm, sample_rate=RATE_HZ), pcm.shape[0] / RATE_HZ)


class _Audio(NamedTuple):
  samples: np.ndarray  # float (n,) or (n, channels)
  rate: int


def _apply(name: str, audio: _Audio, rng: np.random.Generator) -> tuple[_Audio, str]:
  """One transform (not a codec) of :data:`TRANSFORMS`; returns audio and a note."""
  x, rate = audio
  if name in ('resample_8k', 'resample_other'):
    target = 8000 if name == 'resample_8k' else int(
        rng.choice([r for r in OTHER_RATES_HZ if r != rate]))
    return _Audio(soxr.resample(x, rate, target, quality='HQ'), target), f'{target} Hz'
  if name == 'gain':
    gain_db = float(rng.uniform(-12, 12))
    return _Audio(np.clip(x * 10 ** (gain_db / 20), -1, 1), rate), f'{gain_db:+.1f} dB'
  if name in ('pad_silence', 'pad_room_noise', 'trim'):
    where = rng.choice(['start', 'end', 'both'])
    amounts_s = rng.uniform(0.05, 0.5, 2) if name == 'trim' else rng.uniform(0.1, 1.0, 2)
    head_s, tail_s = (amounts_s[0] if where != 'end' else 0.0,
                      amounts_s[1] if where != 'start' else 0.0)
    head, tail = int(head_s * rate), int(tail_s * rate)
    note = f'{head_s:.2f} s + {tail_s:.2f} s'
    if name == 'trim':
      return _Audio(x[head:len(x) - tail], rate), note
    if name == 'pad_silence':
      return _Audio(np.concatenate([np.zeros(head), x, np.zeros(tail)]), rate), note
    level_db = float(rng.uniform(25, 40))  # room noise this far under the speech
    room = _pink(rng, head + tail, rate)
    room *= np.sqrt(_active_power(x, sample_rate=rate) / 10 ** (level_db / 10))
    return (_Audio(np.concatenate([room[:head], x, room[head:]]), rate),
            f'{note} at -{level_db:.0f} dB')
  if name in ('white_noise_20db', 'babble_noise_20db'):
    if name == 'white_noise_20db':
      noise = rng.standard_normal(len(x))
    else:
      track = _BABBLE[int(rng.integers(len(_BABBLE)))]
      track = soxr.resample(track, RATE_HZ, rate) if rate != RATE_HZ else track
      noise = np.resize(np.roll(track, int(rng.integers(len(track)))), len(x))
    return _Audio(_mix(x, noise, sample_rate=rate, snr_db=SNR_DB), rate), f'{SNR_DB:g} dB SNR'
  if name == 'stereo':
    return _Audio(np.stack([x, x], axis=1), rate), '2 channels'
  raise ValueError(f'unknown transform {name!r}')


def _pink(rng: np.random.Generator, n: int, rate: int) -> np.ndarray:
  """Unit-RMS noise with a 1/f power spectrum above 50 Hz."""
  size = scipy.fft.next_fast_len(max(n, 2), real=True)
  spectrum = scipy.fft.rfft(rng.standard_normal(size))
  spectrum /= np.sqrt(np.maximum(scipy.fft.rfftfreq(size, 1 / rate), 50.0))
  noise = scipy.fft.irfft(spectrum, size)[:n]
  return noise / max(np.sqrt(np.mean(noise ** 2)), 1e-12)


def _upload(names: Sequence[str], audio: _Audio, rng: np.random.Generator) -> tuple[bytes, str]:
  """Applies transforms in family order, then encodes (a codec, or 16-bit wav)."""
  notes, codec = [], None
  for name in names:
    if name in CODECS:
      codec = name
      continue
    audio, note = _apply(name, audio, rng)
    notes.append(f'{name} ({note})')
  if codec is not None:
    notes.append(codec)
    return encode(audio.samples, sample_rate=audio.rate, codec=codec), ', '.join(notes)
  samples = np.clip(audio.samples, -1, 1)
  return encode_audio(samples, sample_rate=audio.rate, fmt='wav_pcm16'), ', '.join(notes)


_BABBLE: list[np.ndarray] = []


def _init_worker(babble: list[np.ndarray], speech: str) -> None:
  _BABBLE[:] = babble
  _SPEECH[0] = speech


def _combination(rng: np.random.Generator) -> list[str]:
  families = list(FAMILIES)
  chosen = rng.choice(len(families), size=int(rng.integers(2, 5)), replace=False)
  ordered = [families[i] for i in sorted(chosen)]  # FAMILIES is in application order
  return [str(rng.choice(FAMILIES[family])) for family in ordered]


def _original_group(args: tuple[int, int, int]) -> list[EvalClip]:
  """The original number ``index``, its copies and its hard negatives."""
  seed, index, n_speakers = args
  rng = np.random.default_rng([seed, 3, index])
  speakers = _speakers(seed, n_speakers)
  speaker_index = index // ORIGINALS_PER_SPEAKER
  speaker = speakers[speaker_index]
  words = sentence_words(int(rng.integers(2**31)), min_words=2, max_words=10)
  oid = f'o{index:04d}'
  contributor = f'spk{speaker_index:03d}'

  def clip(upload_id, recording, kind, contributor_id, data, detail, *, first=False):
    fp, levels, duration_s = _pipeline_view(data)
    minute = index if first else 100_000 + int(rng.integers(100_000))
    uploaded_at = (np.datetime64('2026-01-01T00:00') + np.timedelta64(minute, 'm'))
    return EvalClip(upload_id, recording, kind, oid, contributor_id, f'{uploaded_at}:00Z',
                    duration_s, detail, fp, levels)

  def native(x: np.ndarray) -> tuple[bytes, str]:
    rate = int(rng.choice(NATIVE_RATES_HZ))
    fmt = str(rng.choice(NATIVE_FORMATS))
    x = soxr.resample(x, RATE_HZ, rate, quality='HQ') if rate != RATE_HZ else x
    return encode_audio(np.clip(x, -1, 1), sample_rate=rate, fmt=fmt), f'{fmt} {rate} Hz'

  # Even take seeds read as the speaker usually does, odd ones differently (eSpeak NG).
  data, note = native(_record(words, speaker, 2 * int(rng.integers(2**30))))
  clips = [clip(oid, oid, 'original', contributor, data, note, first=True)]
  decoded = decode_bytes(data, config=_DECODE)
  source = _Audio(decoded.samples.mean(axis=1), decoded.sample_rate)

  def copier() -> str:  # half the copies come from another contributor's account
    if rng.random() < 0.5:
      return contributor
    return f'spk{(speaker_index + 1 + int(rng.integers(n_speakers - 1))) % n_speakers:03d}'

  for j in range(SINGLES_PER_ORIGINAL):  # each transform on the same share of originals
    name = TRANSFORMS[(index * 5 + j) % len(TRANSFORMS)]
    copy, note = _upload([name], source, rng)
    clips.append(clip(f'{oid}-{name}', oid, name, copier(), copy, note))
  for k in range(COMBINATIONS_PER_ORIGINAL):
    copy, note = _upload(_combination(rng), source, rng)
    clips.append(clip(f'{oid}-combination{k}', oid, 'combination', copier(), copy, note))

  other_index = (speaker_index + 1 + int(rng.integers(n_speakers - 1))) % n_speakers
  half = (len(words) + 1) // 2 if len(words) > 2 else 1  # always fewer than all
  shared = words
  while shared == words:  # the rest of the prompt is other words
    shared = words[:half] + sentence_words(
        int(rng.integers(2**31)), min_words=len(words), max_words=len(words))[half:]
  negatives = [
      ('second_take', words, speaker, contributor, 1),
      ('other_speaker', words, speakers[other_index], f'spk{other_index:03d}', 0),
      ('shared_words', shared, speaker, contributor, 1)]  # another session: another reading
  for kind, prompt, talker, owner, parity in negatives:
    data, note = native(_record(prompt, talker, 2 * int(rng.integers(2**30)) + parity))
    clips.append(clip(f'{oid}-{kind}', f'{oid}-{kind}', kind, owner, data, note))
  return clips


def build_eval_set(*, originals: int, seed: int, workers: int,
                   min_duration_s: float | None = None, speech: str = 'formant'
                   ) -> tuple[list[EvalClip], int]:
  """Synthesizes, transforms and fingerprints the evaluation set.

  Args:
    speech: ``formant`` (:func:`~pipelines.sample_audio.synth_take`) or
      ``espeak`` (:class:`~pipelines.tts.Espeak`).

  Returns:
    The clips, and how many were left out for being shorter than
    ``min_duration_s`` after trimming (the filter stage rejects those as
    ``too_short`` before dedup; an original's whole group goes with it).
  """
  n_speakers = max(-(-originals // ORIGINALS_PER_SPEAKER), 2)
  context = multiprocessing.get_context('fork')
  with context.Pool(workers) as pool:
    babble = pool.map(_babble_track, [(seed, i, speech) for i in range(_BABBLE_TRACKS)])
  with context.Pool(workers, initializer=_init_worker, initargs=(babble, speech)) as pool:
    groups = pool.map(_original_group, [(seed, i, n_speakers) for i in range(originals)],
                      chunksize=1)
  clips = [clip for group in groups for clip in group]
  if min_duration_s is None:
    return clips, 0
  short_originals = {c.upload_id for c in clips
                     if c.kind == 'original' and c.duration_s < min_duration_s}
  kept = [c for c in clips
          if c.duration_s >= min_duration_s and c.original not in short_originals]
  return kept, len(clips) - len(kept)


def _pairs(clips: Sequence[EvalClip]) -> list[tuple[str, EvalClip, EvalClip]]:
  """(kind, original, other) for every labelled pair."""
  originals = {c.upload_id: c for c in clips if c.kind == 'original'}
  pairs = [(c.kind, originals[c.original], c) for c in clips if c.kind != 'original']
  by_speaker = collections.defaultdict(list)
  for c in originals.values():
    by_speaker[c.contributor_id].append(c)
  for same in by_speaker.values():
    pairs += [('same_speaker_other_prompt', a, b)
              for i, a in enumerate(same) for b in same[i + 1:]]
  return pairs


def _candidate_score(a: EvalClip, b: EvalClip, keys: dict) -> int:
  keys_a, frames_a = keys[a.upload_id]
  keys_b, frames_b = keys[b.upload_id]
  _, in_a, in_b = np.intersect1d(keys_a, keys_b, assume_unique=True, return_indices=True)
  return aligned_blocks(frames_a[in_a], frames_b[in_b], length_a=len(a.fingerprint),
                        length_b=len(b.fingerprint))


def _scores(a: EvalClip, b: EvalClip, *, config: NearDedupConfig
            ) -> tuple[float, float | None, bool]:
  """The BER and loud-word BER at the best alignment, and whether those and the
  unmatched speech make the pair the same recording (as verify_pair decides)."""
  ber, offset = match(a.fingerprint, b.fingerprint)
  loud = loud_ber(a.fingerprint, b.fingerprint, a.levels, b.levels, offset_frames=offset)
  unmatched = unmatched_speech_s(len(a.fingerprint), len(b.fingerprint), a.levels, b.levels,
                                 offset_frames=offset)
  same = (ber <= config.max_ber and (loud is None or loud <= config.max_loud_ber)
          and (unmatched is None or unmatched <= config.max_unmatched_speech_s))
  return ber, loud, same


def pair_metrics(clips: Sequence[EvalClip], *, config: NearDedupConfig) -> dict[str, dict]:
  """Per kind of pair: how many, how many detected (candidate, and a match by
  both scores), the BERs, loud-word BERs and candidate scores."""
  keys = {c.upload_id: lsh_key_arrays(c.fingerprint, c.levels) for c in clips}
  out = collections.defaultdict(
      lambda: {'pairs': 0, 'detected': 0, 'ber': [], 'loud_ber': [], 'score': [], 'ids': [],
               'hits': []})
  for kind, a, b in _pairs(clips):
    comparable = not (is_low_information(a.fingerprint) or is_low_information(b.fingerprint))
    score = _candidate_score(a, b, keys) if comparable else 0
    ber, loud, same = _scores(a, b, config=config)
    row = out[kind]
    row['pairs'] += 1
    hit = score >= config.min_aligned_blocks and same
    row['detected'] += int(hit)
    row['ber'].append(ber)
    row['loud_ber'].append(np.nan if loud is None else loud)  # too few loud words
    row['score'].append(score)
    row['ids'].append((a.upload_id, b.upload_id, b.detail, round(b.duration_s, 2)))
    row['hits'].append(hit)
  return dict(out)


def rotate_words(words: np.ndarray, places: int) -> np.ndarray:
  """Every word's 32 bits rotated left: the bands shifted by ``places``."""
  if places % 32 == 0:
    return words
  return ((words << np.uint32(places)) | (words >> np.uint32(32 - places))).astype(np.uint32)


class _ReplicaClipsFn(beam.DoFn):
  """Replica number -> the evaluation set as pipeline clips, every fingerprint
  rotated by the replica number and every id suffixed with it."""
  def __init__(self, clips: Sequence[EvalClip]):
    self._clips = [(c.upload_id, c.contributor_id, c.uploaded_at, c.fingerprint, c.levels)
                   for c in clips]

  def process(self, replica: int) -> Iterator[Clip]:
    suffix = f'~{replica}' if replica else ''
    for upload_id, contributor_id, uploaded_at, words, levels in self._clips:
      yield Clip(source_uri=f'bench://{upload_id}{suffix}', upload_id=upload_id + suffix,
                 contributor_id=contributor_id + suffix, uploaded_at=uploaded_at,
                 clip_id=upload_id + suffix, fingerprint=rotate_words(words, replica),
                 fingerprint_levels=levels)


def _reject_json(reject: Reject) -> str:
  return json.dumps({'upload_id': reject.upload_id, 'reason': reject.reason,
                     'duplicate_of': reject.duplicate_of, 'detail': reject.detail,
                     'cross_contributor': reject.cross_contributor})


def _read_lines(pattern: str) -> list[str]:
  lines = []
  for path in sorted(glob.glob(pattern)):
    with open(path, encoding='utf-8') as f:
      lines += f.read().splitlines()
  return lines


def run_dedup(clips: Sequence[EvalClip], *, config: NearDedupConfig, replicas: int = 1,
              reference: Sequence[EvalClip] = (), dedup: bool = True,
              workdir: str) -> dict:
  """One Beam run (FnApiRunner, in memory) of DeduplicateNear over ``replicas``
  rotated copies of ``clips``; ``reference`` clips are given as published
  fingerprint rows. Returns wall time, counters, kept ids and rejects."""
  options = PipelineOptions(['--runner=FnApiRunner', '--direct_running_mode=in_memory'])
  out = os.path.join(workdir, f'run-{time.monotonic_ns()}')
  started = time.perf_counter()
  with beam.Pipeline(options=options) as p:
    inputs = (p | 'Replicas' >> beam.Create(list(range(replicas)))
              | 'Clips' >> beam.ParDo(_ReplicaClipsFn(clips)))
    if not dedup:  # the baseline: making the clips and counting them
      _ = inputs | 'Count' >> beam.combiners.Count.Globally()
    else:
      rows = None
      if reference:
        rows = p | 'Reference' >> beam.Create([
            {'clip_id': c.upload_id, 'upload_id': c.upload_id,
             'contributor_id': c.contributor_id, 'uploaded_at': c.uploaded_at,
             'duration_s': c.duration_s, 'fingerprint': c.fingerprint.astype('<u4').tobytes(),
             'fingerprint_levels': c.levels.tobytes(), 'build_id': 'earlier',
             'pipeline_version': 'bench'} for c in reference])
      result = inputs | 'Dedup' >> DeduplicateNear(config=config, reference=rows)
      _ = (result.clips | 'KeptIds' >> beam.Map(lambda clip: clip.upload_id)
           | 'WriteKept' >> beam.io.WriteToText(os.path.join(out, 'kept')))
      _ = (result.rejected | 'RejectJson' >> beam.Map(_reject_json)
           | 'WriteRejects' >> beam.io.WriteToText(os.path.join(out, 'rejects')))
  seconds = time.perf_counter() - started
  counters = {m.key.metric.name: m.committed
              for m in p.result.metrics().query()['counters']}
  return {'seconds': seconds, 'counters': counters,
          'kept': _read_lines(os.path.join(out, 'kept*')),
          'rejects': [json.loads(line) for line in _read_lines(os.path.join(out, 'rejects*'))]}


def set_metrics(clips: Sequence[EvalClip], run: dict) -> dict[str, dict]:
  """Per kind of clip, from one run: rejects that are right (a copy, named as a
  duplicate of a clip of its recording) and wrong (anything else)."""
  by_id = {c.upload_id: c for c in clips}
  out = collections.defaultdict(lambda: {'clips': 0, 'rejected': 0, 'correct': 0})
  for c in clips:
    out[c.kind]['clips'] += 1
  for r in run['rejects']:
    clip, kept = by_id[r['upload_id']], by_id.get(r['duplicate_of'])
    row = out[clip.kind]
    row['rejected'] += 1
    row['correct'] += int(r['reason'] == 'near_duplicate' and kept is not None
                          and kept.recording == clip.recording)
  return dict(out)


def wrong_rejects(clips: Sequence[EvalClip], run: dict) -> list[dict]:
  """The rejects of a run that are not a copy named as a duplicate of a clip
  of its own recording."""
  by_id = {c.upload_id: c for c in clips}
  wrong = []
  for r in run['rejects']:
    clip, kept = by_id[r['upload_id']], by_id.get(r['duplicate_of'])
    if not (r['reason'] == 'near_duplicate' and kept is not None
            and kept.recording == clip.recording):
      wrong.append({'upload_id': clip.upload_id, 'kind': clip.kind,
                    'duplicate_of': r['duplicate_of'],
                    'kept_kind': kept.kind if kept else None, 'detail': r['detail']})
  return wrong


def _quantiles(values: Sequence[float]) -> dict[str, float]:
  v = np.asarray(values, dtype=np.float64)
  v = v[~np.isnan(v)]
  return {'min': float(v.min()), 'p50': float(np.median(v)), 'p95': float(np.quantile(v, 0.95)),
          'max': float(v.max())} if v.size else {}


def _combination_size(clip: EvalClip) -> int:
  return clip.detail.count(', ') + 1


def summarize(clips: Sequence[EvalClip], pairs: dict, sets: dict, history: dict | None,
              *, config: NearDedupConfig) -> dict:
  """The rows of the results table, by transform and by hard-negative kind."""
  sizes = {c.upload_id: _combination_size(c) for c in clips if c.kind == 'combination'}
  rows = {}
  for kind in (*TRANSFORMS, 'combination'):
    if kind not in pairs:
      continue
    pair, made = pairs[kind], sets[kind]
    rows[kind] = {
        'pairs': pair['pairs'], 'recall': pair['detected'] / pair['pairs'],
        'set_recall': made['correct'] / made['clips'],
        'set_precision': made['correct'] / made['rejected'] if made['rejected'] else 1.0,
        'ber': _quantiles(pair['ber']), 'loud_ber': _quantiles(pair['loud_ber']),
        'score_min': int(min(pair['score'])),
        'history_recall': (history[kind]['correct'] / history[kind]['clips']
                           if history else None)}
  by_size = collections.defaultdict(list)
  originals = {c.upload_id: c for c in clips if c.kind == 'original'}
  for c in clips:
    if c.kind == 'combination':
      by_size[sizes[c.upload_id]].append(
          _scores(originals[c.original], c, config=config)[2])
  for size, hits in sorted(by_size.items()):
    rows[f'combination of {size}'] = {'pairs': len(hits), 'match_rate': float(np.mean(hits))}
  negatives = {}
  for kind in NEGATIVE_KINDS:
    pair = pairs[kind]
    made = sets.get(kind, {'clips': 0, 'rejected': 0})
    negatives[kind] = {
        'pairs': pair['pairs'], 'false_positives': pair['detected'],
        'fpr': pair['detected'] / pair['pairs'], 'candidates': int(np.sum(
            np.asarray(pair['score']) >= config.min_aligned_blocks)),
        'ber': _quantiles(pair['ber']), 'loud_ber': _quantiles(pair['loud_ber']),
        'set_false_rejects': made['rejected'] if kind != 'same_speaker_other_prompt'
        else sets['original']['rejected'],
        'set_clips': made['clips'] if kind != 'same_speaker_other_prompt'
        else sets['original']['clips']}
  return {'transforms': rows, 'hard_negatives': negatives}


def format_table(summary: dict, timing: list[dict]) -> str:
  """The printed results. recall: pairs the stage finds (candidate, BER at
  most max_ber, loud BER at most max_loud_ber, unmatched loud speech at most
  max_unmatched_speech_s); set rec / set prec: from the
  Beam run over the whole set; loud max: the highest loud-word BER of a copy;
  score min: the lowest candidate score (aligned blocks) of a copy; history:
  set recall when the originals come as published reference rows; FP / FPR:
  hard-negative pairs found; cands: those that became candidates; loud min:
  the lowest loud-word BER of a hard negative."""
  lines = [f'{"transform":22s} {"pairs":>6s} {"recall":>7s} {"set rec":>7s} {"set prec":>8s} '
           f'{"BER p50":>7s} {"p95":>6s} {"max":>6s} {"loud max":>8s} {"score min":>9s} '
           f'{"history":>7s}']
  for kind, row in summary['transforms'].items():
    if 'recall' not in row:
      lines.append(f'  {kind:20s} {row["pairs"]:6d} {row["match_rate"]:7.3f}  (scores match)')
      continue
    ber = row['ber']
    history = f'{row["history_recall"]:7.3f}' if row['history_recall'] is not None else '      -'
    lines.append(f'{kind:22s} {row["pairs"]:6d} {row["recall"]:7.3f} {row["set_recall"]:7.3f} '
                 f'{row["set_precision"]:8.3f} {ber["p50"]:7.3f} {ber["p95"]:6.3f} '
                 f'{ber["max"]:6.3f} {row["loud_ber"]["max"]:8.3f} {row["score_min"]:9d} '
                 f'{history}')
  lines += ['', f'{"hard negative":26s} {"pairs":>6s} {"FP":>4s} {"FPR":>7s} {"cands":>6s} '
            f'{"BER min":>7s} {"p50":>6s} {"loud min":>8s} {"set false rejects":>18s}']
  for kind, row in summary['hard_negatives'].items():
    lines.append(f'{kind:26s} {row["pairs"]:6d} {row["false_positives"]:4d} {row["fpr"]:7.4f} '
                 f'{row["candidates"]:6d} {row["ber"]["min"]:7.3f} {row["ber"]["p50"]:6.3f} '
                 f'{row["loud_ber"]["min"]:8.3f} {row["set_false_rejects"]:8d} '
                 f'of {row["set_clips"]:<6d}')
  if timing:
    base = timing[0]
    lines += ['', f'{"scale":>5s} {"clips":>7s} {"dedup s":>8s} {"baseline s":>10s} '
              f'{"net s":>7s} {"ms/clip":>8s} {"vs 1x":>6s} {"candidates":>10s} {"matches":>8s}']
    for t in timing:
      per_clip = t['net_seconds'] / t['clips'] * 1000
      lines.append(f'{t["scale"]:4d}x {t["clips"]:7d} {t["seconds"]:8.1f} '
                   f'{t["baseline_seconds"]:10.1f} {t["net_seconds"]:7.1f} {per_clip:8.3f} '
                   f'{per_clip / (base["net_seconds"] / base["clips"] * 1000):6.2f} '
                   f'{t["counters"].get("near_dedup.candidates", 0):10d} '
                   f'{t["counters"].get("near_dedup.matches", 0):8d}')
  return '\n'.join(lines)


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--originals', type=int, default=300,
                      help='originals in the evaluation set (default 300)')
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--out', help='write the results as JSON to this file')
  parser.add_argument('--workers', type=int, default=os.cpu_count() or 1,
                      help='processes that build the set (default: one per core)')
  parser.add_argument('--scales', default='1,4,16',
                      help='set sizes to time the dedup stage at (default 1,4,16)')
  parser.add_argument('--config', help='a build config YAML (default: the built-in defaults)')
  parser.add_argument('--set', action='append', default=[], metavar='near_dedup.KEY=VALUE',
                      help='override a config value, as in build_dataset')
  parser.add_argument('--speech', choices=('formant', 'espeak'), default='formant',
                      help='formant: sample_audio.synth_take (default); espeak: eSpeak NG')
  parser.add_argument('--quick', action='store_true',
                      help='smoke test: 30 originals, scales 1,2')
  args = parser.parse_args(argv)
  if args.quick:
    args.originals, args.scales = min(args.originals, 30), '1,2'
  if args.originals < 2:
    parser.error(f'--originals={args.originals} must be at least 2')
  try:
    build_config = load_config(args.config, args.set)
    config, min_duration_s = build_config.near_dedup, build_config.filter.min_duration_s or 0.0
    scales = [int(x) for x in args.scales.split(',')]
  except (ConfigError, ValueError) as e:
    parser.error(str(e))

  started = time.perf_counter()
  clips, too_short = build_eval_set(originals=args.originals, seed=args.seed,
                                    workers=args.workers, min_duration_s=min_duration_s,
                                    speech=args.speech)
  build_s = time.perf_counter() - started
  print(f'built {len(clips)} clips from {args.originals} originals in {build_s:.0f} s '
        f'({too_short} under {min_duration_s:g} s left out: the filter rejects them)',
        flush=True)
  pairs = pair_metrics(clips, config=config)
  with tempfile.TemporaryDirectory() as workdir:
    published = [c for c in clips if c.kind == 'original']
    history = set_metrics(clips, run_dedup([c for c in clips if c.kind != 'original'],
                                           config=config, reference=published,
                                           workdir=workdir))
    timing, sets, set_counters = [], None, {}
    for scale in scales:
      run = run_dedup(clips, config=config, replicas=scale, workdir=workdir)
      if scale == 1:  # the 1x run is also the set-level evaluation
        sets, set_counters = set_metrics(clips, run), run['counters']
        wrong = wrong_rejects(clips, run)
      baseline = run_dedup(clips, config=config, replicas=scale, dedup=False, workdir=workdir)
      timing.append({'scale': scale, 'clips': scale * len(clips), 'seconds': run['seconds'],
                     'baseline_seconds': baseline['seconds'],
                     'net_seconds': run['seconds'] - baseline['seconds'],
                     'counters': run['counters']})
      print(f'  timed {scale}x: {run["seconds"]:.1f} s', flush=True)
    if sets is None:
      run = run_dedup(clips, config=config, workdir=workdir)
      sets, set_counters = set_metrics(clips, run), run['counters']
      wrong = wrong_rejects(clips, run)
  summary = summarize(clips, pairs, sets, history, config=config)
  print(format_table(summary, timing))
  misses = [{'kind': kind, 'pair': ids, 'ber': ber, 'loud_ber': loud, 'score': score}
            for kind in (*TRANSFORMS, 'combination') if kind in pairs
            for ids, ber, loud, score, hit in zip(
                pairs[kind]['ids'], pairs[kind]['ber'], pairs[kind]['loud_ber'],
                pairs[kind]['score'], pairs[kind]['hits'], strict=True) if not hit]
  closest = [{'kind': kind, 'pair': ids, 'loud_ber': loud, 'ber': ber, 'score': score}
             for kind in NEGATIVE_KINDS
             for loud, ber, score, ids in sorted(zip(
                 np.nan_to_num(pairs[kind]['loud_ber'], nan=1.0), pairs[kind]['ber'],
                 pairs[kind]['score'], pairs[kind]['ids'], strict=True))[:3]]
  for miss in misses:
    print(f'  missed {miss["kind"]}: {miss["pair"]} ber={miss["ber"]:.3f} '
          f'loud_ber={miss["loud_ber"]:.3f} score={miss["score"]}')
  for w in wrong:
    print(f'  wrong reject: {w["upload_id"]} ({w["kind"]}) as a copy of {w["duplicate_of"]} '
          f'({w["kept_kind"]}): {w["detail"]}')
  for near in closest:
    print(f'  closest {near["kind"]}: {near["pair"]} loud_ber={near["loud_ber"]:.3f} '
          f'ber={near["ber"]:.3f} score={near["score"]}')
  results = {'originals': args.originals, 'seed': args.seed, 'speech': args.speech,
             'clips': len(clips),
             'left_out_too_short': too_short,
             'build_seconds': build_s, 'config': dataclasses.asdict(config), **summary,
             'timing': timing, 'set_counters': set_counters, 'misses': misses,
             'closest_negatives': closest, 'wrong_rejects': wrong}
  if args.out:
    write_json(args.out, results)
    print(f'wrote {args.out}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
