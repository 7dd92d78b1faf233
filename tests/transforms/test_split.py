import collections

import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to

from schemas.config import SplitConfig
from tests.conftest import clip_of, local_pipeline
from transforms.split import AssignSplit, split_of


def test_split_is_stable_and_follows_ratios():
  config = SplitConfig()
  counts = collections.Counter(split_of(f'contributor-{i}', config=config)
                               for i in range(20000))
  assert abs(counts['train'] / 20000 - 0.8) < 0.02
  assert abs(counts['dev'] / 20000 - 0.1) < 0.01
  assert split_of('someone', config=config) == split_of('someone', config=config)


def test_degenerate_ratios():
  assert split_of('x', config=SplitConfig(train=1.0, dev=0.0, test=0.0)) == 'train'
  assert split_of('x', config=SplitConfig(train=0.0, dev=0.0, test=1.0)) == 'test'


def test_transform_is_speaker_disjoint():
  clips = [clip_of(upload_id=f'u{i}', contributor_id=f'c{i % 7}') for i in range(50)]
  with local_pipeline() as p:
    out = p | beam.Create(clips) | AssignSplit(config=SplitConfig())
    pairs = out.clips | beam.Map(lambda c: (c.contributor_id, c.split)) | beam.Distinct()
    expected = sorted({(f'c{i}', split_of(f'c{i}', config=SplitConfig())) for i in range(7)})
    assert_that(pairs, equal_to(expected))


def test_a_contributors_split_does_not_change_when_others_join():
  def assigned(contributors):
    clips = [clip_of(upload_id=f'{c}/u', contributor_id=c) for c in contributors]
    with local_pipeline() as p:
      out = p | beam.Create(clips) | AssignSplit(config=SplitConfig())
      pairs = out.clips | beam.Map(lambda c: (c.contributor_id, c.split))
      assert_that(pairs, equal_to(sorted((c, split_of(c, config=SplitConfig()))
                                         for c in contributors)))
    return {c: split_of(c, config=SplitConfig()) for c in contributors}

  first = assigned([f'early-{i}' for i in range(30)])
  later = assigned([f'early-{i}' for i in range(30)] + [f'late-{i}' for i in range(300)])
  assert {c: later[c] for c in first} == first
  assert set(later.values()) == {'train', 'dev', 'test'}
