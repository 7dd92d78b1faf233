"""The build's outputs as their readers use them: datasets, pyarrow, DuckDB, the card,
the contributor scorecards and the report (in headless Chromium when it is installed)."""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess

import numpy as np
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
import yaml

from pipelines.summary_table import format_summary
from schemas.config import BuildConfig
from schemas.records import REASONS, SPLITS
from schemas.reports import CONTRIBUTOR_SCHEMA, reject_column

CONFIG = BuildConfig()
CHROMIUM = '/usr/bin/chromium'


def _build(out):
  return f'{out}/builds/b1'


def _manifests(out):
  return ds.dataset(f'{_build(out)}/manifests', format='parquet').to_table(
      columns=['upload_id', 'contributor_id', 'split', 'locale', 'duration_s'])


@pytest.fixture(scope='module')
def hf_env(tmp_path_factory, monkeypatch_module):
  """datasets offline, with its cache in a temporary directory."""
  cache = tmp_path_factory.mktemp('hf')
  monkeypatch_module.setenv('HF_DATASETS_OFFLINE', '1')
  monkeypatch_module.setenv('HF_HUB_OFFLINE', '1')
  monkeypatch_module.setenv('HF_HOME', str(cache))
  return str(cache)


@pytest.fixture(scope='module')
def monkeypatch_module():
  with pytest.MonkeyPatch.context() as patch:
    yield patch


def test_datasets_loads_train_dev_test_with_decoded_audio(built, hf_env):
  datasets = pytest.importorskip('datasets')
  out, summary, _ = built
  loaded = datasets.load_dataset('parquet', data_dir=f'{_build(out)}/manifests',
                                 cache_dir=hf_env)
  assert set(loaded) == set(SPLITS)
  for split in SPLITS:
    assert loaded[split].num_rows == summary['splits'][split]['clips']
    assert set(loaded[split]['split']) == {split}
  assert isinstance(loaded['train'].features['audio'], datasets.Audio)
  row = loaded['train'][0]
  audio = row['audio']
  assert audio['sampling_rate'] == CONFIG.sample_rate_hz
  assert isinstance(audio['array'], np.ndarray) and audio['array'].ndim == 1
  assert abs(len(audio['array']) / audio['sampling_rate'] - row['duration_s']) < 0.01
  assert 0 < np.abs(audio['array']).max() <= 1.0


def test_datasets_reads_the_dataset_card(built, hf_env):
  datasets = pytest.importorskip('datasets')
  out, summary, _ = built
  # the card's configs and dataset_info drive the load (num_examples is verified)
  loaded = datasets.load_dataset(_build(out), cache_dir=hf_env)
  assert {split: loaded[split].num_rows for split in loaded} == {
      split: part['clips'] for split, part in summary['splits'].items()}
  assert isinstance(loaded['dev'].features['audio'], datasets.Audio)


def test_duckdb_sql_over_the_manifests(built):
  duckdb = pytest.importorskip('duckdb')
  out, summary, _ = built
  con = duckdb.connect()
  rows = con.execute(
      f"SELECT split, count(*) AS clips, count(DISTINCT contributor_id) AS speakers, "
      f"sum(duration_s) / 3600 AS hours FROM '{_build(out)}/manifests/data/*.parquet' "
      "GROUP BY split ORDER BY split").fetchall()
  assert {split: (clips, speakers) for split, clips, speakers, _ in rows} == {
      split: (part['clips'], part['contributors']) for split, part in summary['splits'].items()}
  for split, _, _, hours in rows:
    assert abs(hours - summary['splits'][split]['hours']) < 1e-5
  flac = con.execute(f"SELECT audio.bytes FROM '{_build(out)}/manifests/data/train-*.parquet' "
                     'LIMIT 1').fetchall()[0][0]
  assert bytes(flac[:4]) == b'fLaC'


def test_pyarrow_reads_each_split_and_shards_are_small(built):
  out, summary, _ = built
  for split in SPLITS:
    shards = sorted(glob.glob(f'{_build(out)}/manifests/data/{split}-*.parquet'))
    table = ds.dataset(shards, format='parquet').to_table(columns=['split'])
    assert table.num_rows == summary['splits'][split]['clips']
    for shard in shards:
      assert os.path.getsize(shard) < CONFIG.write.max_shard_bytes
      meta = pq.ParquetFile(shard).metadata
      assert all(meta.row_group(g).num_rows <= CONFIG.write.row_group_rows
                 for g in range(meta.num_row_groups))


def test_dataset_card(built):
  out, summary, _ = built
  with open(f'{_build(out)}/README.md', encoding='utf-8') as f:
    card = f.read()
  _, header, body = card.split('---\n', 2)
  meta = yaml.safe_load(header)
  assert meta['configs'][0]['data_files'] == [
      {'split': split, 'path': f'manifests/data/{split}-*.parquet'} for split in SPLITS]
  splits = {s['name']: s for s in meta['dataset_info']['splits']}
  assert {name: s['num_examples'] for name, s in splits.items()} == {
      split: part['clips'] for split, part in summary['splits'].items()}
  assert meta['dataset_info']['download_size'] == sum(
      os.path.getsize(p) for p in glob.glob(f'{_build(out)}/manifests/data/*.parquet'))
  assert meta['language'] == ['en']
  assert {'name': 'audio', 'dtype': {'audio': {'sampling_rate': 16000}}} in meta[
      'dataset_info']['features']
  for split, part in summary['splits'].items():
    assert f'| {split} | {part["clips"]} | {part["hours"]:.3f} | {part["contributors"]} |' in body
  assert re.search(r'\| en-US \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| 8 \|', body)
  assert f'| `filter.min_snr_db` | {CONFIG.filter.min_snr_db} |' in body
  assert 'build id: `b1`' in body and f'pipeline version: `{summary["pipeline_version"]}`' in body


