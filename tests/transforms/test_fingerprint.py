"""Tests for transforms.fingerprint: the fingerprint, its score, LSH keys, low information.

The speech comes from pipelines.sample_audio.synth_speech and synth_take: a
source-filter model (sawtooth glottal source, formant resonators gliding between
vowels, fricative noise, room tone), so the tests need no recordings.
"""

import time

import numpy as np
import pytest
import scipy.signal
import soxr

from pipelines.sample_audio import random_voice, sentence_words, synth_take
from tests.conftest import speech
from transforms.fingerprint import (
  HOP_S,
  LSH_GAPS_FRAMES,
  LSH_LOUD_DB,
  LSH_LOUD_MAX_WORDS,
  LSH_WINDOWS,
  MAX_BER,
  MAX_LOUD_BER,
  MAX_UNMATCHED_SPEECH_S,
  MIN_LOUD_WORDS,
  MIN_OVERLAP_FRAMES,
  aligned_blocks,
  fingerprint,
  fingerprint_with_levels,
  information,
  is_low_information,
  loud_ber,
  lsh_key_arrays,
  lsh_keys,
  match,
  unmatched_speech_s,
)

RATE_HZ = 16000


def pcm16(x: np.ndarray) -> np.ndarray:
  return np.round(np.clip(x, -1, 32767 / 32768) * 32768).astype(np.int16)


def fp_of(x: np.ndarray, rate_hz: int = RATE_HZ) -> np.ndarray:
  return fingerprint(pcm16(x), sample_rate=rate_hz)


@pytest.fixture(scope='module')
def clean() -> np.ndarray:
  return speech(1, duration_s=4.0)


@pytest.fixture(scope='module')
def reference_fp(clean) -> np.ndarray:
  return fp_of(clean)


def white_noise(x: np.ndarray, *, snr_db: float, seed: int = 0) -> np.ndarray:
  noise = np.random.default_rng(seed).standard_normal(len(x))
  return x + noise * np.sqrt(np.mean(x ** 2) / 10 ** (snr_db / 10))


