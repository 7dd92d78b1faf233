"""Three nights of the nightly build, end to end, on local disk.

Night 1: the embedded sample. Night 2: 30 new uploads (new contributors,
re-encoded and exact re-uploads of night-1 clips, uploads of a contributor who
withdraws consent tonight, an overwritten upload, a touched one), killed with
SIGKILL in the middle and run again. Night 3: nothing new. Checked: snapshot
and delta contents, dedup against history, the withdrawal (no audio left
anywhere), LATEST at each step, idempotence, retention.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import soxr
import yaml

from pipelines.make_sample import ACCEPTED
from pipelines.nightly import main, run
from pipelines.sample_audio import encode_audio
from pipelines.tts import SENTENCES, VOICES
from pipelines.tts import engine as shared_espeak
from tests.gcs.sample import session_sample, upload_files

FAST = ['--direct_running_mode=in_memory', '--direct_num_workers=1']
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def table(out: str, build_id: str, name: str):
  paths = glob.glob(f'{out}/builds/{build_id}/{name}/**/*.parquet', recursive=True)
  return ds.dataset(paths, format='parquet').to_table() if paths else None


def rows(out: str, build_id: str, name: str) -> list[dict]:
  t = table(out, build_id, name)
  return [] if t is None else t.to_pylist()


def latest(out: str) -> str:
  with open(f'{out}/LATEST') as f:
    return f.read().strip()


def read(path: str) -> bytes:
  with open(path, 'rb') as f:
    return f.read()


def tree_digest(path: str) -> dict[str, str]:
  return {os.path.relpath(p, path): hashlib.sha256(read(p)).hexdigest()
          for p in glob.glob(f'{path}/**', recursive=True) if os.path.isfile(p)}


def comparable(snapshot: list[dict], out: str) -> list[tuple]:
  """Rows with the audio path relative to the output root, sorted."""
  result = []
  for row in snapshot:
    row = dict(row, audio={'bytes': row['audio']['bytes'],
                           'path': row['audio']['path'].split('/audio/', 1)[1]})
    result.append(tuple(sorted((k, repr(v)) for k, v in row.items())))
  return sorted(result)


def nightly_argv(uploads: str, out: str, build_id: str, withdrawals: str) -> list[str]:
  return ['--uploads', uploads, '--output', out, '--build_id', build_id,
          '--config', f'{REPO}/configs/nightly.yaml', '--set', f'nightly.withdrawals={withdrawals}',
          '--set', 'nightly.keep_builds=2', *FAST]


def write_upload(root: str, name: str, data: bytes, sidecar: dict) -> None:
  path = os.path.join(root, name)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'wb') as f:
    f.write(data)
  with open(os.path.splitext(path)[0] + '.json', 'w') as f:
    json.dump(sidecar, f)


def sidecar(contributor: str, minute: int, transcript: str | None = None) -> dict:
  doc = {'contributor_id': contributor, 'consent': True, 'locale': 'en-US',
         'uploaded_at': f'2026-11-25T{8 + minute // 60:02d}:{minute % 60:02d}:00Z'}
  if transcript:
    doc['transcript'] = transcript
  return doc


def night_two(root: str, night1: list[dict], withdrawn: str) -> dict[str, tuple]:
  """Adds night 2's uploads under ``root``; returns {upload_id: (outcome, duplicate_of)}."""
  # eSpeak NG's callback is process-wide: a second engine would leave the cached one of
  # reference_signals calling a freed callback, so every test speaks through that one.
  engine = shared_espeak()
  rng = np.random.default_rng(2)
  expected = {}

  def speak(text: str, voice: str, pitch: int, wpm: int) -> np.ndarray:
    x = soxr.resample(engine.say(text, voice=voice, pitch=pitch, words_per_minute=wpm),
                      engine.sample_rate, 48000)
    x *= 0.5 / np.max(np.abs(x))
    pad = np.zeros(int(0.4 * 48000))
    x = np.concatenate([pad, x, pad])
    return (x + 10 ** (-62 / 20) * rng.standard_normal(x.shape[0])).astype(np.float32)

  formats = ('wav_pcm16', 'flac', 'mp3', 'ogg_vorbis', 'm4a_aac', 'webm_opus')
  minute = 0
  for c, contributor in enumerate(('night2-ada', 'night2-bo', 'night2-cy', 'night2-di')):
    for k in range(5):  # 20 new recordings: new voices, new texts (two half sentences)
      a, b = SENTENCES[(5 * c + k) % 12], SENTENCES[(5 * c + k + 7) % 12]
      text = f'{a.split(" while ")[0].rstrip(".")}, and then {b[0].lower()}{b[1:]}'
      fmt = formats[(c + k) % len(formats)]
      ext = {'wav_pcm16': '.wav', 'flac': '.flac', 'mp3': '.mp3', 'ogg_vorbis': '.ogg',
             'm4a_aac': '.m4a', 'webm_opus': '.webm'}[fmt]
      x = speak(text, VOICES[(c + 3) % len(VOICES)], 15 + 20 * c, 120 + 12 * k)
      minute += 1
      write_upload(root, f'{contributor}/n2-{k}{ext}', encode_audio(x, sample_rate=48000,
                                                                     fmt=fmt),
                   sidecar(contributor, minute, text))
      expected[f'{contributor}/n2-{k}'] = (ACCEPTED, None)
  # Re-uploads of night-1 clips, re-encoded (near) and byte-identical (exact).
  lossless = [r for r in night1 if r['codec'] in ('pcm_16', 'flac') and
              r['contributor_id'] != withdrawn][:4]
  for i, (original, fmt) in enumerate(zip(lossless[:3], ('mp3', 'm4a_aac', 'ogg_vorbis'),
                                          strict=True)):
    x, rate = sf.read(os.path.join(root, original['source_uri']), dtype='float32')
    ext = {'mp3': '.mp3', 'm4a_aac': '.m4a', 'ogg_vorbis': '.ogg'}[fmt]
    minute += 1
    write_upload(root, f'night2-reuploader/copy-{i}{ext}',
                 encode_audio(x, sample_rate=rate, fmt=fmt),
                 sidecar('night2-reuploader', minute, original['transcript']))
    expected[f'night2-reuploader/copy-{i}'] = ('near_duplicate', original['upload_id'])
  exact = lossless[3]
  shutil.copyfile(os.path.join(root, exact['source_uri']),
                  os.path.join(root, 'night2-reuploader', 'exact' + os.path.splitext(
                      exact['source_uri'])[1]))
  with open(os.path.join(root, 'night2-reuploader', 'exact.json'), 'w') as f:
    json.dump(sidecar('night2-reuploader', 90, exact['transcript']), f)
  expected['night2-reuploader/exact'] = ('duplicate', exact['upload_id'])
  # The withdrawn contributor uploads twice more tonight.
  for k in range(2):
    x = speak(SENTENCES[k + 3], 'en-us', 60, 160)
    write_upload(root, f'{withdrawn}/after-{k}.wav',
                 encode_audio(x, sample_rate=48000, fmt='wav_pcm16'),
                 sidecar(withdrawn, 100 + k, SENTENCES[k + 3]))
    expected[f'{withdrawn}/after-{k}'] = ('consent_withdrawn', None)
  # An upload overwritten with another recording: processed again, supersedes its row.
  overwritten = next(r for r in night1 if r['codec'] == 'pcm_16' and r['contributor_id']
                     not in (withdrawn, *(o['contributor_id'] for o in lossless)))
  text = 'My first take was wrong, so here is the sentence read once again slowly.'
  write_upload(root, overwritten['source_uri'],
               encode_audio(speak(text, 'en-us+m3', 25, 140), sample_rate=48000,
                            fmt='wav_pcm16'),
               {**sidecar(overwritten['contributor_id'], 110, text),
                'upload_id': overwritten['upload_id']})
  expected[overwritten['upload_id']] = (ACCEPTED, None)
  # A night-1 upload copied over itself: touched, same content, not processed again.
  touched = next(r for r in night1 if r['upload_id'] not in expected and
                 r['contributor_id'] != withdrawn)
  data = read(os.path.join(root, touched['source_uri']))
  time.sleep(0.01)
  with open(os.path.join(root, touched['source_uri']), 'wb') as f:
    f.write(data)
  # A silent upload: a reject of tonight.
  write_upload(root, 'night2-di/silence.wav',
               encode_audio(np.zeros(48000 * 2, np.float32), sample_rate=48000,
                            fmt='wav_pcm16'), sidecar('night2-di', 120, 'nothing'))
  expected['night2-di/silence'] = ('silence', None)
  no_consent = speak(SENTENCES[9], 'en-us+f2', 40, 150)
  write_upload(root, 'night2-di/no-consent.wav',
               encode_audio(no_consent, sample_rate=48000, fmt='wav_pcm16'),
               {**sidecar('night2-di', 121, SENTENCES[9]), 'consent': False})
  expected['night2-di/no-consent'] = ('no_consent', None)
  with open(os.path.join(root, 'night2-di', 'lonely.wav'), 'wb') as f:
    f.write(encode_audio(no_consent, sample_rate=48000, fmt='wav_pcm16'))
  expected['night2-di/lonely'] = ('missing_sidecar', None)
  return expected


