"""Throughput of the full build beside the unavoidable work and what users write instead.

    python -m pipelines.bench_throughput [--hours 2] [--out bench/throughput.json]
        [--corpus bench/corpus] [--skip librosa,datasets]

On one corpus shaped like real uploads (:mod:`pipelines.bench_corpus`), in one
run on one machine:

1. floor: decode + resample to 16 kHz + FLAC per file, nothing else, on all
   cores (:func:`pipelines.bench_jobs.floor_job`);
2. full: ``python -m pipelines.build_dataset`` with the default config as a
   whole process (start-up included): wall time, CPU of its process tree (the
   FnApiRunner's worker processes included), peak RSS of each process, and the
   per-stage timings the build's metrics hold (``--metrics_json``);
3. librosa: ``librosa.load(sr=16000)`` + ``librosa.effects.trim`` +
   ``soundfile.write`` per file on all cores; and the same job in Hugging Face
   ``datasets`` where it runs.

It prints audio-seconds per CPU-second and per wall-second of each, the ratios
full/floor and full/librosa, the cost of each stage and the start-up of a build
of one upload, and writes it all to ``--out``. ``--hours 0.5,8`` runs several
corpus sizes and reports the full build's CPU per audio-hour at each (flatness).
"""

from __future__ import annotations

import argparse
import glob
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from pipelines.bench_corpus import make_corpus, make_long_upload
from pipelines.bench_jobs import datasets_job, ffmpeg_on_path, floor_job, librosa_job
from pipelines.publish import read_json, write_json
from transforms.common import TIME_SUFFIX
from transforms.decode import CHILD_STAGE

__all__ = ['run_build', 'stage_costs', 'measure', 'main', 'STAGES']

STAGES = (  # (row of the table, the STAGE.us distributions it sums)
    ('decode', ('decode', CHILD_STAGE)), ('standardize', ('standardize',)), ('trim', ('trim',)),
    ('measure', ('measure',)), ('fingerprint', ('fingerprint',)),
    ('filter, split', ('filter', 'split')), ('encode (FLAC)', ('encode',)),
    ('dedup (exact + near)', ('dedup', 'near_dedup')), ('write (Parquet)', ('write',)))
"""``measure.us`` includes ``fingerprint.us``: the row ``measure`` is the difference."""
_POLL_S = 0.2


def _tree(root: int) -> list[int]:
  """``root`` and its descendants, from /proc."""
  children: dict[int, list[int]] = {}
  for stat in glob.glob('/proc/[0-9]*/stat'):
    try:
      with open(stat, encoding='ascii', errors='replace') as f:
        fields = f.read().rsplit(')', 1)[1].split()
    except OSError:
      continue
    children.setdefault(int(fields[1]), []).append(int(stat.split('/')[2]))
  found, todo = [], [root]
  while todo:
    pid = todo.pop()
    found.append(pid)
    todo += children.get(pid, [])
  return found


_ROLES = (('pipelines.build_dataset', 'runner'), ('sdk_worker_main', 'SDK worker'),
          ('transforms.decode_process', 'decoder'))


def _role(pid: int) -> str:
  """What a process of the build is, from its command line."""
  try:
    with open(f'/proc/{pid}/cmdline', 'rb') as f:
      command = f.read().decode('utf-8', 'replace')
  except OSError:
    return 'other'
  if command.startswith('/bin/sh'):  # the shell the runner starts each worker with
    return 'other'
  return next((role for marker, role in _ROLES if marker in command), 'other')


def _proc_facts(pid: int) -> tuple[float, float] | None:
  """(peak RSS in MiB, CPU seconds) of a live process, from /proc."""
  try:
    with open(f'/proc/{pid}/status', encoding='ascii') as f:
      hwm = next((line for line in f if line.startswith('VmHWM:')), None)
    with open(f'/proc/{pid}/stat', encoding='ascii', errors='replace') as f:
      fields = f.read().rsplit(')', 1)[1].split()
  except OSError:
    return None
  ticks = os.sysconf('SC_CLK_TCK')
  return (int(hwm.split()[1]) / 1024 if hwm else 0.0,
          (int(fields[11]) + int(fields[12])) / ticks)


