"""The jobs :mod:`pipelines.bench_throughput` compares the full build with.

* :func:`floor_job`: decode, resample to 16 kHz and FLAC-encode each file,
  nothing else, with the pipeline's own functions, on all cores: the
  unavoidable work.
* :func:`librosa_job`: what a user would write instead: ``librosa.load(sr=16000)``,
  ``librosa.effects.trim`` and ``soundfile.write`` per file, on all cores.
* :func:`datasets_job`: the same job in Hugging Face ``datasets``:
  ``cast_column(Audio(16000))``, ``map``, ``filter``, ``to_parquet``.

Each returns ``{'audio_s', 'wall_s', 'cpu_s', 'peak_rss_mib', 'files', 'failed',
'errors'}``: the audio it turned out (seconds at the input), the wall and CPU
time of all its processes, and the largest peak RSS of any one of them.
"""

from __future__ import annotations

import collections
import contextlib
import multiprocessing
import os
import resource
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence

import soundfile as sf

from schemas.config import DecodeConfig
from transforms.decode import decode_bytes
from transforms.encode import encode_flac
from transforms.standardize import standardize

__all__ = ['floor_job', 'librosa_job', 'datasets_job', 'ffmpeg_on_path', 'TARGET_RATE_HZ']

TARGET_RATE_HZ = 16000


def _cpu_s(usage: resource.struct_rusage) -> float:
  return usage.ru_utime + usage.ru_stime


def _peak_mib() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _floor_file(path: str) -> tuple[float, int, float, str | None, float]:
  """(audio seconds, pid, peak RSS MiB, error, CPU seconds) of one file."""
  start = time.process_time()
  try:
    with open(path, 'rb') as f:
      decoded = decode_bytes(f.read(), config=DecodeConfig())
    pcm = standardize(decoded.samples, sample_rate=decoded.sample_rate,
                      target_rate=TARGET_RATE_HZ)
    encode_flac(pcm, sample_rate=TARGET_RATE_HZ)
    return (decoded.samples.shape[0] / decoded.sample_rate, os.getpid(), _peak_mib(), None,
            time.process_time() - start)
  except Exception as e:  # noqa: BLE001 -- counted and reported, as a user's loop would
    return 0.0, os.getpid(), _peak_mib(), f'{type(e).__name__}: {e}', time.process_time() - start


def _librosa_file(args: tuple[str, str]) -> tuple[float, int, float, str | None]:
  import librosa  # imported in the workers: the job's own start-up cost
  path, out_dir = args
  try:
    with warnings.catch_warnings():
      warnings.simplefilter('ignore')  # "PySoundFile failed. Trying audioread instead."
      y, rate = librosa.load(path, sr=TARGET_RATE_HZ)
    trimmed, _ = librosa.effects.trim(y)
    name = os.path.splitext(os.path.basename(path))[0] + '.flac'
    sf.write(os.path.join(out_dir, name), trimmed, rate, subtype='PCM_16')
    return y.shape[0] / rate, os.getpid(), _peak_mib(), None
  except Exception as e:  # noqa: BLE001 -- counted and reported, as a user's loop would
    return 0.0, os.getpid(), _peak_mib(), f'{type(e).__name__}: {e}'


def _pool_job(fn: Callable, items: Sequence, *, processes: int | None) -> dict:
  """Runs ``fn`` over ``items`` on a process pool; CPU of the pool's processes."""
  before = resource.getrusage(resource.RUSAGE_CHILDREN)
  self_before = resource.getrusage(resource.RUSAGE_SELF)
  start = time.perf_counter()
  with multiprocessing.get_context('spawn').Pool(processes or os.cpu_count()) as pool:
    results = pool.map(fn, items, chunksize=4)
    pool.close()
    pool.join()
  wall_s = time.perf_counter() - start
  cpu_s = (_cpu_s(resource.getrusage(resource.RUSAGE_CHILDREN)) - _cpu_s(before)
           + _cpu_s(resource.getrusage(resource.RUSAGE_SELF)) - _cpu_s(self_before))
  peaks: dict[int, float] = {}
  errors: collections.Counter = collections.Counter()
  for _, pid, peak, error, *_ in results:
    peaks[pid] = max(peaks.get(pid, 0.0), peak)
    if error:
      errors[error.splitlines()[0][:200]] += 1
  return {'audio_s': sum(r[0] for r in results), 'wall_s': wall_s, 'cpu_s': cpu_s,
          'peak_rss_mib': max(peaks.values()), 'files': len(items),
          'failed': sum(errors.values()), 'errors': dict(errors.most_common(3)),
          'results': results}


