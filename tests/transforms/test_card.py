import pytest
import yaml

from schemas.records import SPLITS
from schemas.tables import manifest_schema
from transforms.card import card_metadata, render_card, size_category

SHARDS = {split: {'files': 1, 'num_examples': n, 'num_bytes': 100 * n,
                  'download_bytes': 90 * n} for split, n in zip(SPLITS, (8, 1, 1), strict=True)}
PROFILE = {'histograms': {},
           'locales': {'en-US': {'train': {'clips': 8, 'hours': 0.2, 'contributors': 4}},
                       'fr|x': {'dev': {'clips': 1, 'hours': 0.1, 'contributors': 1}}}}
SUMMARY = {'build_id': 'b1', 'pipeline_version': '0.1.0', 'inputs': 12, 'accepted': 10,
           'rejected': {'low_snr': 2}, 'audio_hours_out': 0.3, 'contributors': 5,
           'splits': {s: {'clips': SHARDS[s]['num_examples'], 'hours': 0.1, 'contributors': 1}
                      for s in SPLITS},
           'config': {'filter': {'min_snr_db': 10.0, 'min_bandwidth_hz': None},
                      'near_dedup': {'enabled': True, 'max_ber': 0.32}}}


def _header(card: str) -> dict:
  assert card.startswith('---\n')
  return yaml.safe_load(card.split('---\n')[1])


def test_card_header_is_hub_metadata():
  card = render_card(summary=SUMMARY, profile=PROFILE, shards=SHARDS, sample_rate_hz=16000)
  meta = _header(card)
  assert meta == card_metadata(summary=SUMMARY, profile=PROFILE, shards=SHARDS,
                               sample_rate_hz=16000)
  assert meta['configs'] == [{'config_name': 'default', 'data_files': [
      {'split': s, 'path': f'manifests/data/{s}-*.parquet'} for s in SPLITS]}]
  info = meta['dataset_info']
  assert [(s['name'], s['num_examples'], s['num_bytes']) for s in info['splits']] == [
      ('train', 8, 800), ('dev', 1, 100), ('test', 1, 100)]
  assert info['download_size'] == 900 and info['dataset_size'] == 1000
  assert meta['language'] == ['en', 'fr|x']
  assert meta['size_categories'] == ['n<1K']
  body = card.split('---\n', 2)[2]
  assert '| `filter.min_snr_db` | 10.0 |' in body
  assert '| `filter.min_bandwidth_hz` | off |' in body
  assert '| `near_dedup.max_ber` | 0.32 |' in body
  assert '| fr\\|x |' in body  # a pipe in a value cannot break the table
  assert 'build id: `b1`' in body and 'pipeline version: `0.1.0`' in body


def test_features_are_what_datasets_reads_from_the_manifests():
  datasets = pytest.importorskip('datasets')
  meta = card_metadata(summary=SUMMARY, profile=PROFILE, shards=SHARDS, sample_rate_hz=16000)
  from_card = datasets.Features._from_yaml_list(meta['dataset_info']['features'])
  from_parquet = datasets.Features.from_arrow_schema(manifest_schema(sample_rate=16000))
  assert from_card == from_parquet
  assert isinstance(from_card['audio'], datasets.Audio)
  hub = pytest.importorskip('huggingface_hub')
  from datasets.info import DatasetInfosDict
  infos = DatasetInfosDict.from_dataset_card_data(hub.DatasetCardData(**meta))
  assert {name: split.num_examples for name, split in infos['default'].splits.items()} == {
      'train': 8, 'dev': 1, 'test': 1}


def test_size_category():
  assert size_category(999) == 'n<1K'
  assert size_category(1000) == '1K<n<10K'
  assert size_category(2_000_000) == '1M<n<10M'
