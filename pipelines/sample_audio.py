"""Synthetic speech-like clips and encoders for test and sample uploads.

:func:`synth_speech` renders a clip that speech analysis (VAD, loudness, SNR,
trimming) treats as speech, without needing recordings: a sawtooth glottal
source with an intonation contour and jitter, a cascade of 2nd-order formant
resonators moving between vowel targets, syllables at about 4-5 Hz with
fricative noise between some of them, pauses between words, and 0.3 s of room
tone (-73 dBFS RMS, quiet enough that WebRTC VAD calls it non-speech) at each
end. While the talker speaks, a background noise fades in so the clip's SNR is
32-38 dB: clean-speech power over the spoken span divided by the noise power
over the same span.

:func:`encode_audio` turns float samples into the bytes of a complete file in
one of :data:`FORMATS`, as a browser or phone upload would arrive.
"""

from __future__ import annotations

import dataclasses
import io
from fractions import Fraction

import av
import numpy as np
import scipy.signal
import soundfile as sf
import soxr

__all__ = ['EXTENSIONS', 'FORMATS', 'Voice', 'encode_audio', 'random_voice',
           'synth_speech']

FORMATS = ('wav_pcm16', 'wav_float32', 'flac', 'ogg_vorbis', 'ogg_opus', 'mp3',
           'webm_opus', 'm4a_aac')
EXTENSIONS = {'wav_pcm16': '.wav', 'wav_float32': '.wav', 'flac': '.flac',
              'ogg_vorbis': '.ogg', 'ogg_opus': '.ogg', 'mp3': '.mp3',
              'webm_opus': '.webm', 'm4a_aac': '.m4a'}

_SOUNDFILE_FORMATS = {  # fmt -> (libsndfile major format, subtype)
    'wav_pcm16': ('WAV', 'PCM_16'), 'wav_float32': ('WAV', 'FLOAT'),
    'flac': ('FLAC', 'PCM_16'), 'ogg_vorbis': ('OGG', 'VORBIS'),
    'ogg_opus': ('OGG', 'OPUS'), 'mp3': ('MP3', 'MPEG_LAYER_III')}
# fmt -> (container, encoder, bit rate in bit/s, required sample rate or None).
_PYAV_FORMATS = {'webm_opus': ('webm', 'libopus', 32_000, 48_000),
                 'm4a_aac': ('ipod', 'aac', 96_000, None)}
_PYAV_MP3 = ('mp3', 'libmp3lame', 128_000, None)  # mp3 at a chosen bit rate
_OPUS_RATES_HZ = (8000, 12000, 16000, 24000, 48000)

# Adult male vowel formants F1-F4 in Hz (Peterson & Barney style averages).
_VOWEL_FORMANTS_HZ = np.array([
    [730, 1090, 2440, 3400],  # a
    [270, 2290, 3010, 3700],  # i
    [300, 870, 2240, 3400],   # u
    [530, 1840, 2480, 3500],  # e
    [570, 840, 2410, 3400],   # o
    [660, 1720, 2410, 3500],  # ae
    [490, 1350, 1690, 3300],  # er
], dtype=np.float64)
_VOWEL_FORMANTS_HZ.flags.writeable = False
_FORMANT_BANDWIDTHS_HZ = (80.0, 100.0, 130.0, 180.0)
_EDGE_S = 0.3           # room tone at each end
_ROOM_DBFS = -73.0      # RMS of the room tone
_BLOCK_S = 0.005        # formant filter coefficients are updated this often


@dataclasses.dataclass(frozen=True)
class Voice:
  """A talker: pitch, vocal tract size and voice quality.

  Attributes:
    f0_hz: mean fundamental frequency.
    formant_scale: vocal-tract scaling of the formants (about 0.85 to 1.2).
    syllable_rate_hz: syllables per second within a word.
    jitter_ratio: standard deviation of fast f0 perturbation, relative to f0.
    shimmer_ratio: standard deviation of per-cycle amplitude, relative.
    breathiness_ratio: level of aspiration noise relative to the pulse source.
  """
  f0_hz: float
  formant_scale: float = 1.0
  syllable_rate_hz: float = 4.5
  jitter_ratio: float = 0.01
  shimmer_ratio: float = 0.05
  breathiness_ratio: float = 0.05

  def __post_init__(self) -> None:
    for name, low, high in (('f0_hz', 50, 400), ('formant_scale', 0.7, 1.4),
                            ('syllable_rate_hz', 2, 8), ('jitter_ratio', 0, 0.1),
                            ('shimmer_ratio', 0, 0.5), ('breathiness_ratio', 0, 1)):
      if not low <= getattr(self, name) <= high:
        raise ValueError(f'Voice.{name}={getattr(self, name)!r} must be in '
                         f'[{low}, {high}]')