def test_words_are_uint32_every_16_ms(reference_fp):
  assert reference_fp.dtype == np.uint32
  # 4 s at 8 kHz: 1 + (32000 - 1024) // 128 frames, minus the 4-frame lag.
  assert reference_fp.shape == (1 + (32000 - 1024) // 128 - 4,)
  assert HOP_S == 0.016
  assert fingerprint(np.zeros(100, np.int16), sample_rate=RATE_HZ).shape == (0,)


def test_int16_float_and_other_rates_agree(clean, reference_fp):
  as_float = fingerprint(pcm16(clean).astype(np.float32) / 32768, sample_rate=RATE_HZ)
  assert np.array_equal(as_float, reference_fp)
  at_48k = fingerprint(soxr.resample(clean, RATE_HZ, 48000), sample_rate=48000)
  assert match(reference_fp, at_48k)[0] < 0.05


def test_fingerprinting_six_seconds_is_fast():
  x = pcm16(speech(2, duration_s=6.0))
  fingerprint(x, sample_rate=RATE_HZ)
  took = []
  for _ in range(5):
    started = time.perf_counter()
    fingerprint(x, sample_rate=RATE_HZ)
    took.append(time.perf_counter() - started)
  assert min(took) < 0.020


def test_rejects_bad_input():
  with pytest.raises(ValueError, match='mono'):
    fingerprint(np.zeros((100, 2), np.int16), sample_rate=RATE_HZ)
  with pytest.raises(ValueError, match='sample_rate'):
    fingerprint(np.zeros(100, np.int16), sample_rate=0)


def test_match_finds_the_alignment_both_ways(clean, reference_fp):
  cut = round(0.5 * RATE_HZ)  # 0.5 s = 31.25 hops
  late = fp_of(clean[cut:])
  ber, offset = match(reference_fp, late)
  assert ber < 0.05 and offset in (31, 32)
  ber_back, offset_back = match(late, reference_fp)
  assert ber_back == pytest.approx(ber) and offset_back == -offset
  # Searching only around the right shift gives the same answer; elsewhere, worse.
  assert match(reference_fp, late, offsets_frames=[offset - 1, offset, offset + 1])[0] == ber
  assert match(reference_fp, late, offsets_frames=[offset + 20])[0] > 0.3


@pytest.mark.parametrize('name, transform', [
    ('gain -12 dB', lambda x: x * 10 ** (-12 / 20)),
    ('narrowband 8 kHz', lambda x: soxr.resample(soxr.resample(x, RATE_HZ, 8000), 8000,
                                                  RATE_HZ)),
    ('white noise 20 dB', lambda x: white_noise(x, snr_db=20)),
    ('0.8 s of silence first', lambda x: np.concatenate([np.zeros(int(0.8 * RATE_HZ)), x])),
    ('telephone band-pass', lambda x: scipy.signal.sosfilt(scipy.signal.butter(
        4, [300, 3400], 'bandpass', fs=RATE_HZ, output='sos'), x)),
])
def test_copies_match(reference_fp, clean, name, transform):
  ber, _ = match(reference_fp, fp_of(transform(clean)))
  assert ber <= MAX_BER, name


def test_other_recordings_do_not_match(reference_fp):
  for seed in (2, 3, 4):
    assert match(reference_fp, fp_of(speech(seed, duration_s=4.0)))[0] > 0.4


def test_second_take_and_other_talker_do_not_match():
  rng = np.random.default_rng(5)
  talker, other = random_voice(rng), random_voice(rng)
  words = sentence_words(11)
  first = fp_of(synth_take(words, voice=talker, take_seed=1, sample_rate=RATE_HZ))
  again = fp_of(synth_take(words, voice=talker, take_seed=2, sample_rate=RATE_HZ))
  someone_else = fp_of(synth_take(words, voice=other, take_seed=1, sample_rate=RATE_HZ))
  assert match(first, again)[0] > MAX_BER
  assert match(first, someone_else)[0] > MAX_BER


def test_levels_follow_loudness(clean):
  words, levels = fingerprint_with_levels(pcm16(clean), sample_rate=RATE_HZ)
  quieter_words, quieter = fingerprint_with_levels(pcm16(clean * 0.1), sample_rate=RATE_HZ)
  assert levels.dtype == np.uint8 and levels.shape == words.shape
  assert np.array_equal(words, fingerprint(pcm16(clean), sample_rate=RATE_HZ))
  loud = levels > levels.max() - 30
  # 20 dB quieter reads 20 lower (1 dB steps, and int16 rounding in quiet frames).
  assert np.abs(levels[loud].astype(int) - quieter[loud] - 20).max() <= 1
  assert fingerprint_with_levels(np.zeros(16000, np.int16), sample_rate=RATE_HZ)[1].max() == 0


def test_loud_ber_keeps_noisy_copies_and_parts_other_takes(espeak_takes):
  first, levels = fingerprint_with_levels(pcm16(espeak_takes['first']), sample_rate=RATE_HZ)
  scores = {}
  for name in ('again', 'noisy'):
    words, their_levels = fingerprint_with_levels(pcm16(espeak_takes[name]), sample_rate=RATE_HZ)
    ber, offset = match(first, words)
    scores[name] = (ber, loud_ber(first, words, levels, their_levels, offset_frames=offset))
  # Babble flips the bits of quiet words: the loud ones keep theirs.
  assert scores['noisy'][1] < scores['noisy'][0]
  assert scores['noisy'][1] <= MAX_LOUD_BER
  # The second take is within the BER threshold; its loud words tell it apart.
  assert scores['again'][0] <= MAX_BER
  assert scores['again'][1] > MAX_LOUD_BER


def test_loud_ber_needs_levels_and_enough_loud_words(reference_fp, clean):
  _, levels = fingerprint_with_levels(pcm16(clean), sample_rate=RATE_HZ)
  assert loud_ber(reference_fp, reference_fp, None, levels, offset_frames=0) is None
  assert loud_ber(reference_fp, reference_fp, levels, levels, offset_frames=0) == 0.0
  one_loud = np.zeros_like(levels)
  one_loud[:MIN_LOUD_WORDS - 1] = 200
  assert loud_ber(reference_fp, reference_fp, one_loud, one_loud, offset_frames=0) is None


def test_unmatched_speech_allows_padding_and_a_trim_not_an_excerpt(clean):
  def unmatched(copy: np.ndarray) -> float | None:
    a, levels_a = fingerprint_with_levels(pcm16(clean), sample_rate=RATE_HZ)
    b, levels_b = fingerprint_with_levels(pcm16(copy), sample_rate=RATE_HZ)
    _, offset = match(a, b)
    return unmatched_speech_s(len(a), len(b), levels_a, levels_b, offset_frames=offset)

  second = RATE_HZ
  padded = np.concatenate([np.zeros(second), clean, np.zeros(second)])
  assert unmatched(padded) == 0.0  # padding is silence: nothing loud lies beyond
  trimmed = unmatched(clean[int(0.4 * second):])
  assert 0.0 < trimmed <= MAX_UNMATCHED_SPEECH_S
  excerpt = unmatched(clean[int(1.5 * second):int(2.7 * second)])  # 1.2 s of 4 s
  assert excerpt > MAX_UNMATCHED_SPEECH_S
  a = fp_of(clean)
  assert unmatched_speech_s(len(a), len(a), None, None, offset_frames=0) is None


def test_match_needs_enough_overlap(reference_fp):
  assert match(reference_fp, reference_fp[:MIN_OVERLAP_FRAMES - 1]) == (1.0, 0)
  # Half of the shorter clip must overlap: a sliver at the edge does not count.
  ber, offset = match(reference_fp, reference_fp[:MIN_OVERLAP_FRAMES])
  assert (ber, offset) == (0.0, 0)


def tone(freq_hz: float, seconds: float = 3.0) -> np.ndarray:
  t = np.arange(int(seconds * RATE_HZ)) / RATE_HZ
  return 0.3 * np.sin(2 * np.pi * freq_hz * t)


@pytest.mark.parametrize('name, audio', [
    ('silence', np.zeros(3 * RATE_HZ)),
    ('1 kHz tone', tone(1000)),
    ('440 Hz tone', tone(440)),
    ('mains hum', sum(0.05 / k * np.sin(2 * np.pi * 50 * k * np.arange(3 * RATE_HZ) / RATE_HZ)
                      for k in range(1, 40))),
    ('beeps', tone(1000) * (np.sin(2 * np.pi * 2 * np.arange(3 * RATE_HZ) / RATE_HZ) > 0)),
    ('too short', speech(3, duration_s=0.8)),
])
def test_degenerate_audio_is_low_information(name, audio):
  assert is_low_information(fp_of(audio)), (name, information(fp_of(audio)))


def test_speech_is_not_low_information(reference_fp, clean):
  info = information(reference_fp)
  assert info.frames == len(reference_fp) and info.self_ber > 0.3
  assert not is_low_information(reference_fp)
  assert not is_low_information(fp_of(white_noise(clean, snr_db=20)))


def test_steady_noise_words_are_coin_flips_and_share_no_keys():
  # Not low information, but harmless: unrelated noise clips share no aligned keys.
  rng = np.random.default_rng(3)
  noise = [fp_of(0.1 * rng.standard_normal(3 * RATE_HZ)) for _ in range(6)]
  bits = np.unpackbits(noise[0].view(np.uint8))
  assert abs(bits.mean() - 0.5) < 0.03
  assert max(shared(a, b)[1] for i, a in enumerate(noise) for b in noise[i + 1:]) < 3
  assert match(noise[0], noise[1])[0] > 0.45


def test_lsh_keys_are_distinct_sorted_and_skip_silence(reference_fp):
  keys = lsh_keys(reference_fp)
  assert keys == sorted(set(keys)) and all(isinstance(k, int) for pair in keys for k in pair)
  assert len(keys) > 5 * len(reference_fp)
  assert lsh_keys(np.zeros(100, np.uint32)) == []


def test_loud_words_of_a_short_clip_add_short_keys_and_a_long_clip_keeps_its_keys():
  for seconds, adds in ((1.0, True), (6.0, False)):
    words, levels = fingerprint_with_levels(pcm16(speech(3, duration_s=seconds)),
                                            sample_rate=RATE_HZ)
    loud = levels.astype(int) >= levels.max() - LSH_LOUD_DB
    assert (np.count_nonzero(loud) <= LSH_LOUD_MAX_WORDS) == adds
    keys, frames = lsh_key_arrays(words)
    with_levels, frames_with_levels = lsh_key_arrays(words, levels)
    assert set(keys.tolist()) <= set(with_levels.tolist())
    extra = ~np.isin(with_levels, keys)
    assert np.any(extra) == adds
    tables = len(LSH_WINDOWS) * len(LSH_GAPS_FRAMES)
    assert np.all(with_levels[extra] >> 56 >= tables)  # tables of their own
    assert np.all(loud[frames_with_levels[extra]])  # from loud words only
    raw, raw_frames = lsh_key_arrays(words, levels, distinct=False)
    assert sorted(set(raw.tolist())) == with_levels.tolist() and len(raw_frames) == len(raw)


def test_loud_keys_line_up_more_of_short_copies_under_babble():
  rng = np.random.default_rng(5)
  talkers = [speech(100 + t, duration_s=1.0) for t in range(8)]
  babble = sum(x / np.sqrt(np.mean(x ** 2)) for x in talkers)
  gained = []
  for seed in range(8):
    x = speech(seed, duration_s=1.0)
    noisy = x + np.roll(babble, int(rng.integers(len(babble)))) * np.sqrt(
        np.mean(x ** 2) / 10 ** 2 / np.mean(babble ** 2))  # 20 dB SNR
    a, levels_a = fingerprint_with_levels(pcm16(x), sample_rate=RATE_HZ)
    b, levels_b = fingerprint_with_levels(pcm16(noisy), sample_rate=RATE_HZ)
    gained.append(shared(a, b, levels_a, levels_b)[1] - shared(a, b)[1])
  assert min(gained) >= 0 and sum(gained) >= 8


def shared(a: np.ndarray, b: np.ndarray, levels_a: np.ndarray | None = None,
           levels_b: np.ndarray | None = None) -> tuple[int, int]:
  keys_a, frames_a = lsh_key_arrays(a, levels_a)
  keys_b, frames_b = lsh_key_arrays(b, levels_b)
  _, in_a, in_b = np.intersect1d(keys_a, keys_b, return_indices=True)
  return len(in_a), aligned_blocks(frames_a[in_a], frames_b[in_b], length_a=len(a),
                                   length_b=len(b))


def test_copies_share_aligned_keys_and_strangers_do_not(reference_fp, clean):
  count, blocks = shared(reference_fp, fp_of(white_noise(clean[4000:], snr_db=20)))
  assert count >= 10 and blocks >= 8
  for seed in (2, 3, 4):
    assert shared(reference_fp, fp_of(speech(seed, duration_s=4.0)))[1] < 3


def test_aligned_blocks_counts_parts_at_one_offset():
  frames = np.arange(0, 320, 10)  # one key every 10 frames of a 320-frame clip
  assert aligned_blocks(frames, frames - 5, length_a=320, length_b=320) == 32
  assert aligned_blocks(frames, frames - 5 + (frames % 20 == 0), length_a=320,
                        length_b=320) == 32  # within the 1-frame tolerance
  scattered = frames - np.arange(len(frames)) * 7
  assert aligned_blocks(frames, scattered, length_a=320, length_b=320) == 1
  assert aligned_blocks(np.array([], int), np.array([], int), length_a=1, length_b=1) == 0
