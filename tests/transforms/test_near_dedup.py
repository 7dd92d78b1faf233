"""Tests for transforms.near_dedup: survivor order, resolution, buckets, the Beam stage.

Audio comes from pipelines.sample_audio.synth_speech (a source-filter model of
speech: glottal source, formant filters, fricatives and room tone) through
tests.conftest.speech; copies are made with numpy (gain, noise, padding).
"""

import datetime

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.util import assert_that, equal_to

from schemas.config import NearDedupConfig
from schemas.tables import fingerprint_row
from tests.conftest import clip_of, local_pipeline, speech
from transforms.dedup_candidates import KeySet, bucket_hits, candidate_pairs
from transforms.dedup_survivors import Match, resolve, survivor_rank
from transforms.fingerprint import fingerprint, fingerprint_with_levels, lsh_key_arrays
from transforms.near_dedup import DeduplicateNear, Node, node_id, verify_pair

RATE_HZ = 16000


def fp_of(x: np.ndarray) -> np.ndarray:
  return fingerprint(np.round(np.clip(x, -1, 0.99997) * 32768).astype(np.int16),
                     sample_rate=RATE_HZ)


@pytest.fixture(scope='module')
def fps() -> dict[str, np.ndarray]:
  """An original, three copies of it, and two other recordings."""
  x = speech(7, duration_s=3.0)
  noise = np.random.default_rng(1).standard_normal(len(x)) * np.sqrt(np.mean(x ** 2) / 100)
  return {
      'original': fp_of(x),
      'quieter': fp_of(x * 0.3),
      'noisy': fp_of(x + noise),
      'padded': fp_of(np.concatenate([np.zeros(8000), x[2000:]])),
      'other': fp_of(speech(8, duration_s=3.0)),
      'another': fp_of(speech(9, duration_s=3.0)),
      'silence': np.zeros(180, np.uint32),
  }


def clip(upload_id, fp, *, contributor='alice', uploaded_at=None):
  return clip_of(upload_id=upload_id, contributor_id=contributor, uploaded_at=uploaded_at,
                 clip_id=upload_id, flac=b'flac', fingerprint=fp)


def day(n: int) -> str:
  return f'2026-11-{n:02d}T08:00:00Z'


# Survivor order and resolution (no Beam).

def test_survivor_rank_published_then_earliest_then_id():
  ranks = [
      survivor_rank(published=False, uploaded_at=None, upload_id='a'),
      survivor_rank(published=False, uploaded_at='2026-11-02T00:00:00+00:00', upload_id='b'),
      survivor_rank(published=False, uploaded_at='2026-11-01T23:00:00-02:00', upload_id='c'),
      survivor_rank(published=True, uploaded_at=datetime.datetime(2026, 12, 1), upload_id='z'),
      survivor_rank(published=False, uploaded_at=day(2), upload_id='a2'),
  ]
  order = [r[3] for r in sorted(ranks)]
  # 23:00 at -02:00 is 01:00 UTC on the 2nd: after b (00:00 UTC), before a2 (08:00 UTC).
  assert order == ['z', 'b', 'c', 'a2', 'a']


def match_of(better, worse, *, contributors=('x', 'x'), ber=0.1, ranks=None):
  ranks = ranks or {}
  return Match(better, ranks.get(better, (not better[0], better[1])), contributors[0],
               worse, ranks.get(worse, (not worse[0], worse[1])), contributors[1], ber, 3)


def test_resolve_keeps_the_first_and_names_the_best_kept_match():
  a, b, c = (False, 'a'), (False, 'b'), (False, 'c')
  decisions, stats = resolve([match_of(a, b, contributors=('x', 'y')), match_of(a, c),
                              match_of(b, c)])
  assert set(decisions) == {'b', 'c'}
  assert decisions['b'].duplicate_of == 'a' and decisions['b'].cross_contributor
  assert decisions['c'].duplicate_of == 'a' and not decisions['c'].cross_contributor
  assert stats == {'groups': 1, 'kept_in_chain': 0}