def random_voice(rng: np.random.Generator) -> Voice:
  """Draws a plausible adult voice, male-like or female-like at equal odds."""
  if rng.random() < 0.5:
    f0_hz, formant_scale = rng.uniform(90, 150), rng.uniform(0.85, 1.0)
  else:
    f0_hz, formant_scale = rng.uniform(160, 240), rng.uniform(1.05, 1.2)
  return Voice(f0_hz=float(f0_hz), formant_scale=float(formant_scale),
               syllable_rate_hz=float(rng.uniform(4.0, 5.0)),
               jitter_ratio=float(rng.uniform(0.005, 0.015)),
               shimmer_ratio=float(rng.uniform(0.03, 0.08)),
               breathiness_ratio=float(rng.uniform(0.02, 0.1)))


def _plan_syllables(rng: np.random.Generator, *, span_s: float,
                    voice: Voice) -> list[tuple[float, float, float, int, float]]:
  """Lays out words over ``span_s`` seconds.

  Returns one (fricative_start_s, vowel_start_s, vowel_end_s, vowel, gain) per
  syllable; ``fricative_start_s == vowel_start_s`` when there is no fricative.
  """
  syllables, t_s = [], 0.0
  while t_s < span_s:
    if syllables:
      t_s += rng.uniform(0.1, 0.25)  # pause between words
    for _ in range(int(rng.integers(1, 5))):
      fricative_s = rng.uniform(0.05, 0.09) if rng.random() < 0.3 else 0.0
      vowel_s = rng.uniform(0.8, 1.2) / voice.syllable_rate_hz - 0.02
      syllables.append((t_s, t_s + fricative_s, t_s + fricative_s + vowel_s,
                        int(rng.integers(len(_VOWEL_FORMANTS_HZ))),
                        float(rng.uniform(0.55, 1.0))))
      t_s += fricative_s + vowel_s
      if t_s >= span_s:
        break
  scale = span_s / t_s  # squeeze by at most one syllable to fill the span exactly
  return [(a * scale, b * scale, c * scale, v, g) for a, b, c, v, g in syllables]


