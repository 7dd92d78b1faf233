"""End to end: the embedded sample through the real build, every contract checked."""

from __future__ import annotations

import glob
import io
import json
import os
import pty
import re
import subprocess
import sys
import threading

import numpy as np
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from pipelines import __version__
from pipelines.build_dataset import run
from pipelines.make_sample import ACCEPTED
from schemas.config import BuildConfig, ConfigError
from schemas.records import METRIC_FIELDS, REASONS
from schemas.tables import REJECT_SCHEMA, manifest_schema
from tests.gcs.sample import expected_rows
from tests.pipelines.conftest import BUILT_METRICS
from transforms.decode import decode_bytes
from transforms.encode import content_id
from transforms.split import split_of
from transforms.standardize import standardize
from transforms.trim import sound_span

CONFIG = BuildConfig()


def manifests(out, build_id='b1'):
  return ds.dataset(f'{out}/builds/{build_id}/manifests', format='parquet').to_table()


def rejects(out, build_id='b1'):
  return ds.dataset(f'{out}/builds/{build_id}/rejects', format='parquet').to_table()


def test_sample_is_realistic(sample):
  _, expected = sample
  assert 55 <= len(expected) <= 70
  contributors = {upload_id.split('/')[0] for upload_id in expected}
  assert len(contributors) == 8
  assert sum(outcome == ACCEPTED for outcome in expected.values()) >= 45


def test_every_upload_ends_in_exactly_one_place(built):
  out, summary, expected = built
  accepted = manifests(out).column('upload_id').to_pylist()
  rejected = rejects(out).select(['upload_id', 'reason']).to_pylist()
  outcomes = [(u, ACCEPTED) for u in accepted] + [(r['upload_id'], r['reason'])
                                                   for r in rejected]
  assert sorted(outcomes) == expected_rows(expected)
  assert summary['inputs'] == len(expected) == summary['accepted'] + sum(
      summary['rejected'].values())
  assert summary['accepted'] == len(accepted)
  assert all(reason in REASONS for reason in summary['rejected'])


def test_layout_summary_and_latest(built):
  out, summary, _ = built
  build = f'{out}/builds/b1'
  with open(f'{out}/LATEST') as f:
    assert f.read().strip() == 'b1'
  for split in ('train', 'dev', 'test'):
    shards = glob.glob(f'{build}/manifests/data/{split}-*')
    assert shards and all(
        s.endswith('.parquet') and '-of-' in s
        for s in shards)
  assert glob.glob(f'{build}/rejects/part-*-of-*.parquet')
  prints = ds.dataset(f'{build}/fingerprints', format='parquet').to_table()
  assert prints.num_rows == summary['accepted']
  assert set(prints.column('clip_id').to_pylist()) == set(
      manifests(out).column('clip_id').to_pylist())
  assert not os.path.exists(f'{out}/_staging')
  with open(f'{build}/summary.json') as f:
    on_disk = json.load(f)
  assert on_disk == {k: v for k, v in summary.items() if k != 'path'}
  assert on_disk['build_id'] == 'b1' and on_disk['pipeline_version'] == __version__
  assert on_disk['config']['filter']['min_snr_db'] == CONFIG.filter.min_snr_db
  assert 0 < on_disk['audio_hours_out'] < on_disk['audio_hours_in']
  assert sum(part['clips'] for part in on_disk['splits'].values()) == on_disk['accepted']


