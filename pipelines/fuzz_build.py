"""Fuzz the whole build: hostile uploads in, every one accounted for, nothing escapes.

    python -m pipelines.fuzz_build --work fuzz [--count 1000] [--seed 0] \\
        [--max_rss_mb 2048] [any build_dataset flag, e.g. --direct_num_workers=1]

Writes :func:`~pipelines.fuzz_corpus.fuzz_corpus` uploads under
``WORK/uploads``, runs ``pipelines.build_dataset`` on them in a child process
(into ``WORK/out``) and checks:

* the build exits 0 within ``--build_timeout_s``;
* conservation: every upload is in exactly one row, of the manifests or the
  rejects, and the summary's counts agree;
* every reject has a reason other than ``internal_error`` and a detail;
* ``report.html`` holds no ``<script>`` (ids and transcripts carry some);
* no process of the build (launcher, Beam workers, decoder children) peaked
  above ``--max_rss_mb`` of resident memory (sampled from ``/proc`` every
  0.1 s: ``VmHWM``, each process's own high-water mark);
* nothing outside ``WORK/out/builds/ID/`` and ``WORK/out/LATEST`` changed
  (hostile ids name ``../``, absolute paths, URLs), and ``/tmp/fuzz-escape``,
  one of those ids, does not exist.

Writes ``WORK/fuzz_report.json`` (inputs by category, accepted, rejects by
reason, crashes, timeouts, memory peaks, seconds) and exits 1 if a check failed.
"""

from __future__ import annotations

import argparse
import collections
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

import pyarrow.dataset as ds

from pipelines.fuzz_corpus import fuzz_corpus, write_corpus
from pipelines.publish import write_json

__all__ = ['run', 'main', 'MemorySampler']

BUILD_ID = 'fuzz'
ESCAPE_TARGET = '/tmp/fuzz-escape'
_ROLES = (('transforms.decode_process', 'decoder'), ('sdk_worker_main', 'beam_worker'),
          ('worker_pool_main', 'beam_worker'), ('pipelines.build_dataset', 'launcher'))


def _children(pid: int) -> list[int]:
  found = []
  for task in glob.glob(f'/proc/{pid}/task/*/children'):
    try:
      with open(task, encoding='ascii') as f:
        found += [int(child) for child in f.read().split()]
    except OSError:  # the task ended between listing and reading
      continue
  return found


def _status_kb(pid: int, key: str) -> int | None:
  try:
    with open(f'/proc/{pid}/status', encoding='ascii') as f:
      return next((int(line.split()[1]) for line in f if line.startswith(f'{key}:')), None)
  except OSError:
    return None


def _role(pid: int) -> str:
  try:
    with open(f'/proc/{pid}/cmdline', 'rb') as f:
      cmdline = f.read().replace(b'\0', b' ').decode('utf-8', 'replace')
  except OSError:
    return 'other'
  return next((role for needle, role in _ROLES if needle in cmdline), 'other')


class MemorySampler(threading.Thread):
  """Samples the peak resident memory of a process tree until :meth:`stop`.

  ``peaks`` maps each pid seen to ``(role, VmHWM in MB)``.
  """
  def __init__(self, root_pid: int, *, interval_s: float = 0.1):
    super().__init__(daemon=True)
    self._root = root_pid
    self._interval_s = interval_s
    self._stopped = threading.Event()
    self.peaks: dict[int, tuple[str, float]] = {}

  def run(self) -> None:
    while not self._stopped.is_set():
      self.sample()
      self._stopped.wait(self._interval_s)

  def sample(self) -> None:
    pending, seen = [self._root], set()
    while pending:
      pid = pending.pop()
      if pid in seen:
        continue
      seen.add(pid)
      peak_kb = _status_kb(pid, 'VmHWM')
      if peak_kb is not None:
        role = self.peaks.get(pid, (None,))[0] or _role(pid)
        self.peaks[pid] = (role, max(peak_kb / 1024, self.peaks.get(pid, ('', 0.0))[1]))
      pending += _children(pid)

  def stop(self) -> None:
    self._stopped.set()
    self.join()

  def by_role(self) -> dict[str, dict]:
    roles = collections.defaultdict(list)
    for role, peak_mb in self.peaks.values():
      roles[role].append(peak_mb)
    return {role: {'processes': len(peaks), 'peak_rss_mb': round(max(peaks), 1)}
            for role, peaks in sorted(roles.items())}