class _TreeSampler(threading.Thread):
  """Polls a process tree: each process's peak RSS and CPU, as last seen."""
  def __init__(self, pid: int):
    super().__init__(daemon=True)
    self._pid = pid
    self.facts: dict[int, tuple[float, float]] = {}
    self.roles: dict[int, str] = {}
    self.stop = threading.Event()

  def run(self):
    while not self.stop.is_set():
      for pid in _tree(self._pid):
        facts = _proc_facts(pid)
        if facts:  # a zombie has no VmHWM any more: keep the peak seen while it lived
          self.facts[pid] = (max(facts[0], self.facts.get(pid, (0.0, 0.0))[0]), facts[1])
          if pid not in self.roles:
            self.roles[pid] = _role(pid)
      self.stop.wait(_POLL_S)


def run_build(uploads: str, output: str, *, extra: list[str] = ()) -> dict:
  """Runs ``python -m pipelines.build_dataset`` as a subprocess and measures it."""
  metrics_path = os.path.join(output, 'metrics.json')
  command = [sys.executable, '-m', 'pipelines.build_dataset', '--uploads', uploads,
             '--output', output, '--metrics_json', metrics_path, *extra]
  before = resource.getrusage(resource.RUSAGE_CHILDREN)
  start = time.perf_counter()
  process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
  sampler = _TreeSampler(process.pid)
  sampler.start()
  log = process.communicate()[0].decode('utf-8', 'replace')
  wall_s = time.perf_counter() - start
  sampler.stop.set()
  sampler.join()
  if process.returncode:
    raise RuntimeError(f'the build failed ({process.returncode}):\n{log[-3000:]}')
  after = resource.getrusage(resource.RUSAGE_CHILDREN)
  reaped_s = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
  polled_s = sum(cpu for _, cpu in sampler.facts.values())
  summary = read_json(glob.glob(os.path.join(output, 'builds', '*', 'summary.json'))[0])
  return {'wall_s': wall_s,
          # Workers the runner does not wait for escape RUSAGE_CHILDREN; the poll
          # misses the last 0.2 s of each process: each is a lower bound.
          'cpu_s': max(reaped_s, polled_s), 'cpu_reaped_s': reaped_s, 'cpu_polled_s': polled_s,
          'processes': len(sampler.facts),
          'peak_rss_mib': max((rss for rss, _ in sampler.facts.values()), default=0.0),
          'peak_rss_mib_by_process': sorted((round(rss) for rss, _ in sampler.facts.values()),
                                            reverse=True),
          'by_role': _by_role(sampler),
          'summary': summary, 'metrics': read_json(metrics_path)}


def _by_role(sampler: _TreeSampler) -> dict[str, dict]:
  """Per kind of process: how many, the largest peak RSS, their CPU."""
  roles: dict[str, dict] = {}
  for pid, (rss, cpu) in sampler.facts.items():
    role = roles.setdefault(sampler.roles.get(pid, 'other'),
                            {'processes': 0, 'peak_rss_mib': 0.0, 'cpu_s': 0.0})
    role['processes'] += 1
    role['peak_rss_mib'] = max(role['peak_rss_mib'], rss)
    role['cpu_s'] += cpu
  return roles


def stage_costs(metrics: dict) -> dict[str, float]:
  """Seconds per stage (rows of :data:`STAGES`) from a build's ``--metrics_json``."""
  dists = metrics['distributions']

  def seconds(name: str) -> float:
    return dists.get(f'{name}{TIME_SUFFIX}', {}).get('sum', 0) / 1e6

  costs = {row: sum(seconds(n) for n in names) for row, names in STAGES}
  costs['measure'] -= seconds('fingerprint')
  return costs


def _rates(job: dict) -> dict:
  return {**job, 'audio_s_per_cpu_s': job['audio_s'] / job['cpu_s'] if job['cpu_s'] else None,
          'audio_s_per_wall_s': job['audio_s'] / job['wall_s'] if job['wall_s'] else None}


def _uptime() -> str:
  with open('/proc/loadavg', encoding='ascii') as f:
    return ' '.join(f.read().split()[:3])