@pytest.fixture(scope='module')
def nights(tmp_path_factory):
  """Runs the three nights once; the tests below check what they left."""
  sample_root, sample_expected = session_sample(tmp_path_factory)
  base = tmp_path_factory.mktemp('nightly')
  uploads, out, reference_out = str(base / 'uploads'), str(base / 'out'), str(base / 'ref')
  withdrawals = str(base / 'withdrawals.jsonl')
  for name in upload_files(sample_root):
    os.makedirs(os.path.dirname(f'{uploads}/{name}'), exist_ok=True)
    shutil.copy2(f'{sample_root}/{name}', f'{uploads}/{name}')
  open(withdrawals, 'w').close()
  state = {'uploads': uploads, 'out': out, 'sample_expected': sample_expected}

  state['s1'] = run(nightly_argv(uploads, out, 'night1', withdrawals))
  state['latest1'] = latest(out)
  night1 = rows(out, 'night1', 'manifests')
  state['night1'] = night1
  state['night1_delta'] = rows(out, 'night1', 'delta')
  contributors = sorted({r['contributor_id'] for r in night1})
  withdrawn = contributors[3]
  state['withdrawn'] = withdrawn
  state['withdrawn_audio'] = {r['audio']['path']: read(r['audio']['path'])
                              for r in night1 if r['contributor_id'] == withdrawn}
  state['expected2'] = night_two(uploads, night1, withdrawn)
  with open(withdrawals, 'w') as f:
    f.write(json.dumps({'contributor_id': withdrawn, 'date': '2026-11-25'}) + '\n')
  state['night1_digest'] = tree_digest(f'{out}/builds/night1')
  shutil.copytree(out, reference_out)

  # Night 2, killed once its first audio objects are stored.
  stored_before = len(glob.glob(f'{out}/audio/*/*.flac'))
  process = subprocess.Popen(
      [sys.executable, '-m', 'pipelines.nightly',
       *nightly_argv(uploads, out, 'night2', withdrawals)],
      cwd=REPO, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
  deadline = time.monotonic() + 240
  while (len(glob.glob(f'{out}/audio/*/*.flac')) <= stored_before and process.poll() is None
         and time.monotonic() < deadline):
    time.sleep(0.02)
  state['alive_at_kill'] = process.poll() is None
  os.killpg(process.pid, signal.SIGKILL)
  process.wait(timeout=30)
  process.stderr.close()
  state['latest_after_kill'] = latest(out)
  state['night1_digest_after_kill'] = tree_digest(f'{out}/builds/night1')
  state['night2_after_kill'] = os.path.exists(f'{out}/builds/night2')

  state['s2'] = run(nightly_argv(uploads, out, 'night2', withdrawals))
  state['latest2'] = latest(out)
  state['s2_reference'] = run(nightly_argv(uploads, reference_out, 'night2', withdrawals))
  state['reference_out'] = reference_out
  state['night2'] = rows(out, 'night2', 'manifests')
  state['night2_fingerprints'] = rows(out, 'night2', 'fingerprints')
  state['night2_audio'] = tree_digest(f'{out}/audio')

  state['s3'] = run(nightly_argv(uploads, out, 'night3', withdrawals))
  state['latest3'] = latest(out)
  state['s3_again'] = run(nightly_argv(uploads, out, 'night3', withdrawals))
  return state


def test_night_one_publishes_the_sample_as_snapshot_and_delta(nights):
  out, s1 = nights['out'], nights['s1']
  assert nights['latest1'] == 'night1' and s1['base_build'] is None
  accepted = sorted(u for u, o in nights['sample_expected'].items() if o == ACCEPTED)
  assert sorted(r['upload_id'] for r in nights['night1']) == accepted
  assert sorted(r['upload_id'] for r in nights['night1_delta']) == accepted
  assert s1['snapshot']['clips'] == s1['accepted'] == len(accepted)
  assert s1['inputs'] == len(nights['sample_expected'])
  for row in nights['night1']:
    path = row['audio']['path']
    assert row['audio']['bytes'] is None and path.startswith(f'{out}/audio/')
    assert os.path.basename(path) == f'{row["clip_id"]}.flac'


def test_a_kill_in_the_middle_leaves_latest_and_the_last_build_untouched(nights):
  assert nights['alive_at_kill'], 'the run ended before it could be killed'
  assert nights['latest_after_kill'] == 'night1'
  assert nights['night1_digest_after_kill'] == nights['night1_digest']
  assert not nights['night2_after_kill']


def test_night_two_processes_only_new_uploads_and_dedups_against_history(nights):
  out, s2, expected = nights['out'], nights['s2'], nights['expected2']
  assert nights['latest2'] == 'night2' and s2['base_build'] == 'night1'
  assert s2['inputs'] == len(expected) == 30
  delta = rows(out, 'night2', 'delta')
  all_rejects = rows(out, 'night2', 'rejects')
  rejects = {r['upload_id']: r for r in all_rejects if r['upload_id']}
  outcomes = {r['upload_id']: (ACCEPTED, None) for r in delta}
  outcomes.update({u: (r['reason'], r['duplicate_of']) for u, r in rejects.items()})
  unnamed = ('consent_withdrawn', 'no_consent')  # counted, not named (transforms/redact.py)
  assert outcomes == {u: o for u, o in expected.items() if o[0] not in unnamed}
  assert sorted(r['reason'] for r in all_rejects if not r['upload_id']) == sorted(
      o for o, _ in expected.values() if o in unnamed)
  assert s2['rejected']['consent_withdrawn'] == 2 and s2['rejected']['no_consent'] == 1
  for upload_id, (reason, _) in expected.items():
    if reason == 'near_duplicate':
      assert 'published in an earlier build' in rejects[upload_id]['detail']
    if reason == 'duplicate':
      assert "build 'night1'" in rejects[upload_id]['detail']
  assert all(r['build_id'] == 'night2' for r in delta)


def test_night_two_snapshot_is_history_minus_withdrawn_and_superseded_plus_delta(nights):
  out, s2, night1 = nights['out'], nights['s2'], nights['night1']
  withdrawn = nights['withdrawn']
  delta = rows(out, 'night2', 'delta')
  superseded = {u for u, (o, _) in nights['expected2'].items() if o == ACCEPTED} & {
      r['upload_id'] for r in night1}
  assert len(superseded) == 1
  carried = [r for r in night1 if r['contributor_id'] != withdrawn and
             r['upload_id'] not in superseded]
  assert comparable(nights['night2'], out) == comparable(carried + delta, out)
  assert s2['snapshot'] == {
      'clips': len(carried) + len(delta), 'previous': len(night1), 'carried': len(carried),
      'superseded': 1, 'removed_withdrawn': len(nights['withdrawn_audio']),
      'splits': {split: sum(r['split'] == split for r in nights['night2'])
                 for split in ('train', 'dev', 'test')}}
  (new_version,) = [r for r in nights['night2'] if r['upload_id'] in superseded]
  assert new_version['build_id'] == 'night2'
  assert sorted(r['clip_id'] for r in nights['night2_fingerprints']) == sorted(
      r['clip_id'] for r in nights['night2'])
  # Every clip's audio is stored once, named by its content, and decodes.
  for row in nights['night2'][:5] + delta[:5]:
    pcm, rate = sf.read(row['audio']['path'], dtype='int16')
    assert rate == 16000 and len(pcm) / rate == pytest.approx(row['duration_s'], abs=0.01)


def test_withdrawn_contributor_leaves_no_audio_anywhere(nights):
  out, withdrawn, s2 = nights['out'], nights['withdrawn'], nights['s2']
  assert nights['withdrawn_audio']
  assert not [r for r in nights['night2'] if r['contributor_id'] == withdrawn]
  assert not [r for r in nights['night2_fingerprints'] if r['contributor_id'] == withdrawn]
  assert all(not os.path.exists(path) for path in nights['withdrawn_audio'])
  gone = {hashlib.sha256(data).hexdigest() for data in nights['withdrawn_audio'].values()}
  assert not gone & set(nights['night2_audio'].values())
  everything = b''.join(read(p) for p in glob.glob(f'{out}/**', recursive=True)
                        if os.path.isfile(p) and '/builds/night1/' not in p)
  assert not any(data in everything for data in nights['withdrawn_audio'].values())
  assert s2['withdrawals'] == {'contributors': 1}  # how many, never who
  for name in ('rejects', 'withdrawn', 'fingerprints', 'manifests', 'delta', 'state/uploads'):
    assert withdrawn not in repr(rows(out, 'night2', name)), name
  build = [p for p in glob.glob(f'{out}/builds/night2/**', recursive=True) if os.path.isfile(p)]
  assert len(build) > 10
  for path in build:  # not in a table, the summary, the card, the report, a path
    assert withdrawn.encode() not in read(path) and withdrawn not in path, path
  assert s2['snapshot']['removed_withdrawn'] == len(nights['withdrawn_audio'])
  assert s2['audio_objects_deleted'] == len(nights['withdrawn_audio'])
  assert sorted(r['audio_path'] for r in rows(out, 'night2', 'withdrawn')) == sorted(
      nights['withdrawn_audio'])


def test_each_night_has_a_card_a_report_and_scorecards_without_the_withdrawn(nights):
  out, withdrawn = nights['out'], nights['withdrawn']
  build = f'{out}/builds/night2'
  card = yaml.safe_load(read(f'{build}/README.md').decode().split('---\n')[1])
  splits = card['dataset_info']['splits']
  assert sum(split['num_examples'] for split in splits) == len(nights['night2'])
  report = read(f'{build}/report.html').decode()
  assert report.count('<svg') >= 8 and withdrawn not in report
  scorecards = pq.read_table(f'{build}/contributors.parquet').to_pylist()
  assert scorecards and withdrawn not in {row['contributor_id'] for row in scorecards}


def test_a_snapshot_loads_with_datasets_and_its_audio_decodes_from_the_store(nights):
  datasets = pytest.importorskip('datasets')
  loaded = datasets.load_dataset('parquet', data_dir=f'{nights["out"]}/builds/night2/manifests')
  # A split without clips has no file (an empty one would fail the whole load).
  assert set(loaded) == {row['split'] for row in nights['night2']}
  assert sum(len(part) for part in loaded.values()) == len(nights['night2'])
  row = loaded['train'][0]
  assert row['audio']['sampling_rate'] == 16000
  assert len(row['audio']['array']) == pytest.approx(row['duration_s'] * 16000, abs=1)


def test_rerun_after_the_kill_gives_the_rows_of_an_uninterrupted_run(nights):
  out, ref = nights['out'], nights['reference_out']
  for name in ('manifests', 'delta', 'rejects', 'fingerprints', 'state/uploads', 'withdrawn'):
    mine, theirs = rows(out, 'night2', name), rows(ref, 'night2', name)
    if name in ('manifests', 'delta'):
      assert comparable(mine, out) == comparable(theirs, ref), name
    elif name == 'withdrawn':
      assert sorted(r['clip_id'] for r in mine) == sorted(r['clip_id'] for r in theirs)
    else:  # no output path in these rows: equal as they are
      assert sorted(map(repr, mine)) == sorted(map(repr, theirs)), name
  assert not os.path.exists(f'{out}/_staging')
  for path in glob.glob(f'{out}/audio/*/*.flac'):  # no partial object under a final name
    assert sf.info(path).frames > 0


def test_night_three_with_nothing_new_publishes_the_same_snapshot(nights):
  out, s3 = nights['out'], nights['s3']
  assert nights['latest3'] == 'night3' and s3['base_build'] == 'night2'
  assert s3['inputs'] == 0 and s3['accepted'] == 0 and rows(out, 'night3', 'delta') == []
  assert comparable(rows(out, 'night3', 'manifests'), out) == comparable(nights['night2'], out)
  assert tree_digest(f'{out}/audio') == nights['night2_audio']
  again = nights['s3_again']
  assert again['already_published'] and {k: v for k, v in again.items() if k not in (
      'path', 'already_published', 'audio_objects_deleted', 'builds_deleted')} == {
      k: v for k, v in s3.items() if k not in ('path', 'audio_objects_deleted',
                                              'builds_deleted')}


def test_retention_keeps_the_last_builds_and_never_latest(nights):
  out = nights['out']
  assert nights['s3']['builds_deleted'] == ['night1']
  assert sorted(os.listdir(f'{out}/builds')) == ['night2', 'night3']


def test_cli_failure_is_visible_in_the_exit_code_and_last_line(tmp_path, capsys):
  bad = tmp_path / 'withdrawals.jsonl'
  bad.write_text('{"contributor_id": "x", "date": "yesterday"}\n')
  code = main(['--uploads', str(tmp_path), '--output', str(tmp_path / 'out'),
               '--set', f'nightly.withdrawals={bad}'])
  last = capsys.readouterr().err.strip().splitlines()[-1]
  assert code == 2 and last.startswith('FAILED nightly:') and 'line 1' in last
  assert not (tmp_path / 'out').exists()
