"""How right and how cheap the quality metrics are: the error table and the cost.

    python -m pipelines.bench_metrics [--seeds 8] [--out bench-metrics.json]

Against signals with known truth (:mod:`pipelines.reference_signals`: eSpeak NG
speech, white noise, babble, tones, exact clipping), prints the SNR error per
noise kind and level, loudness against pyloudnorm and BS.1770 reference values,
clipping against the true fraction, speech ratio on speech and non-speech,
bandwidth of wideband and telephone-band speech, and the measure stage's cost
in audio-seconds per CPU-second.
"""

from __future__ import annotations

import argparse
import io
import sys
import time

import numpy as np
import pyloudnorm
import soundfile as sf
import soxr

from pipelines import reference_signals as ref
from pipelines.publish import write_json
from schemas.config import DecodeConfig, MeasureConfig
from transforms import metrics
from transforms.decode import decode_bytes
from transforms.measure import make_vad, measure_clip
from transforms.standardize import standardize

RATE = 16000
SNRS = (0, 5, 10, 15, 20, 30)


def snr_table(seeds: int) -> dict:
  table = {}
  for kind in ('white', 'babble'):
    for snr in SNRS:
      estimates = []
      for seed in range(seeds):
        clean = ref.continuous_speech(seed, duration_s=5.0)
        noise = (ref.white_noise(seed, samples=clean.size) if kind == 'white'
                 else ref.babble(seed + 50, samples=clean.size))
        estimates.append(metrics.wada_snr_db(ref.mix_at_snr(clean, noise, snr_db=snr)))
      errors = np.abs(np.array(estimates) - snr)
      table[f'{kind}/{snr}'] = {'median_estimate_db': float(np.median(estimates)),
                                'median_abs_error_db': float(np.median(errors))}
  return table


def loudness_table() -> dict:
  signals = {'speech': ref.speech(1, duration_s=4.0),
             'tone_440': ref.tone(frequency_hz=440, amplitude=0.2, samples=RATE * 3),
             'white': 0.05 * ref.white_noise(1, samples=RATE * 3),
             'pink': 0.05 * ref.pink_noise(1, samples=RATE * 3),
             'tone_997_0dBFS (BS.1770: -3.01)': ref.tone(frequency_hz=997, amplitude=1.0,
                                                         samples=RATE * 5)}
  return {name: {'lufs': metrics.loudness_lufs(x, sample_rate=RATE),
                 'pyloudnorm': float(pyloudnorm.Meter(RATE).integrated_loudness(x))}
          for name, x in signals.items()}


def clipping_table() -> dict:
  table = {}
  clean = ref.continuous_speech(3, sample_rate=48000, duration_s=4.0)
  for subtype in ('PCM_16', 'PCM_24', 'FLOAT'):
    for fraction in (0.0, 0.005, 0.02, 0.10):
      clipped, truth = ref.clip_fraction(clean, fraction=fraction)
      buffer = io.BytesIO()
      sf.write(buffer, clipped, 48000, format='WAV', subtype=subtype)
      decoded = decode_bytes(buffer.getvalue(), config=DecodeConfig())
      table[f'{subtype}/{fraction:.3f}'] = {
          'truth': truth, 'measured': metrics.clipping_ratio(
              decoded.samples, full_scale=decoded.full_scale, min_run=3)}
  return table


def speech_ratio_table(seeds: int) -> dict:
  vad, n = make_vad(), RATE * 4
  signals = {'silence': np.zeros(n), 'white': 0.1 * ref.white_noise(5, samples=n),
             'pink': 0.1 * ref.pink_noise(5, samples=n),
             'tone': ref.tone(frequency_hz=440, amplitude=0.3, samples=n)}
  signals.update({f'speech/{seed}': ref.continuous_speech(seed, duration_s=4.0)
                  for seed in range(seeds)})
  return {name: metrics.speech_ratio(metrics.vad_probabilities(
      x.astype(np.float32), vad=vad), threshold=0.5) for name, x in signals.items()}


def bandwidth_table(seeds: int) -> dict:
  table = {}
  for seed in range(seeds):
    wide = ref.speech(seed, sample_rate=48000, duration_s=4.0)
    phone = soxr.resample(soxr.resample(wide, 48000, 8000), 8000, 48000)
    for name, x in (('wideband', wide), ('telephone', phone)):
      pcm = standardize(x[:, None], sample_rate=48000, target_rate=RATE) / 32768
      table[f'{name}/{seed}'] = metrics.bandwidth_hz(
          metrics.spectrogram(pcm), sample_rate=RATE, threshold_db=70)
  return table


def measure_cost(seeds: int) -> dict:
  clips = [np.round(ref.speech(seed, duration_s=6.0) * 32767).astype(np.int16)
           for seed in range(seeds)]
  vad, config = make_vad(), MeasureConfig()
  start = time.process_time()
  rounds = 5
  for _ in range(rounds):
    for pcm in clips:
      measure_clip(pcm, sample_rate=RATE, transcript='a transcript', vad=vad, config=config)
  cpu_s = time.process_time() - start
  audio_s = rounds * sum(pcm.shape[0] for pcm in clips) / RATE
  return {'audio_s': audio_s, 'cpu_s': cpu_s, 'audio_s_per_cpu_s': audio_s / cpu_s}


def report(results: dict) -> str:
  lines = ['SNR (WADA-SNR) against the true SNR, median over seeds:',
           f'  {"noise":8s}' + ''.join(f'{snr:>8d} dB' for snr in SNRS)]
  for kind in ('white', 'babble'):
    lines.append(f'  {kind:8s}' + ''.join(
        f'{results["snr"][f"{kind}/{snr}"]["median_estimate_db"]:8.1f}   ' for snr in SNRS))
  within = [v['median_abs_error_db'] for k, v in results['snr'].items()
            if int(k.split('/')[1]) <= 20]
  lines.append(f'  median absolute error, 0-20 dB: {np.median(within):.2f} dB (target <= 2.5)')
  lines.append('Loudness (LUFS): ours vs pyloudnorm')
  lines += [f'  {name:34s} {v["lufs"]:8.2f} {v["pyloudnorm"]:8.2f}'
            for name, v in results['loudness'].items()]
  lines.append('Clipping ratio: truth vs measured')
  lines += [f'  {name:14s} {v["truth"]:.4f} {v["measured"]:.4f}'
            for name, v in results['clipping'].items()]
  lines.append('Speech ratio (Silero VAD, threshold 0.5)')
  lines += [f'  {name:12s} {value:.2f}' for name, value in results['speech_ratio'].items()]
  lines.append('Bandwidth (Hz, 70 dB below peak) after standardizing to 16 kHz')
  lines += [f'  {name:12s} {value:7.0f}' for name, value in results['bandwidth'].items()]
  cost = results['measure_cost']
  lines.append(f'Measure stage: {cost["audio_s"]:.0f} s of audio in {cost["cpu_s"]:.2f} CPU-s '
               f'= {cost["audio_s_per_cpu_s"]:.0f} audio-seconds per CPU-second')
  return '\n'.join(lines)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--seeds', type=int, default=8, help='talkers per condition')
  parser.add_argument('--out', default=None, help='also write the results as JSON here')
  args = parser.parse_args(argv)
  results = {'snr': snr_table(args.seeds), 'loudness': loudness_table(),
             'clipping': clipping_table(), 'speech_ratio': speech_ratio_table(args.seeds),
             'bandwidth': bandwidth_table(args.seeds), 'measure_cost': measure_cost(args.seeds)}
  print(report(results))
  if args.out:
    write_json(args.out, results)
  return 0


if __name__ == '__main__':
  sys.exit(main())
