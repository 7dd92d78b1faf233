"""A corpus shaped like real uploads, for :mod:`pipelines.bench_throughput`.

    python -m pipelines.bench_corpus --out DIR [--hours 2] [--seed 0]

writes the uploads under ``DIR/seed-S/Hh/uploads``.

About half webm/opus at 48 kHz, a quarter m4a/AAC at 44.1 kHz and a quarter
16-bit wav at 48 kHz, as browsers and phones upload them; clips of 2 to 15 s
(about 6 s on average) of formant speech (:func:`pipelines.sample_audio.synth_speech`)
from 40 contributors, each with a sidecar whose transcript holds about 11
letters per second of audio, the pace of read speech, so that the pipeline's
filters accept nearly every clip and the full build does all of its work.

Clip ``i`` is drawn from its own seed, so a corpus is the same on every
machine and the first clips of a larger corpus are those of a smaller one:
corpora of several sizes share their files (:func:`make_corpus`).
"""

from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing
import os
import shutil
import sys
from fractions import Fraction

import av
import numpy as np

from pipelines.publish import read_json
from pipelines.sample_audio import EXTENSIONS, encode_audio, random_voice, synth_speech

__all__ = ['make_corpus', 'make_long_upload', 'clip_plan', 'FORMAT_MIX', 'MEAN_DURATION_S',
           'UPLOADS']

FORMAT_MIX = (('webm_opus', 48000, 0.5), ('m4a_aac', 44100, 0.25), ('wav_pcm16', 48000, 0.25))
"""(format, sample rate in Hz, share of clips)."""
MIN_DURATION_S, MAX_DURATION_S = 2.0, 15.0
MEAN_DURATION_S = 6.0
CONTRIBUTORS = 40
LETTERS_PER_S = 11.0
_STAMP = 'corpus.json'
UPLOADS = 'uploads'
_START = datetime.datetime(2026, 3, 1, tzinfo=datetime.timezone.utc)


def clip_plan(index: int, *, seed: int) -> dict:
  """What clip ``index`` is: format, rate, duration, contributor, transcript."""
  rng = np.random.default_rng([seed, index])
  share = rng.random()
  shares = np.cumsum([weight for _, _, weight in FORMAT_MIX])
  fmt, rate, _ = FORMAT_MIX[min(int(np.searchsorted(shares, share, side='right')),
                                len(FORMAT_MIX) - 1)]
  # 2 s plus a gamma of mean 4 s, capped at 15 s: mean ~6 s, a tail of long takes.
  duration_s = float(min(MAX_DURATION_S, MIN_DURATION_S + rng.gamma(2.0, 2.0)))
  letters = max(4, round(duration_s * LETTERS_PER_S))
  words, left = [], letters
  while left > 0:
    size = min(left, int(rng.integers(2, 9)))
    words.append(''.join(chr(ord('a') + int(c)) for c in rng.integers(0, 26, size)))
    left -= size
  return {'index': index, 'fmt': fmt, 'rate': rate, 'duration_s': duration_s,
          'contributor': f'speaker-{int(rng.integers(CONTRIBUTORS)):03d}',
          'transcript': ' '.join(words), 'seed': [seed, index]}


def _stem(clips_dir: str, plan: dict) -> str:
  return os.path.join(clips_dir, plan['contributor'], f'take-{plan["index"]:06d}')


def _write_clip(args: tuple[str, dict]) -> None:
  clips_dir, plan = args
  stem = _stem(clips_dir, plan)
  if os.path.exists(stem + '.json'):  # written last: the clip is complete
    return
  rng = np.random.default_rng([*plan['seed'], 1])
  speech = synth_speech(rng, sample_rate=plan['rate'], duration_s=plan['duration_s'],
                        voice=random_voice(rng))
  os.makedirs(os.path.dirname(stem), exist_ok=True)
  with open(stem + EXTENSIONS[plan['fmt']], 'wb') as f:
    f.write(encode_audio(speech, sample_rate=plan['rate'], fmt=plan['fmt']))
  uploaded = _START + datetime.timedelta(minutes=plan['index'])
  with open(stem + '.json', 'w', encoding='utf-8') as f:
    json.dump({'contributor_id': plan['contributor'], 'consent': True, 'locale': 'en-US',
               'transcript': plan['transcript'],
               'uploaded_at': uploaded.isoformat().replace('+00:00', 'Z')}, f)


