"""SIGKILL the local build during decode, during writes and before LATEST moves; rerun.

Each killed run must leave LATEST and the last published build untouched (LATEST
never names a partial build); each rerun must publish exactly the rows of an
uninterrupted build and leave no staging behind.
"""

from __future__ import annotations

import glob
import hashlib
import os
import subprocess
import sys

import pyarrow.dataset as ds
import pytest

from pipelines.build_dataset import run
from pipelines.sample_audio import encode_audio
from tests.conftest import speech, write_upload
from tests.pipelines.kill_at import POINTS

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FAST = ['--direct_running_mode=in_memory', '--direct_num_workers=1']
TABLES = ('manifests', 'rejects', 'fingerprints')


def build_argv(uploads: str, out: str, build_id: str) -> list[str]:
  return ['--uploads', uploads, '--output', out, '--build_id', build_id, *FAST]


def table_rows(out: str, build_id: str, name: str) -> list[str]:
  """The table's rows without their build id, as sorted reprs."""
  paths = glob.glob(f'{out}/builds/{build_id}/{name}/**/*.parquet', recursive=True)
  rows = ds.dataset(paths, format='parquet').to_table().to_pylist() if paths else []
  return sorted(repr(sorted((k, v) for k, v in row.items() if k != 'build_id')) for row in rows)


def tree_digest(path: str) -> dict[str, str]:
  digest = {}
  for p in glob.glob(f'{path}/**', recursive=True):
    if os.path.isfile(p):
      with open(p, 'rb') as f:
        digest[os.path.relpath(p, path)] = hashlib.sha256(f.read()).hexdigest()
  return digest


def latest(out: str) -> str | None:
  if not os.path.exists(f'{out}/LATEST'):
    return None
  with open(f'{out}/LATEST') as f:
    return f.read().strip()


@pytest.fixture(scope='module')
def faults(tmp_path_factory):
  base = tmp_path_factory.mktemp('faults')
  uploads, out = str(base / 'uploads'), str(base / 'out')
  for i, fmt in enumerate(('wav_pcm16', 'flac', 'mp3', 'webm_opus', 'ogg_vorbis', 'm4a_aac')):
    write_upload(uploads, f'c{i % 3}/take-{i}.{fmt.split("_")[0]}',
                 encode_audio(speech(i, sample_rate=48000, duration_s=3.0), sample_rate=48000,
                              fmt=fmt),
                 {'contributor_id': f'c{i % 3}', 'consent': True,
                  'transcript': 'seven words of speech read out loud here'})
  write_upload(uploads, 'c0/broken.wav', b'RIFF\x00\x00\x00\x00WAVEnothing', {
      'contributor_id': 'c0', 'consent': True})
  state = {'out': out, 'reference': run(build_argv(uploads, out, 'b0'))}
  state['rows'] = {name: table_rows(out, 'b0', name) for name in TABLES}
  for point in POINTS:
    build_id = f'after-{point}'
    previous = latest(out)
    published = tree_digest(f'{out}/builds/{previous}')
    killed = subprocess.run(
        [sys.executable, '-m', 'tests.pipelines.kill_at', point,
         *build_argv(uploads, out, build_id)],
        cwd=REPO, start_new_session=True, capture_output=True, timeout=600)
    state[point] = {
        'returncode': killed.returncode,
        'previous_latest': previous,
        'latest_after_kill': latest(out),
        'published_untouched': tree_digest(f'{out}/builds/{previous}') == published,
        'partial_promoted': os.path.exists(f'{out}/builds/{build_id}'),
        'staging_left': glob.glob(f'{out}/_staging/{build_id}.*'),
        'rerun': run(build_argv(uploads, out, build_id)),
        'latest_after_rerun': latest(out),
        'rows': {name: table_rows(out, build_id, name) for name in TABLES},
        'staging_after_rerun': os.path.exists(f'{out}/_staging'),
    }
  return state


def test_the_uninterrupted_build_accepts_and_rejects(faults):
  reference = faults['reference']
  assert reference['inputs'] == 7 and reference['accepted'] >= 3
  assert reference['rejected'].get('undecodable') == 1


@pytest.mark.parametrize('point', sorted(POINTS))
def test_a_killed_build_leaves_latest_and_the_last_build_untouched(faults, point):
  fault = faults[point]
  assert fault['returncode'] == -9, 'the run ended before the kill point'
  assert fault['published_untouched']
  # LATEST names the last complete build; a build killed before LATEST moved may be
  # promoted whole (it passed verification), never partly.
  assert fault['latest_after_kill'] == fault['previous_latest']
  assert fault['partial_promoted'] == (point == 'latest')
  assert fault['staging_left'] if point != 'latest' else not fault['staging_left']


@pytest.mark.parametrize('point', sorted(POINTS))
def test_the_rerun_publishes_the_rows_of_an_uninterrupted_build(faults, point):
  fault = faults[point]
  assert fault['latest_after_rerun'] == f'after-{point}'
  assert fault['rows'] == faults['rows']
  assert not fault['staging_after_rerun']