def _tree_digest(root: str, *, skip: Sequence[str]) -> dict[str, str]:
  digest = {}
  for path in glob.glob(f'{root}/**', recursive=True):
    if os.path.isfile(path) and not any(path.startswith(s) for s in skip):
      with open(path, 'rb') as f:
        digest[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
  return digest


def _rows(path: str) -> list[dict]:
  files = glob.glob(f'{path}/**/*.parquet', recursive=True)
  return ds.dataset(files, format='parquet').to_table(
      columns=['source_uri', *(['reason', 'detail'] if 'rejects' in path else [])]
  ).to_pylist() if files else []


def _check(summary: dict, memory: dict, *, out: str, expected_paths: set[str],
           max_rss_mb: float) -> list[str]:
  """The failed checks, as sentences (none: all passed)."""
  failures = []
  rejected = sum(summary['rejected'].values())
  if summary['inputs'] != len(expected_paths) or summary['accepted'] + rejected != len(
      expected_paths):
    failures.append(f'conservation: {len(expected_paths)} uploads, the summary counts '
                    f'{summary["inputs"]} in, {summary["accepted"]} accepted, {rejected} rejected')
  build = f'{out}/builds/{BUILD_ID}'
  manifests, rejects = _rows(f'{build}/manifests'), _rows(f'{build}/rejects')
  seen = collections.Counter(r['source_uri'] for r in manifests + rejects)
  missing = sorted(expected_paths - set(seen))
  twice = sorted(path for path, n in seen.items() if n > 1)
  invented = sorted(set(seen) - expected_paths)
  for what, paths in (('in no table', missing), ('in several rows', twice),
                      ('not an upload', invented)):
    if paths:
      failures.append(f'{len(paths)} uploads {what}, e.g. {paths[:3]}')
  with open(f'{build}/report.html', encoding='utf-8') as f:
    if '<script' in f.read().lower():  # hostile ids and transcripts are shown as text
      failures.append('report.html holds a <script> element')
  internal = [r for r in rejects if r['reason'] == 'internal_error' or not r['detail']]
  if internal:
    failures.append(f'{len(internal)} rejects without a meaningful reason, e.g. '
                    f'{internal[0]["source_uri"]}: {internal[0]["detail"][-300:]}')
  for role, peak in memory.items():
    if peak['peak_rss_mb'] > max_rss_mb:
      failures.append(f'a {role} process peaked at {peak["peak_rss_mb"]} MB, above the '
                      f'bound of {max_rss_mb} MB')
  return failures


def run(argv: Sequence[str] | None = None) -> dict:
  """Builds the corpus, runs the build on it and checks it; returns the report."""
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--work', required=True, help='a directory for uploads and output')
  parser.add_argument('--count', type=int, default=1000, help='uploads, at least')
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--max_rss_mb', type=float, default=2048.0,
                      help='the memory bound of every process of the build')
  parser.add_argument('--build_timeout_s', type=float, default=1800.0)
  args, build_flags = parser.parse_known_args(argv)
  work = os.path.abspath(args.work)
  uploads, out = f'{work}/uploads', f'{work}/out'
  for path in (uploads, out):
    shutil.rmtree(path, ignore_errors=True)
  started = time.monotonic()
  cases = write_corpus(fuzz_corpus(count=args.count, seed=args.seed), uploads)
  before = _tree_digest(work, skip=[out])
  escape_existed = os.path.exists(ESCAPE_TARGET)

  command = [sys.executable, '-m', 'pipelines.build_dataset', '--uploads', uploads,
             '--output', out, '--build_id', BUILD_ID, *build_flags]
  build_started = time.monotonic()
  with open(f'{work}/build.log', 'wb') as log:
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                               cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sampler = MemorySampler(process.pid)
    sampler.start()
    try:
      returncode = process.wait(timeout=args.build_timeout_s)
    except subprocess.TimeoutExpired:
      process.kill()
      returncode = process.wait()
    finally:
      sampler.stop()
  build_s = time.monotonic() - build_started

  report = {'command': ' '.join(['python -m pipelines.fuzz_build', *(argv or sys.argv[1:])]),
            'inputs': len(cases),
            'by_category': dict(sorted(collections.Counter(c.category for c in cases).items())),
            'build_exit_code': returncode, 'build_s': round(build_s, 1),
            'total_s': None, 'memory': sampler.by_role(), 'max_rss_mb': args.max_rss_mb}
  failures = []
  if returncode != 0:
    failures.append(f'the build exited {returncode}; see {work}/build.log')
  else:
    with open(f'{out}/builds/{BUILD_ID}/summary.json', encoding='utf-8') as f:
      summary = json.load(f)
    report['accepted'] = summary['accepted']
    report['rejects_by_reason'] = dict(sorted(summary['rejected'].items()))
    report['crashes'] = {reason: summary['rejected'].get(reason, 0)
                         for reason in ('internal_error', 'decoder_crashed')}
    report['decode_timeouts'] = summary['rejected'].get('decode_timeout', 0)
    expected = {os.path.join(uploads, c.name) for c in cases}
    failures += _check(summary, report['memory'], out=out, expected_paths=expected,
                       max_rss_mb=args.max_rss_mb)
  changed = sorted(path for path, digest in _tree_digest(work, skip=[out]).items()
                   if before.get(path) != digest and path != 'build.log')
  outside = sorted(os.path.relpath(p, out) for p in glob.glob(f'{out}/**', recursive=True)
                   if os.path.isfile(p) and not p.startswith(f'{out}/builds/{BUILD_ID}/')
                   and p != f'{out}/LATEST')
  if changed or outside or (os.path.exists(ESCAPE_TARGET) and not escape_existed):
    failures.append(f'files changed outside the build: {changed[:5]} {outside[:5]}')
  report['total_s'] = round(time.monotonic() - started, 1)
  report['failures'] = failures
  write_json(f'{work}/fuzz_report.json', report)
  return report


def main(argv: Sequence[str] | None = None) -> int:
  report = run(argv)
  print(json.dumps({k: v for k, v in report.items() if k != 'failures'}, indent=2))
  for failure in report['failures']:
    print(f'FAILED: {failure}', file=sys.stderr)
  print('fuzz: ' + ('FAILED' if report['failures'] else 'passed') +
        f' ({report["inputs"]} uploads, {report["build_s"]} s build)')
  return 1 if report['failures'] else 0


if __name__ == '__main__':
  sys.exit(main())
