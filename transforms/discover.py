"""Stage 0: find the uploads, pair each audio file with its JSON sidecar.

* :class:`DiscoverUploads`: ``PBegin`` -> ``clips`` (one :class:`Clip` per audio
  file with valid metadata) and ``rejected``; :class:`ListUploads` followed by
  :class:`PairUploads`.
* :class:`ListUploads`: ``PBegin`` -> ``(stem, [FileMetadata])``, every file
  under the root grouped by its path without extension; nothing is read.
* :class:`PairUploads`: those groups -> clips and rejects (reads the sidecars).
  The nightly build puts :class:`~transforms.select_new.SelectNewUploads`
  between the two so that only new or changed uploads are read.

Files are listed and read through Beam's FileSystems, so local paths and
``gs://`` behave the same. Every file under the root is an upload or a
sidecar: nothing is skipped silently.
"""

from __future__ import annotations

import posixpath
import traceback
from collections.abc import Iterable, Iterator

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from schemas.config import DiscoverConfig
from schemas.metadata import MetadataError, parse_sidecar
from schemas.records import Clip, Reject
from transforms.common import REJECTED, StageOutputs, apply_stage, inc_counter

__all__ = ['DiscoverUploads', 'ListUploads', 'PairUploads', 'split_stem', 'Stem']

STAGE = 'discover'
SIDECAR_EXT = '.json'
Stem = tuple[str, Iterable[fileio.FileMetadata]]
"""An upload as listed: its path without extension, and its files."""


def split_stem(path: str) -> tuple[str, str]:
  """``('dir/name', '.ext')`` for ``dir/name.ext``; the extension may be ''."""
  directory, name = posixpath.split(path)
  stem, dot, ext = name.rpartition('.')
  if not dot or not stem:
    return path, ''
  return posixpath.join(directory, stem) if directory else stem, f'.{ext}'


def _reject(clip: Clip, reason: str, detail: str) -> beam.pvalue.TaggedOutput:
  inc_counter(STAGE, f'rejected.{reason}')
  return beam.pvalue.TaggedOutput(
      REJECTED, Reject.of(clip, stage=STAGE, reason=reason, detail=detail))


class _PairFn(beam.DoFn):
  """(stem, [FileMetadata]) -> a Clip per audio file, or rejects."""
  def __init__(self, *, root: str, config: DiscoverConfig):
    self._root = root.rstrip('/') + '/'
    self._config = config

  def _read_sidecar(self, path: str) -> bytes:
    limit = self._config.max_sidecar_bytes
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
      data = f.read(limit + 1)
    if len(data) > limit:
      raise MetadataError('invalid_metadata', f'sidecar is larger than {limit} bytes')
    return data

  def process(self, element: tuple[str, Iterable[fileio.FileMetadata]]) -> Iterator:
    stem, files = element
    files = sorted(files, key=lambda m: m.path)
    sidecars = [m for m in files if split_stem(m.path)[1].lower() == SIDECAR_EXT]
    audio = [m for m in files if m not in sidecars]
    default_id = stem[len(self._root):] if stem.startswith(self._root) else stem
    inc_counter(STAGE, 'inputs', len(audio) or len(sidecars))
    if not audio:
      for sidecar in sidecars:
        yield _reject(Clip(source_uri=sidecar.path, upload_id=default_id),
                      'missing_audio', f'no audio file beside {sidecar.path}')
      return
    for meta in audio:
      clip = Clip(source_uri=meta.path, upload_id=default_id, size_bytes=meta.size_in_bytes)
      try:
        yield self._describe(clip, meta, sidecars, ambiguous=len(audio) > 1)
      except MetadataError as e:
        yield _reject(clip, e.reason, e.detail)
      except Exception:  # noqa: BLE001 -- any failure becomes a reject
        yield _reject(clip, 'internal_error', traceback.format_exc())

  def _describe(self, clip: Clip, meta: fileio.FileMetadata,
                sidecars: list[fileio.FileMetadata], *, ambiguous: bool):
    if not sidecars:
      return _reject(clip, 'missing_sidecar', f'no {SIDECAR_EXT} sidecar beside {meta.path}')
    if ambiguous:
      return _reject(clip, 'ambiguous_upload',
                     f'several audio files share the sidecar {sidecars[0].path}')
    metadata = parse_sidecar(self._read_sidecar(sidecars[0].path),
                             default_upload_id=clip.upload_id)
    clip = clip.replace(
        upload_id=metadata.upload_id, contributor_id=metadata.contributor_id,
        transcript=metadata.transcript, prompt_id=metadata.prompt_id,
        locale=metadata.locale, uploaded_at=metadata.uploaded_at,
        consent=metadata.consent)
    if self._config.require_consent and metadata.consent is not True:
      return _reject(clip, 'no_consent',
                     f'consent is {metadata.consent!r}; the config requires true')
    if meta.size_in_bytes > self._config.max_upload_bytes:
      return _reject(clip, 'file_too_large',
                     f'{meta.size_in_bytes} bytes; at most '
                     f'{self._config.max_upload_bytes} are accepted')
    return clip


