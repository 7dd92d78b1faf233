"""Publishing a build: verify it in its staging place, promote it, move LATEST.

* :func:`publish`: verify, promote and point ``LATEST`` at a build; safe to
  call again after a failure part-way.
* :class:`PublishBuild`: the same as the last stage of a pipeline, for jobs
  whose launcher does not wait for the end (a Dataflow Flex Template).

A build is written under ``OUT/_staging/ID.NONCE/``; only when its tables are
complete and its row counts agree with the summary is it moved to
``OUT/builds/ID/`` (replacing an earlier build of the same id whole), and only
then does ``OUT/LATEST`` name it. A reader never sees a half-written build.
What a killed attempt left in ``OUT/_staging`` is deleted once a later
attempt at the same id is published.

Every file is written, read, listed, copied and deleted through Beam's
FileSystems, so a local directory and ``gs://`` (GcsIO, with its retries of
429 and 5xx answers) take the same path.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator, Sequence

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from transforms.common import inc_counter

__all__ = ['ConservationError', 'staging_dir', 'remove_stale_staging', 'count_rows',
           'verify_build', 'promote', 'write_latest', 'read_json', 'write_json', 'build_dir',
           'publish', 'PublishBuild', 'SUMMARY_NAME']

SUMMARY_NAME = 'summary.json'
_STAGE = 'publish'
_NONCE_CHARS = 12


class ConservationError(RuntimeError):
  """The build lost or invented an upload; it is not published."""


def _is_local(uri: str) -> bool:
  return FileSystems.get_scheme(uri) in (None, 'file')


def build_dir(output: str, build_id: str) -> str:
  return f'{output}/builds/{build_id}'


def staging_dir(output: str, build_id: str) -> str:
  """A fresh directory for one attempt at building ``build_id``."""
  return f'{output}/_staging/{build_id}.{uuid.uuid4().hex[:_NONCE_CHARS]}'


def remove_stale_staging(output: str, build_id: str) -> list[str]:
  """Deletes what earlier, killed attempts at ``build_id`` left in ``OUT/_staging``;
  returns their directories. Call it once the build is published."""
  root = f'{output}/_staging'
  attempt = re.compile(rf'{re.escape(build_id)}\.[0-9a-f]{{{_NONCE_CHARS}}}(\.replaced)?')
  if _is_local(output):
    names = os.listdir(root) if os.path.isdir(root) else []
  else:
    names = {path[len(root) + 1:].split('/', 1)[0] for path in _files(root)}
  stale = [f'{root}/{name}' for name in sorted(names) if attempt.fullmatch(name)]
  if _is_local(output):
    for directory in stale:
      shutil.rmtree(directory)
    if os.path.isdir(root) and not os.listdir(root):
      os.rmdir(root)
  else:
    doomed = [path for directory in stale for path in _files(directory)]
    if doomed:
      FileSystems.delete(doomed)
  return stale


def _files(prefix: str) -> list[str]:
  result = FileSystems.match([f'{prefix}/**'])[0]
  return sorted(m.path for m in result.metadata_list)


def _write_bytes(path: str, data: bytes, *, mime_type: str) -> None:
  with FileSystems.create(path, mime_type=mime_type,
                          compression_type=CompressionTypes.UNCOMPRESSED) as f:
    f.write(data)


def read_json(path: str) -> dict:
  with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
    return json.loads(f.read().decode('utf-8'))


def write_json(path: str, doc: dict) -> None:
  data = (json.dumps(doc, indent=2, sort_keys=True) + '\n').encode('utf-8')
  _write_bytes(path, data, mime_type='application/json')


def count_rows(prefix: str) -> int:
  """Rows in every Parquet file under ``prefix``, from their footers only."""
  total = 0
  for path in _files(prefix):
    if path.endswith('.parquet'):
      with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        total += pq.ParquetFile(f).metadata.num_rows
  return total


def verify_build(staging: str, summary: dict) -> None:
  """Checks conservation and that the written tables hold the summary's rows.

  Raises:
    ConservationError: naming the numbers that disagree.
  """
  rejected = sum(summary['rejected'].values())
  if summary['inputs'] != summary['accepted'] + rejected:
    raise ConservationError(
        f'{summary["inputs"]} uploads went in but {summary["accepted"]} were accepted '
        f'and {rejected} rejected: {summary["inputs"] - summary["accepted"] - rejected} '
        'are unaccounted for')
  manifest_rows = count_rows(f'{staging}/manifests')
  reject_rows = count_rows(f'{staging}/rejects')
  if manifest_rows != summary['accepted'] or reject_rows != rejected:
    raise ConservationError(
        f'the summary counts {summary["accepted"]} accepted and {rejected} rejected, '
        f'but the tables hold {manifest_rows} and {reject_rows} rows')


def promote(staging: str, final: str) -> None:
  """Moves a verified staging directory to ``final``, replacing what was there.

  On a local disk the directory is renamed: the old build is swapped out whole.
  An object store has no directories: every object is copied (a copy is atomic
  per object), objects of an earlier build of the same id that the new one
  lacks are deleted, and only then is the staging copy removed, its
  ``summary.json`` first, so that :func:`publish` can tell after a failure
  whether the copy was complete.
  """
  if _is_local(staging):
    os.makedirs(os.path.dirname(final), exist_ok=True)
    trash = f'{staging}.replaced'
    if os.path.exists(final):
      os.replace(final, trash)
    os.replace(staging, final)
    if os.path.exists(trash):
      shutil.rmtree(trash)
    parent = os.path.dirname(staging)
    if not os.listdir(parent):  # leave no empty _staging behind
      os.rmdir(parent)
    return
  sources = _files(staging)
  targets = [final + path[len(staging):] for path in sources]
  FileSystems.copy(sources, targets)
  stale = sorted(set(_files(final)) - set(targets))
  if stale:
    FileSystems.delete(stale)
  summary = f'{staging}/{SUMMARY_NAME}'
  FileSystems.delete([summary])
  rest = [path for path in sources if path != summary]
  if rest:
    FileSystems.delete(rest)


def write_latest(output: str, build_id: str) -> None:
  """Points ``OUT/LATEST`` at ``build_id``.

  Written beside it and renamed over it: atomic on a local disk, and on an
  object store the copy replaces the object whole.
  """
  path = f'{output}/LATEST'
  tmp = f'{path}.{uuid.uuid4().hex[:8]}.tmp'
  _write_bytes(tmp, (build_id + '\n').encode('utf-8'), mime_type='text/plain')
  FileSystems.rename([tmp], [path])


def publish(*, staging: str, output: str, build_id: str, summary: dict) -> str:
  """Verifies the staged build, promotes it and points ``LATEST`` at it.

  Safe to call again after a failure part-way (a runner retrying the publish
  step): once the staging ``summary.json`` is gone the copy is complete, and
  only ``LATEST`` is written again.

  Args:
    staging: where the build was written (:func:`staging_dir`).
    output: the root of the builds.
    build_id: the build's id.
    summary: the content of the staging ``summary.json``.

  Returns:
    The published build's directory, ``OUT/builds/ID``.

  Raises:
    ConservationError: the build lost or invented uploads, or was never
      written; nothing is published.
  """
  final = build_dir(output, build_id)
  if FileSystems.exists(f'{staging}/{SUMMARY_NAME}'):
    verify_build(staging, summary)
    promote(staging, final)
  else:  # a retry after the copy was complete: finish removing the staging copy
    if not FileSystems.exists(f'{final}/{SUMMARY_NAME}'):
      raise ConservationError(f'neither {staging} nor {final} holds a {SUMMARY_NAME}: '
                              'the build was not written, nothing is published')
    if read_json(f'{final}/{SUMMARY_NAME}') != json.loads(json.dumps(summary)):
      raise ConservationError(f'{final} holds another build than the one staged in '
                              f'{staging}; nothing is published')
    leftovers = _files(staging)
    if leftovers:
      FileSystems.delete(leftovers)
  write_latest(output, build_id)
  remove_stale_staging(output, build_id)
  return final


class _PublishFn(beam.DoFn):
  """summary -> the published directory; side inputs only order it after the writes."""
  def __init__(self, *, staging: str, output: str, build_id: str):
    self._staging = staging
    self._output = output
    self._build_id = build_id

  def process(self, summary: dict, *unused_done: list) -> Iterator[str]:
    final = publish(staging=self._staging, output=self._output, build_id=self._build_id,
                    summary=summary)
    inc_counter(_STAGE, 'published')
    yield final


class PublishBuild(beam.PTransform):
  """The summary -> the published build directory, as the last step of the job.

  For runs whose launcher does not see the end of the job (a Flex Template
  launch), the job verifies, promotes and moves ``LATEST`` itself. A failed
  check fails the job and publishes nothing.

  Args:
    staging: where the build is written.
    output: the root of the builds.
    build_id: the build's id.
    after: PCollections that must be complete before publishing: the written
      tables' file names and the write of ``summary.json``.
  """
  def __init__(self, *, staging: str, output: str, build_id: str,
               after: Sequence[beam.PCollection] = ()):
    super().__init__()
    self._staging = staging
    self._output = output
    self._build_id = build_id
    self._after = tuple(after)

  def expand(self, summary: beam.PCollection) -> beam.PCollection:
    done = [beam.pvalue.AsList(pcoll) for pcoll in self._after]
    return summary | 'Publish' >> beam.ParDo(
        _PublishFn(staging=self._staging, output=self._output, build_id=self._build_id),
        *done)
