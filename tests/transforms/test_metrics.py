import numpy as np
import pytest
import soxr
import webrtcvad

from tests.conftest import speech
from transforms import metrics

RATE = 16000


def test_clipping_counts_plateaus_not_single_peaks():
  x = np.zeros(1000, np.float32)
  x[100] = 1.0                      # a single peak: not clipping
  x[200:210] = 1.0                  # a plateau of 10
  x[300:302] = -1.0                 # too short to count with min_run=3
  x[400:405] = -1.0                 # a negative plateau of 5
  assert metrics.clipping_ratio(x, full_scale=32767 / 32768, min_run=3) == 15 / 1000
  stereo = np.stack([x, np.zeros_like(x)], axis=1)
  assert metrics.clipping_ratio(stereo, full_scale=0.99, min_run=3) == 15 / 2000


def test_peak_and_dc():
  x = np.full(100, 0.5, np.float32)
  assert metrics.peak_dbfs(x) == pytest.approx(-6.0206, abs=1e-3)
  assert metrics.dc_offset(x) == pytest.approx(0.5)
  assert metrics.peak_dbfs(np.zeros(10)) == -200.0


def test_loudness_of_full_scale_sine_and_short_clips():
  t = np.arange(RATE * 3) / RATE
  sine = np.sin(2 * np.pi * 1000 * t)          # BS.1770: 0 dBFS 1 kHz sine = -3.01 LUFS
  assert metrics.loudness_lufs(sine, sample_rate=RATE) == pytest.approx(-3.01, abs=0.1)
  assert metrics.loudness_lufs(sine[:RATE // 4], sample_rate=RATE) is None
  assert metrics.loudness_lufs(np.zeros(RATE), sample_rate=RATE) is None


def test_wada_table_is_reproducible():
  snrs = np.array([0.0, 10.0, 20.0, 40.0])
  regenerated = metrics.wada_g(snrs, draws=400_000)
  table = np.interp(snrs, metrics.WADA_SNR_DB, metrics.WADA_G)
  np.testing.assert_allclose(regenerated, table, atol=0.01)


def test_wada_snr_rises_with_true_snr():
  clean = speech(1, sample_rate=RATE, duration_s=4.0)
  rng = np.random.default_rng(0)
  noise = rng.standard_normal(clean.size)
  estimates = []
  for snr in (0, 10, 20, 30):
    gain = np.sqrt(np.mean(clean ** 2) / np.mean(noise ** 2) / 10 ** (snr / 10))
    estimates.append(metrics.wada_snr_db(clean + gain * noise))
  assert estimates == sorted(estimates)
  assert estimates[0] < 8
  assert metrics.wada_snr_db(noise) < 5
  assert metrics.wada_snr_db(np.zeros(100)) is None


def test_speech_ratio_separates_speech_from_silence():
  vad = webrtcvad.Vad(2)
  pcm = np.round(speech(2, sample_rate=RATE, duration_s=4.0) * 32767).astype(np.int16)
  ratio, voiced = metrics.speech_ratio(pcm, sample_rate=RATE, vad=vad)
  assert ratio > 0.5 and voiced > 60
  assert metrics.speech_ratio(np.zeros(RATE, np.int16), sample_rate=RATE, vad=vad)[0] == 0


def test_bandwidth_catches_upsampled_telephone_audio():
  wide = speech(3, sample_rate=RATE, duration_s=3.0)
  narrow = soxr.resample(soxr.resample(wide, RATE, 8000), 8000, RATE)
  bw_wide = metrics.bandwidth_hz(metrics.power_spectrum(wide), sample_rate=RATE,
                                 threshold_db=50)
  bw_narrow = metrics.bandwidth_hz(metrics.power_spectrum(narrow), sample_rate=RATE,
                                   threshold_db=50)
  assert bw_narrow <= 4100 < 6000 <= bw_wide


def test_speaking_rate_counts_letters_not_bytes():
  assert metrics.letter_count('Ça va, 東京! 123') == 6
  assert metrics.speaking_rate_cps('abc def', speech_s=2.0) == 3.0
  assert metrics.speaking_rate_cps(None, speech_s=2.0) is None
  assert metrics.speaking_rate_cps('abc', speech_s=0.0) is None