def test_resolve_chain_keeps_the_far_end():
  # A ~ B and B ~ C, but A !~ C: B goes (it matches kept A); C stays, because it
  # matches only B, which is rejected.
  a, b, c = (False, 'a'), (False, 'b'), (False, 'c')
  decisions, stats = resolve([match_of(a, b), match_of(b, c)])
  assert set(decisions) == {'b'} and decisions['b'].duplicate_of == 'a'
  assert stats['kept_in_chain'] == 1


def test_resolve_never_rejects_reference_rows():
  ref_old, ref_new, clip_c = (True, 'r1'), (True, 'r2'), (False, 'c')
  decisions, _ = resolve([match_of(ref_old, ref_new), match_of(ref_new, clip_c),
                          match_of(ref_old, clip_c)])
  assert set(decisions) == {'c'}
  assert decisions['c'].duplicate_of == 'r1' and decisions['c'].kept_is_reference


# Candidate generation (no Beam).

def test_bucket_hits_skips_oversized_buckets_and_reports_both_ways():
  common, rare = np.array([5], np.int64), np.array([5, 9], np.int64)
  members = [(10, 100, common, np.array([1])), (20, 100, rare, np.array([2, 3])),
             (30, 100, rare, np.array([4, 5]))]
  hits, stats = bucket_hits(members, max_bucket_size=2)
  assert stats['buckets_oversized'] == 1 and stats['bucket_entries_skipped'] == 3
  assert set(hits) == {20, 30}  # key 9 only: key 5 is in 3 clips
  others = np.frombuffer(hits[20][1], '<i8')
  assert others.tolist() == [30]
  assert np.frombuffer(hits[30][3], '<i4').tolist() == [5]  # 30's own frame


def test_candidate_pairs_leave_out_same_upload_and_two_references():
  me = node_id((False, 'u'))
  same_upload, published = node_id((True, 'u')), node_id((True, 'p'))
  frames = np.arange(0, 320, 10, dtype=np.int32)
  hits = [(320, np.full(len(frames), other, '<i8').tobytes(),
           np.full(len(frames), 320, '<i4').tobytes(), frames.tobytes(), frames.tobytes())
          for other in (same_upload, published)]
  assert candidate_pairs(me, hits, min_aligned_blocks=3) == [(published, 0)]
  ref = node_id((True, 'q'))
  assert candidate_pairs(ref, hits[1:], min_aligned_blocks=3) == []


def test_node_ids_differ_only_in_the_reference_bit():
  assert node_id((True, 'u')) == node_id((False, 'u')) | 1
  assert node_id((False, 'u')) % 2 == 0 and node_id((False, 'u')) != node_id((False, 'v'))


# The Beam stage.

def rejects_of(out):
  return out.rejected | 'Facts' >> beam.Map(
      lambda r: (r.upload_id, r.stage, r.reason, r.duplicate_of, r.cross_contributor,
                 'ber=0.' in r.detail))


def test_rejects_copies_keeps_others_and_passes_low_information(fps):
  clips = [
      clip('original', fps['original'], uploaded_at=day(1)),
      clip('quieter', fps['quieter'], uploaded_at=day(2)),
      clip('noisy', fps['noisy'], contributor='bob', uploaded_at=day(3)),
      clip('padded', fps['padded'], uploaded_at=None),
      clip('other', fps['other'], uploaded_at=day(1)),
      clip('another', fps['another']),
      clip('silence-1', fps['silence']),
      clip('silence-2', fps['silence']),
      clip('unmeasured', None),
  ]
  with local_pipeline() as p:
    out = p | beam.Create(clips) | DeduplicateNear(config=NearDedupConfig())
    assert_that(out.clips | 'Ids' >> beam.Map(lambda c: c.upload_id),
                equal_to(['original', 'other', 'another', 'silence-1', 'silence-2',
                          'unmeasured']), label='kept')
    assert_that(rejects_of(out), equal_to([
        ('quieter', 'near_dedup', 'near_duplicate', 'original', False, True),
        ('noisy', 'near_dedup', 'near_duplicate', 'original', True, True),
        ('padded', 'near_dedup', 'near_duplicate', 'original', False, True)]),
        label='rejected')
  counters = {m.key.metric.name: m.committed for m in p.result.metrics().query()['counters']}
  assert counters['near_dedup.skipped_low_information'] == 2
  assert counters['near_dedup.skipped_no_fingerprint'] == 1
  assert counters['near_dedup.received'] == 9 and counters['near_dedup.emitted'] == 6
  assert counters['near_dedup.rejected_cross_contributor'] == 1