def test_manifest_schema_and_rows(built):
  out, _, _ = built
  table = manifests(out)
  schema = manifest_schema(sample_rate=CONFIG.sample_rate_hz)
  assert table.schema.remove_metadata() == schema.remove_metadata()
  first = glob.glob(f'{out}/builds/b1/manifests/data/train-*.parquet')[0]
  assert pq.read_schema(first).metadata[b'huggingface'] == schema.metadata[b'huggingface']
  rows = table.to_pylist()
  for row in rows:
    assert row['split'] == split_of(row['contributor_id'], config=CONFIG.split)
    assert row['build_id'] == 'b1' and row['sample_rate'] == 16000
    assert row['audio']['path'] == f'{row["clip_id"]}.flac'
    assert all(row[name] is not None for name in METRIC_FIELDS if name != 'speaking_rate_cps')
    assert CONFIG.filter.min_duration_s <= row['duration_s'] <= CONFIG.filter.max_duration_s
  speakers = {}
  for row in rows:
    speakers.setdefault(row['contributor_id'], set()).add(row['split'])
  assert all(len(splits) == 1 for splits in speakers.values())
  assert len({row['clip_id'] for row in rows}) == len(rows)
  assert {row['container'] for row in rows} >= {'wav', 'flac', 'ogg', 'mp3', 'webm', 'mp4'}
  assert rejects(out).schema.remove_metadata() == REJECT_SCHEMA


def test_an_upload_without_consent_is_counted_but_named_nowhere(built):
  out, summary, expected = built
  (no_consent,) = [u for u, outcome in expected.items() if outcome == 'no_consent']
  (row,) = [r for r in rejects(out).to_pylist() if r['reason'] == 'no_consent']
  assert (row['upload_id'], row['source_uri'], row['contributor_id']) == ('', '', None)
  assert summary['rejected']['no_consent'] == 1
  build = f'{out}/builds/b1'
  shown = [repr(rejects(out).to_pylist()), repr(manifests(out).to_pylist())]
  for name in ('report.html', 'README.md', 'summary.json'):
    with open(f'{build}/{name}', encoding='utf-8') as f:
      shown.append(f.read())
  shown.append(repr(pq.read_table(f'{build}/contributors.parquet').to_pylist()))
  assert not any(no_consent in text or no_consent.split('/')[1] in text for text in shown)


def test_rejects_explain_themselves(built):
  out, _, _ = built
  rows = {r['upload_id'].split('/')[1]: r for r in rejects(out).to_pylist() if r['upload_id']}
  assert rows['truncated']['stage'] == 'decode' and 'libsndfile' in rows['truncated']['detail']
  assert rows['clipped']['clipping_ratio'] > CONFIG.filter.max_clipping_ratio
  assert '> 0.01 (max_clipping_ratio)' in rows['clipped']['detail']
  assert rows['noise']['reasons'] == ['low_snr', 'no_speech']
  assert 'snr_db=' in rows['noise']['detail'] and '< 0.3 (min_speech_ratio)' in rows['noise'][
      'detail']
  assert rows['packet-loss']['reason'] == 'dropouts'
  assert rows['short']['detail'].startswith('duration_s=')
  assert rows['take-again']['duplicate_of'] in manifests(out).column('upload_id').to_pylist()
  copy = rows['reencoded']
  assert copy['reason'] == 'near_duplicate' and copy['stage'] == 'near_dedup'
  assert copy['cross_contributor'] is True
  assert copy['duplicate_of'] in manifests(out).column('upload_id').to_pylist()
  assert 'ber=' in copy['detail']
  assert rows['no-sidecar']['source_uri'].endswith('no-sidecar.wav')
  assert all(r['detail'] and r['source_uri'] for r in rows.values())


def test_audio_bytes_decode_to_the_expected_samples(built, sample):
  out, _, _ = built
  root, _ = sample
  rows = [r for r in manifests(out).to_pylist() if r['codec'] == 'pcm_16'
          and r['container'] == 'wav']
  row = rows[0]
  with open(os.path.join(root, row['source_uri']), 'rb') as f:
    source = decode_bytes(f.read(), config=CONFIG.decode)
  pcm = standardize(source.samples, sample_rate=source.sample_rate,
                    target_rate=CONFIG.sample_rate_hz)
  start, stop = sound_span(pcm, sample_rate=CONFIG.sample_rate_hz, config=CONFIG.trim)
  decoded, rate = sf.read(io.BytesIO(row['audio']['bytes']), dtype='int16')
  assert rate == CONFIG.sample_rate_hz
  np.testing.assert_array_equal(decoded, pcm[start:stop])
  assert row['clip_id'] == content_id(decoded, sample_rate=rate)


