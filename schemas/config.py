"""The build configuration: typed, validated before any work starts.

YAML files in ``configs/`` plus ``--set section.key=value`` overrides become one
frozen :class:`BuildConfig`; its sections are handed to the stages that use
them. A key that is unknown, of the wrong type, or out of range raises
:class:`ConfigError` naming it.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

import yaml

__all__ = ['BuildConfig', 'ConfigError', 'load_config', 'DiscoverConfig',
           'DecodeConfig', 'TrimConfig', 'MeasureConfig', 'FilterConfig',
           'NearDedupConfig', 'SplitConfig', 'WriteConfig', 'NightlyConfig']


class ConfigError(ValueError):
  """A configuration value that cannot be used; the message names the key."""


def _check(condition: bool, key: str, value: Any, requirement: str) -> None:
  if not condition:
    raise ConfigError(f'config key {key}={value!r}: {requirement}')


@dataclasses.dataclass(frozen=True)
class DiscoverConfig:
  max_upload_bytes: int = 200_000_000
  max_sidecar_bytes: int = 1_048_576
  require_consent: bool = True

  def validate(self, prefix: str) -> None:
    _check(self.max_upload_bytes > 0, f'{prefix}.max_upload_bytes',
           self.max_upload_bytes, 'must be positive')
    _check(self.max_sidecar_bytes > 0, f'{prefix}.max_sidecar_bytes',
           self.max_sidecar_bytes, 'must be positive')


@dataclasses.dataclass(frozen=True)
class DecodeConfig:
  max_duration_s: float = 120.0
  min_sample_rate_hz: int = 4000
  max_sample_rate_hz: int = 384_000
  max_channels: int = 8
  clipping_min_run: int = 3
  timeout_s: float = 30.0
  max_memory_mb: int = 1024

  def validate(self, prefix: str) -> None:
    _check(self.timeout_s > 0, f'{prefix}.timeout_s', self.timeout_s, 'must be positive')
    _check(self.max_memory_mb >= 64, f'{prefix}.max_memory_mb', self.max_memory_mb,
           'must be at least 64 (MB)')
    _check(self.max_duration_s > 0, f'{prefix}.max_duration_s', self.max_duration_s,
           'must be positive')
    _check(0 < self.min_sample_rate_hz <= self.max_sample_rate_hz,
           f'{prefix}.min_sample_rate_hz', self.min_sample_rate_hz,
           'must be positive and at most max_sample_rate_hz')
    _check(self.max_channels >= 1, f'{prefix}.max_channels', self.max_channels,
           'must be at least 1')
    _check(self.clipping_min_run >= 2, f'{prefix}.clipping_min_run',
           self.clipping_min_run, 'must be at least 2 (a plateau, not a peak)')


@dataclasses.dataclass(frozen=True)
class TrimConfig:
  top_db: float = 40.0
  floor_dbfs: float = -60.0
  padding_s: float = 0.2

  def validate(self, prefix: str) -> None:
    _check(self.top_db > 0, f'{prefix}.top_db', self.top_db, 'must be positive')
    _check(self.floor_dbfs < 0, f'{prefix}.floor_dbfs', self.floor_dbfs,
           'must be below 0 dBFS')
    _check(0 <= self.padding_s <= 5, f'{prefix}.padding_s', self.padding_s,
           'must be between 0 and 5 seconds')


@dataclasses.dataclass(frozen=True)
class MeasureConfig:
  vad_threshold: float = 0.5
  bandwidth_threshold_db: float = 70.0
  dropout_min_run_ms: float = 2.0

  def validate(self, prefix: str) -> None:
    _check(0 < self.vad_threshold < 1, f'{prefix}.vad_threshold', self.vad_threshold,
           'must be a probability between 0 and 1')
    _check(self.dropout_min_run_ms > 0, f'{prefix}.dropout_min_run_ms',
           self.dropout_min_run_ms, 'must be positive')
    _check(0 < self.bandwidth_threshold_db <= 120, f'{prefix}.bandwidth_threshold_db',
           self.bandwidth_threshold_db, 'must be in (0, 120] dB')


@dataclasses.dataclass(frozen=True)
class FilterConfig:
  """Thresholds; ``None`` disables a rule. Rules run in this field order."""
  min_duration_s: float | None = 1.0
  max_duration_s: float | None = 30.0
  max_clipping_ratio: float | None = 0.01
  min_loudness_lufs: float | None = -40.0
  min_snr_db: float | None = 10.0
  min_speech_ratio: float | None = 0.3
  min_bandwidth_hz: float | None = None
  min_speaking_rate_cps: float | None = 2.0
  max_speaking_rate_cps: float | None = 35.0
  max_dropout_ratio: float | None = 0.02

  def validate(self, prefix: str) -> None:
    for name in ('min_duration_s', 'max_duration_s', 'min_bandwidth_hz',
                 'min_speaking_rate_cps', 'max_speaking_rate_cps'):
      value = getattr(self, name)
      _check(value is None or value >= 0, f'{prefix}.{name}', value, 'must be >= 0')
    for name in ('max_clipping_ratio', 'min_speech_ratio', 'max_dropout_ratio'):
      value = getattr(self, name)
      _check(value is None or 0 <= value <= 1, f'{prefix}.{name}', value,
             'must be a ratio between 0 and 1')
    if self.min_duration_s is not None and self.max_duration_s is not None:
      _check(self.min_duration_s < self.max_duration_s, f'{prefix}.min_duration_s',
             self.min_duration_s, 'must be below max_duration_s')


@dataclasses.dataclass(frozen=True)
class NearDedupConfig:
  """Near-duplicate detection (see transforms/near_dedup.py for the meaning).

  Attributes:
    enabled: false passes every clip through unchecked.
    max_ber: fingerprint bit error rate at or below which two clips are the
      same recording (transforms/fingerprint.py, MAX_BER, says why 0.32).
    max_loud_ber: and the bit error rate over the loud words of both clips at
      or below which they are (MAX_LOUD_BER says why 0.24).
    max_unmatched_speech_s: unless either clip has more loud speech than this
      beyond the other at one end (MAX_UNMATCHED_SPEECH_S says why 0.5 s).
    max_bucket_size: LSH buckets holding more clips are skipped and counted,
      never compared pairwise.
    min_aligned_blocks: clips are compared only when the LSH keys they share
      line up at one time offset in this many of 32 equal parts of either.
    lsh_partitions: LSH keys are grouped in this many hash partitions; each
      worker holds one partition's keys (about 170 kB per clip / partitions at
      peak); each clip sends one element per partition.
    reference_filter_max_keys: a reference row (a clip published earlier)
      takes part only with the LSH keys it shares with the new clips, while
      the new clips have at most this many distinct keys (about 4,000 per
      clip; 8 bytes each, held by every worker); past it, every reference
      key takes part.
  """
  enabled: bool = True
  max_ber: float = 0.32
  max_loud_ber: float = 0.24
  max_unmatched_speech_s: float = 0.5
  max_bucket_size: int = 200
  min_aligned_blocks: int = 3
  lsh_partitions: int = 16
  reference_filter_max_keys: int = 8_000_000

  def validate(self, prefix: str) -> None:
    _check(0 < self.max_ber < 0.5, f'{prefix}.max_ber', self.max_ber,
           'must be between 0 and 0.5 (0.5 is the bit error rate of unrelated audio)')
    _check(0 < self.max_loud_ber < 0.5, f'{prefix}.max_loud_ber', self.max_loud_ber,
           'must be between 0 and 0.5 (0.5 is the bit error rate of unrelated audio)')
    _check(self.max_unmatched_speech_s >= 0, f'{prefix}.max_unmatched_speech_s',
           self.max_unmatched_speech_s, 'must be at least 0 (seconds)')
    _check(self.max_bucket_size >= 2, f'{prefix}.max_bucket_size', self.max_bucket_size,
           'must be at least 2')
    _check(1 <= self.min_aligned_blocks <= 32, f'{prefix}.min_aligned_blocks',
           self.min_aligned_blocks, 'must be between 1 and 32 (parts of a clip)')
    _check(self.lsh_partitions >= 1, f'{prefix}.lsh_partitions', self.lsh_partitions,
           'must be at least 1')
    _check(self.reference_filter_max_keys >= 0, f'{prefix}.reference_filter_max_keys',
           self.reference_filter_max_keys, 'must be at least 0 (0: no filter)')


@dataclasses.dataclass(frozen=True)
class SplitConfig:
  train: float = 0.8
  dev: float = 0.1
  test: float = 0.1

  def validate(self, prefix: str) -> None:
    for name in ('train', 'dev', 'test'):
      value = getattr(self, name)
      _check(0 <= value <= 1, f'{prefix}.{name}', value, 'must be between 0 and 1')
    total = self.train + self.dev + self.test
    _check(abs(total - 1) < 1e-9, f'{prefix}.train', self.train,
           f'train + dev + test must be 1, got {total:g}')


@dataclasses.dataclass(frozen=True)
class WriteConfig:
  """Parquet layout.

  Attributes:
    num_shards: a fixed shard count per table; 0 lets the runner choose, and
      then ``max_shard_bytes`` bounds each shard.
    max_shard_bytes: a shard is closed once it holds this many bytes (it ends
      less than one row group past it). Hugging Face recommends shards under
      500 MB; 256 MB leaves room for one row group of 30 s clips (~60 MB).
    row_group_rows: rows per row group, so that streaming readers hold ~100
      clips of audio at a time, not a whole shard.
  """
  num_shards: int = 0
  max_shard_bytes: int = 256_000_000
  row_group_rows: int = 100

  def validate(self, prefix: str) -> None:
    _check(self.num_shards >= 0, f'{prefix}.num_shards', self.num_shards,
           'must be >= 0 (0 lets the runner choose)')
    _check(1_000 <= self.max_shard_bytes <= 500_000_000, f'{prefix}.max_shard_bytes',
           self.max_shard_bytes, 'must be between 1000 and 500000000 bytes')
    _check(self.row_group_rows >= 1, f'{prefix}.row_group_rows', self.row_group_rows,
           'must be at least 1')


@dataclasses.dataclass(frozen=True)
class NightlyConfig:
  """Nightly incremental builds (``pipelines/nightly.py``); the one-shot build ignores it.

  Attributes:
    withdrawals: a JSON-lines file (local or ``gs://``) of consent withdrawals,
      one ``{"contributor_id": ..., "date": ...}`` per line; ``None``: none.
    keep_builds: published builds kept, LATEST included; older ones are deleted.
  """
  withdrawals: str | None = None
  keep_builds: int = 7

  def validate(self, prefix: str) -> None:
    _check(self.keep_builds >= 1, f'{prefix}.keep_builds', self.keep_builds,
           'must be at least 1 (the build LATEST names is never deleted)')
    _check(self.withdrawals is None or bool(self.withdrawals.strip()),
           f'{prefix}.withdrawals', self.withdrawals, 'must be a path, or null for none')


@dataclasses.dataclass(frozen=True)
class BuildConfig:
  sample_rate_hz: int = 16000
  discover: DiscoverConfig = DiscoverConfig()
  decode: DecodeConfig = DecodeConfig()
  trim: TrimConfig = TrimConfig()
  measure: MeasureConfig = MeasureConfig()
  filter: FilterConfig = FilterConfig()
  near_dedup: NearDedupConfig = NearDedupConfig()
  split: SplitConfig = SplitConfig()
  write: WriteConfig = WriteConfig()
  nightly: NightlyConfig = NightlyConfig()

  def validate(self, prefix: str = '') -> None:
    _check(8000 <= self.sample_rate_hz <= 96000, 'sample_rate_hz', self.sample_rate_hz,
           'must be between 8000 and 96000')
    for field in dataclasses.fields(self):
      section = getattr(self, field.name)
      if dataclasses.is_dataclass(section):
        section.validate(field.name)


def _coerce(value: Any, annotation: Any, key: str) -> Any:
  """Checks ``value`` against a field's type; ints are accepted for floats."""
  options = typing.get_args(annotation) if isinstance(
      annotation, types.UnionType) else (annotation,)
  if value is None:
    if type(None) in options:
      return None
    raise ConfigError(f'config key {key}: must not be null')
  for option in options:
    if option is bool and isinstance(value, bool):
      return value
    if option is int and isinstance(value, int) and not isinstance(value, bool):
      return value
    if option is float and isinstance(value, (int, float)) and not isinstance(value, bool):
      return float(value)
    if option is str and isinstance(value, str):
      return value
  names = ' or '.join('null' if o is type(None) else o.__name__ for o in options)
  raise ConfigError(f'config key {key}={value!r}: must be {names}')


def _build(cls: type, doc: Any, prefix: str) -> Any:
  if not isinstance(doc, dict):
    raise ConfigError(f'config section {prefix or "<top>"} must be a mapping, '
                      f'got {type(doc).__name__}')
  hints = typing.get_type_hints(cls)
  known = {f.name for f in dataclasses.fields(cls)}
  unknown = sorted(set(doc) - known)
  if unknown:
    where = f'{prefix}.' if prefix else ''
    raise ConfigError(f'unknown config key {where}{unknown[0]}; known keys: '
                      f'{", ".join(sorted(known))}')
  values = {}
  for name, value in doc.items():
    key = f'{prefix}.{name}' if prefix else name
    hint = hints[name]
    if dataclasses.is_dataclass(hint):
      values[name] = _build(hint, value, key)
    else:
      values[name] = _coerce(value, hint, key)
  return cls(**values)


def _apply_override(doc: dict, override: str) -> None:
  key, sep, raw = override.partition('=')
  if not sep or not key:
    raise ConfigError(f'override {override!r} must look like section.key=value')
  *sections, leaf = key.split('.')
  node = doc
  for section in sections:
    node = node.setdefault(section, {})
    if not isinstance(node, dict):
      raise ConfigError(f'override {override!r}: {section} is not a section')
  node[leaf] = yaml.safe_load(raw)


def load_config(path: str | None = None, overrides: typing.Sequence[str] = ()) -> BuildConfig:
  """Reads a YAML config (or the defaults), applies overrides, validates.

  Args:
    path: a YAML file; ``None`` means the built-in defaults.
    overrides: ``section.key=value`` strings; values are parsed as YAML.

  Raises:
    ConfigError: naming the first bad key or value.
  """
  doc: Any = {}
  if path is not None:
    try:
      with open(path, encoding='utf-8') as f:
        doc = yaml.safe_load(f) or {}
    except OSError as e:
      raise ConfigError(f'cannot read config file {path}: {e}') from e
    except yaml.YAMLError as e:
      raise ConfigError(f'config file {path} is not valid YAML: {e}') from e
  if not isinstance(doc, dict):
    raise ConfigError(f'config file {path} must hold a mapping')
  for override in overrides:
    _apply_override(doc, override)
  config = _build(BuildConfig, doc, '')
  config.validate()
  return config
