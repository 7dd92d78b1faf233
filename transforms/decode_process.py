"""Decoding in a child process: a time limit, a memory bound and crash isolation per upload.

* :class:`DecoderProcess`: runs :func:`transforms.codecs.decode_bytes` in a
  long-lived child Python process, one upload at a time.

Why a process and not a thread: a codec stuck in C (FFmpeg or libsndfile on a
crafted file) can be interrupted neither by a thread nor by a signal handler
of the worker, and a codec that crashes or allocates without bound would take
the worker, and every upload of its bundle, down with it. Here:

* the child is killed once an upload takes longer than ``decode.timeout_s``
  (reject ``decode_timeout``); the next upload starts a fresh child;
* the child's address space may grow by at most ``decode.max_memory_mb``
  beyond what it holds once its libraries are loaded; an allocation past it
  fails (reject ``decode_out_of_memory``), the child is replaced;
* a child that dies (a codec's segfault, the kernel's OOM killer) is replaced
  and the upload tried once more in the fresh one; if that dies too, the
  upload is rejected ``decoder_crashed`` with the signal and the child's last
  words. A crash never goes unrecorded and never fails the build.

The protocol on the child's stdin and stdout is length-prefixed pickles, each
followed by raw bytes: ``DecodeConfig`` and the file's bytes in (read into one
buffer: the child holds a single copy), ``('ok', Decoded)``, ``('reject',
(reason, detail))`` or ``('error', traceback)`` out, each with the child's CPU
seconds for the upload (:attr:`DecoderProcess.last_cpu_s`). The child's own fd 1 is pointed at
its stderr so that nothing a codec prints can corrupt the replies.
"""

from __future__ import annotations

import argparse
import os
import pickle
import resource
import select
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback

from schemas.config import DecodeConfig
from transforms.errors import RejectUpload

__all__ = ['DecoderProcess']

_HEADER = struct.Struct('<QQ')
_READ_CHUNK = 1 << 20
_STDERR_TAIL_BYTES = 2000
_PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class _ChildDied(Exception):
  """The child ended without a reply; the message says how."""


def _wait_readable(fd: int, deadline: float | None) -> None:
  if deadline is not None:
    wait_s = deadline - time.monotonic()
    if wait_s <= 0 or not select.select([fd], [], [], wait_s)[0]:
      raise TimeoutError


def _read_exact(fd: int, size: int, deadline: float | None = None) -> bytearray:
  """``size`` bytes from ``fd`` into one buffer; TimeoutError past ``deadline``,
  EOFError at the end."""
  buffer = bytearray(size)
  view, done = memoryview(buffer), 0
  while done < size:
    _wait_readable(fd, deadline)
    chunk = os.readv(fd, [view[done:done + _READ_CHUNK]])
    if not chunk:
      raise EOFError
    done += chunk
  return buffer


def _read_message(fd: int, deadline: float | None = None):
  """A pickled object, and the raw bytes sent after it (``b''`` for none)."""
  message_size, raw_size = _HEADER.unpack(_read_exact(fd, _HEADER.size, deadline))
  message = pickle.loads(_read_exact(fd, message_size, deadline))
  return message, _read_exact(fd, raw_size, deadline)


def _write_message(fd: int, message, raw: bytes = b'') -> None:
  """Writes ``message`` pickled, then ``raw`` as it is (not copied into the pickle)."""
  data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
  for part in (_HEADER.pack(len(data), len(raw)), data, raw):
    view = memoryview(part)
    while view:
      view = view[os.write(fd, view):]


def _how_it_died(returncode: int | None) -> str:
  if returncode is None:
    return 'closed its pipe'
  if returncode < 0:
    try:
      return f'was killed by {signal.Signals(-returncode).name}'
    except ValueError:
      return f'was killed by signal {-returncode}'
  return f'exited with status {returncode}'


