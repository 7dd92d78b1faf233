"""Publishing a nightly build: verify, promote, move LATEST only if nobody else did, then clean up.

* :func:`read_latest`: what ``OUT/LATEST`` names, with the token a later
  :func:`move_latest` checks (the object's generation on GCS, the content on a
  local disk).
* :func:`verify_night`: conservation of uploads and of the snapshot, and the
  row counts of every table against the summary.
* :func:`move_latest`: compare-and-swap of ``LATEST``. On GCS the write carries
  ``if_generation_match`` (0 when there was no LATEST), so of two runs that
  started from the same LATEST only the first to finish publishes; the other
  gets :class:`PublishConflict`. Locally, an exclusive ``flock`` on
  ``OUT/.publish.lock``, a re-read and an atomic rename do the same.
* :func:`finish_night`: verify, check LATEST is still the base, promote (see
  :func:`pipelines.publish.promote`), move LATEST, delete the audio objects of
  withdrawn contributors, apply retention, remove staging leftovers of this id.
  Each step is safe to repeat, so a rerun after a kill at any point finishes.
* :func:`delete_withdrawn_audio` and :func:`apply_retention`: the steps after
  LATEST moves.
* :class:`FinishNight`: :func:`finish_night` as the last step of a job whose
  launcher does not wait for it (a Dataflow Flex Template launch).
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
import shutil
import uuid
from collections.abc import Iterator, Sequence

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from pipelines.publish import (
  SUMMARY_NAME,
  ConservationError,
  build_dir,
  count_rows,
  promote,
  read_json,
)
from transforms.common import inc_counter
from transforms.store import audio_uri

__all__ = ['Latest', 'PublishConflict', 'read_latest', 'move_latest', 'verify_night',
           'finish_night', 'delete_withdrawn_audio', 'apply_retention', 'audio_root',
           'FinishNight', 'TABLES']

_STAGE = 'publish'
LATEST_NAME = 'LATEST'
TABLES = ('manifests', 'delta', 'rejects', 'fingerprints', 'state/uploads', 'withdrawn')
"""The tables of a nightly build, directories under ``OUT/builds/ID/``."""


class PublishConflict(RuntimeError):
  """LATEST moved since this run read it: another run published first."""


@dataclasses.dataclass(frozen=True)
class Latest:
  """What LATEST named when it was read.

  Attributes:
    build_id: the named build, or None when there is no LATEST yet.
    generation: on GCS, the object's generation (0: no object); None locally.
  """
  build_id: str | None
  generation: int | None = None


def _is_local(uri: str) -> bool:
  return FileSystems.get_scheme(uri) in (None, 'file')


def audio_root(output: str) -> str:
  """The content-addressed audio store of an output root."""
  return f'{output}/audio'


def _gcs_blob(path: str):
  from apache_beam.io.gcp.gcsio import GcsIO, parse_gcs_path
  bucket, name = parse_gcs_path(path)
  return GcsIO().client.bucket(bucket).blob(name)


def read_latest(output: str) -> Latest:
  """The build LATEST names now, and the token :func:`move_latest` compares."""
  path = f'{output}/{LATEST_NAME}'
  if _is_local(output):
    if not os.path.exists(path):
      return Latest(None)
    with open(path, encoding='utf-8') as f:
      return Latest(f.read().strip() or None)
  blob = _gcs_blob(path)
  if not blob.exists():
    return Latest(None, generation=0)
  blob.reload()
  generation = int(blob.generation)  # read before the download, which resets the properties
  data = blob.download_as_bytes(if_generation_match=generation)
  return Latest(data.decode('utf-8').strip() or None, generation=generation)


def move_latest(output: str, build_id: str, *, expected: Latest) -> None:
  """Points LATEST at ``build_id`` if it still names what ``expected`` says.

  Raises:
    PublishConflict: LATEST changed since ``expected`` was read.
  """
  path = f'{output}/{LATEST_NAME}'
  data = (build_id + '\n').encode('utf-8')
  if _is_local(output):
    os.makedirs(output, exist_ok=True)
    with open(f'{output}/.publish.lock', 'a+b') as lock:
      fcntl.flock(lock, fcntl.LOCK_EX)
      now = read_latest(output)
      if now.build_id != expected.build_id:
        raise PublishConflict(f'LATEST names {now.build_id!r}, not {expected.build_id!r} as '
                              f'when this run started: another run published first')
      tmp = f'{path}.{uuid.uuid4().hex[:8]}.tmp'
      with open(tmp, 'wb') as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
      os.replace(tmp, path)
    return
  from google.api_core.exceptions import PreconditionFailed
  blob = _gcs_blob(path)
  # Checked first as well: a server that ignores the precondition (the test
  # emulator) still refuses a conflict that is not a race.
  now = read_latest(output)
  if now.generation != expected.generation:
    raise PublishConflict(f'LATEST names {now.build_id!r} (generation {now.generation}), '
                          f'not generation {expected.generation} as when this run started: '
                          'another run published first')
  try:
    blob.upload_from_string(data, content_type='text/plain',
                            if_generation_match=expected.generation)
  except PreconditionFailed as e:
    raise PublishConflict(f'LATEST changed since generation {expected.generation}: another '
                          'run published first') from e


def _rows(prefix: str) -> int:
  return count_rows(prefix) if FileSystems.match([f'{prefix}/**'])[0].metadata_list else 0


def verify_night(staging: str, summary: dict) -> None:
  """Uploads and the snapshot are conserved, and every table holds the summary's rows.

  Raises:
    ConservationError: naming the numbers that disagree.
  """
  rejected = sum(summary['rejected'].values())
  snapshot = summary['snapshot']
  checks = [
      ('uploads in', summary['inputs'], 'accepted + rejected', summary['accepted'] + rejected),
      ('snapshot clips', snapshot['clips'], 'carried + accepted',
       snapshot['carried'] + summary['accepted']),
      ('last snapshot clips', snapshot['previous'], 'carried + withdrawn + superseded',
       snapshot['carried'] + snapshot['removed_withdrawn'] + snapshot['superseded']),
  ]
  for table, expected in (('manifests', snapshot['clips']), ('fingerprints', snapshot['clips']),
                          ('delta', summary['accepted']), ('rejects', rejected),
                          ('withdrawn', snapshot['removed_withdrawn']),
                          ('state/uploads', summary['uploads_known'])):
    checks.append((f'{table} rows', _rows(f'{staging}/{table}'), 'the summary', expected))
  for what, value, against, expected in checks:
    if value != expected:
      raise ConservationError(f'{what}: {value}, but {against}: {expected}; the build is '
                              'not published')


def delete_withdrawn_audio(output: str, build_id: str) -> int:
  """Deletes the audio objects of the clips the build removed for withdrawn consent;
  returns how many existed.

  The objects' names are derived from the clips' content ids and this output's
  store (:func:`~transforms.store.audio_uri`), never taken from a stored path,
  so nothing outside ``OUT/audio/`` can be deleted.
  """
  prefix = f'{build_dir(output, build_id)}/withdrawn'
  clip_ids = []
  for meta in FileSystems.match([f'{prefix}/*.parquet'])[0].metadata_list:
    with FileSystems.open(meta.path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
      clip_ids += pq.read_table(f, columns=['clip_id']).column('clip_id').to_pylist()
  paths = {audio_uri(audio_root(output), clip_id) for clip_id in clip_ids}
  existing = sorted(p for p in paths if FileSystems.exists(p))
  if existing:
    FileSystems.delete(existing)
  return len(existing)


def _build_ids(output: str) -> set[str]:
  root = f'{output}/builds/'
  if _is_local(output):
    return set(os.listdir(root)) if os.path.isdir(root) else set()
  matched = FileSystems.match([f'{root}**'])[0].metadata_list
  return {m.path[len(root):].split('/', 1)[0] for m in matched}


def _lineage(output: str, head: str, keep: int) -> list[str]:
  """LATEST's build and its bases, newest first, at most ``keep``."""
  chain = [head]
  while len(chain) < keep:
    summary_path = f'{build_dir(output, chain[-1])}/{SUMMARY_NAME}'
    if not FileSystems.exists(summary_path):
      break
    base = read_json(summary_path).get('base_build')
    if not base or base in chain:
      break
    chain.append(base)
  return chain


