"""What a nightly build costs: it follows the new uploads, not the size of the history.

    python -m pipelines.bench_nightly [--out bench/nightly.json] [--history 200,2000]
        [--new 20,80]

For each history size H, a published state of H clips is synthesized cheaply
(the base build's snapshot, fingerprint and upload-state tables, written with
pyarrow, and H small upload files in the uploads tree, already processed), and
tonight adds N new uploads of synthetic speech (:func:`pipelines.sample_audio.synth_speech`,
3-6 s, wav). The nightly build then runs on the in-process FnApiRunner (one
worker, so that times compare) and the wall time is reported with what the build
did: uploads read, clips published, snapshot rows carried. The H published
fingerprints take part in near-duplicate detection as the reference, as in a
real night: they are fingerprints of synthetic speech (100 recordings, their
bits rotated to make the rest distinct, as bench_dedup scales its set), so
they share LSH keys with tonight's speech as often as speech does.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from pipelines import __version__
from pipelines.bench_dedup import rotate_words
from pipelines.nightly import run
from pipelines.publish import write_json
from pipelines.sample_audio import encode_audio, random_voice, synth_speech
from schemas.config import SplitConfig
from schemas.tables import FINGERPRINT_SCHEMA, UPLOAD_STATE_SCHEMA, manifest_schema
from transforms.fingerprint import HOP_S, fingerprint_with_levels
from transforms.select_new import listing_stamp, path_sha256
from transforms.split import split_of

__all__ = ['synthesize_history', 'add_new_uploads', 'measure_night', 'main']

_BASE = 'base'


def _write(table: pa.Table, path: str) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  pq.write_table(table, path)


_SPOKEN = 100  # distinct recordings behind the history's fingerprints


def _speech_prints(rng: np.random.Generator, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
  """``count`` fingerprints and levels of synthetic speech, 3-6 s long: those of
  :data:`_SPOKEN` recordings, then the same with every word's bits rotated."""
  spoken = []
  for _ in range(min(count, _SPOKEN)):
    x = synth_speech(rng, sample_rate=16000, duration_s=float(rng.uniform(3, 6)),
                     voice=random_voice(rng))
    pcm = np.round(np.clip(x, -1, 0.99997) * 32768).astype(np.int16)
    spoken.append(fingerprint_with_levels(pcm, sample_rate=16000))
  return [(rotate_words(words, i // _SPOKEN), levels)
          for i, (words, levels) in enumerate(spoken[i % _SPOKEN] for i in range(count))]


def synthesize_history(out: str, uploads: str, *, clips: int, seed: int = 0) -> None:
  """A published base build of ``clips`` clips, and their (processed) upload files."""
  rng = np.random.default_rng(seed)
  spoken = _speech_prints(rng, clips)
  base = f'{out}/builds/{_BASE}'
  moment = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
  manifests, prints, state = [], [], []
  for i in range(clips):
    contributor = f'history-{i % 97:03d}'
    stem = f'{uploads}/{contributor}/old-{i:05d}'
    os.makedirs(os.path.dirname(stem), exist_ok=True)
    with open(f'{stem}.wav', 'wb') as f:
      f.write(b'RIFF' + rng.bytes(60))
    with open(f'{stem}.json', 'w') as f:
      json.dump({'contributor_id': contributor, 'consent': True}, f)
    listed = FileSystems.match([f'{stem}.*'])[0].metadata_list
    state.append({'stem_sha256': path_sha256(stem), 'files': listing_stamp(listed),
                  'content_sha256': f'{i:064x}', 'build_id': _BASE})
    clip_id = f'{i:032x}'
    words, levels = spoken[i]
    duration = len(words) * HOP_S
    row = {name: None for name in manifest_schema(sample_rate=16000).names}
    row.update(clip_id=clip_id, upload_id=f'{contributor}/old-{i:05d}',
               contributor_id=contributor, sample_rate=16000,
               audio={'bytes': None, 'path': f'{out}/audio/{clip_id[:2]}/{clip_id}.flac'},
               uploaded_at=moment, split=split_of(contributor, config=SplitConfig()),
               source_uri=f'{stem}.wav', duration_s=duration, build_id=_BASE,
               pipeline_version=__version__)
    manifests.append(row)
    prints.append({'clip_id': clip_id, 'upload_id': row['upload_id'],
                   'contributor_id': contributor, 'uploaded_at': moment,
                   'duration_s': duration, 'build_id': _BASE,
                   'pipeline_version': __version__,
                   'fingerprint': words.astype('<u4').tobytes(),
                   'fingerprint_levels': levels.tobytes()})
  schema = manifest_schema(sample_rate=16000)
  for split in ('train', 'dev', 'test'):
    part = [r for r in manifests if r['split'] == split]
    _write(pa.Table.from_pylist(part, schema=schema),
           f'{base}/manifests/data/{split}-00000-of-00001.parquet')
  _write(pa.Table.from_pylist(prints, schema=FINGERPRINT_SCHEMA),
         f'{base}/fingerprints/part-00000-of-00001.parquet')
  _write(pa.Table.from_pylist(state, schema=UPLOAD_STATE_SCHEMA),
         f'{base}/state/uploads/part-00000-of-00001.parquet')
  write_json(f'{base}/summary.json', {'build_id': _BASE, 'base_build': None,
                                      'snapshot': {'clips': clips}})
  with open(f'{out}/LATEST', 'w') as f:
    f.write(f'{_BASE}\n')


def add_new_uploads(uploads: str, *, count: int, seed: int = 1) -> None:
  """``count`` new wav uploads of synthetic speech from 5 contributors."""
  rng = np.random.default_rng(seed)
  for i in range(count):
    contributor = f'tonight-{i % 5}'
    x = synth_speech(rng, sample_rate=16000, duration_s=float(rng.uniform(3, 6)),
                     voice=random_voice(rng))
    stem = f'{uploads}/{contributor}/new-{i:04d}'
    os.makedirs(os.path.dirname(stem), exist_ok=True)
    with open(f'{stem}.wav', 'wb') as f:
      f.write(encode_audio(x, sample_rate=16000, fmt='wav_pcm16'))
    with open(f'{stem}.json', 'w') as f:
      json.dump({'contributor_id': contributor, 'consent': True}, f)


def measure_night(*, history: int, new: int, workdir: str) -> dict:
  """One night over ``history`` published clips with ``new`` new uploads."""
  out, uploads = f'{workdir}/h{history}-n{new}/out', f'{workdir}/h{history}-n{new}/uploads'
  os.makedirs(uploads, exist_ok=True)
  synthesize_history(out, uploads, clips=history)
  add_new_uploads(uploads, count=new)
  argv = ['--uploads', uploads, '--output', out, '--build_id', 'tonight',
          '--direct_running_mode=in_memory', '--direct_num_workers=1',
          '--set', 'filter.min_speaking_rate_cps=null']
  started, cpu = time.perf_counter(), time.process_time()
  summary = run(argv)
  wall, cpu = time.perf_counter() - started, time.process_time() - cpu
  return {'history': history, 'new': new, 'wall_s': round(wall, 2), 'cpu_s': round(cpu, 2),
          'processed': summary['inputs'], 'accepted': summary['accepted'],
          'snapshot_clips': summary['snapshot']['clips'],
          'carried': summary['snapshot']['carried']}


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--out', default=None, help='write the results as JSON here')
  parser.add_argument('--history', default='200,2000', help='published clips, comma-separated')
  parser.add_argument('--new', default='20,80', help='new uploads, comma-separated')
  args = parser.parse_args(argv)
  histories = [int(h) for h in args.history.split(',')]
  news = [int(n) for n in args.new.split(',')]
  cases = [(h, news[0]) for h in histories] + [(histories[-1], n) for n in news[1:]]
  results = []
  with tempfile.TemporaryDirectory(prefix='bench-nightly-') as workdir:
    # Untimed: the first Beam run in a process pays for imports and caches.
    measure_night(history=10, new=2, workdir=f'{workdir}/warm-up')
    print(f'{"history":>8} {"new":>5} {"wall s":>7} {"cpu s":>6} {"read":>5} '
          f'{"accepted":>8} {"snapshot":>8}')
    for history, new in cases:
      r = measure_night(history=history, new=new, workdir=workdir)
      results.append(r)
      print(f'{r["history"]:8d} {r["new"]:5d} {r["wall_s"]:7.2f} {r["cpu_s"]:6.2f} '
            f'{r["processed"]:5d} {r["accepted"]:8d} {r["snapshot_clips"]:8d}', flush=True)
  if args.out:
    write_json(args.out, results)
  return 0


if __name__ == '__main__':
  sys.exit(main())