def measure(*, hours: float, corpus_root: str, work: str, skip: set[str]) -> dict:
  """Every measurement of one corpus size."""
  corpus = make_corpus(corpus_root, hours=hours)
  paths = sorted(p for p in glob.glob(os.path.join(corpus['uploads'], '*', '*'))
                 if not p.endswith('.json'))
  result = {'hours': hours, 'corpus': corpus, 'load_before': _uptime(), 'cpus': os.cpu_count()}
  result['floor'] = _rates(floor_job(paths))
  full = run_build(corpus['uploads'], os.path.join(work, f'full-{hours:g}h'))
  summary = full.pop('summary')
  full['audio_s'] = corpus['audio_s']
  full['accepted'], full['uploads'] = summary['accepted'], summary['inputs']
  full['rejects'] = summary['rejected']
  full['stages_s'] = stage_costs(full.pop('metrics'))
  result['full'] = _rates(full)
  if 'librosa' not in skip:
    result['librosa'] = _rates(librosa_job(paths, out_dir=os.path.join(work, 'librosa')))
  if 'datasets' not in skip:
    with ffmpeg_on_path():  # in case its Audio decoding can use FFmpeg's command line
      job = datasets_job(paths, out_path=os.path.join(work, 'datasets.parquet'))
    if 'error' in job:  # soundfile cannot open webm or m4a: the part of the corpus it can
      wav = [p for p in paths if p.endswith('.wav')]
      job = {'error_on_whole_corpus': job['error'], 'only': 'wav files',
             **datasets_job(wav, out_path=os.path.join(work, 'datasets-wav.parquet'))}
    result['datasets'] = _rates(job) if 'cpu_s' in job else job
  result['load_after'] = _uptime()
  return result


def startup(*, corpus_root: str, work: str) -> dict:
  """Start-up of a build: the import of its module, and a whole build of one upload."""
  start = time.perf_counter()
  subprocess.run([sys.executable, '-c', 'import pipelines.build_dataset'], check=True)
  import_s = time.perf_counter() - start
  one = os.path.join(work, 'one-upload')
  corpus = make_corpus(corpus_root, hours=1 / 3600)
  build = run_build(corpus['uploads'], one)
  return {'import_s': import_s, 'one_upload_build_wall_s': build['wall_s'],
          'one_upload_build_cpu_s': build['cpu_s'],
          'one_upload_stages_s': sum(stage_costs(build['metrics']).values())}


def long_upload(*, corpus_root: str, work: str) -> dict:
  """A build of one 2-hour webm upload whose header has no duration."""
  uploads = make_long_upload(corpus_root, hours=2.0)
  build = run_build(uploads, os.path.join(work, 'long-upload'))
  size = sum(os.path.getsize(p) for p in glob.glob(os.path.join(uploads, '*', '*.webm')))
  return {'file_mib': size / 2 ** 20, 'wall_s': build['wall_s'],
          'rejected': build['summary']['rejected'], 'accepted': build['summary']['accepted'],
          'peak_rss_mib': build['peak_rss_mib'],
          'peak_rss_mib_by_process': build['peak_rss_mib_by_process']}


def _fmt(value, spec='.1f') -> str:
  return '-' if value is None else format(value, spec)


