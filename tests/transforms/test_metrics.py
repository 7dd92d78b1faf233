"""The metrics against references with known truth (the table of issue 3).

Speech is synthesized by ``pipelines.sample_audio.synth_speech``, a documented
source-filter model (glottal pulses through formant resonators), via
``pipelines.reference_signals``; noise, babble, tones and clipping are built
there with exactly known parameters.
"""

import io

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf
import soxr

from pipelines import reference_signals as ref
from schemas.config import DecodeConfig
from transforms import metrics
from transforms.decode import decode_bytes
from transforms.measure import make_vad
from transforms.standardize import standardize

RATE = 16000


@pytest.fixture(scope='module')
def vad():
  return make_vad()


def ratio(x, vad):
  return metrics.speech_ratio(metrics.vad_probabilities(x, vad=vad), threshold=0.5)


# Loudness ------------------------------------------------------------------------------

@pytest.mark.parametrize('rate', [16000, 44100, 48000])
@pytest.mark.parametrize('name', ['speech', 'tone', 'white', 'pink', 'half silent', 'ragged'])
def test_loudness_matches_pyloudnorm(name, rate):
  x = {'speech': ref.speech(1, duration_s=4.0),
       'tone': ref.tone(frequency_hz=440, amplitude=0.2, samples=RATE * 3),
       'white': 0.05 * ref.white_noise(1, samples=RATE * 3),
       'pink': 0.05 * ref.pink_noise(1, samples=RATE * 3),
       # Gated blocks at the start; a length that ends mid-block.
       'half silent': np.concatenate([np.zeros(RATE * 2), ref.speech(2, duration_s=2.0)]),
       'ragged': 0.05 * ref.white_noise(3, samples=int(RATE * 1.37) + 11)}[name]
  expected = pyloudnorm.Meter(rate).integrated_loudness(x.astype(np.float64))
  assert metrics.loudness_lufs(x, sample_rate=rate) == pytest.approx(expected, abs=0.01)


def test_loudness_meets_bs1770_reference_values():
  # BS.1770-4: a 997 Hz sine at 0 dBFS on one channel reads -3.01 LKFS; -20 dBFS -> -23.01.
  for level_db, lufs in ((0, -3.01), (-20, -23.01)):
    x = ref.tone(frequency_hz=997, amplitude=10 ** (level_db / 20), samples=RATE * 5)
    assert metrics.loudness_lufs(x, sample_rate=RATE) == pytest.approx(lufs, abs=0.1)
  # The absolute gate (-70 LKFS) drops the digital silence around a tone: without it the
  # reading would fall by 10*log10(20/30) = 1.76 LU; with it only the few 400 ms blocks
  # that straddle the tone's edges pull it down, by less than 0.2 LU.
  gated = np.concatenate([np.zeros(RATE * 5), ref.tone(frequency_hz=997, amplitude=0.1,
                                                       samples=RATE * 20), np.zeros(RATE * 5)])
  assert metrics.loudness_lufs(gated, sample_rate=RATE) == pytest.approx(-23.01, abs=0.2)


def test_loudness_is_null_below_one_gating_block():
  x = ref.speech(2, duration_s=1.0)[:int(0.39 * RATE)]
  assert metrics.loudness_lufs(x, sample_rate=RATE) is None
  assert metrics.loudness_lufs(np.zeros(RATE), sample_rate=RATE) is None


# SNR -----------------------------------------------------------------------------------

SNRS = (0, 5, 10, 15, 20, 30)


def snr_errors(kind: str, seeds=range(4)) -> dict[int, list[float]]:
  errors = {snr: [] for snr in SNRS}
  for seed in seeds:
    clean = ref.continuous_speech(seed, duration_s=5.0)
    noise = (ref.white_noise(seed, samples=clean.size) if kind == 'white'
             else ref.babble(seed + 50, samples=clean.size))
    for snr in SNRS:
      errors[snr].append(metrics.wada_snr_db(ref.mix_at_snr(clean, noise, snr_db=snr)) - snr)
  return errors


@pytest.mark.parametrize('kind', ['white', 'babble'])
def test_snr_error_is_small_and_estimates_are_monotonic(kind):
  errors = snr_errors(kind)
  within = [abs(e) for snr in SNRS if snr <= 20 for e in errors[snr]]
  assert np.median(within) <= 2.5
  medians = [np.median(errors[snr]) + snr for snr in SNRS]
  assert medians == sorted(medians)


def test_wada_table_is_reproducible():
  snrs = np.array([0.0, 10.0, 20.0, 40.0])
  regenerated = metrics.wada_g(snrs, draws=400_000)
  np.testing.assert_allclose(regenerated, np.interp(snrs, metrics.WADA_SNR_DB, metrics.WADA_G),
                             atol=0.01)
  assert metrics.wada_snr_db(np.zeros(100)) is None


# Clipping ------------------------------------------------------------------------------

def source(x, subtype):
  buffer = io.BytesIO()
  sf.write(buffer, x, 48000, format='WAV', subtype=subtype)
  return decode_bytes(buffer.getvalue(), config=DecodeConfig())