def _upload_order(clip: Clip) -> tuple:
  """Earliest upload first; uploads without a timestamp last; then by path."""
  return (clip.uploaded_at is None, clip.uploaded_at or '', clip.source_uri)


class _UniqueIdFn(beam.DoFn):
  """(upload_id, [Clip]) -> the earliest clip; the others are rejects."""
  def process(self, element: tuple[str, Iterable[Clip]]) -> Iterator:
    upload_id, clips = element
    first, *others = sorted(clips, key=_upload_order)
    inc_counter(STAGE, 'emitted')
    yield first
    for clip in others:
      yield _reject(clip, 'duplicate_upload_id',
                    f'upload_id {upload_id!r} is already used by {first.source_uri}')


class ListUploads(beam.PTransform):
  """Lists every file under ``root`` and groups the files by stem.

  Args:
    root: the uploads tree, a local directory or a ``gs://`` prefix.

  Returns:
    A PCollection of :data:`Stem`.
  """
  def __init__(self, *, root: str):
    super().__init__()
    self._root = root.rstrip('/')

  def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
    return _list(pbegin, self._root)


class PairUploads(beam.PTransform):
  """Pairs each stem's audio with its sidecar and checks upload ids are unique.

  Args:
    root: the uploads tree the stems were listed under (default upload ids
      are paths relative to it).
    config: limits and the consent rule.

  Returns:
    :class:`StageOutputs` of the clips to decode and the rejects.
  """
  def __init__(self, *, root: str, config: DiscoverConfig):
    super().__init__()
    self._root = root.rstrip('/')
    self._config = config

  def expand(self, by_stem: beam.PCollection) -> StageOutputs:
    return _pair(by_stem, self._root, self._config)


class DiscoverUploads(beam.PTransform):
  """Lists every file under ``root`` and pairs audio with its sidecar.

  Args:
    root: the uploads tree, a local directory or a ``gs://`` prefix.
    config: limits and the consent rule.

  Returns:
    :class:`StageOutputs` of the clips to decode and the rejects.
  """
  def __init__(self, *, root: str, config: DiscoverConfig):
    super().__init__()
    self._root = root.rstrip('/')
    self._config = config

  def expand(self, pbegin: beam.pvalue.PBegin) -> StageOutputs:
    # The steps of ListUploads and PairUploads, with their labels directly under this one.
    return _pair(_list(pbegin, self._root), self._root, self._config)


def _list(pbegin: beam.pvalue.PBegin, root: str) -> beam.PCollection:
  return (
      pbegin
      | 'List' >> fileio.MatchFiles(f'{root}/**')
      | 'ByStem' >> beam.Map(lambda m: (split_stem(m.path)[0], m))
      | 'GroupByStem' >> beam.GroupByKey())


def _pair(by_stem: beam.PCollection, root: str, config: DiscoverConfig) -> StageOutputs:
  paired = apply_stage(by_stem, _PairFn(root=root, config=config))
  by_id = (
      paired.clips
      | 'ById' >> beam.Map(lambda clip: (clip.upload_id, clip))
      | 'GroupById' >> beam.GroupByKey())
  unique = apply_stage(by_id, _UniqueIdFn())
  rejected = (paired.rejected, unique.rejected) | 'Rejects' >> beam.Flatten()
  return StageOutputs(unique.clips, rejected)
