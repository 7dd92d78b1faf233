import glob
import io
import json
import os

import apache_beam as beam
import numpy as np
import pyarrow.parquet as pq
import soundfile as sf
from apache_beam.testing.util import assert_that, equal_to

from schemas.config import WriteConfig
from schemas.records import METRIC_FIELDS, Reject
from tests.conftest import clip_of, local_pipeline
from transforms.encode import encode_flac
from transforms.write import WriteDataset


def accepted(i, split):
  pcm = np.full(1600, i, np.int16)
  return clip_of(upload_id=f'u{i}', contributor_id=f'c{i}', sample_rate=16000,
                 clip_id=f'{i:032x}', flac=encode_flac(pcm, sample_rate=16000), split=split,
                 fingerprint=np.arange(i % 7 + 1, dtype=np.uint32),
                 metrics={name: float(i) for name in METRIC_FIELDS})


def test_writes_split_manifests_and_rejects(tmp_path):
  clips = [accepted(i, 'train') for i in range(250)] + [accepted(1000, 'test')]
  rejects = [Reject.of(clip_of(upload_id='r'), stage='decode', reason='undecodable',
                       detail='bad bytes')]
  with local_pipeline() as p:
    written = ((p | 'Clips' >> beam.Create(clips), p | 'Rejects' >> beam.Create(rejects))
               | WriteDataset(build_dir=str(tmp_path), build_id='b1', pipeline_version='v',
                              sample_rate_hz=16000,
                              config=WriteConfig(num_shards=2, row_group_rows=100)))
    assert_that(written | beam.Map(lambda path: path.split('/')[-2:]), equal_to([
        ['data', 'train-00000-of-00002.parquet'], ['data', 'train-00001-of-00002.parquet'],
        ['data', 'test-00000-of-00002.parquet'], ['data', 'test-00001-of-00002.parquet'],
        ['fingerprints', 'part-00000-of-00002.parquet'],
        ['fingerprints', 'part-00001-of-00002.parquet'],
        ['rejects', 'part-00000-of-00002.parquet'],
        ['rejects', 'part-00001-of-00002.parquet']]))

  train = sorted(glob.glob(f'{tmp_path}/manifests/data/train-*.parquet'))
  assert sum(pq.ParquetFile(f).metadata.num_rows for f in train) == 250
  for path in train:
    meta = pq.ParquetFile(path).metadata
    assert all(meta.row_group(g).num_rows <= 100 for g in range(meta.num_row_groups))
  schema = pq.read_schema(train[0])
  assert json.loads(schema.metadata[b'huggingface'])['info']['features']['audio'][
      '_type'] == 'Audio'
  test = pq.read_table(glob.glob(f'{tmp_path}/manifests/data/test-*')).to_pylist()
  assert [row['upload_id'] for row in test] == ['u1000']
  samples, rate = sf.read(io.BytesIO(test[0]['audio']['bytes']), dtype='int16')
  assert rate == 16000 and np.all(samples == 1000)
  # No clip in dev: no file either (an empty Parquet file fails `datasets`' whole load).
  assert glob.glob(f'{tmp_path}/manifests/data/dev-*') == []
  prints = {r['clip_id']: r['fingerprint'] for r in pq.read_table(
      f'{tmp_path}/fingerprints').to_pylist()}
  assert len(prints) == 251
  assert np.frombuffer(prints[f'{1000:032x}'], '<u4').tolist() == list(range(1000 % 7 + 1))
  rows = pq.read_table(f'{tmp_path}/rejects').to_pylist()
  assert [(r['upload_id'], r['reason'], r['build_id']) for r in rows] == [
      ('r', 'undecodable', 'b1')]


def test_runner_chosen_shards_are_bounded_in_bytes(tmp_path):
  """With num_shards=0 a shard closes at max_shard_bytes, less than a row group past it."""
  clips = [accepted(i, 'train') for i in range(300)]
  config = WriteConfig(num_shards=0, max_shard_bytes=20_000, row_group_rows=10)
  with local_pipeline() as p:
    _ = ((p | 'Clips' >> beam.Create(clips), p | 'Rejects' >> beam.Create([]))
         | WriteDataset(build_dir=str(tmp_path), build_id='b1', pipeline_version='v',
                        sample_rate_hz=16000, config=config))
  shards = sorted(glob.glob(f'{tmp_path}/manifests/data/train-*.parquet'))
  assert len(shards) > 3
  total = len(shards)
  assert all(path.endswith(f'-of-{total:05d}.parquet') for path in shards)
  rows = 0
  for path in shards:
    meta = pq.ParquetFile(path).metadata
    rows += meta.num_rows
    assert all(meta.row_group(g).num_rows <= 10 for g in range(meta.num_row_groups))
    largest_group = max(meta.row_group(g).total_byte_size for g in range(meta.num_row_groups))
    footer = meta.serialized_size + 8  # the footer's length and the magic bytes
    assert os.path.getsize(path) < config.max_shard_bytes + largest_group + footer
  assert rows == 300


def test_metadata_columns_are_compressed_and_audio_is_not(tmp_path):
  """zstd and dictionaries for metadata columns; FLAC bytes stored as they are."""
  with local_pipeline() as p:
    _ = ((p | 'Clips' >> beam.Create([accepted(i, 'train') for i in range(20)]),
          p | 'Rejects' >> beam.Create([]))
         | WriteDataset(build_dir=str(tmp_path), build_id='b1', pipeline_version='v',
                        sample_rate_hz=16000, config=WriteConfig()))
  [path] = glob.glob(f'{tmp_path}/manifests/data/train-*.parquet')
  group = pq.ParquetFile(path).metadata.row_group(0)
  columns = {group.column(i).path_in_schema: group.column(i) for i in range(group.num_columns)}
  assert columns['audio.bytes'].compression == 'UNCOMPRESSED'
  assert columns['contributor_id'].compression == 'ZSTD'
  assert columns['split'].compression == 'ZSTD'
  assert any('DICTIONARY' in encoding for encoding in columns['split'].encodings)
