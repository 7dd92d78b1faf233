"""Publishing on GCS: verify, promote, LATEST; retried safely; as the last step of a job."""

from __future__ import annotations

import json

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.publish import (
  ConservationError,
  PublishBuild,
  build_dir,
  publish,
  staging_dir,
  write_json,
)
from tests.conftest import local_pipeline

SCHEMA = pa.schema([('upload_id', pa.string())])
SUMMARY = {'build_id': 'b1', 'inputs': 3, 'accepted': 2, 'rejected': {'too_short': 1}}


def stage_build(client, bucket: str, staging: str, *, accepted: int = 2) -> None:
  """A staged build written the way WriteDataset lays it out: two manifests, one rejects."""
  prefix = staging.removeprefix(f'gs://{bucket}/')
  for table, names in (('manifests/train', [f'a{i}' for i in range(accepted)]),
                       ('rejects', ['r0'])):
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table({'upload_id': names}, schema=SCHEMA), sink)
    client.bucket(bucket).blob(f'{prefix}/{table}/part-00000-of-00001.parquet') \
        .upload_from_string(sink.getvalue().to_pybytes())
  client.bucket(bucket).blob(f'{prefix}/summary.json').upload_from_string(
      json.dumps(SUMMARY))


def names(client, bucket: str) -> list[str]:
  return sorted(blob.name for blob in client.list_blobs(bucket))


def test_publish_promotes_replaces_stale_shards_and_moves_latest(gcs, new_bucket):
  bucket = new_bucket('publish')
  client = gcs.client()
  output = f'gs://{bucket}/out'
  stale = client.bucket(bucket).blob('out/builds/b1/manifests/train/part-00000-of-00009.parquet')
  stale.upload_from_string(b'an earlier build of the same id')
  staging = staging_dir(output, 'b1')
  stage_build(client, bucket, staging)

  assert publish(staging=staging, output=output, build_id='b1', summary=SUMMARY) == build_dir(
      output, 'b1')
  assert names(client, bucket) == [
      'out/LATEST', 'out/builds/b1/manifests/train/part-00000-of-00001.parquet',
      'out/builds/b1/rejects/part-00000-of-00001.parquet', 'out/builds/b1/summary.json']
  assert client.bucket(bucket).blob('out/LATEST').download_as_text() == 'b1\n'


def test_publish_retried_after_the_copy_only_finishes_the_job(gcs, new_bucket):
  bucket = new_bucket('retry')
  client = gcs.client()
  output = f'gs://{bucket}/out'
  staging = staging_dir(output, 'b1')
  stage_build(client, bucket, staging)
  publish(staging=staging, output=output, build_id='b1', summary=SUMMARY)
  client.bucket(bucket).blob('out/LATEST').delete()
  # The first attempt died after deleting the staging summary, before the rest.
  prefix = staging.removeprefix(f'gs://{bucket}/')
  client.bucket(bucket).blob(f'{prefix}/rejects/part-00000-of-00001.parquet') \
      .upload_from_string(b'left behind')

  publish(staging=staging, output=output, build_id='b1', summary=SUMMARY)
  assert not [name for name in names(client, bucket) if '_staging' in name]
  assert client.bucket(bucket).blob('out/LATEST').download_as_text() == 'b1\n'
  with pytest.raises(ConservationError, match='another build'):
    publish(staging=staging, output=output, build_id='b1', summary={**SUMMARY, 'inputs': 4})


def test_publish_refuses_a_build_that_lost_uploads(gcs, new_bucket):
  bucket = new_bucket('lost')
  client = gcs.client()
  output = f'gs://{bucket}/out'
  staging = staging_dir(output, 'b1')
  stage_build(client, bucket, staging, accepted=1)
  with pytest.raises(ConservationError, match='tables hold 1 and 1 rows'):
    publish(staging=staging, output=output, build_id='b1', summary=SUMMARY)
  assert not [name for name in names(client, bucket) if '/builds/' in name or 'LATEST' in name]


def test_publish_build_runs_after_the_tables_and_summary_are_written(gcs, new_bucket):
  bucket = new_bucket('inpipeline')
  output = f'gs://{bucket}/out'
  staging = staging_dir(output, 'b1')
  with local_pipeline() as p:
    def write(label, prefix, rows):
      return (p | f'{label}Rows' >> beam.Create([{'upload_id': r} for r in rows])
              | f'Write{label}' >> beam.io.WriteToParquet(
                  f'{staging}/{prefix}/part', SCHEMA, file_name_suffix='.parquet'))
    written = (write('Train', 'manifests/train', ['a0', 'a1']), write('Rejects', 'rejects',
                                                                     ['r0'])) | beam.Flatten()
    summary = p | 'Summary' >> beam.Create([SUMMARY])
    summary_written = summary | 'WriteSummary' >> beam.Map(
        lambda s: write_json(f'{staging}/summary.json', s))
    _ = summary | PublishBuild(staging=staging, output=output, build_id='b1',
                               after=[written, summary_written])
  client = gcs.client()
  assert client.bucket(bucket).blob('out/LATEST').download_as_text() == 'b1\n'
  assert json.loads(client.bucket(bucket).blob('out/builds/b1/summary.json')
                    .download_as_bytes()) == SUMMARY
  assert not [name for name in names(client, bucket) if '_staging' in name]
