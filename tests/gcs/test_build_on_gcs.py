"""End to end on GCS: the sample from gs:// to gs://, clean and through a faulty network.

The build runs on the default local runner (worker processes) against the
emulator; the output contract is read back from the bucket with
google-cloud-storage and pyarrow, as a consumer of the dataset would.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.build_dataset import run
from pipelines.make_sample import ACCEPTED
from schemas.tables import REJECT_SCHEMA, manifest_schema
from tests.gcs.fault_proxy import FaultProxy
from tests.gcs.sample import expected_rows, same_summary

BUILD_ID = 'g1'


def build(uploads: str, bucket: str) -> dict:
  return run(['--uploads', uploads, '--output', f'gs://{bucket}/datasets',
              '--build_id', BUILD_ID])


def read_table(client, bucket: str, prefix: str) -> pa.Table:
  """Every Parquet object under ``prefix``, read back the way a consumer would."""
  names = [blob.name for blob in client.list_blobs(bucket, prefix=prefix)]
  tables = [pq.read_table(io.BytesIO(client.bucket(bucket).blob(name).download_as_bytes()))
            for name in names if name.endswith('.parquet')]
  return pa.concat_tables(tables).sort_by('upload_id')


@pytest.fixture(scope='module')
def clean(gcs, uploads_uri, new_bucket):
  bucket = new_bucket('clean')
  started = time.monotonic()
  summary = build(uploads_uri, bucket)
  return bucket, summary, time.monotonic() - started


def test_credentials_are_found_at_once_in_a_fresh_process(gcs):
  code = ('import time; t = time.monotonic()\n'
          'from apache_beam.internal.gcp import auth\n'
          'from apache_beam.options.pipeline_options import PipelineOptions\n'
          'found = auth.get_service_credentials(PipelineOptions([])) is not None\n'
          'print(found, time.monotonic() - t)\n')
  result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=60, check=True, env=os.environ.copy())
  found, seconds = result.stdout.split()
  assert found == 'True' and float(seconds) < 5, result.stdout


def test_build_publishes_the_output_contract_in_the_bucket(gcs, clean, sample):
  bucket, summary, _ = clean
  client = gcs.client()
  names = [blob.name for blob in client.list_blobs(bucket)]
  assert client.bucket(bucket).blob('datasets/LATEST').download_as_text() == f'{BUILD_ID}\n'
  build_root = f'datasets/builds/{BUILD_ID}'
  for split in ('train', 'dev', 'test'):
    shards = [n for n in names if n.startswith(f'{build_root}/manifests/data/{split}-')]
    assert shards and all('-of-' in n and n.endswith('.parquet') for n in shards)
  assert any(n.startswith(f'{build_root}/rejects/part-') for n in names)
  assert not [n for n in names if '/_staging/' in n or n.endswith('.tmp')]
  on_bucket = json.loads(client.bucket(bucket).blob(f'{build_root}/summary.json')
                         .download_as_bytes())
  assert on_bucket == {k: v for k, v in summary.items() if k != 'path'}
  assert summary['path'] == f'gs://{bucket}/{build_root}'
  assert on_bucket['uploads'] == 'gs://uploads/incoming'

  _, expected = sample
  manifests = read_table(client, bucket, f'{build_root}/manifests/')
  rejects = read_table(client, bucket, f'{build_root}/rejects/')
  assert manifests.schema.remove_metadata() == manifest_schema(
      sample_rate=16000).remove_metadata()
  assert rejects.schema.remove_metadata() == REJECT_SCHEMA
  outcomes = sorted([(u, ACCEPTED) for u in manifests.column('upload_id').to_pylist()]
                    + [(r['upload_id'], r['reason']) for r in
                       rejects.select(['upload_id', 'reason']).to_pylist()])
  assert outcomes == expected_rows(expected)
  assert all(uri.startswith('gs://uploads/incoming/')
             for uri in manifests.column('source_uri').to_pylist())


def test_transient_503_and_429_do_not_change_the_rows(gcs, clean, uploads_uri, new_bucket,
                                                      monkeypatch):
  clean_bucket, clean_summary, _ = clean
  bucket = new_bucket('faulty')
  with FaultProxy(upstream=gcs.url, every=8, max_faults_per_kind=3, lifetime_s=300) as proxy:
    monkeypatch.setenv('STORAGE_EMULATOR_HOST', proxy.url)
    summary = build(uploads_uri, bucket)
  monkeypatch.setenv('STORAGE_EMULATOR_HOST', gcs.url)
  assert proxy.faults[503] >= 5 and proxy.faults[429] >= 5, proxy.faults
  # Faults reached reading uploads, writing tables and publishing (batched copies/deletes).
  assert {'GET download', 'PUT upload', 'POST upload', 'POST batch', 'GET list'} <= set(
      proxy.faults_by_kind), proxy.faults_by_kind
  assert proxy.refused == 0
  assert same_summary(summary, clean_summary), (summary, clean_summary)
  client = gcs.client()
  root = f'datasets/builds/{BUILD_ID}'
  for table in ('manifests/', 'rejects/'):
    assert read_table(client, bucket, f'{root}/{table}').equals(
        read_table(client, clean_bucket, f'{root}/{table}'))
  assert client.bucket(bucket).blob('datasets/LATEST').download_as_text() == f'{BUILD_ID}\n'
