"""The dataset card, ``OUT/builds/ID/README.md``, in the Hugging Face format.

* :func:`render_card`: summary, profile and shard statistics -> Markdown with a
  YAML header.
* :func:`card_metadata`: the YAML header as a dict.

The header follows the Hub's dataset-card metadata: ``configs`` (the default
config's ``data_files`` per split, relative to the build directory, so
``datasets.load_dataset("OUT/builds/ID")`` reads the splits as named here),
``dataset_info`` (``features`` in the YAML list form of ``datasets.Features``,
``splits`` with ``num_bytes`` and ``num_examples``, ``download_size``,
``dataset_size``), ``language``, ``task_categories`` and ``size_categories``.
``num_bytes`` is the uncompressed size of the split's Parquet row groups;
``download_size`` the size of its files.
"""

from __future__ import annotations

from typing import Any

import yaml

from schemas.records import REASONS, SPLITS
from schemas.tables import huggingface_features, manifest_schema

__all__ = ['render_card', 'card_metadata', 'size_category']

_MANIFESTS = 'manifests/data'


def size_category(examples: int) -> str:
  """The Hub's ``size_categories`` value for a number of examples."""
  bounds = [(1_000, 'n<1K'), (10_000, '1K<n<10K'), (100_000, '10K<n<100K'),
            (1_000_000, '100K<n<1M'), (10_000_000, '1M<n<10M'), (100_000_000, '10M<n<100M'),
            (1_000_000_000, '100M<n<1B')]
  return next((name for bound, name in bounds if examples < bound), 'n>1T')


def _yaml_features(sample_rate_hz: int) -> list[dict[str, Any]]:
  features = []
  for name, feature in huggingface_features(manifest_schema(sample_rate=sample_rate_hz),
                                            sample_rate=sample_rate_hz).items():
    if feature['_type'] == 'Audio':
      features.append({'name': name,
                       'dtype': {'audio': {'sampling_rate': feature['sampling_rate']}}})
    else:
      features.append({'name': name, 'dtype': feature['dtype']})
  return features


def _languages(profile: dict) -> list[str]:
  return sorted({locale.split('-')[0].lower() for locale in profile['locales']
                 if locale != 'unknown'})


def card_metadata(*, summary: dict, profile: dict, shards: dict[str, dict],
                  sample_rate_hz: int) -> dict[str, Any]:
  """The card's YAML header (see the module docstring).

  Args:
    shards: split -> ``{'num_examples', 'num_bytes', 'download_bytes'}``.
  """
  meta: dict[str, Any] = {
      'pretty_name': f'Speech clips, build {summary["build_id"]}',
      'task_categories': ['automatic-speech-recognition'],
      'size_categories': [size_category(summary['accepted'])],
  }
  languages = _languages(profile)
  if languages:
    meta['language'] = languages
  present = [split for split in SPLITS if shards[split]['num_examples']]  # empty: no files
  meta['configs'] = [{
      'config_name': 'default',
      'data_files': [{'split': split, 'path': f'{_MANIFESTS}/{split}-*.parquet'}
                     for split in present],
  }]
  meta['dataset_info'] = {
      'config_name': 'default',
      'features': _yaml_features(sample_rate_hz),
      'splits': [{'name': split, 'num_bytes': shards[split]['num_bytes'],
                  'num_examples': shards[split]['num_examples']} for split in present],
      'download_size': sum(part['download_bytes'] for part in shards.values()),
      'dataset_size': sum(part['num_bytes'] for part in shards.values()),
  }
  return meta


def _cell(value: object) -> str:
  """A Markdown table cell: no pipe or line break can break the table."""
  return str(value).replace('\\', '\\\\').replace('|', '\\|').replace('\n', ' ')


def _table(header: list[str], rows: list[list[object]]) -> list[str]:
  lines = ['| ' + ' | '.join(header) + ' |',
           '|' + '|'.join('---' for _ in header) + '|']
  lines += ['| ' + ' | '.join(_cell(c) for c in row) + ' |' for row in rows]
  return lines


def _filters(config: dict) -> list[list[object]]:
  rows = []
  for key, value in config.get('filter', {}).items():
    rows.append([f'`filter.{key}`', 'off' if value is None else value])
  near = config.get('near_dedup', {})
  rows.append(['exact duplicates', 'identical 16-bit PCM kept once'])
  if near.get('enabled'):
    rows.append(['`near_dedup.max_ber`', near.get('max_ber')])
  discover = config.get('discover', {})
  rows.append(['`discover.require_consent`', discover.get('require_consent')])
  decode = config.get('decode', {})
  rows.append(['`decode.max_duration_s`', decode.get('max_duration_s')])
  return rows


def render_card(*, summary: dict, profile: dict, shards: dict[str, dict],
                sample_rate_hz: int) -> str:
  """The whole card: YAML header, then what a reader of the dataset needs."""
  meta = card_metadata(summary=summary, profile=profile, shards=shards,
                       sample_rate_hz=sample_rate_hz)
  build_id = summary['build_id']
  lines = ['---', yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).rstrip(), '---',
           '', f'# Speech clips, build {build_id}', '',
           f'Build `{build_id}` of pipeline version `{summary["pipeline_version"]}`: '
           f'{summary["accepted"]} clips ({summary["audio_hours_out"]:.3f} h) of '
           f'{summary["contributors"]} speakers, accepted from {summary["inputs"]} uploads. '
           f'Audio is FLAC, {sample_rate_hz} Hz mono 16-bit, trimmed of leading and trailing '
           'silence. Splits are by speaker (a stable hash of `contributor_id`): a speaker is '
           'in one split only, and stays there in every build.', '',
           '```python', 'import datasets',
           'ds = datasets.load_dataset("parquet", data_dir="manifests")  # or this directory',
           'ds["train"][0]["audio"]  # {"array": ..., "sampling_rate": '
           f'{sample_rate_hz}, ...}}', '```', '', '## Splits', '']
  lines += _table(['split', 'clips', 'hours', 'speakers', 'shards'], [
      [split, part['clips'], f'{part["hours"]:.3f}', part['contributors'],
       shards[split]['files']] for split, part in summary['splits'].items()])
  lines += ['', '## Hours per locale and split', '']
  locales = profile['locales']
  lines += _table(['locale', *SPLITS, 'speakers'], [
      [locale, *(f'{splits.get(s, {}).get("hours", 0.0):.3f}' for s in SPLITS),
       sum(part['contributors'] for part in splits.values())]
      for locale, splits in locales.items()])
  lines += ['', '## Filters applied', '',
            'An upload is kept only if it passes every rule (`null` or off: rule disabled).', '']
  lines += _table(['rule', 'threshold'], _filters(summary.get('config', {})))
  lines += ['', '## Rejects by reason', '']
  lines += _table(['reason', 'uploads', 'meaning'], [
      [reason, count, REASONS.get(reason, '')] for reason, count in summary['rejected'].items()])
  lines += ['', '## Provenance', '',
            f'- build id: `{build_id}`',
            f'- pipeline version: `{summary["pipeline_version"]}`',
            '- per-upload outcomes: `rejects/` (one row per rejected upload, with its reason), '
            '`contributors.parquet` (one row per contributor), `report.html` (plots), '
            '`summary.json`', '']
  return '\n'.join(lines)
