"""Stage 9: write the manifests (one table per split) and the rejects table.

* :class:`WriteTable`: rows (dicts) -> ``PREFIX/part-SSSSS-of-NNNNN.parquet``
  under a build directory; :class:`WriteManifests`: manifest rows ->
  ``PREFIX/data/SPLIT-SSSSS-of-NNNNN.parquet`` (the Hub's layout; the nightly
  build's snapshot and delta use it too).
* :class:`WriteDataset`: ``(accepted clips, rejects)`` -> Parquet under a build
  directory: ``manifests/data/SPLIT-SSSSS-of-NNNNN.parquet``,
  ``rejects/part-SSSSS-of-NNNNN.parquet`` and the accepted clips' fingerprints
  in ``fingerprints/part-SSSSS-of-NNNNN.parquet`` (what later builds dedup
  against). Returns the written file names.
* :class:`WriteParquet`: dict rows -> sharded Parquet with small row groups and
  a bound on the bytes of a shard.

The manifests follow the Hugging Face Hub's layout (``data/SPLIT-...``), so
``datasets.load_dataset("parquet", data_dir=".../manifests")`` names the
splits ``train``, ``dev`` and ``test`` (with one directory per split it would
rename ``dev`` to ``validation``).

Row groups hold ``row_group_rows`` rows so that streaming readers never hold a
whole shard of audio in memory; a shard is closed once it holds
``max_shard_bytes`` (when the runner chooses the shard count). Paths come from
the build directory and the split name only, never from upload metadata.
"""

from __future__ import annotations

import time

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io import filebasedsink
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

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
from transforms.common import stage_timer

__all__ = ['WriteDataset', 'WriteParquet', 'WriteTable', 'WriteManifests',
           'MANIFEST_DATA_DIR']

SHARD_TEMPLATE = '-SSSSS-of-NNNNN'
METADATA_CODEC = 'zstd'
"""Metadata columns are dictionary-encoded and zstd-compressed; binary columns
(FLAC audio, fingerprints) are written as they are: they do not compress, and
readers then copy them out without decompressing."""
STAGE = 'write'
MANIFEST_DATA_DIR = 'manifests/data'


class _CountingFile:
  """A writable file that counts the bytes written through it."""
  def __init__(self, raw):
    self._raw = raw
    self.bytes_written = 0
    self.closed = False

  def write(self, data) -> int:
    self._raw.write(data)
    self.bytes_written += len(data)
    return len(data)

  def tell(self) -> int:
    return self.bytes_written

  def flush(self) -> None:
    self._raw.flush()

  def close(self) -> None:
    if not self.closed:
      self._raw.close()
      self.closed = True


def _leaf_columns(field: pa.Field, prefix: str = '') -> list[tuple[str, pa.DataType]]:
  path = f'{prefix}{field.name}'
  if pa.types.is_struct(field.type):
    return [leaf for child in field.type for leaf in _leaf_columns(child, f'{path}.')]
  if pa.types.is_list(field.type):
    return _leaf_columns(field.type.value_field, f'{path}.list.')
  return [(path, field.type)]


def _columns_by_kind(schema: pa.Schema) -> tuple[list[str], list[str]]:
  """Parquet column paths of ``schema``: (binary columns, the others)."""
  leaves = [leaf for field in schema for leaf in _leaf_columns(field)]
  raw = [path for path, kind in leaves if pa.types.is_binary(kind)]
  return raw, [path for path, _ in leaves if path not in raw]


