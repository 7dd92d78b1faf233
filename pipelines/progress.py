"""A live progress line for local builds, so a long build never looks hung.

* :class:`ProgressOptions`: ``--progress auto|always|never`` (auto: only when
  stderr is a terminal and the runner is local).
* :class:`LiveProgress`: a context manager; while open it polls the counts the
  workers write (:mod:`transforms.progress`) and redraws one line on stderr:

      uploads 31/62 (50%) · audio 0.04 h · 3.2 uploads/s · ~10 s left

* :func:`format_progress`: that line, from the numbers.

Off a terminal (CI, a log file, a pipe) nothing is printed and nothing is
added to the pipeline.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import threading
import time
from typing import TextIO

from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.runner import LOCAL_RUNNER
from transforms.progress import DONE, TOTAL, read_progress

__all__ = ['ProgressOptions', 'LiveProgress', 'format_progress', 'live_progress']

POLL_S = 0.5


class ProgressOptions(PipelineOptions):
  """``--progress``: the live progress line of local runs."""
  @classmethod
  def _add_argparse_args(cls, parser):
    parser.add_argument('--progress', choices=('auto', 'always', 'never'), default='auto',
                        help='Live progress line on stderr for local runs; auto: only when '
                        'stderr is a terminal.')


def _duration(seconds: float) -> str:
  seconds = int(round(seconds))
  if seconds < 60:
    return f'{seconds} s'
  if seconds < 3600:
    return f'{seconds // 60} min {seconds % 60:02d} s'
  return f'{seconds // 3600} h {seconds % 3600 // 60:02d} min'


def format_progress(*, done: int, total: int, audio_s: float, rate: float | None) -> str:
  """The progress line; ``rate`` in uploads per second, None while unknown."""
  if total == 0:
    return 'listing uploads...'
  parts = [f'uploads {done}/{total} ({done / total:.0%})', f'audio {audio_s / 3600:.2f} h']
  if done >= total:
    parts.append('deduplicating and writing...')
  elif rate:
    parts += [f'{rate:.1f} uploads/s', f'~{_duration((total - done) / rate)} left']
  else:
    parts.append('measuring the rate...')
  return ' \u00b7 '.join(parts)


class LiveProgress:
  """Polls a directory of worker counts and redraws a line on ``stream``.

  Args:
    stream: where the line goes (stderr); it should be a terminal.
    poll_s: seconds between redraws.

  ``directory`` is where the workers write; :meth:`close` (or leaving the
  ``with`` block) draws the last line, ends it and removes the directory.
  """
  def __init__(self, stream: TextIO, *, poll_s: float = POLL_S):
    self._stream = stream
    self._poll_s = poll_s
    self.directory = tempfile.mkdtemp(prefix='build-progress-')
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._loop, name='progress', daemon=True)
    self._first: tuple[float, int] | None = None

  def line(self, now: float | None = None) -> str:
    counts = read_progress(self.directory)
    done, audio_s = counts[DONE]
    total = counts[TOTAL][0]
    now = time.monotonic() if now is None else now
    rate = None
    if done and self._first is None:
      self._first = (now, done)  # the rate counts from the first finished upload
    if self._first and now - self._first[0] >= 1.0 and done > self._first[1]:
      rate = (done - self._first[1]) / (now - self._first[0])
    return format_progress(done=done, total=total, audio_s=audio_s, rate=rate)

  def _draw(self) -> None:
    self._stream.write('\r\x1b[K' + self.line())
    self._stream.flush()

  def _loop(self) -> None:
    while not self._stop.wait(self._poll_s):
      self._draw()

  def __enter__(self) -> LiveProgress:
    self._thread.start()
    return self

  def close(self) -> None:
    self._stop.set()
    if self._thread.is_alive():
      self._thread.join()
    self._draw()
    self._stream.write('\n')
    self._stream.flush()
    shutil.rmtree(self.directory, ignore_errors=True)

  def __exit__(self, *exc) -> None:
    self.close()


def live_progress(options: PipelineOptions, runner: str | None,
                  stream: TextIO | None = None) -> LiveProgress | None:
  """A :class:`LiveProgress` when this run should show one, else None."""
  stream = sys.stderr if stream is None else stream
  choice = options.view_as(ProgressOptions).progress
  if choice == 'never' or runner != LOCAL_RUNNER:
    return None
  if choice == 'auto' and not (hasattr(stream, 'isatty') and stream.isatty()):
    return None
  return LiveProgress(stream)
