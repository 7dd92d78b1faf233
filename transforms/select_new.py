"""Nightly builds: keep only the uploads that are new or changed since the last build.

* :class:`SelectNewUploads`: listed uploads (:data:`~transforms.discover.Stem`)
  and the last build's upload state rows
  (:data:`~schemas.tables.UPLOAD_STATE_SCHEMA`) -> the uploads to process
  tonight, and tonight's state rows.

An upload is known by its stem (its path without extension) and the SHA-256
of its files' content (audio and sidecar): a file overwritten with other bytes
makes the upload new again. Reading every file every night would cost as much
as the history, so the listing's size and update time of each file are kept
too: an upload whose files all list as before is unchanged without being read.
Only an upload whose listing differs is read and hashed; if its content is the
one already processed (a file copied or touched), it is still unchanged.

The state names no upload: stems and file paths are kept as their SHA-256
(:func:`path_sha256`), since a path often names the contributor, and the state
outlives consent withdrawal.

Counters (``select_new.*``): ``new``, ``changed``, ``unchanged``,
``touched_unchanged``, ``gone`` (in the state, no longer listed: the row is
kept), ``unreadable`` (processed, so that a later stage rejects it with a
reason; not recorded, so it is tried again next night).
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from transforms.common import inc_counter
from transforms.discover import split_stem

__all__ = ['SelectNewUploads', 'Selected', 'listing_stamp', 'path_sha256', 'STAGE']

STAGE = 'select_new'
_STATE = 'state'
_CHUNK_BYTES = 1 << 20


def path_sha256(path: str) -> str:
  """The SHA-256 of a path (UTF-8), in hex: how the state knows an upload."""
  return hashlib.sha256(path.encode('utf-8', 'surrogatepass')).hexdigest()


def listing_stamp(files: Iterable[Any]) -> list[dict[str, Any]]:
  """The files' path hashes, sizes and update times, sorted: what the listing says.

  Accepts :class:`~apache_beam.io.fileio.FileMetadata` or state-row dicts.
  """
  stamp = []
  for f in files:
    if isinstance(f, dict):
      stamp.append({'path_sha256': f['path_sha256'], 'size_bytes': int(f['size_bytes']),
                    'updated_s': float(f['updated_s'])})
    else:
      stamp.append({'path_sha256': path_sha256(f.path), 'size_bytes': int(f.size_in_bytes),
                    'updated_s': float(f.last_updated_in_seconds or 0.0)})
  return sorted(stamp, key=lambda f: f['path_sha256'])


def content_sha256(files: Iterable[fileio.FileMetadata]) -> str:
  """SHA-256 over each file's extension and bytes, in path order."""
  digest = hashlib.sha256()
  for meta in sorted(files, key=lambda m: m.path):
    _, ext = split_stem(posixpath.basename(meta.path))
    digest.update(f'{ext}\0'.encode())
    with FileSystems.open(meta.path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
      while chunk := f.read(_CHUNK_BYTES):
        digest.update(chunk)
    digest.update(b'\0')
  return digest.hexdigest()


class _SelectFn(beam.DoFn):
  """(stem hash, {'files': [(stem, [FileMetadata])], 'state': [row]}) -> stems to
  process, and state rows on the ``state`` output."""
  def __init__(self, *, build_id: str):
    self._build_id = build_id

  def process(self, element: tuple[str, dict[str, list]]) -> Iterator:
    key, joined = element
    stem = next((stem for stem, _ in joined['files']), None)
    files = [meta for _, group in joined['files'] for meta in group]
    previous = min(joined['state'], key=lambda row: row['build_id'], default=None)
    if not files:
      if previous is not None:
        inc_counter(STAGE, 'gone')
        yield beam.pvalue.TaggedOutput(_STATE, previous)
      return
    stamp = listing_stamp(files)
    if previous is not None and listing_stamp(previous['files']) == stamp:
      inc_counter(STAGE, 'unchanged')
      yield beam.pvalue.TaggedOutput(_STATE, previous)
      return
    try:
      digest = content_sha256(files)
    except Exception:  # noqa: BLE001 -- vanished or unreadable: the next stages reject it
      inc_counter(STAGE, 'unreadable')
      yield stem, files
      return
    if previous is not None and previous['content_sha256'] == digest:
      inc_counter(STAGE, 'touched_unchanged')
      yield beam.pvalue.TaggedOutput(_STATE, {**previous, 'files': stamp})
      return
    inc_counter(STAGE, 'changed' if previous is not None else 'new')
    yield stem, files
    yield beam.pvalue.TaggedOutput(_STATE, {'stem_sha256': key, 'files': stamp,
                                            'content_sha256': digest,
                                            'build_id': self._build_id})


class Selected(NamedTuple):
  """The uploads to process tonight, and tonight's state rows (all uploads known)."""
  stems: beam.PCollection
  state: beam.PCollection


class SelectNewUploads(beam.PTransform):
  """Drops the uploads an earlier build processed with the same content.

  Args:
    state: the last build's upload state rows (empty on the first night).
    build_id: stamped on the state rows of the uploads processed tonight.

  Input: listed uploads, ``(stem, [FileMetadata])``.
  """
  def __init__(self, *, state: beam.PCollection, build_id: str):
    super().__init__()
    self._state = state
    self._build_id = build_id

  def expand(self, stems: beam.PCollection) -> Selected:
    listed = stems | 'ListedByStem' >> beam.MapTuple(
        lambda stem, files: (path_sha256(stem), (stem, list(files))))
    known = self._state | 'StateByStem' >> beam.Map(lambda row: (row['stem_sha256'], row))
    outputs = ({'files': listed, 'state': known}
               | 'JoinState' >> beam.CoGroupByKey()
               | 'Select' >> beam.ParDo(_SelectFn(build_id=self._build_id)).with_outputs(
                   _STATE, main='stems'))
    return Selected(outputs.stems, outputs[_STATE])
