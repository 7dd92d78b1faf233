import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to

from schemas.records import Reject
from tests.conftest import clip_of, local_pipeline
from transforms.redact import WITHHELD, RedactRejects, redact


def reject_of(upload_id, contributor_id, reason, **fields):
  clip = clip_of(upload_id=upload_id, contributor_id=contributor_id,
                 source_uri=f'/up/{contributor_id}/{upload_id}.wav',
                 source_duration_s=2.0, metrics={'snr_db': 30.0})
  return Reject.of(clip, stage='discover', reason=reason, detail=f'{upload_id} detail',
                   **fields)


def test_no_consent_and_withdrawn_rejects_keep_only_stage_and_reason():
  gone = frozenset({'quit'})
  kept = reject_of('u1', 'stays', 'low_snr')
  assert redact(kept, withdrawn=gone) is kept
  for reject in (reject_of('u2', 'stays', 'no_consent'),
                 reject_of('u3', 'quit', 'duplicate', duplicate_of='u1',
                           cross_contributor=True),
                 reject_of('u4', 'quit', 'consent_withdrawn')):
    redacted = redact(reject, withdrawn=gone)
    assert (redacted.stage, redacted.reason, redacted.reasons) == (
        reject.stage, reject.reason, reject.reasons)
    assert (redacted.upload_id, redacted.source_uri, redacted.contributor_id) == (
        WITHHELD, WITHHELD, None)
    assert redacted.duplicate_of is None and redacted.cross_contributor is None
    assert redacted.metrics == {} and redacted.source_duration_s is None
    named = repr(redacted)
    assert not any(word in named for word in ('u2', 'u3', 'u4', 'quit', '/up/'))


def test_transform_redacts_every_reject_that_must_not_name_its_upload():
  rejects = [reject_of('a', 'c1', 'no_consent'), reject_of('b', 'c2', 'silence'),
             reject_of('c', 'c3', 'silence')]
  with local_pipeline() as p:
    out = p | beam.Create(rejects) | RedactRejects(withdrawn=['c3'])
    assert_that(out | beam.Map(lambda r: (r.upload_id, r.contributor_id, r.reason)),
                equal_to([('', None, 'no_consent'), ('b', 'c2', 'silence'),
                          ('', None, 'silence')]))