class DecoderProcess:
  """A child process that decodes one upload at a time, within limits.

  Build it in ``DoFn.setup()`` and :meth:`close` it in ``teardown()``; the
  child starts with the first upload.

  Args:
    config: the decode limits, ``timeout_s`` and ``max_memory_mb`` included.
  """
  def __init__(self, *, config: DecodeConfig):
    self._config = config
    self._child: subprocess.Popen | None = None
    self._stderr = None
    self.last_cpu_s = 0.0
    """The child's CPU seconds for the last upload it answered (0 when it did not)."""

  @property
  def pid(self) -> int | None:
    """The running child's process id, or None."""
    return self._child.pid if self._child is not None else None

  def start(self) -> None:
    """Starts the child now (it takes ~0.2 s to load its codecs), not at the first upload."""
    self._running()

  def decode(self, data: bytes):
    """The :class:`~transforms.decode.Decoded` audio of a file's bytes.

    Raises:
      RejectUpload: the decoder's own reasons, or ``decode_timeout``,
        ``decode_out_of_memory``, ``decoder_crashed``.
      RuntimeError: an unexpected error in the child, with its traceback.
    """
    deaths = []
    for _ in range(2):  # a crash may be the machine's, not the upload's: one retry
      try:
        return self._ask(data)
      except _ChildDied as e:
        deaths.append(str(e))
    raise RejectUpload('decoder_crashed', 'the decoder process died on this upload twice: '
                       + ' / '.join(deaths))

  def _ask(self, data: bytes):
    child = self._running()
    self.last_cpu_s = 0.0
    try:
      _write_message(child.stdin.fileno(), self._config, data)
      deadline = time.monotonic() + self._config.timeout_s
      (kind, payload, self.last_cpu_s), _ = _read_message(child.stdout.fileno(), deadline)
    except TimeoutError:
      self.close(kill=True)
      raise RejectUpload('decode_timeout', f'decoding took longer than '
                         f'{self._config.timeout_s:g} s; the decoder was stopped') from None
    except (EOFError, BrokenPipeError) as e:
      raise _ChildDied(self._died()) from e
    if kind == 'ok':
      return payload
    if kind == 'reject':
      if payload[0] == 'decode_out_of_memory':
        self.close(kill=True)  # its heap may be fragmented past use
      raise RejectUpload(*payload)
    raise RuntimeError(f'the decoder process failed:\n{payload}')

  def _running(self) -> subprocess.Popen:
    if self._child is not None and self._child.poll() is None:
      return self._child
    self.close(kill=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [_PROJECT_ROOT, *filter(None, [os.environ.get('PYTHONPATH')])]))
    self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 -- lives as long as the child
    self._child = subprocess.Popen(
        [sys.executable, '-m', 'transforms.decode_process',
         '--max_memory_mb', str(self._config.max_memory_mb)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, env=env,
        bufsize=0, close_fds=True)
    return self._child

  def _died(self) -> str:
    child = self._child
    try:
      returncode = child.wait(timeout=5)
    except subprocess.TimeoutExpired:
      returncode = None
    self._stderr.seek(0, os.SEEK_END)
    self._stderr.seek(max(0, self._stderr.tell() - _STDERR_TAIL_BYTES))
    last_words = self._stderr.read().decode('utf-8', 'replace').strip()
    self.close(kill=True)
    how = f'the decoder {_how_it_died(returncode)}'
    return f'{how}: {last_words.splitlines()[-1]}' if last_words else how

  def close(self, *, kill: bool = False) -> None:
    """Ends the child (at once with ``kill``, else when it has read its stdin's end)."""
    child, self._child = self._child, None
    if child is not None:
      if kill:
        child.kill()
      child.stdin.close()
      try:
        child.wait(timeout=10)
      except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
      child.stdout.close()
    if self._stderr is not None:
      self._stderr.close()
      self._stderr = None


def _limit_memory(max_memory_mb: int) -> None:
  """Caps the address space at what is mapped now plus ``max_memory_mb``."""
  with open('/proc/self/status', encoding='ascii') as f:
    mapped_kb = next(int(line.split()[1]) for line in f if line.startswith('VmSize:'))
  limit = mapped_kb * 1024 + max_memory_mb * 1024 * 1024
  resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _serve(max_memory_mb: int) -> None:
  from transforms.codecs import decode_bytes  # noqa: PLC0415 -- loaded before the cap
  replies = os.dup(1)
  os.dup2(2, 1)  # whatever a codec prints goes to stderr, never into a reply
  requests = sys.stdin.fileno()
  _limit_memory(max_memory_mb)
  while True:
    try:
      config, data = _read_message(requests)
    except EOFError:
      return
    start = time.process_time()
    try:
      reply = ('ok', decode_bytes(data, config=config))
    except RejectUpload as e:
      reply = ('reject', (e.reason, e.detail))
    except MemoryError:
      reply = ('reject', ('decode_out_of_memory', f'decoding needed more than '
                          f'{max_memory_mb} MB (decode.max_memory_mb)'))
    except Exception:  # noqa: BLE001 -- sent back whole: the stage records it
      reply = ('error', traceback.format_exc())
    del data
    _write_message(replies, (*reply, time.process_time() - start))


if __name__ == '__main__':
  parser = argparse.ArgumentParser(description='The decoder child of DecoderProcess.')
  parser.add_argument('--max_memory_mb', type=int, required=True)
  _serve(parser.parse_args().max_memory_mb)