def format_table(result: dict) -> str:
  """The table ``main`` prints and the README keeps."""
  lines = [f'corpus: {result["corpus"]["clips"]} uploads, '
           f'{result["corpus"]["audio_s"] / 3600:.2f} h of audio ('
           + ', '.join(f'{n} {f}' for f, n in sorted(result['corpus']['formats'].items()))
           + f'); {result["cpus"]} CPUs; load {result["load_before"]} -> {result["load_after"]}',
           '',
           f'{"job":<28}{"audio s/CPU s":>14}{"audio s/wall s":>15}{"wall s":>9}'
           f'{"CPU s":>9}{"peak RSS MiB":>14}']
  for name, label in (('floor', 'floor (decode+16k+FLAC)'), ('full', 'full build'),
                      ('librosa', 'librosa loop'), ('datasets', 'HF datasets')):
    job = result.get(name)
    if not job:
      continue
    if 'cpu_s' not in job:
      lines.append(f'{label:<28}failed: {job.get("error", "?")}')
      continue
    lines.append(f'{label:<28}{_fmt(job["audio_s_per_cpu_s"]):>14}'
                 f'{_fmt(job["audio_s_per_wall_s"]):>15}{job["wall_s"]:>9.1f}'
                 f'{job["cpu_s"]:>9.1f}{job["peak_rss_mib"]:>14.0f}')
    if 'audioread_backends' in job:
      lines.append(f'{"":<28}audioread backends: {", ".join(job["audioread_backends"]) or "none"}'
                   f'; ffmpeg {job.get("ffmpeg") or "not on PATH"} (imageio-ffmpeg)')
    if job.get('failed'):
      lines.append(f'{"":<28}{job["failed"]} of {job["files"]} files failed: '
                   f'{next(iter(job["errors"]))[:90]}')
    if job.get('error_on_whole_corpus'):
      lines.append(f'{"":<28}on the whole corpus: {job["error_on_whole_corpus"][:90]}; '
                   f'measured on the {job["only"]}')
  full, floor = result['full'], result['floor']
  wall_ratio = full['audio_s_per_wall_s'] / floor['audio_s_per_wall_s']
  lines += ['', f'full/floor wall throughput: {wall_ratio:.2f} (target >= 0.6); '
            'full/floor per CPU s: '
            f'{full["audio_s_per_cpu_s"] / floor["audio_s_per_cpu_s"]:.2f}']
  if result.get('librosa') and result['librosa'].get('audio_s_per_cpu_s'):
    lines.append(f'full/librosa per CPU s: '
                 f'{full["audio_s_per_cpu_s"] / result["librosa"]["audio_s_per_cpu_s"]:.2f}'
                 ' (target >= 2)')
  lines.append(f'accepted {full["accepted"]} of {full["uploads"]} uploads; '
               f'CPU per audio hour: {full["cpu_s"] / (full["audio_s"] / 3600):.0f} s; '
               f'{full["processes"]} processes')
  if 'by_role' in full:
    lines.append('full build by process: ' + '; '.join(
        f'{role} x{facts["processes"]}: {facts["cpu_s"]:.1f} CPU s, peak RSS '
        f'{facts["peak_rss_mib"]:.0f} MiB' for role, facts in sorted(full['by_role'].items())
        if role != 'other'))
  lines += ['', f'{"stage (thread CPU)":<24}{"s":>8}{"share":>8}{"ms/audio s":>12}']
  for stage, seconds in [*full['stages_s'].items(),
                         ('Beam, start-up, rest', full['cpu_s'] - sum(full['stages_s'].values()))]:
    lines.append(f'{stage:<24}{seconds:>8.1f}{100 * seconds / full["cpu_s"]:>7.0f}%'
                 f'{1000 * seconds / full["audio_s"]:>12.2f}')
  if 'long_upload' in result:
    long = result['long_upload']
    lines.append(f'a 2 h webm upload without duration ({long["file_mib"]:.0f} MiB): '
                 f'rejected {long["rejected"]}, peak RSS {long["peak_rss_mib"]:.0f} MiB, '
                 f'{long["wall_s"]:.1f} s')
  if 'startup' in result:
    s = result['startup']
    lines += ['', f'start-up: import {s["import_s"]:.1f} s; a build of one upload '
              f'{s["one_upload_build_wall_s"]:.1f} s wall, {s["one_upload_build_cpu_s"]:.1f} s '
              f'CPU, of which its stages {s["one_upload_stages_s"]:.2f} s']
  return '\n'.join(lines)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--hours', default='2', help='corpus hours; several: 0.5,8')
  parser.add_argument('--out', default='bench/throughput.json')
  parser.add_argument('--corpus', default='bench/corpus',
                      help='where corpora are generated once and reused')
  parser.add_argument('--skip', default='', help='jobs to leave out: librosa,datasets')
  args = parser.parse_args(argv)
  skip = {s for s in args.skip.split(',') if s}
  sizes = [float(h) for h in args.hours.split(',')]
  work = tempfile.mkdtemp(prefix='bench_throughput_')
  try:
    report = {'startup': startup(corpus_root=args.corpus, work=work),
              'long_upload': long_upload(corpus_root=args.corpus, work=work), 'runs': []}
    for hours in sizes:
      result = measure(hours=hours, corpus_root=args.corpus, work=work,
                       skip=skip if hours == sizes[0] else skip | {'librosa', 'datasets'})
      report['runs'].append(result)
      print(format_table({**result, 'startup': report['startup'],
                          'long_upload': report['long_upload']}), flush=True)
      print(flush=True)
  finally:
    shutil.rmtree(work, ignore_errors=True)
  if len(sizes) > 1:
    per_hour = [run['full']['cpu_s'] / (run['full']['audio_s'] / 3600) for run in report['runs']]
    report['cpu_s_per_audio_hour'] = dict(zip(args.hours.split(','), per_hour, strict=True))
    print('full build CPU s per audio hour: ' + ', '.join(
        f'{h} h: {v:.0f}' for h, v in report['cpu_s_per_audio_hour'].items())
        + f'; spread {100 * (max(per_hour) / min(per_hour) - 1):.0f}% (target <= 15%)')
  write_json(args.out, report)
  print(f'wrote {args.out}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
