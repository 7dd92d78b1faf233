"""The nightly build on GCS: gs:// to gs://, withdrawal and retention in the bucket, and
LATEST moved only by compare-and-swap.

The emulator (gcp-storage-emulator) ignores ``ifGenerationMatch``: a stale
precondition is accepted there. :func:`pipelines.nightly_publish.move_latest`
re-reads LATEST's generation before its conditional write, which is what these
tests can check; on real GCS the precondition also closes the race between the
re-read and the write.
"""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.nightly import run
from pipelines.nightly_publish import Latest, PublishConflict, move_latest, read_latest

FAST = ['--direct_running_mode=in_memory', '--direct_num_workers=1']


def read_table(client, bucket: str, prefix: str) -> pa.Table | None:
  names = [b.name for b in client.list_blobs(bucket, prefix=prefix) if b.name.endswith(
      '.parquet')]
  tables = [pq.read_table(io.BytesIO(client.bucket(bucket).blob(n).download_as_bytes()))
            for n in names]
  tables = [t for t in tables if t.num_rows]
  return pa.concat_tables(tables) if tables else None


@pytest.fixture(scope='module')
def nights(gcs, uploads_uri, new_bucket):
  bucket = new_bucket('nightly')
  client = gcs.client()
  output = f'gs://{bucket}/nightly'
  withdrawals = f'gs://{bucket}/consent/withdrawals.jsonl'
  client.bucket(bucket).blob('consent/withdrawals.jsonl').upload_from_string(b'')
  argv = ['--uploads', uploads_uri, '--output', output, '--set',
          f'nightly.withdrawals={withdrawals}', '--set', 'nightly.keep_builds=1', *FAST]
  first = run([*argv, '--build_id', 'n1'])
  snapshot1 = read_table(client, bucket, 'nightly/builds/n1/manifests/').to_pylist()
  withdrawn = sorted({r['contributor_id'] for r in snapshot1})[0]
  client.bucket(bucket).blob('consent/withdrawals.jsonl').upload_from_string(
      json.dumps({'contributor_id': withdrawn, 'date': '2026-11-25'}).encode())
  second = run([*argv, '--build_id', 'n2'])
  return {'bucket': bucket, 'client': client, 'output': output, 'first': first,
          'second': second, 'snapshot1': snapshot1, 'withdrawn': withdrawn}


def test_first_night_on_gcs_stores_audio_once_and_references_it(nights):
  client, bucket, first = nights['client'], nights['bucket'], nights['first']
  assert first['snapshot']['clips'] == first['accepted'] == len(nights['snapshot1']) > 40
  for row in nights['snapshot1']:
    assert row['audio']['bytes'] is None
    name = row['audio']['path'].removeprefix(f'gs://{bucket}/')
    if row['contributor_id'] != nights['withdrawn']:  # those were deleted on night 2
      assert client.bucket(bucket).blob(name).download_as_bytes()[:4] == b'fLaC'
    assert row['audio']['path'] == (f'gs://{bucket}/nightly/audio/{row["clip_id"][:2]}/'
                                    f'{row["clip_id"]}.flac')


def test_second_night_processes_nothing_old_and_removes_the_withdrawn(nights):
  client, bucket, second = nights['client'], nights['bucket'], nights['second']
  gone = [r for r in nights['snapshot1'] if r['contributor_id'] == nights['withdrawn']]
  assert gone and second['inputs'] == 0 and second['base_build'] == 'n1'
  assert second['snapshot']['removed_withdrawn'] == len(gone)
  assert second['audio_objects_deleted'] == len(gone)
  snapshot2 = read_table(client, bucket, 'nightly/builds/n2/manifests/').to_pylist()
  assert sorted(r['clip_id'] for r in snapshot2) == sorted(
      r['clip_id'] for r in nights['snapshot1'] if r['contributor_id'] != nights['withdrawn'])
  stored = {b.name for b in client.list_blobs(bucket, prefix='nightly/audio/')}
  assert stored == {r['audio']['path'].removeprefix(f'gs://{bucket}/') for r in snapshot2}
  assert client.bucket(bucket).blob('nightly/LATEST').download_as_text() == 'n2\n'
  # keep_builds=1: only the build LATEST names is left.
  builds = {b.name.split('/')[2] for b in client.list_blobs(bucket, prefix='nightly/builds/')}
  assert builds == {'n2'} and second['builds_deleted'] == ['n1']
  assert not list(client.list_blobs(bucket, prefix='nightly/_staging/'))


def test_latest_moves_only_from_the_generation_a_run_started_from(gcs, new_bucket):
  bucket = new_bucket('cas')
  output = f'gs://{bucket}/out'
  empty = read_latest(output)
  assert empty == Latest(None, generation=0)
  move_latest(output, 'a', expected=empty)
  seen = read_latest(output)
  assert seen.build_id == 'a' and seen.generation > 0
  # Two runs started from 'a'; the first to finish publishes, the second is refused.
  move_latest(output, 'b', expected=seen)
  with pytest.raises(PublishConflict, match='another run published first'):
    move_latest(output, 'c', expected=seen)
  with pytest.raises(PublishConflict):
    move_latest(output, 'c', expected=empty)  # a first run that found no LATEST
  assert read_latest(output).build_id == 'b'