def test_rerun_through_the_cli_replaces_the_build_cleanly(built, sample):
  out, _, _ = built
  root, _ = sample
  before = sorted(manifests(out).select(['clip_id', 'upload_id', 'split']).to_pylist(),
                  key=lambda r: r['clip_id'])
  # stderr on a terminal: the live progress line is drawn there
  returncode, stdout, stderr = _run_with_terminal_stderr(
      [sys.executable, '-m', 'pipelines.build_dataset', '--uploads', root, '--output', out,
       '--build_id', 'b1', '--set', 'write.num_shards=1'])
  assert returncode == 0, stderr
  assert 'rejects by reason' in stdout and 'accepted' in stdout
  lines = [line.replace('\x1b[K', '') for line in stderr.replace('\n', '\r').split('\r')]
  progress = [line for line in lines if re.match(r'uploads \d+/62 ', line)]
  assert progress and progress[-1].startswith('uploads 62/62 (100%) \u00b7 audio ')
  assert 'audio 0.0' in progress[-1]
  shards = glob.glob(f'{out}/builds/b1/*/**/*.parquet', recursive=True)
  assert shards and all(s.endswith('-of-00001.parquet') for s in shards)
  after = sorted(manifests(out).select(['clip_id', 'upload_id', 'split']).to_pylist(),
                 key=lambda r: r['clip_id'])
  assert after == before


def _run_with_terminal_stderr(argv: list[str]) -> tuple[int, str, str]:
  """Runs ``argv`` with stdout piped and stderr on a pseudo-terminal."""
  primary, secondary = pty.openpty()
  proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=secondary)
  os.close(secondary)
  chunks = []

  def drain():
    while True:
      try:
        data = os.read(primary, 65536)
      except OSError:  # EIO: the child closed the terminal
        return
      if not data:
        return
      chunks.append(data)

  reader = threading.Thread(target=drain, daemon=True)
  reader.start()
  stdout, _ = proc.communicate(timeout=300)
  reader.join(timeout=10)
  os.close(primary)
  return proc.returncode, stdout.decode(), b''.join(chunks).decode(errors='replace')


def test_bad_config_stops_before_any_work(tmp_path, sample):
  root, _ = sample
  bad = tmp_path / 'bad.yaml'
  bad.write_text('filter:\n  min_snr: 3\n')
  with pytest.raises(ConfigError, match='filter.min_snr'):
    run(['--uploads', root, '--output', str(tmp_path / 'out'), '--config', str(bad)])
  with pytest.raises(ConfigError, match='build_id'):
    run(['--uploads', root, '--output', str(tmp_path / 'out'), '--build_id', '../x'])
  assert not (tmp_path / 'out').exists()


def test_cli_reports_config_errors_with_exit_code_2(tmp_path, sample):
  root, _ = sample
  result = subprocess.run(
      [sys.executable, '-m', 'pipelines.build_dataset', '--uploads', root,
       '--output', str(tmp_path / 'out'), '--set', 'trim.padding_s=-1'],
      capture_output=True, text=True, timeout=120, check=False)
  assert result.returncode == 2
  assert 'trim.padding_s' in result.stderr
  assert not (tmp_path / 'out').exists()


def test_metrics_json_holds_counters_and_stage_timings(built, tmp_path_factory):
  _, summary, _ = built
  metrics = json.loads((tmp_path_factory.getbasetemp() / BUILT_METRICS).read_text())
  timings = metrics['distributions']
  assert metrics['counters']['decode.received'] == timings['decode.us']['count']
  # The decoder child's CPU is recorded beside the worker thread's.
  assert timings['decode_process.us']['count'] == timings['decode.us']['count']
  assert timings['decode_process.us']['sum'] > 0
  assert metrics['counters']['measure.received'] == timings['fingerprint.us']['count']
  for stage in ('decode', 'standardize', 'trim', 'measure', 'fingerprint', 'filter', 'encode',
                'dedup', 'near_dedup', 'split', 'write'):
    assert timings[f'{stage}.us']['sum'] > 0, stage
  assert timings['split.us']['count'] == summary['accepted']
