"""RejectWithdrawn, and the withdrawals file contract."""

from __future__ import annotations

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from schemas.config import ConfigError
from schemas.withdrawals import Withdrawal, parse_withdrawals
from tests.conftest import clip_of, local_pipeline
from transforms.withdraw import RejectWithdrawn


def test_uploads_of_withdrawn_contributors_are_rejected():
  clips = [clip_of(upload_id='a', contributor_id='gone'),
           clip_of(upload_id='b', contributor_id='stays')]
  with local_pipeline() as p:
    out = (p | beam.Create(clips)) | RejectWithdrawn(contributors=['gone'])
    assert_that(out.clips | beam.Map(lambda c: c.upload_id), equal_to(['b']))
    assert_that(out.rejected | 'R' >> beam.Map(lambda r: (r.upload_id, r.reason, r.stage)),
                equal_to([('a', 'consent_withdrawn', 'withdraw')]), label='rejects')


def test_withdrawals_file_is_parsed_and_checked():
  data = b'{"contributor_id": "c1", "date": "2026-11-25"}\n\n' \
         b'{"contributor_id": "c2", "date": "2026-11-25T10:00:00Z"}\n'
  assert parse_withdrawals(data, source='w') == [Withdrawal('c1', '2026-11-25'),
                                                 Withdrawal('c2', '2026-11-25T10:00:00Z')]
  for bad, message in ((b'{"date": "2026-11-25"}', 'contributor_id'),
                       (b'{"contributor_id": "c", "date": "soon"}', 'date'),
                       (b'["c"]', 'JSON object'), (b'{"contributor_id": "c",', 'line 1')):
    with pytest.raises(ConfigError, match=message):
      parse_withdrawals(bad, source='w')
