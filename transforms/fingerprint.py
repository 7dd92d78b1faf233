"""Robust audio fingerprints of speech clips, their comparison, and LSH keys.

Pure numpy/scipy functions, no Beam; :mod:`transforms.near_dedup` uses them.

* :func:`fingerprint`: mono PCM -> one 32-bit word every 16 ms.
* :func:`match`: two fingerprints -> the bit error rate (BER) at their best
  alignment, and that alignment.
* :func:`information` and :func:`is_low_information`: whether a fingerprint
  says enough about its audio to be compared (silence, tones and hum do not).
* :func:`lsh_keys`: the locality-sensitive hash keys under which candidate
  duplicates meet, and :func:`aligned_blocks`, the score that makes two clips
  sharing keys a candidate pair.

The fingerprint is Haitsma and Kalker's sub-band energy-difference hash
("A Highly Robust Audio Fingerprinting System", ISMIR 2002), adapted to speech
and to telephone bandwidth:

1. The clip is resampled to 8 kHz, so wideband and narrowband (8 kHz) copies
   of a recording are analysed identically.
2. 128 ms Hann frames every 16 ms; the power spectrum of each frame is summed
   in 33 bands spaced logarithmically from 300 to 3400 Hz (the telephone band:
   what survives 8 kHz audio, low-bit-rate codecs and small loudspeakers).
   Haitsma and Kalker use 370 ms frames for music; speech changes faster, and
   shorter frames tell two readings of one sentence apart better (below).
3. Bit ``m`` of word ``n`` is 1 when the energy difference of bands ``m`` and
   ``m + 1`` grew over the last :data:`LAG_FRAMES` frames::

     F(n, m) = 1  iff  (E(n, m) - E(n, m+1)) - (E(n-L, m) - E(n-L, m+1)) > 0

   Haitsma and Kalker take the difference over one hop (L = 1); over one 16 ms
   hop two 128 ms windows share 7/8 of their samples and the difference is
   mostly noise, so this module looks 64 ms back (L = 4).

The signs of energy differences do not change with gain, resampling or a
codec that keeps the spectral envelope, and noise 20 dB down flips mostly the
bits of quiet frames. In ``python -m pipelines.bench_dedup``, copies of a
recording differ in 0-32 % of their bits (1-2 s clips under noise at 20 dB SNR
are the worst), different recordings mostly in 40-50 %, but two readings of one
short prompt by one talker come down to 26 % (see :data:`MAX_BER`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
import scipy.fft
import soxr

__all__ = ['fingerprint', 'match', 'information', 'Information', 'is_low_information',
           'lsh_keys', 'ANALYSIS_RATE_HZ', 'FRAME_S', 'HOP_S', 'LAG_FRAMES', 'BAND_LOW_HZ',
           'BAND_HIGH_HZ', 'MAX_BER', 'MIN_OVERLAP_FRAMES', 'MIN_OVERLAP_RATIO',
           'MIN_SELF_BER', 'LSH_WINDOWS', 'LSH_GAPS_FRAMES',
           'LSH_NEIGHBOUR_BITS', 'LSH_LOUD_WINDOWS', 'LSH_LOUD_NEIGHBOUR_BITS',
           'LSH_LOUD_DB', 'LSH_LOUD_MAX_WORDS', 'lsh_key_arrays', 'aligned_blocks',
           'aligned_blocks_by_group',
           'ALIGN_BLOCKS', 'ALIGN_TOLERANCE_FRAMES', 'MIN_ALIGNED_BLOCKS',
           'fingerprint_with_levels', 'loud_ber', 'MAX_LOUD_BER', 'LOUD_RANGE_DB',
           'MIN_LOUD_WORDS', 'unmatched_speech_s', 'MAX_UNMATCHED_SPEECH_S']

ANALYSIS_RATE_HZ = 8000
FRAME_S = 0.128
HOP_S = 0.016
LAG_FRAMES = 4
BAND_LOW_HZ = 300.0
BAND_HIGH_HZ = 3400.0
_BANDS = 33  # 32 adjacent pairs: one bit each

MAX_BER = 0.32
"""Default match threshold: a BER at or below this at the alignment means the
same recording. In ``bench_dedup`` (formant speech) copies reach 0.34 (1-2 s
clips under noise at 20 dB SNR) and other performances start at 0.33; with
eSpeak NG, second readings come down to 0.23. On short clips the BER alone does
not separate them: a match also needs :data:`MAX_LOUD_BER` and the candidate
rule (:data:`MIN_ALIGNED_BLOCKS`: shared keys lined up along the clip).
Haitsma and Kalker use 0.35 for 3 s blocks of music."""

MAX_LOUD_BER = 0.24
"""Default second threshold (:func:`loud_ber`): a match also needs the BER over
the loud words of both clips at or below this. In ``bench_dedup`` (formant
speech) copies reach 0.27 under noise at 20 dB SNR, and other performances of
the same words start at 0.23; only pairs that also pass :data:`MAX_BER` and the
candidate rule count, and no hard negative passed all three. With eSpeak NG,
which reads the same words the same way sample for sample, second takes reach
0.19 (see the README)."""

LOUD_RANGE_DB = 20
"""Words this close to the clip's loudest word are loud (:func:`loud_ber`)."""