def apply_retention(output: str, *, keep: int) -> list[str]:
  """Deletes every build but the ``keep`` newest of LATEST's lineage; returns their ids.

  The build LATEST names is always kept, whatever ``keep`` is.
  """
  latest = read_latest(output).build_id
  if latest is None:
    return []
  kept = set(_lineage(output, latest, max(keep, 1)))
  doomed = sorted(_build_ids(output) - kept)
  for build_id in doomed:
    path = build_dir(output, build_id)
    if _is_local(output):
      shutil.rmtree(path)
    else:
      files = [m.path for m in FileSystems.match([f'{path}/**'])[0].metadata_list]
      if files:
        FileSystems.delete(files)
  return doomed


def _remove_staging_leftovers(output: str, build_id: str) -> None:
  """Staging copies of this build id left by killed attempts."""
  root = f'{output}/_staging'
  if _is_local(output):
    if not os.path.isdir(root):
      return
    for name in os.listdir(root):
      if name.startswith(f'{build_id}.'):
        shutil.rmtree(f'{root}/{name}', ignore_errors=False)
    if not os.listdir(root):
      os.rmdir(root)
    return
  files = [m.path for m in FileSystems.match([f'{root}/{build_id}.*'])[0].metadata_list]
  if files:
    FileSystems.delete(files)