@pytest.mark.parametrize('subtype', ['PCM_16', 'PCM_24', 'FLOAT'])
@pytest.mark.parametrize('fraction', [0.0, 0.005, 0.02, 0.10])
def test_clipping_ratio_is_exact_on_integer_and_float_sources(subtype, fraction):
  clean = ref.continuous_speech(3, sample_rate=48000, duration_s=4.0)
  clipped, truth = ref.clip_fraction(clean, fraction=fraction)
  decoded = source(clipped, subtype)
  measured = metrics.clipping_ratio(decoded.samples, full_scale=decoded.full_scale, min_run=3)
  assert measured == pytest.approx(truth, abs=0.005)


def test_loud_unclipped_speech_reads_zero():
  loud = ref.continuous_speech(4, sample_rate=48000) * 0.999 / np.max(
      np.abs(ref.continuous_speech(4, sample_rate=48000)))
  decoded = source(loud, 'PCM_16')
  assert metrics.clipping_ratio(decoded.samples, full_scale=decoded.full_scale,
                                min_run=3) == 0.0


def test_clipping_counts_plateaus_not_single_peaks():
  x = np.zeros(1000, np.float32)
  x[100] = 1.0                      # a single peak: not clipping
  x[200:210] = 1.0                  # a plateau of 10
  x[300:302] = -1.0                 # too short to count with min_run=3
  x[400:405] = -1.0                 # a negative plateau of 5
  assert metrics.clipping_ratio(x, full_scale=32767 / 32768, min_run=3) == 15 / 1000
  stereo = np.stack([x, np.zeros_like(x)], axis=1)
  assert metrics.clipping_ratio(stereo, full_scale=0.99, min_run=3) == 15 / 2000


# Speech ratio --------------------------------------------------------------------------

@pytest.mark.parametrize('name', ['silence', 'white', 'pink', 'tone', 'quiet_tone'])
def test_speech_ratio_is_low_on_non_speech(name, vad):
  n = RATE * 4
  x = {'silence': np.zeros(n), 'white': 0.1 * ref.white_noise(5, samples=n),
       'pink': 0.1 * ref.pink_noise(5, samples=n),
       'tone': ref.tone(frequency_hz=440, amplitude=0.3, samples=n),
       'quiet_tone': ref.tone(frequency_hz=1000, amplitude=0.03, samples=n)}[name]
  assert ratio(x.astype(np.float32), vad) < 0.2


@pytest.mark.parametrize('seed', range(5))
def test_speech_ratio_is_high_on_continuous_speech(seed, vad):
  assert ratio(ref.continuous_speech(seed, duration_s=4.0), vad) > 0.6


# Bandwidth -----------------------------------------------------------------------------

@pytest.mark.parametrize('seed', range(5))
def test_bandwidth_reads_telephone_audio_upsampled_to_48k(seed):
  wide = ref.speech(seed, sample_rate=48000, duration_s=4.0)
  phone = soxr.resample(soxr.resample(wide, 48000, 8000), 8000, 48000)
  for x, low, high in ((phone, 3500, 4500), (wide, 7000, 8000)):
    pcm = standardize(x[:, None], sample_rate=48000, target_rate=RATE) / 32768
    reading = metrics.bandwidth_hz(metrics.spectrogram(pcm), sample_rate=RATE,
                                   threshold_db=70)
    assert low <= reading <= high


# Speaking rate and dropouts ------------------------------------------------------------

def test_speaking_rate_counts_letters_and_catches_a_foreign_transcript():
  assert metrics.letter_count('Ça va, 東京! 123') == 6
  assert metrics.speaking_rate_cps('abc def', speech_s=2.0) == 3.0
  assert metrics.speaking_rate_cps(None, speech_s=2.0) is None
  assert metrics.speaking_rate_cps('abc', speech_s=0.0) is None
  long_prompt = 'the transcript of a much longer prompt read by somebody else ' * 3
  assert metrics.speaking_rate_cps(long_prompt, speech_s=3.0) > 35


def test_dropout_ratio_measures_zero_runs_inside_speech(vad):
  x = ref.continuous_speech(6, duration_s=4.0)
  probabilities = metrics.vad_probabilities(x, vad=vad)
  speech = probabilities >= 0.5
  assert metrics.dropout_ratio(x, speech=speech, min_run=32) == 0.0
  # Four 20 ms gaps cut into the loudest parts of four different seconds of speech.
  damaged, gap = x.copy(), int(0.02 * RATE)
  for second in range(4):
    window = x[second * RATE:(second + 1) * RATE - gap]
    energy = np.convolve(window ** 2, np.ones(gap), mode='valid')
    start = second * RATE + int(np.argmax(energy))
    damaged[start:start + gap] = 0
  span = (np.flatnonzero(speech)[-1] + 1 - np.flatnonzero(speech)[0]) * metrics.VAD_FRAME
  measured = metrics.dropout_ratio(damaged, speech=speech, min_run=32)
  assert measured == pytest.approx(4 * gap / span, rel=0.05)
  # A pause rendered as digital silence fades out first: it is not a dropout.
  faded = x.copy()
  faded[RATE:RATE + gap] *= np.linspace(1, 0, gap)
  faded[RATE + gap:RATE + 3 * gap] = 0
  assert metrics.dropout_ratio(faded, speech=speech, min_run=32) == 0.0


def test_peak_and_dc():
  x = np.full(100, 0.5, np.float32)
  assert metrics.peak_dbfs(x) == pytest.approx(-6.0206, abs=1e-3)
  assert metrics.dc_offset(x) == pytest.approx(0.5)
  assert metrics.peak_dbfs(np.zeros(10)) == -200.0
