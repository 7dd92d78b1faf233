"""SelectNewUploads: new and overwritten uploads go on; unchanged ones are not read."""

from __future__ import annotations

import json
import os

import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to

from tests.conftest import local_pipeline, write_upload
from transforms.discover import ListUploads
from transforms.select_new import SelectNewUploads, content_sha256, listing_stamp, path_sha256


def select(root: str, state: list[dict], tmp: str) -> tuple[list, list]:
  """Runs the transform; the stems and state rows come back through Parquet-free JSON files."""
  with local_pipeline() as p:
    known = p | 'State' >> beam.Create(state)
    selected = (p | ListUploads(root=root)) | SelectNewUploads(state=known, build_id='b2')
    _ = (selected.stems | 'Stems' >> beam.Map(lambda s: json.dumps(os.path.basename(s[0])))
         | 'WriteStems' >> beam.io.WriteToText(f'{tmp}/stems', shard_name_template=''))
    _ = (selected.state | 'Rows' >> beam.Map(json.dumps)
         | 'WriteRows' >> beam.io.WriteToText(f'{tmp}/state', shard_name_template=''))
  with open(f'{tmp}/stems') as f:
    stems = sorted(json.loads(line) for line in f)
  with open(f'{tmp}/state') as f:
    return stems, [json.loads(line) for line in f]


def test_first_night_selects_everything_and_records_it(tmp_path):
  root = str(tmp_path / 'up')
  write_upload(root, 'a.wav', b'audio a', {'contributor_id': 'c'})
  write_upload(root, 'b.wav', b'audio b', {'contributor_id': 'c'})
  stems, state = select(root, [], str(tmp_path / 'run1'))
  assert stems == ['a', 'b']
  assert sorted(r['stem_sha256'] for r in state) == sorted(
      path_sha256(f'{root}/{name}') for name in ('a', 'b'))
  assert all(r['build_id'] == 'b2' and len(r['files']) == 2 for r in state)


def test_the_state_names_no_path(tmp_path):
  root = str(tmp_path / 'contributor-jane-doe')
  write_upload(root, 'take.wav', b'audio', {'contributor_id': 'jane-doe'})
  _, state = select(root, [], str(tmp_path / 'run1'))
  assert len(state) == 1 and 'jane-doe' not in json.dumps(state)


def test_unchanged_touched_and_overwritten_uploads(tmp_path):
  root = str(tmp_path / 'up')
  for name in ('same', 'touched', 'overwritten'):
    write_upload(root, f'{name}.wav', f'audio {name}'.encode(), {'contributor_id': 'c'})
  _, first = select(root, [], str(tmp_path / 'run1'))
  first = [{**r, 'build_id': 'b1'} for r in first]
  with open(f'{root}/touched.wav', 'rb') as f:
    data = f.read()
  os.utime(f'{root}/touched.wav', (1, 1))  # another update time, the same bytes
  with open(f'{root}/touched.wav', 'wb') as f:
    f.write(data)
  os.utime(f'{root}/touched.wav', (2, 2))
  with open(f'{root}/overwritten.wav', 'wb') as f:
    f.write(b'another recording')
  write_upload(root, 'new.wav', b'audio new', {'contributor_id': 'c'})
  stems, state = select(root, first, str(tmp_path / 'run2'))
  assert stems == ['new', 'overwritten']
  name_of = {path_sha256(f'{root}/{name}'): name
             for name in ('same', 'touched', 'overwritten', 'new')}
  by_name = {name_of[r['stem_sha256']]: r for r in state}
  assert set(by_name) == {'same', 'touched', 'overwritten', 'new'}
  assert by_name['same']['build_id'] == by_name['touched']['build_id'] == 'b1'
  assert by_name['overwritten']['build_id'] == by_name['new']['build_id'] == 'b2'
  assert by_name['touched']['files'] != next(
      r for r in first if name_of[r['stem_sha256']] == 'touched')['files']


def test_content_hash_covers_every_file_of_the_upload(tmp_path):
  from apache_beam.io.filesystems import FileSystems
  root = str(tmp_path)
  write_upload(root, 'a.wav', b'x', {'contributor_id': 'c'})
  files = FileSystems.match([f'{root}/a.*'])[0].metadata_list
  before = content_sha256(files)
  write_upload(root, 'a.wav', b'x', {'contributor_id': 'd'})
  assert content_sha256(FileSystems.match([f'{root}/a.*'])[0].metadata_list) != before
  assert [f['path_sha256'] for f in listing_stamp(files)] == sorted(
      path_sha256(f.path) for f in files)


def test_state_rows_of_vanished_uploads_are_kept(tmp_path):
  row = {'stem_sha256': path_sha256(f'{tmp_path}/gone'), 'files': [], 'content_sha256': '0' * 64,
         'build_id': 'b1'}
  write_upload(str(tmp_path), 'here.wav', b'a', {'contributor_id': 'c'})
  with local_pipeline() as p:
    known = p | 'State' >> beam.Create([row])
    selected = (p | ListUploads(root=str(tmp_path))) | SelectNewUploads(state=known,
                                                                         build_id='b2')
    assert_that(selected.state | beam.Map(lambda r: r['stem_sha256']),
                equal_to([path_sha256(f'{tmp_path}/{name}') for name in ('gone', 'here')]))
