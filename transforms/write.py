"""Stage 9: write the manifests (one table per split) and the rejects table.

* :class:`WriteTable`: rows (dicts) -> ``PREFIX/part-SSSSS-of-NNNNN.parquet``
  under a build directory; :class:`WriteManifests`: manifest rows ->
  ``PREFIX/SPLIT/part-...`` (the nightly build's snapshot and delta).
* :class:`WriteDataset`: ``(accepted clips, rejects)`` -> Parquet under a build
  directory: ``manifests/SPLIT/part-SSSSS-of-NNNNN.parquet``,
  ``rejects/part-SSSSS-of-NNNNN.parquet`` and the accepted clips' fingerprints
  in ``fingerprints/part-SSSSS-of-NNNNN.parquet`` (what later builds dedup
  against). Returns the written file names.

Row groups hold ``row_group_rows`` rows so that streaming readers never hold a
whole shard of audio in memory. Paths come from the build directory and the
split name only, never from upload metadata.
"""

from __future__ import annotations

import apache_beam as beam

from schemas.config import WriteConfig
from schemas.records import SPLITS
from schemas.tables import (
  FINGERPRINT_SCHEMA,
  REJECT_SCHEMA,
  fingerprint_row,
  manifest_row,
  manifest_schema,
  reject_row,
)

__all__ = ['WriteDataset', 'WriteTable', 'WriteManifests']

SHARD_TEMPLATE = '-SSSSS-of-NNNNN'


def _write_parquet(build_dir: str, prefix: str, schema, config: WriteConfig
                   ) -> beam.io.WriteToParquet:
  return beam.io.WriteToParquet(
      f'{build_dir.rstrip("/")}/{prefix}/part', schema,
      file_name_suffix='.parquet', shard_name_template=SHARD_TEMPLATE,
      num_shards=config.num_shards, record_batch_size=config.row_group_rows,
      row_group_buffer_size=1)


class WriteTable(beam.PTransform):
  """Writes rows (dicts of ``schema``) as sharded Parquet under ``build_dir/prefix``.

  Args:
    build_dir: the directory (local or ``gs://``) of this build's files.
    prefix: the table's directory inside it, a constant such as ``'rejects'``.
    schema: the table's pyarrow schema.
    config: shard count and row-group size.

  Returns:
    The written file names.
  """
  def __init__(self, *, build_dir: str, prefix: str, schema, config: WriteConfig):
    super().__init__()
    self._sink = _write_parquet(build_dir, prefix, schema, config)

  def expand(self, rows: beam.PCollection) -> beam.PCollection:
    return rows | 'WriteParquet' >> self._sink


class WriteManifests(beam.PTransform):
  """Writes manifest rows by split, under ``build_dir/prefix/SPLIT/``.

  Args:
    build_dir: the directory (local or ``gs://``) of this build's files.
    prefix: ``'manifests'`` (a snapshot) or ``'delta'``.
    sample_rate_hz: the clips' rate, recorded in the Audio feature.
    config: shard count and row-group size.

  Returns:
    The written file names.
  """
  def __init__(self, *, build_dir: str, prefix: str, sample_rate_hz: int,
               config: WriteConfig):
    super().__init__()
    self._build_dir = build_dir
    self._prefix = prefix
    self._schema = manifest_schema(sample_rate=sample_rate_hz)
    self._config = config

  def expand(self, rows: beam.PCollection) -> beam.PCollection:
    by_split = rows | 'BySplit' >> beam.Partition(
        lambda row, _: SPLITS.index(row['split']), len(SPLITS))
    written = [part | f'Write{split}' >> _write_parquet(
        self._build_dir, f'{self._prefix}/{split}', self._schema, self._config)
               for split, part in zip(SPLITS, by_split, strict=True)]
    return written | 'Written' >> beam.Flatten()


class WriteDataset(beam.PTransform):
  """Writes accepted clips by split, and rejects, as sharded Parquet.

  Args:
    build_dir: the directory (local or ``gs://``) of this build's files.
    build_id: stamped on every row.
    pipeline_version: stamped on every row.
    sample_rate_hz: the clips' rate, recorded in the Audio feature.
    config: shard count and row-group size.
  """
  def __init__(self, *, build_dir: str, build_id: str, pipeline_version: str,
               sample_rate_hz: int, config: WriteConfig):
    super().__init__()
    self._build_dir = build_dir.rstrip('/')
    self._stamp = {'build_id': build_id, 'pipeline_version': pipeline_version}
    self._sample_rate_hz = sample_rate_hz
    self._config = config

  def _parquet(self, prefix: str, schema) -> beam.io.WriteToParquet:
    return beam.io.WriteToParquet(
        f'{self._build_dir}/{prefix}/part', schema,
        file_name_suffix='.parquet', shard_name_template=SHARD_TEMPLATE,
        num_shards=self._config.num_shards,
        record_batch_size=self._config.row_group_rows, row_group_buffer_size=1)

  def expand(self, outputs: tuple[beam.PCollection, beam.PCollection]) -> beam.PCollection:
    clips, rejects = outputs
    schema = manifest_schema(sample_rate=self._sample_rate_hz)
    by_split = clips | 'BySplit' >> beam.Partition(
        lambda clip, _: SPLITS.index(clip.split), len(SPLITS))
    written = []
    for split, part in zip(SPLITS, by_split, strict=True):
      written.append(
          part
          | f'{split}Rows' >> beam.Map(manifest_row, **self._stamp)
          | f'Write{split}' >> self._parquet(f'manifests/{split}', schema))
    written.append(
        clips
        | 'FingerprintRows' >> beam.Map(fingerprint_row, **self._stamp)
        | 'WriteFingerprints' >> self._parquet('fingerprints', FINGERPRINT_SCHEMA))
    written.append(
        rejects
        | 'RejectRows' >> beam.Map(reject_row, **self._stamp)
        | 'WriteRejects' >> self._parquet('rejects', REJECT_SCHEMA))
    return written | 'Written' >> beam.Flatten()