def after_publish(output: str, build_id: str, *, keep_builds: int) -> dict:
  """The steps after LATEST names ``build_id``; safe to repeat."""
  deleted = delete_withdrawn_audio(output, build_id)
  removed = apply_retention(output, keep=keep_builds)
  _remove_staging_leftovers(output, build_id)
  return {'audio_objects_deleted': deleted, 'builds_deleted': removed}


def finish_night(*, staging: str, output: str, build_id: str, summary: dict,
                 expected: Latest, keep_builds: int) -> dict:
  """Verifies, promotes and publishes the staged build, then cleans up.

  Returns:
    What :func:`after_publish` did.

  Raises:
    ConservationError: the build is not consistent; nothing is published.
    PublishConflict: another run moved LATEST since this one read it.
  """
  verify_night(staging, summary)
  if read_latest(output) != expected:
    raise PublishConflict(f'LATEST no longer names {expected.build_id!r}: another run '
                          f'published first; {build_id} is not published')
  promote(staging, build_dir(output, build_id))
  move_latest(output, build_id, expected=expected)
  return after_publish(output, build_id, keep_builds=keep_builds)


class _FinishFn(beam.DoFn):
  def __init__(self, *, staging: str, output: str, build_id: str, expected: Latest,
               keep_builds: int):
    self._args = {'staging': staging, 'output': output, 'build_id': build_id,
                  'expected': expected, 'keep_builds': keep_builds}

  def process(self, summary: dict, *unused_done: list) -> Iterator[dict]:
    done = finish_night(summary=summary, **self._args)
    inc_counter(_STAGE, 'published')
    inc_counter(_STAGE, 'audio_objects_deleted', done['audio_objects_deleted'])
    yield done


class FinishNight(beam.PTransform):
  """The summary -> :func:`finish_night`, as the job's last step (Dataflow).

  Args:
    staging, output, build_id, expected, keep_builds: as for :func:`finish_night`.
    after: PCollections that must be complete first (the written tables).
  """
  def __init__(self, *, staging: str, output: str, build_id: str, expected: Latest,
               keep_builds: int, after: Sequence[beam.PCollection] = ()):
    super().__init__()
    self._fn = _FinishFn(staging=staging, output=output, build_id=build_id,
                         expected=expected, keep_builds=keep_builds)
    self._after = tuple(after)

  def expand(self, summary: beam.PCollection) -> beam.PCollection:
    done = [beam.pvalue.AsList(pcoll) for pcoll in self._after]
    return summary | 'Finish' >> beam.ParDo(self._fn, *done)
