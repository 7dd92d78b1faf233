"""The short version of ``make fuzz``: every crafted hostile upload and some random
mutations through the whole build, in a child process."""

from __future__ import annotations

import collections

import pyarrow.dataset as ds
import pytest

from pipelines.fuzz_build import BUILD_ID, run
from pipelines.fuzz_corpus import CATEGORIES


@pytest.fixture(scope='module')
def fuzzed(tmp_path_factory):
  work = tmp_path_factory.mktemp('fuzz')
  report = run(['--work', str(work), '--count', '250', '--seed', '3'])
  rejects = ds.dataset(str(work / 'out' / 'builds' / BUILD_ID / 'rejects'),
                       format='parquet').to_table().to_pylist()
  return report, rejects


def test_the_build_survives_and_every_check_passes(fuzzed):
  report, _ = fuzzed
  assert report['failures'] == []
  assert report['build_exit_code'] == 0 and report['inputs'] >= 250
  assert set(report['by_category']) == set(CATEGORIES)
  assert report['crashes'] == {'internal_error': 0, 'decoder_crashed': 0}
  assert report['decode_timeouts'] == 0
  assert {'beam_worker', 'decoder', 'launcher'} <= set(report['memory'])


def test_rejects_carry_the_decoders_own_words(fuzzed):
  _, rejects = fuzzed
  by_reason = collections.defaultdict(list)
  for row in rejects:
    by_reason[row['reason']].append(row['detail'])
  assert {'undecodable', 'unsupported_format', 'empty_file', 'invalid_metadata',
          'non_finite_samples', 'too_many_channels', 'header_too_long'} <= set(by_reason)
  undecodable = by_reason['undecodable']
  assert any(d.startswith('libsndfile cannot decode') for d in undecodable)
  assert any(d.startswith('FFmpeg cannot decode') for d in undecodable)
  invalid = ' '.join(by_reason['invalid_metadata'])
  for words in ('is not UTF-8', 'must be a JSON object', 'not valid JSON',
                'larger than 1048576 bytes', 'control character'):
    assert words in invalid
