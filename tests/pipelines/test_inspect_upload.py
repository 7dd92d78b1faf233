import subprocess
import sys

from pipelines import reference_signals as ref
from pipelines.inspect_upload import inspect
from pipelines.sample_audio import encode_audio
from schemas.config import BuildConfig
from schemas.records import METRIC_FIELDS


def test_report_lists_every_metric_and_all_failed_rules(tmp_path):
  clipped, _ = ref.clip_fraction(ref.speech(1, sample_rate=48000, duration_s=3.0),
                                 fraction=0.05)
  path = tmp_path / 'loud.wav'
  path.write_bytes(encode_audio(clipped, sample_rate=48000, fmt='wav_pcm16'))
  lines = inspect(str(path), transcript='x' * 400, config=BuildConfig())
  assert lines[0].startswith('source: wav/pcm_16, 48000 Hz, 1 channel(s), 3.00 s')
  assert {line.split()[0] for line in lines[2:-1]} == set(METRIC_FIELDS)
  verdict = lines[-1]
  assert verdict.startswith('verdict: rejected (clipped): clipping_ratio=')
  assert '> 0.01 (max_clipping_ratio)' in verdict
  assert '> 35 (max_speaking_rate_cps)' in verdict


def test_cli_passes_good_speech_and_names_decoder_errors(tmp_path):
  good = tmp_path / 'good.webm'
  good.write_bytes(encode_audio(ref.speech(2, sample_rate=48000, duration_s=4.0),
                                sample_rate=48000, fmt='webm_opus'))
  bad = tmp_path / 'bad.wav'
  bad.write_bytes(b'RIFF\x00\x00\x00\x00WAVEjunk')
  run = [sys.executable, '-m', 'pipelines.inspect_upload']
  result = subprocess.run([*run, str(good)], capture_output=True, text=True, check=True)
  assert result.stdout.splitlines()[-1].startswith('verdict: passes every quality rule')
  result = subprocess.run([*run, str(bad)], capture_output=True, text=True, check=True)
  assert result.stdout.startswith('verdict: rejected (undecodable): libsndfile')
  result = subprocess.run([*run, str(good), '--set', 'filter.min_snr_db=x'],
                          capture_output=True, text=True, check=False)
  assert result.returncode == 2 and 'filter.min_snr_db' in result.stderr