def _smooth(x: np.ndarray, *, width: int) -> np.ndarray:
  """Moving average with edge padding, same length as ``x`` (O(n) via cumsum)."""
  width = max(int(width), 1)
  padded = np.pad(x.astype(np.float64), (width // 2, width - 1 - width // 2),
                  mode='edge')
  total = np.concatenate([[0.0], np.cumsum(padded)])
  return (total[width:] - total[:-width]) / width


def _formant_filter(source: np.ndarray, formants_hz: np.ndarray, *,
                    sample_rate: int) -> np.ndarray:
  """Cascade of unity-DC-gain resonators whose frequencies follow
  ``formants_hz`` (shape (n, k)), updated every ``_BLOCK_S`` seconds."""
  block = max(int(_BLOCK_S * sample_rate), 1)
  out = source.astype(np.float64)
  for k in range(formants_hz.shape[1]):
    r = np.exp(-np.pi * _FORMANT_BANDWIDTHS_HZ[k] / sample_rate)
    state = np.zeros(2)
    for start in range(0, len(out), block):
      freq_hz = formants_hz[min(start + block // 2, len(out) - 1), k]
      a = [1.0, -2 * r * np.cos(2 * np.pi * freq_hz / sample_rate), r * r]
      out[start:start + block], state = scipy.signal.lfilter(
          [sum(a)], a, out[start:start + block], zi=state)
  return out


def _pink_noise(rng: np.random.Generator, *, n: int, sample_rate: int) -> np.ndarray:
  """Unit-RMS noise with a 1/f power spectrum above 50 Hz."""
  spectrum = np.fft.rfft(rng.standard_normal(n))
  freqs_hz = np.fft.rfftfreq(n, 1 / sample_rate)
  noise = np.fft.irfft(spectrum / np.sqrt(np.maximum(freqs_hz, 50.0)), n)
  return noise / np.sqrt(np.mean(noise**2))


def _render(rng: np.random.Generator, voice: Voice, *, sample_rate: int, n: int, edge: int,
            f0_target: np.ndarray, vowel_index: np.ndarray, formant_factor: np.ndarray | float,
            voiced_env: np.ndarray, fricative_env: np.ndarray, pink_length: int) -> np.ndarray:
  """Source, formants, fricatives and noise for a planned span: the clip's samples.

  ``pink_length`` (at least ``n``) is the FFT length of the noise, cut to ``n``.
  """
  span = voiced_env.shape[0]
  # Intonation: smoothed syllable targets, declination, and fast jitter.
  declination = np.linspace(1.08, 0.92, span)
  jitter = _smooth(rng.standard_normal(span), width=0.002 * sample_rate)
  jitter *= voice.jitter_ratio / max(np.std(jitter), 1e-12)
  f0_hz = _smooth(f0_target, width=0.08 * sample_rate) * declination * (1 + jitter)
  phase = np.cumsum(f0_hz / sample_rate)
  cycle = phase.astype(int)
  shimmer = 1 + voice.shimmer_ratio * rng.standard_normal(cycle[-1] + 1)
  source = (1 - 2 * (phase - cycle)) * shimmer[cycle]
  source += voice.breathiness_ratio * rng.standard_normal(span)
  source *= voiced_env

  # Formants glide between vowel targets (coarticulation); drop any formant
  # that would come too close to the Nyquist frequency.
  targets = _VOWEL_FORMANTS_HZ * voice.formant_scale
  n_formants = int(np.sum(targets.max(axis=0) < 0.42 * sample_rate))
  formants_hz = np.stack([
      _smooth(targets[vowel_index, k] * formant_factor, width=0.04 * sample_rate)
      for k in range(n_formants)], axis=1)
  voiced = _formant_filter(source, formants_hz, sample_rate=sample_rate)
  voiced = scipy.signal.sosfilt(
      scipy.signal.butter(2, 70, 'highpass', fs=sample_rate, output='sos'), voiced)
  voiced_rms = np.sqrt(np.mean(voiced[voiced_env > 0.3]**2))

  # Fricatives: high-passed noise bursts 12-20 dB below the vowels.
  cutoff_hz = min(rng.uniform(2500, 4500), 0.4 * sample_rate)
  hiss = scipy.signal.sosfilt(
      scipy.signal.butter(4, cutoff_hz, 'highpass', fs=sample_rate, output='sos'),
      rng.standard_normal(span))
  hiss *= voiced_rms * 10 ** (-rng.uniform(12, 20) / 20) / np.std(hiss)
  speech = np.zeros(n)
  speech[edge:edge + span] = voiced + hiss * fricative_env
  speech *= 10 ** (rng.uniform(-5.5, -3.5) / 20) / np.max(np.abs(speech))

  # Room tone throughout; background noise faded in while the talker speaks,
  # at a level that brings the spoken span to the target SNR.
  room_power = 10 ** (_ROOM_DBFS / 10)
  noise = np.sqrt(room_power) * _pink_noise(rng, n=pink_length, sample_rate=sample_rate)[:n]
  gate = np.zeros(n)
  gate[edge:edge + span] = scipy.signal.windows.tukey(
      span, alpha=min(0.1 * sample_rate / span, 1.0))
  speech_power = np.mean(speech[edge:edge + span]**2)
  noise_power = speech_power / 10 ** (rng.uniform(32, 38) / 10)
  gated_power = max(noise_power - room_power, 0.0) / np.mean(gate[edge:edge + span]**2)
  noise += np.sqrt(gated_power) * gate * _pink_noise(
      rng, n=pink_length, sample_rate=sample_rate)[:n]
  return np.clip(speech + noise, -1.0, 1.0).astype(np.float32)


def _targets(syllables, *, span: int, sample_rate: int, f0_hz: float) -> tuple[np.ndarray, ...]:
  """Per-sample f0, vowel, formant scale and voiced and fricative envelopes of
  (fricative_start_s, vowel_start_s, vowel_end_s, vowel, gain, f0_hz,
  formant_scale) syllables, each target held until the next syllable."""
  f0_target = np.full(span, f0_hz)
  vowel_index = np.zeros(span, dtype=int)
  formant_factor = np.ones(span)
  voiced_env, fricative_env = np.zeros(span), np.zeros(span)
  overlap = int(0.015 * sample_rate)
  for fric_s, start_s, end_s, vowel, gain, f0, scale in syllables:
    a, b, c = (min(round(x * sample_rate), span) for x in (fric_s, start_s, end_s))
    f0_target[a:] = f0
    vowel_index[a:] = vowel
    formant_factor[a:] = scale
    lo, hi = max(b - overlap, 0), min(c + overlap, span)
    voiced_env[lo:hi] += gain * scipy.signal.windows.tukey(hi - lo, alpha=0.5)
    if b > a:
      fricative_env[a:b] = gain * scipy.signal.windows.tukey(b - a, alpha=0.8)
  return f0_target, vowel_index, formant_factor, voiced_env, fricative_env


def synth_speech(rng: np.random.Generator, *, sample_rate: int, duration_s: float,
                 voice: Voice) -> np.ndarray:
  """Renders a mono speech-like clip.

  Returns float32 samples of shape (round(duration_s * sample_rate),) in
  [-1, 1], peaking at -5.5 to -3.5 dBFS. The first and last 0.3 s (a fifth of
  the clip each, for clips under 1.5 s) are room tone only. The same ``rng``
  state and arguments give identical output.
  """
  if sample_rate < 8000:
    raise ValueError(f'sample_rate={sample_rate!r} must be at least 8000 Hz')
  if duration_s < 0.25:
    raise ValueError(f'duration_s={duration_s!r} must be at least 0.25 s')
  n = round(duration_s * sample_rate)
  edge = round(min(_EDGE_S, 0.2 * duration_s) * sample_rate)
  span = n - 2 * edge
  syllables = _plan_syllables(rng, span_s=span / sample_rate, voice=voice)

  # Per-sample targets, held between syllables and then smoothed.
  f0_target, vowel_index, _, voiced_env, fricative_env = _targets(
      ((fric_s, start_s, end_s, vowel, gain, voice.f0_hz * 2 ** (rng.normal(0, 2.0) / 12), 1.0)
       for fric_s, start_s, end_s, vowel, gain in syllables),
      span=span, sample_rate=sample_rate, f0_hz=voice.f0_hz)

  return _render(rng, voice, sample_rate=sample_rate, n=n, edge=edge, f0_target=f0_target,
                 vowel_index=vowel_index, formant_factor=1.0, voiced_env=voiced_env,
                 fricative_env=fricative_env, pink_length=n)


def _encode_pyav(samples: np.ndarray, *, sample_rate: int, fmt: str,
                 bit_rate: int | None = None) -> bytes:
  """Encodes 2-D (n, channels) float samples with PyAV into a complete file."""
  container_name, codec_name, default_bit_rate, required_rate = (
      _PYAV_MP3 if fmt == 'mp3' else _PYAV_FORMATS[fmt])
  bit_rate = bit_rate or default_bit_rate
  if required_rate is not None and sample_rate != required_rate:
    samples = soxr.resample(samples, sample_rate, required_rate)
    samples = samples.reshape(len(samples), -1)  # soxr drops a 1-column axis
    sample_rate = required_rate
  channels = samples.shape[1]
  layout = {1: 'mono', 2: 'stereo'}.get(channels, f'{channels}c')
  buf = io.BytesIO()
  with av.open(buf, mode='w', format=container_name) as container:
    stream = container.add_stream(codec_name, rate=sample_rate, layout=layout)
    stream.bit_rate = bit_rate
    ctx = stream.codec_context
    ctx.time_base = Fraction(1, sample_rate)
    try:
      ctx.open()
    except av.FFmpegError as err:
      raise ValueError(f'cannot encode {fmt} with {channels} channels at '
                       f'{sample_rate} Hz: {err}') from err
    frame_size = ctx.frame_size or 1024  # 960 for opus at 48 kHz, 1024 for aac
    planar = np.ascontiguousarray(samples.T, dtype=np.float32)  # (channels, n)
    # Frames are planar float of exactly frame_size samples, so PyAV only has
    # to interleave them for libopus ('flt'); aac takes 'fltp' as is. Both
    # encoders accept a short final frame (AV_CODEC_CAP_SMALL_LAST_FRAME), so
    # the container records the true length instead of padding it.
    for start in range(0, planar.shape[1], frame_size):
      frame = av.AudioFrame.from_ndarray(
          planar[:, start:start + frame_size], format='fltp', layout=layout)
      frame.sample_rate = sample_rate
      frame.pts = start
      frame.time_base = Fraction(1, sample_rate)
      container.mux(stream.encode(frame))
    container.mux(stream.encode(None))  # flush the encoder's delayed packets
  return buf.getvalue()


def encode_audio(samples: np.ndarray, *, sample_rate: int, fmt: str,
                 bit_rate: int | None = None) -> bytes:
  """Encodes float audio into the bytes of a complete file.

  Args:
    samples: float audio of shape (n,) or (n, channels), nominally in [-1, 1].
      Everything except ``wav_float32`` is clipped to [-1, 1] first.
    sample_rate: sample rate of ``samples`` in Hz. ``webm_opus`` is resampled
      to 48 kHz; ``ogg_opus`` needs 8, 12, 16, 24 or 48 kHz.
    fmt: one of :data:`FORMATS`; :data:`EXTENSIONS` gives its file extension.
    bit_rate: for ``webm_opus``, ``m4a_aac`` and ``mp3``, the encoder's bit rate
      in bit/s instead of the format's default (mp3 is then encoded by LAME
      through PyAV; without it, by libsndfile).

  Raises:
    ValueError: for an unknown ``fmt``, bad sample shape, or a rate the
      format cannot carry.
  """
  if fmt not in FORMATS:
    raise ValueError(f'unknown audio format {fmt!r}; known: {", ".join(FORMATS)}')
  samples = np.ascontiguousarray(samples, dtype=np.float32)
  if samples.ndim not in (1, 2) or 0 in samples.shape:
    raise ValueError(f'samples must have shape (n,) or (n, channels) with n > 0, '
                     f'got {samples.shape}')
  if fmt != 'wav_float32':
    samples = np.clip(samples, -1.0, 1.0)
  if fmt == 'ogg_opus' and sample_rate not in _OPUS_RATES_HZ:
    raise ValueError(f'ogg_opus cannot carry sample_rate={sample_rate} Hz; '
                     f'use one of {_OPUS_RATES_HZ}')
  if bit_rate is not None and fmt not in (*_PYAV_FORMATS, 'mp3'):
    raise ValueError(f'bit_rate applies to webm_opus, m4a_aac and mp3, not {fmt!r}')
  if fmt in _PYAV_FORMATS or bit_rate is not None:
    return _encode_pyav(samples.reshape(len(samples), -1), sample_rate=sample_rate,
                        fmt=fmt, bit_rate=bit_rate)
  major, subtype = _SOUNDFILE_FORMATS[fmt]
  channels = 1 if samples.ndim == 1 else samples.shape[1]
  if fmt == 'mp3' and channels > 2:
    raise ValueError(f'mp3 carries at most 2 channels, got {channels}')
  buf = io.BytesIO()
  try:
    sf.write(buf, samples, sample_rate, format=major, subtype=subtype)
  except sf.LibsndfileError as err:
    raise ValueError(f'cannot encode {fmt} with {channels} channels at '
                     f'{sample_rate} Hz: {err}') from err
  return buf.getvalue()


def sentence_words(content_seed: int, *, vocabulary_size: int = 60,
                   min_words: int = 5, max_words: int = 10) -> tuple[int, ...]:
  """The word ids of a prompt: ``min_words`` to ``max_words`` draws from a
  vocabulary of ``vocabulary_size`` words, so different prompts share words as
  real prompt lists do. The same seed gives the same prompt."""
  if not 1 <= min_words <= max_words:
    raise ValueError(f'min_words={min_words!r} and max_words={max_words!r} must satisfy '
                     f'1 <= min_words <= max_words')
  rng = np.random.default_rng([0x5E7, content_seed])
  count = int(rng.integers(min_words, max_words + 1))
  return tuple(int(w) for w in rng.integers(0, vocabulary_size, count))


def _word_syllables(word: int) -> list[tuple[float, int, float, float, float]]:
  """What a word is, whoever says it: per syllable (fricative_s, vowel,
  relative vowel duration, gain, pitch accent in semitones)."""
  rng = np.random.default_rng([0x30D, word])
  return [(float(rng.uniform(0.05, 0.09)) if rng.random() < 0.3 else 0.0,
           int(rng.integers(len(_VOWEL_FORMANTS_HZ))), float(rng.uniform(0.8, 1.2)),
           float(rng.uniform(0.55, 1.0)), float(rng.normal(0, 2.0)))
          for _ in range(int(rng.integers(1, 5)))]


def synth_take(words: tuple[int, ...], *, voice: Voice, take_seed: int,
               sample_rate: int) -> np.ndarray:
  """Renders one reading (a *take*) of a prompt by a talker.

  The prompt (:func:`sentence_words`) fixes the words; each word fixes its
  syllables, vowels, fricatives, stress and pitch accents, and the prompt fixes
  where the phrase pauses fall. The talker (``voice``) fixes pitch, vocal tract
  and speaking rate. ``take_seed`` is the performance: everything a talker does
  differently when reading the same prompt again. The amounts below are
  deliberately on the small side of what repeated read speech shows (syllable
  durations commonly vary by 10-20 % between readings), so that a second take
  is at least as hard to tell from the first as a real one:

  * overall tempo, lognormal with a 4 % standard deviation;
  * each syllable's duration, lognormal with a 6 % standard deviation;
  * each pause, lognormal with a 20 % standard deviation around the prompt's;
  * each syllable's pitch target, 1 semitone s.d. around the word's accent, and
    the whole take's register, 0.5 semitone s.d.;
  * each syllable's level, 1 dB s.d.; formants, 2 % s.d. per syllable;
  * every noise: glottal jitter and shimmer, aspiration, fricatives, room tone
    and background noise (the take's SNR is 32-38 dB as in :func:`synth_speech`).

  The clip has :func:`synth_speech`'s 0.3 s of room tone at each end and peaks
  at -5.5 to -3.5 dBFS. The same arguments give identical output.

  Returns:
    float32 samples of shape (n,), n depending on the words, voice and take.
  """
  if sample_rate < 8000:
    raise ValueError(f'sample_rate={sample_rate!r} must be at least 8000 Hz')
  if not words:
    raise ValueError('words must name at least one word')
  prompt = np.random.default_rng([0x9A5, *words])
  rng = np.random.default_rng([0x7A4E, take_seed])
  tempo = float(np.exp(rng.normal(0, 0.04)))
  register_st = float(rng.normal(0, 0.5))
  plan, t_s = [], 0.0
  for index, word in enumerate(words):
    if index:
      t_s += float(prompt.uniform(0.1, 0.25) * np.exp(rng.normal(0, 0.2)))
    for fricative_s, vowel, relative, gain, accent_st in _word_syllables(word):
      fricative_s *= tempo * float(np.exp(rng.normal(0, 0.06)))
      vowel_s = (relative / voice.syllable_rate_hz - 0.02) * tempo * float(
          np.exp(rng.normal(0, 0.06)))
      plan.append((t_s, t_s + fricative_s, t_s + fricative_s + vowel_s, vowel,
                   gain * 10 ** (rng.normal(0, 1.0) / 20),
                   accent_st + register_st + rng.normal(0, 1.0),
                   float(np.exp(rng.normal(0, 0.02)))))
      t_s += fricative_s + vowel_s
  return _render_plan(rng, plan, span_s=t_s, voice=voice, sample_rate=sample_rate)


def _render_plan(rng: np.random.Generator, plan: list, *, span_s: float, voice: Voice,
                 sample_rate: int) -> np.ndarray:
  """:func:`synth_speech`'s source-filter rendering of a syllable plan of
  (fricative_start_s, vowel_start_s, vowel_end_s, vowel, gain, pitch_st,
  formant_scale) tuples, with room tone at both ends and background noise."""
  edge = round(_EDGE_S * sample_rate)
  span = round(span_s * sample_rate)
  n = span + 2 * edge
  f0_target, vowel_index, formant_factor, voiced_env, fricative_env = _targets(
      ((fric_s, start_s, end_s, vowel, gain, voice.f0_hz * 2 ** (pitch_st / 12), scale)
       for fric_s, start_s, end_s, vowel, gain, pitch_st, scale in plan),
      span=span, sample_rate=sample_rate, f0_hz=voice.f0_hz)

  # pocketfft is slow on prime lengths: the noise is drawn at a fast length and cut.
  return _render(rng, voice, sample_rate=sample_rate, n=n, edge=edge, f0_target=f0_target,
                 vowel_index=vowel_index, formant_factor=formant_factor, voiced_env=voiced_env,
                 fricative_env=fricative_env,
                 pink_length=scipy.fft.next_fast_len(n, real=True))
