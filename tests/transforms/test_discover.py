import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to

from schemas.config import DiscoverConfig
from tests.conftest import local_pipeline, write_upload
from transforms.discover import DiscoverUploads, split_stem

GOOD = {'contributor_id': 'c1', 'consent': True}


def run_discover(root, expected_ok, expected_bad, config=None):
  config = config or DiscoverConfig()
  with local_pipeline() as p:
    out = p | DiscoverUploads(root=str(root), config=config)
    assert_that(out.clips | 'Ok' >> beam.Map(lambda c: (c.upload_id, c.contributor_id)),
                equal_to(expected_ok), label='clips')
    assert_that(out.rejected | 'Bad' >> beam.Map(lambda r: (r.upload_id, r.reason)),
                equal_to(expected_bad), label='rejects')


def test_split_stem():
  assert split_stem('/a/b.c/name.wav') == ('/a/b.c/name', '.wav')
  assert split_stem('/a/noext') == ('/a/noext', '')
  assert split_stem('/a/.hidden') == ('/a/.hidden', '')


def test_pairs_audio_with_sidecars_and_rejects_the_rest(tmp_path):
  write_upload(tmp_path, 'c1/a.wav', b'RIFF', GOOD)
  write_upload(tmp_path, 'c1/deep/b.webm', b'x', {**GOOD, 'upload_id': 'chosen'})
  write_upload(tmp_path, 'c1/lonely.wav', b'x', None)
  write_upload(tmp_path, 'c1/bad.wav', b'x', b'not json')
  write_upload(tmp_path, 'c1/anon.wav', b'x', {'consent': True})
  write_upload(tmp_path, 'c1/refused.wav', b'x', {**GOOD, 'consent': False})
  write_upload(tmp_path, 'c1/unsure.wav', b'x', {'contributor_id': 'c1'})
  write_upload(tmp_path, 'c1/twin.wav', b'x', GOOD)
  write_upload(tmp_path, 'c1/twin.mp3', b'x', None)
  (tmp_path / 'c1' / 'orphan.json').write_text('{}')
  run_discover(tmp_path,
               [('c1/a', 'c1'), ('chosen', 'c1')],
               [('c1/lonely', 'missing_sidecar'), ('c1/bad', 'invalid_metadata'),
                ('c1/anon', 'missing_contributor'), ('c1/refused', 'no_consent'),
                ('c1/unsure', 'no_consent'), ('c1/twin', 'ambiguous_upload'),
                ('c1/twin', 'ambiguous_upload'), ('c1/orphan', 'missing_audio')])


def test_consent_rule_can_be_disabled_and_size_is_capped(tmp_path):
  write_upload(tmp_path, 'a.wav', b'x' * 10, {'contributor_id': 'c'})
  write_upload(tmp_path, 'big.wav', b'x' * 101, {'contributor_id': 'c'})
  write_upload(tmp_path, 'fat.wav', b'x', b' ' * 65 + b'{"contributor_id": "c"}')
  config = DiscoverConfig(require_consent=False, max_upload_bytes=100, max_sidecar_bytes=64)
  run_discover(tmp_path, [('a', 'c')],
               [('big', 'file_too_large'), ('fat', 'invalid_metadata')], config)


def test_duplicate_upload_ids_keep_the_earliest(tmp_path):
  write_upload(tmp_path, 'x/late.wav', b'x',
               {**GOOD, 'upload_id': 'same', 'uploaded_at': '2026-11-02T00:00:00Z'})
  write_upload(tmp_path, 'y/early.wav', b'x',
               {**GOOD, 'upload_id': 'same', 'uploaded_at': '2026-11-01T00:00:00Z'})
  with local_pipeline() as p:
    out = p | DiscoverUploads(root=str(tmp_path), config=DiscoverConfig())
    assert_that(out.clips | 'Ok' >> beam.Map(lambda c: c.source_uri.rsplit('/', 2)[1]),
                equal_to(['y']), label='clips')
    assert_that(out.rejected | 'Bad' >> beam.Map(lambda r: (r.reason, r.source_uri[-8:])),
                equal_to([('duplicate_upload_id', 'late.wav')]), label='rejects')


def test_upload_ids_never_become_paths(tmp_path):
  write_upload(tmp_path, 'a.wav', b'x', {**GOOD, 'upload_id': '../../etc/passwd'})
  run_discover(tmp_path, [('../../etc/passwd', 'c1')], [])