def make_corpus(root: str, *, hours: float, seed: int = 0, processes: int | None = None
                ) -> dict:
  """Writes (or reuses) a corpus of about ``hours`` of audio.

  The clips are written once under ``root/seed-S/clips``; the corpus of
  ``hours`` is ``root/seed-S/Hh/uploads``, links to its first clips, so that
  corpora of several sizes share their clips.

  Returns:
    ``{'hours', 'seed', 'clips', 'audio_s', 'formats': {fmt: clips}, 'uploads': DIR}``.
  """
  base = os.path.join(root, f'seed-{seed}')
  corpus_dir = os.path.join(base, f'{hours:g}h')
  stamp = os.path.join(corpus_dir, _STAMP)
  if os.path.exists(stamp):
    return read_json(stamp)
  plans, total_s = [], 0.0
  while total_s < hours * 3600:
    plans.append(clip_plan(len(plans), seed=seed))
    total_s += plans[-1]['duration_s']
  clips_dir = os.path.join(base, 'clips')
  with multiprocessing.Pool(processes or os.cpu_count()) as pool:
    for _ in pool.imap_unordered(_write_clip, [(clips_dir, p) for p in plans], chunksize=4):
      pass
  uploads = os.path.join(corpus_dir, UPLOADS)
  shutil.rmtree(uploads, ignore_errors=True)
  formats: dict[str, int] = {}
  for plan in plans:
    formats[plan['fmt']] = formats.get(plan['fmt'], 0) + 1
    stem = _stem(clips_dir, plan)
    link = _stem(uploads, plan)
    os.makedirs(os.path.dirname(link), exist_ok=True)
    for ext in (EXTENSIONS[plan['fmt']], '.json'):
      os.symlink(os.path.abspath(stem + ext), link + ext)
  done = {'hours': hours, 'seed': seed, 'clips': len(plans), 'audio_s': total_s,
          'formats': formats, 'uploads': uploads}
  with open(stamp, 'w', encoding='utf-8') as f:
    json.dump(done, f, indent=2)
  return done


def make_long_upload(root: str, *, hours: float = 2.0) -> str:
  """One upload of ``hours`` of webm/opus with no duration in its header, the
  way a browser's MediaRecorder streams it; returns its uploads directory.

  Six seconds of speech repeat; frames are encoded as they are made, so the
  file is written in bounded memory too. Reused once written.
  """
  uploads = os.path.join(root, f'long-{hours:g}h', UPLOADS)
  stem = os.path.join(uploads, 'speaker-long', 'live-recording')
  if os.path.exists(stem + '.json'):
    return uploads
  os.makedirs(os.path.dirname(stem), exist_ok=True)
  rate, frame = 48000, 960
  rng = np.random.default_rng(2)
  speech = synth_speech(rng, sample_rate=rate, duration_s=6.0, voice=random_voice(rng))
  speech = np.ascontiguousarray(speech[:len(speech) // frame * frame], np.float32)
  with av.open(stem + '.webm', mode='w', format='webm', options={'live': '1'}) as container:
    stream = container.add_stream('libopus', rate=rate, layout='mono')
    stream.bit_rate = 32_000
    for pts in range(0, int(hours * 3600 * rate), frame):
      start = pts % len(speech)
      chunk = av.AudioFrame.from_ndarray(speech[None, start:start + frame], format='fltp',
                                         layout='mono')
      chunk.sample_rate, chunk.pts, chunk.time_base = rate, pts, Fraction(1, rate)
      container.mux(stream.encode(chunk))
    container.mux(stream.encode(None))
  with open(stem + '.json', 'w', encoding='utf-8') as f:
    json.dump({'contributor_id': 'speaker-long', 'consent': True}, f)
  return uploads


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--out', required=True, help='directory of the uploads')
  parser.add_argument('--hours', type=float, default=2.0)
  parser.add_argument('--seed', type=int, default=0)
  args = parser.parse_args(argv)
  done = make_corpus(args.out, hours=args.hours, seed=args.seed)
  print(f'{done["clips"]} uploads, {done["audio_s"] / 3600:.2f} h of audio in {done["uploads"]}: '
        + ', '.join(f'{n} {fmt}' for fmt, n in sorted(done['formats'].items())))
  return 0


if __name__ == '__main__':
  sys.exit(main())