MIN_LOUD_WORDS = 16
"""Fewest loud words (0.26 s) a :func:`loud_ber` is computed over."""

MAX_UNMATCHED_SPEECH_S = 0.5
"""Default third condition (:func:`unmatched_speech_s`): at either end of the
alignment, neither clip has more than 0.5 s of loud speech the other lacks. A
copy may be trimmed by up to 0.5 s per end, and what padding adds is silence or
noise. In ``bench_dedup`` copies leave at most 0.26 s (trimmed copies and
combinations), while a short clip of one performance matched over part of a
longer clip of another (eSpeak NG reads shared words almost alike) leaves
0.66-0.88 s of the longer one unmatched."""

MIN_OVERLAP_FRAMES = 48
"""Fewest aligned words a BER is computed over (0.94 s of audio; a 1 s clip has
51 words): shorter overlaps of unrelated speech reach low BERs by chance."""

MIN_OVERLAP_RATIO = 0.5
"""The overlap must also cover this share of the shorter fingerprint, so that
one clip's matching a sliver of another is not called the same recording."""

MIN_SELF_BER = 0.25
"""Below this self-BER (see :func:`information`) a fingerprint repeats itself
(silence, tones, hum) and its keys would gather unrelated clips into giant
buckets. Speech measures 0.36-0.5, repeating signals 0-0.19."""

LSH_WINDOWS = ((0, 24), (4, 28), (8, 32))
"""Bit sampling (Indyk and Motwani 1998): each key holds 24 bits of one word, the
band pairs below 1.9 kHz, from 400 Hz to 2.5 kHz, or above 540 Hz. White noise
flips mostly the upper bands and babble the lower ones, so one of the three
usually survives where a random choice of bits would not."""

LSH_GAPS_FRAMES = (4, 8, 12)
LSH_NEIGHBOUR_BITS = 12
"""Each key adds the middle 12 bits of the same window of the word 64, 128 or
192 ms later. A word on its own is often a common pattern (the harmonic comb of
a voice, the spectral slope at an onset) that unrelated clips share; with part
of a later word, unrelated clips share 7 times fewer keys (measured on the
benchmark's speech), while copies keep about half of theirs, because words
that keep their bits come in loud stretches."""

LSH_LOUD_WINDOWS = ((0, 16), (8, 24), (16, 32))
LSH_LOUD_NEIGHBOUR_BITS = 8
LSH_LOUD_DB = 10
LSH_LOUD_MAX_WORDS = 64
"""Shorter keys (16 + 8 bits) from the loud words (within 10 dB of the clip's
loudest, by the levels of :func:`fingerprint_with_levels`) of clips that have
at most 64 of them (about 1 s of loud speech). Under babble at 20 dB SNR such a
clip keeps too few 24 + 12-bit keys to line up in 3 blocks (in bench_dedup's
formant speech, 4 of 150 copies under babble, all 1.2-1.4 s long, scored 1-2);
with these every copy under noise is a candidate (with 20 + 8-bit keys, 2 of
the 4 still were not). Noise flips the bits of quiet words, so the short keys
of loud words survive. Longer clips keep enough long keys, and short keys from
every clip made unrelated clips share keys so often that the work per clip grew
with the set (bench_dedup's replicas: 1.6 times the key pairs per clip at 4x
with 20 + 8-bit keys from every word, 1.26 times from the loud words of every
clip, 1.2 times like this or without: these clips are few)."""

