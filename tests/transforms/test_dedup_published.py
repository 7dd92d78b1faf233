"""DeduplicatePublished: content published earlier is a duplicate, except of itself."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to

from tests.conftest import clip_of, local_pipeline
from transforms.dedup_published import DeduplicatePublished

PUBLISHED = [{'clip_id': 'aa', 'upload_id': 'old/1', 'contributor_id': 'c1', 'build_id': 'n1'}]


def test_published_content_is_rejected_and_names_the_published_upload():
  clips = [clip_of(upload_id='new/1', contributor_id='c2', clip_id='aa'),
           clip_of(upload_id='new/2', contributor_id='c2', clip_id='bb'),
           clip_of(upload_id='old/1', contributor_id='c1', clip_id='aa')]  # overwritten, same
  with local_pipeline() as p:
    out = (p | beam.Create(clips)) | DeduplicatePublished(
        published=p | 'Published' >> beam.Create(PUBLISHED))
    assert_that(out.clips | beam.Map(lambda c: c.upload_id), equal_to(['new/2', 'old/1']))
    assert_that(out.rejected | 'R' >> beam.Map(
        lambda r: (r.upload_id, r.reason, r.duplicate_of, r.cross_contributor,
                   "build 'n1'" in r.detail)),
        equal_to([('new/1', 'duplicate', 'old/1', True, True)]), label='rejects')