def test_published_reference_wins_and_its_own_upload_is_not_a_duplicate(fps):
  published = clip('published', fps['original'], contributor='carol', uploaded_at=day(20))
  rows = [fingerprint_row(published, build_id='b1', pipeline_version='v')]
  clips = [
      clip('earlier-copy', fps['noisy'], uploaded_at=day(1)),  # uploaded first, not published
      clip('published', fps['original'], contributor='carol', uploaded_at=day(20)),
      clip('other', fps['other']),
  ]
  with local_pipeline() as p:
    reference = p | 'Reference' >> beam.Create(rows)
    out = p | beam.Create(clips) | DeduplicateNear(config=NearDedupConfig(),
                                                   reference=reference)
    assert_that(out.clips | 'Ids' >> beam.Map(lambda c: c.upload_id),
                equal_to(['published', 'other']), label='kept')
    assert_that(rejects_of(out), equal_to([
        ('earlier-copy', 'near_dedup', 'near_duplicate', 'published', True, True)]),
        label='rejected')


def test_the_history_takes_part_with_the_keys_it_shares_with_tonight_only(fps):
  """A published copy is found among published strangers with the filter by
  tonight's keys as without it; the strangers make no node."""
  strangers = [clip(f'old-{seed}', fp_of(speech(seed, duration_s=3.0)), contributor='dave')
               for seed in range(20, 32)]
  published = clip('published', fps['original'], contributor='carol', uploaded_at=day(2))
  rows = [fingerprint_row(c, build_id='b1', pipeline_version='v')
          for c in (published, *strangers)]
  tonight = [clip('copy', fps['noisy'], uploaded_at=day(20)), clip('other', fps['other'])]
  counters = {}
  for max_keys in (8_000_000, 0):
    with local_pipeline() as p:
      out = p | beam.Create(tonight) | DeduplicateNear(
          config=NearDedupConfig(reference_filter_max_keys=max_keys),
          reference=p | 'Reference' >> beam.Create(rows))
      assert_that(out.clips | 'Ids' >> beam.Map(lambda c: c.upload_id),
                  equal_to(['other']), label='kept')
      assert_that(rejects_of(out), equal_to([
          ('copy', 'near_dedup', 'near_duplicate', 'published', True, True)]),
          label='rejected')
    counters[max_keys] = {m.key.metric.name: m.committed
                          for m in p.result.metrics().query()['counters']}
  filtered, unfiltered = counters[8_000_000], counters[0]
  assert filtered['near_dedup.reference_rows'] == unfiltered['near_dedup.reference_rows'] == 13
  assert filtered['near_dedup.reference_unrelated'] >= 6
  assert 'near_dedup.reference_unrelated' not in unfiltered
  assert filtered['near_dedup.lsh_keys'] < unfiltered['near_dedup.lsh_keys'] / 5


def test_key_set_is_every_distinct_key_or_none_past_its_bound(fps):
  nodes = [Node((False, name), (), 'x', fps[name]) for name in ('original', 'other')]
  every = np.unique(np.concatenate([lsh_key_arrays(n.fingerprint)[0] for n in nodes]))
  with local_pipeline() as p:
    made = p | beam.Create(nodes)
    for label, max_keys, want in (('all', len(every), every), ('over', len(every) - 1, None),
                                  ('off', 0, None)):
      got = made | f'Set{label}' >> beam.CombineGlobally(KeySet(max_keys=max_keys))
      assert_that(got | f'List{label}' >> beam.Map(lambda k: None if k is None else k.tolist()),
                  equal_to([None if want is None else want.tolist()]), label=label)
    nothing = p | 'None' >> beam.Create([]) | beam.CombineGlobally(KeySet(max_keys=10))
    assert_that(nothing | beam.Map(len), equal_to([0]), label='empty')


