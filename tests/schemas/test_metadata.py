import json

import pytest

from schemas.metadata import MetadataError, parse_sidecar


def parse(doc, default='dir/name'):
  data = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
  return parse_sidecar(data, default_upload_id=default)


def test_valid_sidecar_fills_defaults_and_normalizes():
  meta = parse({'contributor_id': 'c1', 'transcript': 'héllo', 'locale': 'pt_BR',
                'uploaded_at': '2026-11-01T10:00:00+02:00', 'consent': True, 'extra': 1})
  assert meta.upload_id == 'dir/name'
  assert meta.locale == 'pt-BR'
  assert meta.uploaded_at == '2026-11-01T08:00:00Z'
  assert meta.consent is True and meta.transcript == 'héllo'
  assert parse({'contributor_id': 'c', 'transcript': 'one\r\ntwo\tthree'}).transcript == (
      'one\r\ntwo\tthree')


def test_explicit_upload_id_wins():
  assert parse({'contributor_id': 'c', 'upload_id': 'u-1'}).upload_id == 'u-1'


@pytest.mark.parametrize('data, reason, words', [
    (b'{"contributor_id": ', 'invalid_metadata', 'not valid JSON'),
    (b'\xff\xfe{}', 'invalid_metadata', 'not UTF-8'),
    (b'[1, 2]', 'invalid_metadata', 'JSON object'),
    ({'transcript': 'hi'}, 'missing_contributor', 'no contributor_id'),
    ({'contributor_id': '  '}, 'missing_contributor', 'no contributor_id'),
    ({'contributor_id': 7}, 'invalid_metadata', 'contributor_id must be a string'),
    ({'contributor_id': 'c', 'consent': 'yes'}, 'invalid_metadata', 'consent'),
    ({'contributor_id': 'c', 'uploaded_at': 'yesterday'}, 'invalid_metadata', 'RFC 3339'),
    ({'contributor_id': 'c', 'uploaded_at': '2026-13-45T00:00:00Z'}, 'invalid_metadata',
     'not a valid date'),
    ({'contributor_id': 'c', 'uploaded_at': '9999-12-31T23:59:59-23:59'}, 'invalid_metadata',
     'date value out of range'),  # found by the fuzzer: an OverflowError before
    ({'contributor_id': 'c', 'locale': 'english please'}, 'invalid_metadata', 'BCP 47'),
    ({'contributor_id': 'c' * 600}, 'invalid_metadata', 'at most 512'),
    ({'contributor_id': 'c\x00d'}, 'invalid_metadata', 'U+0000 at position 1'),
    ({'contributor_id': 'c', 'upload_id': 'a\x1b[2Jb'}, 'invalid_metadata', 'U+001B'),
    ({'contributor_id': 'c', 'transcript': 'bell\x07'}, 'invalid_metadata', 'U+0007'),
    ({'contributor_id': 'c', 'transcript': 'x' * 20_001}, 'invalid_metadata', 'at most 20000'),
    (b'"just a string"', 'invalid_metadata', 'got str'),
    (b'null', 'invalid_metadata', 'got NoneType'),
    (b'[' * 100_000 + b']' * 100_000, 'invalid_metadata', 'not valid JSON'),
])
def test_contract_violations_name_the_problem(data, reason, words):
  with pytest.raises(MetadataError) as e:
    parse(data)
  assert e.value.reason == reason
  assert words in e.value.detail