def floor_job(paths: Sequence[str], *, processes: int | None = None) -> dict:
  """Decode + resample to 16 kHz + FLAC per file, in plain multiprocessing.

  Its ``cpu_s`` is the CPU of the work on the files (the sum of each file's);
  ``cpu_processes_s``, the pool's processes' whole CPU, adds their start-up,
  which here includes importing Beam (the pipeline's functions live beside its
  stages): not part of the unavoidable work.
  """
  job = _pool_job(_floor_file, list(paths), processes=processes)
  job['cpu_processes_s'] = job['cpu_s']
  job['cpu_s'] = sum(result[4] for result in job.pop('results'))
  return job


@contextlib.contextmanager
def ffmpeg_on_path() -> Iterator[str | None]:
  """Puts imageio-ffmpeg's static ``ffmpeg`` on ``PATH`` (a symlink in a temp dir)
  while the block runs, as for a user with FFmpeg installed; yields its version,
  or None (``PATH`` untouched) when imageio-ffmpeg is not installed."""
  try:
    import imageio_ffmpeg  # noqa: PLC0415 -- the bench extra, not needed elsewhere
  except ImportError:
    yield None
    return
  saved = os.environ.get('PATH', '')
  with tempfile.TemporaryDirectory(prefix='ffmpeg_') as bin_dir:
    os.symlink(imageio_ffmpeg.get_ffmpeg_exe(), os.path.join(bin_dir, 'ffmpeg'))
    os.environ['PATH'] = os.pathsep.join([bin_dir, *filter(None, [saved])])
    try:
      yield imageio_ffmpeg.get_ffmpeg_version()
    finally:
      os.environ['PATH'] = saved


def librosa_job(paths: Sequence[str], *, out_dir: str, processes: int | None = None) -> dict:
  """``librosa.load(sr=16000)`` + ``librosa.effects.trim`` + ``soundfile.write`` per file.

  soundfile reads the wav files; webm and m4a go to audioread, which runs
  FFmpeg's command line: it is put on ``PATH`` (:func:`ffmpeg_on_path`), and
  its processes' CPU counts (they are the pool workers' children, reaped).
  """
  import audioread  # noqa: PLC0415
  os.makedirs(out_dir, exist_ok=True)
  with ffmpeg_on_path() as ffmpeg_version:
    backends = [b.__name__ for b in audioread.available_backends(flush_cache=True)]
    job = _pool_job(_librosa_file, [(p, out_dir) for p in paths], processes=processes)
  del job['results']
  return {**job, 'audioread_backends': backends, 'ffmpeg': ffmpeg_version}


def _trim_example(example: dict) -> dict:
  import librosa
  audio = example['audio']
  trimmed, _ = librosa.effects.trim(audio['array'])
  return {'audio': {'array': trimmed, 'sampling_rate': audio['sampling_rate']},
          'audio_s': len(audio['array']) / audio['sampling_rate'],
          'duration_s': len(trimmed) / audio['sampling_rate']}


def _long_enough(example: dict) -> bool:
  return example['duration_s'] >= 1.0


def datasets_job(paths: Sequence[str], *, out_path: str, processes: int | None = None
                 ) -> dict:
  """The same job in Hugging Face ``datasets``; ``{'error': ...}`` where it fails."""
  try:
    import datasets
  except ImportError as e:
    return {'error': f'datasets is not installed: {e}'}
  datasets.disable_progress_bars()
  before = resource.getrusage(resource.RUSAGE_CHILDREN)
  self_before = resource.getrusage(resource.RUSAGE_SELF)
  start = time.perf_counter()
  try:
    table = datasets.Dataset.from_dict({'audio': list(paths)}).cast_column(
        'audio', datasets.Audio(sampling_rate=TARGET_RATE_HZ))
    table = table.map(_trim_example, num_proc=processes or os.cpu_count())
    table = table.filter(_long_enough)
    table.to_parquet(out_path)
    audio_s = float(sum(table['audio_s']))
  except Exception as e:  # noqa: BLE001 -- what happened is the result
    return {'error': f'{type(e).__name__}: {str(e).splitlines()[0][:300]}',
            'wall_s': time.perf_counter() - start}
  wall_s = time.perf_counter() - start
  cpu_s = (_cpu_s(resource.getrusage(resource.RUSAGE_CHILDREN)) - _cpu_s(before)
           + _cpu_s(resource.getrusage(resource.RUSAGE_SELF)) - _cpu_s(self_before))
  return {'audio_s': audio_s, 'wall_s': wall_s, 'cpu_s': cpu_s,
          'peak_rss_mib': max(_peak_mib(),
                              resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
          'files': len(paths), 'failed': 0, 'errors': {},
          'version': datasets.__version__}