def test_contributor_scorecards(built):
  out, summary, expected = built
  table = pq.read_table(f'{_build(out)}/contributors.parquet')
  assert table.schema.remove_metadata() == CONTRIBUTOR_SCHEMA
  rows = {row['contributor_id']: row for row in table.to_pylist()}
  assert len(rows) == table.num_rows  # one row per contributor
  assert sum(r['uploads'] for r in rows.values()) == summary['inputs']
  assert sum(r['accepted'] for r in rows.values()) == summary['accepted']
  for reason, count in summary['rejected'].items():
    assert sum(r[reject_column(reason)] for r in rows.values()) == count
  assert all(r['uploads'] == r['accepted'] + r['rejected'] ==
             r['accepted'] + sum(r[reject_column(x)] for x in REASONS) for r in rows.values())
  accepted_hours = sum(r['accepted_hours'] for r in rows.values())
  assert abs(accepted_hours - summary['audio_hours_out']) < 1e-5
  # the sample's copies: take-again (same account, exact) and reencoded (another account)
  by_upload = {u.split('/')[1]: u.split('/')[0] for u in expected}
  own = rows[by_upload['take-again']]
  cross = rows[by_upload['reencoded']]
  assert own['duplicates_own'] >= 1 and cross['duplicates_cross_account'] >= 1
  assert sum(r['duplicates'] for r in rows.values()) == (
      summary['rejected'].get('duplicate', 0) + summary['rejected'].get('near_duplicate', 0))
  manifests = _manifests(out).to_pylist()
  for contributor, row in rows.items():
    if contributor is None:
      assert row['accepted'] == 0 and row['split'] is None
      continue
    assert row['split'] == next((m['split'] for m in manifests
                                 if m['contributor_id'] == contributor), row['split'])
    assert 0 <= row['quality_score'] <= 100
    assert row['median_snr_db'] is not None and row['median_loudness_lufs'] is not None


def test_terminal_summary_is_a_table(built):
  _, summary, _ = built
  text = format_summary(summary)
  lines = text.splitlines()
  assert lines[0] == f'Build b1: published to {summary["path"]}'
  for split in SPLITS:
    part = summary['splits'][split]
    assert re.search(rf'^  {split} +{part["clips"]} +[0-9.]+ (min|h) +{part["contributors"]}$',
                     text, re.M)
  for reason, count in summary['rejected'].items():
    assert re.search(rf'^  {reason} +{count}$', text, re.M)
  assert f'{summary["path"]}/report.html' in text and f'{summary["path"]}/README.md' in text


def _chromium(*args, profile):
  return subprocess.run(
      [CHROMIUM, '--headless', '--no-sandbox', '--disable-gpu',
       '--disable-background-networking', '--disable-component-update', '--disable-sync',
       '--no-first-run', '--hide-scrollbars', f'--user-data-dir={profile}', *args],
      capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.skipif(not os.path.exists(CHROMIUM),
                    reason=f'{CHROMIUM} is absent: install Debian\'s chromium package to '
                    'check that report.html renders')
def test_report_renders_in_headless_chromium(built, tmp_path):
  from PIL import Image
  out, _, _ = built
  page = f'file://{_build(out)}/report.html'
  dom = _chromium('--dump-dom', page, profile=tmp_path / 'p1')
  assert dom.returncode == 0, dom.stderr
  plots = re.findall(r'<svg class="plot" id="plot-([a-z-]+)"', dom.stdout)
  assert set(plots) == {'duration-s', 'snr-db', 'loudness-lufs', 'speech-ratio',
                        'rejects-by-reason', 'hours-by-locale', 'most-rejects',
                        'most-duplicates'}
  assert 'no data' not in dom.stdout
  assert dom.stdout.count('class="bar"') >= 30
  shot = tmp_path / 'report.png'
  result = _chromium(f'--screenshot={shot}', '--window-size=1360,1400', page,
                     profile=tmp_path / 'p2')
  assert result.returncode == 0 and shot.exists(), result.stderr
  image = np.asarray(Image.open(shot).convert('RGB')).astype(int)
  assert image.shape[:2] == (1400, 1360)
  # the bar colours of the plots are on the page, not a blank or error page
  blue = np.all(np.abs(image - [0x3b, 0x7d, 0xd8]) < 12, axis=-1).sum()
  amber = np.all(np.abs(image - [0xe0, 0xa0, 0x30]) < 12, axis=-1).sum()
  assert blue > 2000 and amber > 500
  assert (image.std(axis=(0, 1)) > 10).all()
  assert shutil.which('chromium') or os.path.exists(CHROMIUM)
