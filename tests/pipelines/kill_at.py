"""Runs ``pipelines.build_dataset`` and SIGKILLs it, with its decoder children, at a point.

    python -m tests.pipelines.kill_at POINT BUILD_FLAGS...

POINT is one of :data:`POINTS`. The build must run in this process
(``--direct_running_mode=in_memory``) so that the point is reached here. The
kill is real: the process group gets SIGKILL, nothing is flushed or cleaned up,
as when a machine dies.
"""

from __future__ import annotations

import functools
import os
import signal
import sys

from pipelines import build_dataset, publish
from transforms import decode_process, write

POINTS = {
    # (module, attribute of a function or method, call on which to die)
    'decode': (decode_process.DecoderProcess, 'decode', 3),  # the third upload's decode
    'write': (write._ParquetSink, 'write_record', 1),  # once a row group is in a temp file
    'latest': (publish, 'write_latest', 1),  # promoted, LATEST not moved yet
}


def die_on_call(owner, name: str, call: int) -> None:
  """Replaces ``owner.name`` with a wrapper that SIGKILLs the process group on call ``call``
  (after the call for writes, before it otherwise)."""
  original = getattr(owner, name)
  calls = []

  @functools.wraps(original)
  def wrapper(*args, **kwargs):
    calls.append(1)
    if len(calls) == call and name != 'write_record':
      os.killpg(0, signal.SIGKILL)
    result = original(*args, **kwargs)
    if len(calls) == call:
      os.killpg(0, signal.SIGKILL)
    return result
  setattr(owner, name, wrapper)


if __name__ == '__main__':
  die_on_call(*POINTS[sys.argv[1]])
  sys.exit(build_dataset.main(sys.argv[2:]))
