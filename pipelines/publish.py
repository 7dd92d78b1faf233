"""Publishing a build: verify it in its staging place, promote it, move LATEST.

A build is written under ``OUT/_staging/ID.NONCE/``; only when its tables are
complete and its row counts agree with the summary is it moved to
``OUT/builds/ID/`` (replacing an earlier build of the same id whole), and only
then does ``OUT/LATEST`` name it. A reader never sees a half-written build.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid

import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

__all__ = ['ConservationError', 'staging_dir', 'count_rows', 'verify_build', 'promote',
           'write_latest', 'read_json', 'write_json', 'build_dir']


class ConservationError(RuntimeError):
  """The build lost or invented an upload; it is not published."""


def _is_local(uri: str) -> bool:
  return FileSystems.get_scheme(uri) in (None, 'file')


def build_dir(output: str, build_id: str) -> str:
  return f'{output}/builds/{build_id}'


def staging_dir(output: str, build_id: str) -> str:
  """A fresh directory for one attempt at building ``build_id``."""
  return f'{output}/_staging/{build_id}.{uuid.uuid4().hex[:12]}'


def _files(prefix: str) -> list[str]:
  result = FileSystems.match([f'{prefix}/**'])[0]
  return sorted(m.path for m in result.metadata_list)


def read_json(path: str) -> dict:
  with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
    return json.loads(f.read().decode('utf-8'))


def write_json(path: str, doc: dict) -> None:
  data = (json.dumps(doc, indent=2, sort_keys=True) + '\n').encode('utf-8')
  with FileSystems.create(path, mime_type='application/json',
                          compression_type=CompressionTypes.UNCOMPRESSED) as f:
    f.write(data)


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
  """Moves a verified staging directory to ``final``, replacing what was there."""
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
  old = _files(final)
  if old:
    FileSystems.delete(old)
  sources = _files(staging)
  FileSystems.rename(sources, [final + path[len(staging):] for path in sources])


def write_latest(output: str, build_id: str) -> None:
  """Points ``OUT/LATEST`` at ``build_id`` (atomically on a local disk)."""
  path = f'{output}/LATEST'
  if _is_local(output):
    tmp = f'{path}.{uuid.uuid4().hex[:8]}.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
      f.write(build_id + '\n')
    os.replace(tmp, path)
    return
  with FileSystems.create(path, mime_type='text/plain',
                          compression_type=CompressionTypes.UNCOMPRESSED) as f:
    f.write((build_id + '\n').encode('utf-8'))