ALIGN_BLOCKS = 32
ALIGN_TOLERANCE_FRAMES = 1
MIN_ALIGNED_BLOCKS = 3
"""Default candidate rule (:func:`aligned_blocks`): two clips are compared when
keys they share line up at one time offset in at least 3 of 32 equal parts of
either clip. In the benchmark every clean copy reaches it and 98-99 % of copies
under noise at 20 dB SNR (those that do not are 1-2 s long); 1 in 10^4
unrelated pairs does, because chance collisions come in one short stretch."""

_SILENT_WORD = 0  # all energy differences zero: digital silence
_LEVEL_OFFSET_DB = 120.0
_SELF_MIN_SHIFT = 8  # frames: 128 ms, one analysis window


def _band_matrix(*, nfft: int, rate_hz: int) -> tuple[int, int, np.ndarray]:
  """(first bin, last bin + 1, 0/1 matrix bins x bands) of the log-spaced bands."""
  edges_hz = BAND_LOW_HZ * (BAND_HIGH_HZ / BAND_LOW_HZ) ** (np.arange(_BANDS + 1) / _BANDS)
  freqs_hz = np.arange(nfft // 2 + 1) * rate_hz / nfft
  band = np.searchsorted(edges_hz, freqs_hz, side='right') - 1
  inside = np.flatnonzero((band >= 0) & (band < _BANDS))
  lo, hi = int(inside[0]), int(inside[-1]) + 1
  matrix = np.zeros((hi - lo, _BANDS), np.float32)
  matrix[np.arange(hi - lo), band[lo:hi]] = 1.0
  return lo, hi, matrix


_FRAME = round(FRAME_S * ANALYSIS_RATE_HZ)
_HOP = round(HOP_S * ANALYSIS_RATE_HZ)
_WINDOW = np.hanning(_FRAME).astype(np.float32)
_BIN_LO, _BIN_HI, _BANDS_OF_BINS = _band_matrix(nfft=_FRAME, rate_hz=ANALYSIS_RATE_HZ)


def fingerprint(pcm16_or_float: np.ndarray, *, sample_rate: int) -> np.ndarray:
  """The fingerprint of a mono clip: one uint32 word per :data:`HOP_S` frame.

  Args:
    pcm16_or_float: 1-D samples, int16 PCM or float in [-1, 1].
    sample_rate: their rate in Hz (any rate of at least 8000 Hz; lower rates
      are accepted and upsampled, but carry no 3.4 kHz band).

  Returns:
    uint32 words, ``1 + (n - 1024) // 128 - LAG_FRAMES`` for ``n`` samples at
    8 kHz; empty for clips shorter than 0.192 s. Word ``n`` describes the audio
    from ``n * HOP_S`` to ``n * HOP_S + 0.192`` s; bit ``m`` of it, bands ``m``
    and ``m + 1``.

  Example:
    >>> fp = fingerprint(np.zeros(16000, np.int16), sample_rate=16000)
    >>> fp.dtype, fp.shape, int(fp.max())
    (dtype('uint32'), (51,), 0)
  """
  return fingerprint_with_levels(pcm16_or_float, sample_rate=sample_rate)[0]


def fingerprint_with_levels(pcm16_or_float: np.ndarray, *, sample_rate: int
                            ) -> tuple[np.ndarray, np.ndarray]:
  """:func:`fingerprint`, and the level of each word.

  Returns:
    ``(words, levels)``: the words of :func:`fingerprint`, and per word a
    uint8 level: the energy in the 300-3400 Hz bands of the quieter of the two
    frames its bits compare, in dB (1 dB steps, offset so that 0 is -120 dB
    and a 1 kHz full-scale sine reads 170). :func:`loud_ber` compares the
    words of the loud stretches only.
  """
  samples = np.asarray(pcm16_or_float)
  if samples.ndim != 1:
    raise ValueError(f'samples must be mono, shape (n,), got {samples.shape}')
  if sample_rate <= 0:
    raise ValueError(f'sample_rate={sample_rate!r} must be positive')
  x = samples.astype(np.float32)
  if samples.dtype == np.int16:
    x /= 32768.0
  if sample_rate != ANALYSIS_RATE_HZ and x.size:
    x = soxr.resample(x, sample_rate, ANALYSIS_RATE_HZ, quality='HQ')
  frames = 1 + (x.shape[0] - _FRAME) // _HOP if x.shape[0] >= _FRAME else 0
  if frames <= LAG_FRAMES:
    return np.zeros(0, np.uint32), np.zeros(0, np.uint8)
  windows = np.lib.stride_tricks.sliding_window_view(x, _FRAME)[::_HOP][:frames]
  spectrum = scipy.fft.rfft(windows * _WINDOW, axis=1)[:, _BIN_LO:_BIN_HI]
  energy = (spectrum.real ** 2 + spectrum.imag ** 2) @ _BANDS_OF_BINS
  difference = energy[:, :-1] - energy[:, 1:]
  bits = (difference[LAG_FRAMES:] - difference[:-LAG_FRAMES]) > 0
  packed = np.packbits(bits, axis=1, bitorder='little')
  words = np.ascontiguousarray(packed).view('<u4')[:, 0].astype(np.uint32)
  total_db = 10 * np.log10(energy.sum(axis=1, dtype=np.float64) + 1e-12)
  quieter_db = np.minimum(total_db[LAG_FRAMES:], total_db[:-LAG_FRAMES])
  levels = np.clip(np.rint(quieter_db + _LEVEL_OFFSET_DB), 0, 255).astype(np.uint8)
  return words, levels


def _signs(fp: np.ndarray) -> np.ndarray:
  """Words as a (frames, 32) float32 array of +1 (bit set) and -1."""
  bits = np.unpackbits(np.ascontiguousarray(fp, dtype='<u4').view(np.uint8).reshape(-1, 4),
                       axis=1, bitorder='little')
  return bits.astype(np.float32) * 2 - 1


def match(a: np.ndarray, b: np.ndarray, *, offsets_frames: Iterable[int] | None = None
          ) -> tuple[float, int]:
  """The bit error rate of two fingerprints at their best alignment.

  Every shift of ``b`` against ``a`` whose overlap holds at least
  :data:`MIN_OVERLAP_FRAMES` words and :data:`MIN_OVERLAP_RATIO` of the shorter
  fingerprint is scored by the share of differing bits over the overlap; the
  lowest wins (ties: the most negative shift). All shifts are scored at once by
  cross-correlating the 32 bit planes with FFTs, O(n log n).

  Args:
    a, b: fingerprints from :func:`fingerprint`.
    offsets_frames: score only these shifts (XOR and popcount, O(n) each).

  Returns:
    ``(ber, offset_frames)``: word ``i`` of ``a`` lines up with word
    ``i - offset_frames`` of ``b`` (``b`` starts ``offset_frames * HOP_S``
    seconds into ``a``). ``(1.0, 0)`` when no shift overlaps enough.
  """
  na, nb = len(a), len(b)
  needed = max(MIN_OVERLAP_FRAMES, int(np.ceil(MIN_OVERLAP_RATIO * min(na, nb))))
  if min(na, nb) < needed:
    return 1.0, 0
  if offsets_frames is not None:
    return _match_at(np.asarray(a, np.uint32), np.asarray(b, np.uint32),
                     sorted(set(offsets_frames)), needed=needed)
  size = scipy.fft.next_fast_len(na + nb - 1, real=True)
  spectrum_a = scipy.fft.rfft(_signs(a), size, axis=0)
  spectrum_b = scipy.fft.rfft(_signs(b)[::-1], size, axis=0)
  agreement = scipy.fft.irfft((spectrum_a * spectrum_b).sum(axis=1), size)[:na + nb - 1]
  offsets = np.arange(na + nb - 1) - (nb - 1)
  overlap = np.minimum(na, nb + offsets) - np.maximum(0, offsets)
  errors = np.rint((32 * overlap - agreement) / 2)
  ber = np.where(overlap >= needed, errors / (32 * np.maximum(overlap, 1)), np.inf)
  best = int(np.argmin(ber))  # argmin takes the first, i.e. the most negative shift
  return float(ber[best]), int(offsets[best])


def _match_at(a: np.ndarray, b: np.ndarray, offsets: list[int], *, needed: int
              ) -> tuple[float, int]:
  best = (1.0, 0)
  for offset in offsets:
    low, high = max(0, offset), min(len(a), len(b) + offset)
    if high - low >= needed:
      errors = int(np.bitwise_count(a[low:high] ^ b[low - offset:high - offset]).sum())
      best = min(best, (errors / (32 * (high - low)), offset))
  return best


def loud_ber(a: np.ndarray, b: np.ndarray, levels_a: np.ndarray, levels_b: np.ndarray, *,
             offset_frames: int) -> float | None:
  """The bit error rate over the loud words of an alignment: the second score.

  Words within :data:`LOUD_RANGE_DB` of their clip's loudest word, in both
  clips, at ``offset_frames`` (as :func:`match` returns it). Noise added to a
  copy flips the bits of quiet words (pauses, word endings) and hardly those of
  loud ones, so copies at 20 dB SNR keep this under 0.22; another performance
  of the same words (a second take, another speaker) differs in its loud words
  too, from 0.25 up. ``None`` when levels are missing (fingerprints written
  before levels were kept) or fewer than :data:`MIN_LOUD_WORDS` words are loud
  in both: then only the BER decides.
  """
  span = _overlap(len(a), len(b), levels_a, levels_b, offset_frames)
  if span is None:
    return None
  low, high = span
  loud = _loud(levels_a)[low:high] & _loud(levels_b)[low - offset_frames:high - offset_frames]
  count = int(loud.sum())
  if count < MIN_LOUD_WORDS:
    return None
  words_a = np.asarray(a, np.uint32)[low:high]
  words_b = np.asarray(b, np.uint32)[low - offset_frames:high - offset_frames]
  errors = np.bitwise_count(words_a[loud] ^ words_b[loud])
  return float(errors.sum() / (32 * count))


def unmatched_speech_s(length_a: int, length_b: int, levels_a: np.ndarray | None,
                       levels_b: np.ndarray | None, *, offset_frames: int) -> float | None:
  """The most loud speech, in seconds, one clip has beyond the other at one end.

  At ``offset_frames`` (as :func:`match` returns it), the words of either clip
  outside the overlap that are within :data:`LOUD_RANGE_DB` of that clip's
  loudest word, counted at each of the four ends; the largest count times
  :data:`HOP_S`. ``None`` when levels are missing or the clips do not overlap.
  """
  span = _overlap(length_a, length_b, levels_a, levels_b, offset_frames)
  if span is None:
    return None
  low, high = span
  most = 0
  for levels, lo, hi in ((levels_a, low, high),
                         (levels_b, low - offset_frames, high - offset_frames)):
    loud = _loud(levels)
    most = max(most, int(np.count_nonzero(loud[:lo])), int(np.count_nonzero(loud[hi:])))
  return most * HOP_S


def _overlap(length_a: int, length_b: int, levels_a: np.ndarray | None,
             levels_b: np.ndarray | None, offset_frames: int) -> tuple[int, int] | None:
  """The overlap ``[low, high)`` in clip A's words at ``offset_frames`` (B's
  words are ``[low - offset_frames, high - offset_frames)``), or None when the
  clips do not overlap or either lacks levels of its length."""
  if (levels_a is None or levels_b is None or len(levels_a) != length_a
      or len(levels_b) != length_b):
    return None
  low, high = max(0, offset_frames), min(length_a, length_b + offset_frames)
  return (low, high) if high > low else None


def _loud(levels: np.ndarray) -> np.ndarray:
  """Which words are within :data:`LOUD_RANGE_DB` of the clip's loudest."""
  levels = np.asarray(levels, np.int16)
  return levels >= levels.max() - LOUD_RANGE_DB


class Information(NamedTuple):
  """How much a fingerprint says; see :func:`information`."""
  frames: int
  self_ber: float


def _self_ber(signs: np.ndarray) -> float:
  """The lowest BER of the fingerprint against itself shifted by 128 ms or more
  (with at least half of it overlapping): one FFT autocorrelation."""
  n = len(signs)
  size = scipy.fft.next_fast_len(2 * n, real=True)
  spectrum = scipy.fft.rfft(signs, size, axis=0)
  agreement = scipy.fft.irfft((spectrum * spectrum.conj()).sum(axis=1), size)[:n]
  shifts = np.arange(n)
  overlap = n - shifts
  usable = (shifts >= _SELF_MIN_SHIFT) & (2 * overlap >= n)
  if not usable.any():
    return 0.0
  ber = (32 * overlap[usable] - agreement[usable]) / (64 * overlap[usable])
  return float(max(ber.min(), 0.0))


def information(fp: np.ndarray) -> Information:
  """The measures behind :func:`is_low_information`.

  * ``frames``: the fingerprint's length in words.
  * ``self_ber``: the fingerprint's best match with itself shifted by at least
    128 ms (:func:`match`'s score, but against itself). Anything that repeats,
    silence, tones, hum, beeps, dial tones, scores under 0.2; speech does not
    repeat itself and scores 0.36-0.5.

  Steady noise is not told apart: its words are fair coin flips, so its keys
  are spread thinly (it forms no buckets) and it matches nothing but a copy of
  itself. The statistic that would tell it from speech by the words alone,
  ``flip(L) - flip(2L)`` (about 1/6 for noise, since of three exchangeable
  values two orders in six are monotone), reads the same 0.05-0.15 on eSpeak
  NG's speech, so a threshold on it would drop real speech.
  """
  words = np.asarray(fp)
  if words.size < 2:
    return Information(frames=int(words.size), self_ber=0.0)
  return Information(frames=int(words.size), self_ber=_self_ber(_signs(words)))


def is_low_information(fp: np.ndarray) -> bool:
  """Whether a fingerprint is too short or too repetitive to compare: fewer than
  :data:`MIN_OVERLAP_FRAMES` words, or a self-BER under :data:`MIN_SELF_BER`."""
  info = information(fp)
  return info.frames < MIN_OVERLAP_FRAMES or info.self_ber < MIN_SELF_BER


def _keys_of_windows(words: np.ndarray, windows: tuple[tuple[int, int], ...], *,
                     neighbour_bits: int, first_tag: int) -> tuple[np.ndarray, np.ndarray]:
  """For each bit window and gap: the keys ``(tag, neighbour bits, token bits)``
  of the words and the frame of each; words of digital silence give none."""
  keys, frames = [], []
  for table, (low, high) in enumerate(windows):
    token = ((words >> np.uint32(low)) & np.uint32((1 << (high - low)) - 1)).astype(np.int64)
    middle = low + (high - low - neighbour_bits) // 2
    for index, gap in enumerate(LSH_GAPS_FRAMES):
      if len(words) <= gap:
        continue
      neighbour = ((words[gap:] >> np.uint32(middle))
                   & np.uint32((1 << neighbour_bits) - 1)).astype(np.int64)
      tag = first_tag + table * len(LSH_GAPS_FRAMES) + index
      key = (np.int64(tag) << 56) | (neighbour << 24) | token[:-gap]
      audible = np.flatnonzero((words[:-gap] != _SILENT_WORD) & (words[gap:] != _SILENT_WORD))
      keys.append(key[audible])
      frames.append(audible)
  return keys, frames


def _loud_words(levels: np.ndarray | None, length: int) -> np.ndarray | None:
  """Which words give loud keys (:data:`LSH_LOUD_MAX_WORDS`): None for none."""
  if levels is None or len(levels) != length or not length:
    return None
  levels = np.asarray(levels, np.int16)
  loud = levels >= levels.max() - LSH_LOUD_DB
  return loud if np.count_nonzero(loud) <= LSH_LOUD_MAX_WORDS else None


def lsh_key_arrays(fp: np.ndarray, levels: np.ndarray | None = None, *,
                   distinct: bool = True) -> tuple[np.ndarray, np.ndarray]:
  """:func:`lsh_keys` as two arrays: int64 keys (sorted, distinct) and the
  int32 frame where each first occurs; with ``distinct=False``, every key
  where it occurs, unsorted (cheaper, for a look-up)."""
  words = np.asarray(fp, dtype=np.uint32)
  keys, frames = _keys_of_windows(words, LSH_WINDOWS, neighbour_bits=LSH_NEIGHBOUR_BITS,
                                  first_tag=0)
  loud = _loud_words(levels, len(words))
  if loud is not None:
    loud_keys, loud_frames = _keys_of_windows(
        words, LSH_LOUD_WINDOWS, neighbour_bits=LSH_LOUD_NEIGHBOUR_BITS,
        first_tag=len(LSH_WINDOWS) * len(LSH_GAPS_FRAMES))
    keys += [k[loud[f]] for k, f in zip(loud_keys, loud_frames, strict=True)]
    frames += [f[loud[f]] for f in loud_frames]
  if not keys:
    return np.zeros(0, np.int64), np.zeros(0, np.int32)
  keys, frames = np.concatenate(keys), np.concatenate(frames).astype(np.int32)
  if not distinct:
    return keys, frames
  distinct_keys, first = np.unique(keys, return_index=True)  # first occurrence: frames ascend
  return distinct_keys, frames[first]


def lsh_keys(fp: np.ndarray, levels: np.ndarray | None = None) -> list[tuple[int, int]]:
  """The LSH keys of a fingerprint, with where each first occurs.

  For each of the 3 bit windows of :data:`LSH_WINDOWS` and each gap of
  :data:`LSH_GAPS_FRAMES`, word ``n`` gives the key ``(table, middle 12 bits
  of word n + gap, 24 bits of word n)`` packed in an int. Two copies of a
  recording share a key where both words kept those bits, which happens in
  loud stretches even under noise; a key does not say where it sits, so
  shifted copies meet too. Words of digital silence (all zero) give no key.
  Given the words' ``levels``, the loud words of a clip with little loud
  speech also give shorter keys (:data:`LSH_LOUD_MAX_WORDS`), in tables of
  their own.

  Returns:
    Sorted distinct ``(key, frame)`` pairs.
  """
  keys, frames = lsh_key_arrays(fp, levels)
  return list(zip(keys.tolist(), frames.tolist(), strict=True))


def aligned_blocks(frames_a: np.ndarray, frames_b: np.ndarray, *, length_a: int,
                   length_b: int) -> int:
  """How well the keys two clips share line up: the candidate score.

  Each shared key sits at frame ``frames_a[i]`` of clip A and ``frames_b[i]``
  of clip B, so it votes for the offset ``frames_a[i] - frames_b[i]``. For each
  offset (give or take :data:`ALIGN_TOLERANCE_FRAMES`) count the distinct
  parts, of :data:`ALIGN_BLOCKS` equal parts of a clip, that its votes fall
  in; the score is the best count over offsets and over the two clips. A copy
  shares keys all along at one offset; unrelated clips share a few keys in one
  short stretch, or at scattered offsets.

  Args:
    frames_a, frames_b: frames of the shared keys in each clip (same length).
    length_a, length_b: the fingerprints' lengths in words.
  """
  frames_a = np.asarray(frames_a, np.int64)
  if frames_a.size == 0:
    return 0
  _, scores, _ = aligned_blocks_by_group(
      np.zeros(frames_a.size, np.int64), frames_a, frames_b, length_a=length_a,
      lengths_b=np.full(frames_a.size, length_b))
  return int(scores[0])


def aligned_blocks_by_group(groups: np.ndarray, frames_a: np.ndarray, frames_b: np.ndarray,
                            *, length_a: int, lengths_b: np.ndarray
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """:func:`aligned_blocks` of one clip A against many clips at once.

  Args:
    groups: for each shared key, which other clip B it is shared with.
    frames_a, frames_b: its frame in A and in that B.
    length_a: A's length in words; lengths_b: that B's length, per key.

  Returns:
    The distinct groups, sorted; the score of each; and the offset (frame in A
    minus frame in B, as :func:`match` counts it) that scored best.
  """
  groups, frames_a, frames_b, lengths_b = (
      np.asarray(x, np.int64) for x in (groups, frames_a, frames_b, lengths_b))
  distinct, group = np.unique(groups, return_inverse=True)
  # One code per (group, offset); offsets of different groups never come close.
  code = group * (1 << 32) + (frames_a - frames_b) + (1 << 31)
  order = np.argsort(code, kind='stable')
  codes = code[order]
  starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
  codes = codes[starts]
  owner = codes >> 32
  group_starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
  best = np.full(len(distinct), -1, np.int64)
  best_code = np.zeros(len(distinct), np.int64)
  for blocks in (frames_a * ALIGN_BLOCKS // max(length_a, 1),
                 frames_b * ALIGN_BLOCKS // np.maximum(lengths_b, 1)):
    bits = np.left_shift(np.uint64(1), blocks[order].astype(np.uint64))
    masks = np.bitwise_or.reduceat(bits, starts)
    total = masks.copy()
    for shift in range(-ALIGN_TOLERANCE_FRAMES, ALIGN_TOLERANCE_FRAMES + 1):
      if shift:
        at = np.minimum(np.searchsorted(codes, codes + shift), len(codes) - 1)
        total |= np.where(codes[at] == codes + shift, masks[at], np.uint64(0))
    count = np.bitwise_count(total).astype(np.int64)
    for g, (lo, hi) in enumerate(zip(group_starts, np.r_[group_starts[1:], len(codes)],
                                     strict=True)):
      top = lo + int(np.argmax(count[lo:hi]))
      if count[top] > best[g]:
        best[g], best_code[g] = count[top], codes[top]
  return distinct, best, (best_code & ((1 << 32) - 1)) - (1 << 31)