class _ParquetSink(filebasedsink.FileBasedSink):
  """Writes Arrow tables (one row group each) to Parquet shards.

  Beam's ``WriteToParquet`` does not expose ``FileBasedSink``'s
  ``max_bytes_per_shard``; this sink does. The bound is checked after each row
  group, so a shard exceeds it by less than one row group.
  """
  def __init__(self, file_path_prefix: str, *, schema: pa.Schema, num_shards: int,
               shard_name_template: str, max_bytes_per_shard: int | None):
    super().__init__(file_path_prefix, coder=None, file_name_suffix='.parquet',
                     num_shards=num_shards, shard_name_template=shard_name_template,
                     mime_type='application/x-parquet',
                     compression_type=CompressionTypes.UNCOMPRESSED,
                     max_bytes_per_shard=max_bytes_per_shard)
    self._schema = schema
    self._file = None

  def open(self, temp_path):
    raw = FileSystems.create(temp_path, self.mime_type, self.compression_type)
    self._file = _CountingFile(raw)
    # FileBasedSinkWriter.at_capacity() reads sink.byte_counter.bytes_written;
    # Beam's own counter lacks what pyarrow needs of a file (closed, tell).
    self.byte_counter = self._file
    raw_columns, other_columns = _columns_by_kind(self._schema)
    return pq.ParquetWriter(
        self._file, self._schema, use_dictionary=other_columns,
        compression={**dict.fromkeys(raw_columns, 'none'),
                     **dict.fromkeys(other_columns, METADATA_CODEC)})

  def write_record(self, writer, table: pa.Table):
    start = time.thread_time_ns()
    writer.write_table(table)
    stage_timer(STAGE).update((time.thread_time_ns() - start) // 1000)

  def close(self, writer):
    writer.close()
    self._file.close()
    self._file = None

  def finalize_write(self, init_result, writer_results, unused_pre_finalize_results):
    # Beam writes empty shards for an empty input; a split whose files hold no
    # rows makes `datasets` fail on the whole directory ("corresponds to no
    # data"), so a table without rows has no file at all.
    paths = list(super().finalize_write(init_result, writer_results,
                                        unused_pre_finalize_results))
    rows = 0
    for path in paths:
      with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        rows += pq.ParquetFile(f).metadata.num_rows
    if rows:
      yield from paths
    elif paths:
      FileSystems.delete(paths)


class WriteParquet(beam.PTransform):
  """Dict rows -> Parquet shards ``PREFIX-SSSSS-of-NNNNN.parquet``; returns the file names.

  Args:
    file_path_prefix: the shards' path without the shard suffix.
    schema: the table schema (its metadata is written too).
    row_group_rows: rows per row group.
    num_shards: a fixed shard count; 0 lets the runner choose.
    max_shard_bytes: with ``num_shards=0``, a shard is closed once it holds
      this many bytes (plus at most one row group).
    shard_name_template: Beam's template; ``''`` writes exactly one file,
      ``PREFIX.parquet``.
  """
  def __init__(self, file_path_prefix: str, *, schema: pa.Schema, row_group_rows: int,
               num_shards: int = 0, max_shard_bytes: int | None = None,
               shard_name_template: str = SHARD_TEMPLATE):
    super().__init__()
    self._schema = schema
    self._row_group_rows = row_group_rows
    self._sink = _ParquetSink(file_path_prefix, schema=schema, num_shards=num_shards,
                              shard_name_template=shard_name_template,
                              max_bytes_per_shard=max_shard_bytes)

  def expand(self, rows: beam.PCollection) -> beam.PCollection:
    schema = self._schema
    return (rows
            | 'RowGroups' >> beam.BatchElements(min_batch_size=self._row_group_rows,
                                                max_batch_size=self._row_group_rows)
            | 'ToArrow' >> beam.Map(_to_arrow, schema=schema)
            | 'Write' >> beam.io.Write(self._sink))


def _to_arrow(rows: list[dict], *, schema: pa.Schema) -> pa.Table:
  start = time.thread_time_ns()
  table = pa.Table.from_pylist(rows, schema=schema)
  stage_timer(STAGE).update((time.thread_time_ns() - start) // 1000)
  return table


def _parquet(build_dir: str, prefix: str, schema: pa.Schema, config: WriteConfig
             ) -> WriteParquet:
  return WriteParquet(f'{build_dir.rstrip("/")}/{prefix}', schema=schema,
                      row_group_rows=config.row_group_rows, num_shards=config.num_shards,
                      max_shard_bytes=config.max_shard_bytes)


class WriteTable(beam.PTransform):
  """Writes rows (dicts of ``schema``) as ``build_dir/prefix/part-SSSSS-of-NNNNN.parquet``.

  Args:
    build_dir: the directory (local or ``gs://``) of this build's files.
    prefix: the table's directory inside it, a constant such as ``'rejects'``.
    schema: the table's pyarrow schema.
    config: shard count, shard size bound and row-group size.

  Returns:
    The written file names.
  """
  def __init__(self, *, build_dir: str, prefix: str, schema: pa.Schema, config: WriteConfig):
    super().__init__()
    self._sink = _parquet(build_dir, f'{prefix}/part', schema, config)

  def expand(self, rows: beam.PCollection) -> beam.PCollection:
    return rows | 'WriteParquet' >> self._sink


class WriteManifests(beam.PTransform):
  """Writes manifest rows by split, as ``build_dir/prefix/data/SPLIT-SSSSS-of-NNNNN.parquet``.

  Args:
    build_dir: the directory (local or ``gs://``) of this build's files.
    prefix: ``'manifests'`` (a snapshot) or ``'delta'``.
    sample_rate_hz: the clips' rate, recorded in the Audio feature.
    config: shard count, shard size bound and row-group size.

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
    written = [part | f'Write{split}' >> _parquet(
        self._build_dir, f'{self._prefix}/data/{split}', self._schema, self._config)
               for split, part in zip(SPLITS, by_split, strict=True)]
    return written | 'Written' >> beam.Flatten()


class WriteDataset(beam.PTransform):
  """Writes accepted clips by split, and rejects, as sharded Parquet.

  Args:
    build_dir: the directory (local or ``gs://``) of this build's files.
    build_id: stamped on every row.
    pipeline_version: stamped on every row.
    sample_rate_hz: the clips' rate, recorded in the Audio feature.
    config: shard count, shard size bound and row-group size.
  """
  def __init__(self, *, build_dir: str, build_id: str, pipeline_version: str,
               sample_rate_hz: int, config: WriteConfig):
    super().__init__()
    self._build_dir = build_dir.rstrip('/')
    self._stamp = {'build_id': build_id, 'pipeline_version': pipeline_version}
    self._sample_rate_hz = sample_rate_hz
    self._config = config

  def expand(self, outputs: tuple[beam.PCollection, beam.PCollection]) -> beam.PCollection:
    clips, rejects = outputs
    build_dir, config = self._build_dir, self._config
    written = [
        clips
        | 'ManifestRows' >> beam.Map(manifest_row, **self._stamp)
        | 'Manifests' >> WriteManifests(build_dir=build_dir, prefix='manifests',
                                        sample_rate_hz=self._sample_rate_hz, config=config),
        clips
        | 'FingerprintRows' >> beam.Map(fingerprint_row, **self._stamp)
        | 'WriteFingerprints' >> WriteTable(build_dir=build_dir, prefix='fingerprints',
                                            schema=FINGERPRINT_SCHEMA, config=config),
        rejects
        | 'RejectRows' >> beam.Map(reject_row, **self._stamp)
        | 'WriteRejects' >> WriteTable(build_dir=build_dir, prefix='rejects',
                                       schema=REJECT_SCHEMA, config=config)]
    return written | 'Written' >> beam.Flatten()