def test_bounded_buckets_and_disabled_stage_pass_clips(fps):
  copies = [clip(f'copy-{i}', fps['original']) for i in range(4)]
  with local_pipeline() as p:
    clips = p | beam.Create(copies)
    tight = clips | 'Tight' >> DeduplicateNear(
        config=NearDedupConfig(max_bucket_size=3))  # every key is in 4 clips
    off = clips | 'Off' >> DeduplicateNear(config=NearDedupConfig(enabled=False))
    for name, out in (('tight', tight), ('off', off)):
      assert_that(out.clips | f'{name}Ids' >> beam.Map(lambda c: c.upload_id),
                  equal_to([c.upload_id for c in copies]), label=f'{name}-kept')
      assert_that(out.rejected, equal_to([]), label=f'{name}-rejected')
  counters = {m.key.metric.name: m.committed for m in p.result.metrics().query()['counters']}
  assert counters['near_dedup.buckets_oversized'] > 0
  assert counters.get('near_dedup.candidates', 0) == 0


def test_loud_words_keep_a_second_take_that_the_ber_alone_would_reject(espeak_takes):
  def measured(upload_id, name, uploaded_at):
    samples = np.round(np.clip(espeak_takes[name], -1, 0.99997) * 32768).astype(np.int16)
    words, levels = fingerprint_with_levels(samples, sample_rate=RATE_HZ)
    return clip_of(upload_id=upload_id, contributor_id='alice', uploaded_at=uploaded_at,
                   clip_id=upload_id, flac=b'flac', fingerprint=words, fingerprint_levels=levels)

  clips = [measured('first', 'first', day(1)), measured('again', 'again', day(2)),
           measured('noisy', 'noisy', day(3))]
  # One aligned block makes every pair sharing a key a candidate: the verdict
  # is the scores' alone.
  with local_pipeline() as p:
    out = p | beam.Create(clips) | DeduplicateNear(
        config=NearDedupConfig(min_aligned_blocks=1))
    assert_that(out.clips | 'Ids' >> beam.Map(lambda c: c.upload_id),
                equal_to(['first', 'again']), label='kept')
    assert_that(out.rejected | 'Why' >> beam.Map(
        lambda r: (r.upload_id, r.duplicate_of, 'loud_ber=0.' in r.detail)),
        equal_to([('noisy', 'first', True)]), label='rejected')
  # The second take is within the BER threshold; its loud words keep it.
  first, again = (Node((False, c.upload_id), (), 'alice', c.fingerprint, c.fingerprint_levels)
                  for c in clips[:2])
  config = NearDedupConfig()
  assert verify_pair(first, again, hint_offset=None, max_ber=config.max_ber,
                     max_loud_ber=1.0, max_unmatched_s=10.0) is not None
  assert verify_pair(first, again, hint_offset=None, max_ber=config.max_ber,
                     max_loud_ber=config.max_loud_ber, max_unmatched_s=10.0) is None


def test_an_excerpt_of_a_longer_clip_is_not_a_copy_a_trimmed_clip_is():
  x = speech(11, duration_s=4.0)

  def measured(upload_id, samples, uploaded_at):
    words, levels = fingerprint_with_levels(
        np.round(np.clip(samples, -1, 0.99997) * 32768).astype(np.int16), sample_rate=RATE_HZ)
    return clip_of(upload_id=upload_id, contributor_id='alice', uploaded_at=uploaded_at,
                   clip_id=upload_id, flac=b'flac', fingerprint=words, fingerprint_levels=levels)

  clips = [measured('whole', x, day(1)),
           measured('trimmed', x[int(0.3 * RATE_HZ):-int(0.3 * RATE_HZ)], day(2)),
           measured('excerpt', x[int(1.5 * RATE_HZ):int(2.7 * RATE_HZ)], day(3))]
  with local_pipeline() as p:
    created = p | beam.Create(clips)
    default = created | 'Default' >> DeduplicateNear(config=NearDedupConfig())
    lenient = created | 'Lenient' >> DeduplicateNear(
        config=NearDedupConfig(max_unmatched_speech_s=10.0))
    for name, out, rejected in (('default', default, ['trimmed']),
                                ('lenient', lenient, ['trimmed', 'excerpt'])):
      assert_that(out.rejected | f'{name}Ids' >> beam.Map(lambda r: (r.upload_id, r.reason)),
                  equal_to([(u, 'near_duplicate') for u in rejected]), label=name)
  counters = {m.key.metric.name: m.committed for m in p.result.metrics().query()['counters']}
  assert counters['near_dedup.rejected_by_unmatched_speech'] >= 1
