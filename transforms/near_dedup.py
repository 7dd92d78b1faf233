"""Near-duplicate detection: the same recording uploaded again, transformed.

* :class:`DeduplicateNear`: fingerprinted clips (and, optionally, the
  fingerprints of clips published by earlier builds) -> the clips that are not
  copies of a better clip, and ``near_duplicate`` rejects naming the clip kept.

The fingerprints, their score, the LSH keys and the candidate rule are in
:mod:`transforms.fingerprint`. The stage runs in named steps:

1. ``Nodes``: each clip becomes a small node record (id, survivor rank,
   contributor, fingerprint); the clips with their FLAC bytes stay put until
   the last step. Fingerprints too short, repetitive or noise-like to compare
   (:func:`~transforms.fingerprint.is_low_information`) make no node: those
   clips pass, counted as ``skipped_low_information``.
2-4. ``FindCandidates`` (:mod:`transforms.dedup_candidates`): LSH keys,
   grouped into buckets by ``GroupByKey``, skipping buckets of more than
   ``max_bucket_size`` nodes (counted as ``buckets_oversized`` and
   ``bucket_entries_skipped``); pairs whose shared keys line up in
   ``min_aligned_blocks`` parts of a clip are candidates. The work per clip is
   bounded, whatever the data, and no pair is formed that does not share a key.
5. ``Verify``: each candidate pair leaves its lower-id node for the other
   (``CoGroupByKey`` by node id), where both fingerprints meet and
   :func:`verify_pair` scores them: ``ber <= max_ber`` at the best alignment
   and, over the loud words of both, ``loud_ber <= max_loud_ber`` is a match,
   unless one clip has more than ``max_unmatched_speech_s`` of loud speech
   beyond the other at an end (a short clip matching part of a longer one).
6. ``Resolve``: see :func:`transforms.dedup_survivors.resolve`. All matches,
   and only matches, meet in one worker (about 200 bytes each).
7. ``Apply``: each clip either goes on or is rejected with its decision.

Survivor order (:func:`~transforms.dedup_survivors.survivor_rank`): a clip
published by an earlier build (a ``reference`` row) first, then the earliest
``uploaded_at`` (clips without one last), then ``upload_id``. Reference rows
are never rejected. An input clip whose ``upload_id`` is a reference row's is
that published upload processed again: it is never compared with its own row.
"""

from __future__ import annotations

import dataclasses
import hashlib
import traceback
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
import numpy as np

from schemas.config import NearDedupConfig
from schemas.records import Clip
from transforms.common import (
  ACCEPTED,
  REJECTED,
  StageFn,
  StageOutputs,
  inc_counter,
  timed,
)
from transforms.dedup_candidates import FindCandidates, KeySet
from transforms.dedup_survivors import Decision, NodeKey, resolve_all, survivor_rank
from transforms.fingerprint import (
  HOP_S,
  is_low_information,
  loud_ber,
  lsh_key_arrays,
  match,
  unmatched_speech_s,
)

__all__ = ['DeduplicateNear', 'node_id', 'Node', 'verify_pair', 'STAGE']

STAGE = 'near_dedup'


def node_id(key: NodeKey) -> int:
  """A stable 63-bit id: a hash of the upload id, shifted, with the reference
  flag in bit 0 (so one upload's input clip and reference row differ only
  there)."""
  digest = hashlib.blake2b(key[1].encode('utf-8'), digest_size=8).digest()
  return (int.from_bytes(digest, 'little') >> 2) << 1 | int(key[0])


@dataclasses.dataclass(frozen=True, eq=False)
class Node:
  """What the stage compares: one clip or reference row, without its audio."""
  key: NodeKey
  rank: tuple
  contributor_id: str | None
  fingerprint: np.ndarray
  levels: np.ndarray | None = None  # uint8 per word; None in rows written before levels
  keys: tuple[np.ndarray, np.ndarray] | None = None  # the LSH keys that take part, with
  # their frames (a reference node's shared ones); None: all of lsh_key_arrays'

  @property
  def id(self) -> int:
    return node_id(self.key)

  def __reduce__(self) -> tuple:
    # Pickled once per candidate pair and join: primitives and bytes, not __dict__.
    keys = None if self.keys is None else (self.keys[0].astype('<i8').tobytes(),
                                           self.keys[1].astype('<i4').tobytes())
    return (_node_of_state, (self.key, self.rank, self.contributor_id,
                             self.fingerprint.astype('<u4').tobytes(),
                             None if self.levels is None else self.levels.tobytes(), keys))


def _node_of_state(key: NodeKey, rank: tuple, contributor_id: str | None,
                   fingerprint: bytes, levels: bytes | None,
                   keys: tuple[bytes, bytes] | None = None) -> Node:
  return Node(key, rank, contributor_id, np.frombuffer(fingerprint, '<u4').astype(np.uint32),
              None if levels is None else np.frombuffer(levels, np.uint8),
              None if keys is None else (np.frombuffer(keys[0], '<i8'),
                                         np.frombuffer(keys[1], '<i4')))


@dataclasses.dataclass(frozen=True)
class _Failure:
  traceback: str


def _node_of_clip(clip: Clip) -> Node:
  fp = np.asarray(clip.fingerprint)
  if fp.ndim != 1 or fp.dtype != np.uint32:
    raise ValueError(f'fingerprint must be 1-D uint32, got {fp.dtype} {fp.shape}')
  levels = clip.fingerprint_levels
  if levels is not None and (np.asarray(levels).dtype != np.uint8 or len(levels) != len(fp)):
    raise ValueError(f'fingerprint_levels must be uint8, one per word ({len(fp)}), got '
                     f'{np.asarray(levels).dtype} {np.shape(levels)}')
  return Node(key=(False, clip.upload_id),
              rank=survivor_rank(published=False, uploaded_at=clip.uploaded_at,
                                 upload_id=clip.upload_id),
              contributor_id=clip.contributor_id, fingerprint=fp, levels=levels)


def _node_of_row(row: dict[str, Any]) -> Node:
  """A node from a :func:`schemas.tables.fingerprint_row` dict."""
  fp = np.frombuffer(row['fingerprint'], dtype='<u4').astype(np.uint32)
  levels = row.get('fingerprint_levels')
  return Node(key=(True, row['upload_id']),
              rank=survivor_rank(published=True, uploaded_at=row.get('uploaded_at'),
                                 upload_id=row['upload_id']),
              contributor_id=row.get('contributor_id'), fingerprint=fp,
              levels=None if levels is None else np.frombuffer(levels, np.uint8))


class _InputNodeFn(beam.DoFn):
  """Clips -> nodes; clips that cannot be compared are counted, and failures
  go to ``failed`` to be rejected as ``internal_error`` by the last step."""
  FAILED = 'failed'

  @timed(STAGE)
  def process(self, clip: Clip) -> Iterator:
    try:
      if clip.fingerprint is None:
        inc_counter(STAGE, 'skipped_no_fingerprint')
        return
      node = _node_of_clip(clip)
      if is_low_information(node.fingerprint):
        inc_counter(STAGE, 'skipped_low_information')
        return
    except Exception:  # noqa: BLE001 -- one upload must not fail the build
      yield beam.pvalue.TaggedOutput(self.FAILED,
                                     (clip.upload_id, _Failure(traceback.format_exc())))
      return
    yield node


class _ReferenceNodeFn(beam.DoFn):
  """Reference rows -> nodes; rows that cannot be compared are counted.

  Given the input clips' keys (a sorted array; None: no filter), a node keeps
  only the keys it shares with them, and a row sharing fewer than
  ``min_aligned_blocks`` makes no node (``reference_unrelated``): it cannot
  line up with any input clip in that many blocks.
  """
  def __init__(self, *, min_aligned_blocks: int):
    self._min_aligned_blocks = min_aligned_blocks

  @timed(STAGE)
  def process(self, row: dict[str, Any], input_keys: np.ndarray | None) -> Iterator[Node]:
    inc_counter(STAGE, 'reference_rows')
    node = _node_of_row(row)
    if input_keys is not None:
      keys, frames = lsh_key_arrays(node.fingerprint, node.levels, distinct=False)
      at = np.minimum(np.searchsorted(input_keys, keys), max(len(input_keys) - 1, 0))
      shared = input_keys[at] == keys if len(input_keys) else np.zeros(len(keys), bool)
      keys, first = np.unique(keys[shared], return_index=True)
      if len(keys) < self._min_aligned_blocks:
        inc_counter(STAGE, 'reference_unrelated')
        return
      node = dataclasses.replace(node, keys=(keys, frames[shared][first]))
    if is_low_information(node.fingerprint):
      inc_counter(STAGE, 'reference_skipped_low_information')
      return
    yield node


def verify_pair(node_a: Node, node_b: Node, *, hint_offset: int | None, max_ber: float,
                max_loud_ber: float, max_unmatched_s: float
                ) -> tuple[float, float | None, int] | None:
  """Whether two candidates are the same recording: ``(ber, loud_ber, offset)``
  when they match, else None.

  The BER (:func:`~transforms.fingerprint.match`) is taken first where the
  shared keys line up (``hint_offset``, give or take ``_HINT_FRAMES``); at or
  under ``max_ber`` there, the best alignment is too. Otherwise every alignment
  is searched. At that alignment the loud words' BER
  (:func:`~transforms.fingerprint.loud_ber`) must also be at or under
  ``max_loud_ber``, where both have levels and enough loud words, and neither
  may have more than ``max_unmatched_s`` of loud speech beyond the other at an
  end (:func:`~transforms.fingerprint.unmatched_speech_s`).
  """
  a, b = node_a.fingerprint, node_b.fingerprint
  ber, offset = 1.0, 0
  if hint_offset is not None:
    ber, offset = match(a, b, offsets_frames=range(hint_offset - _HINT_FRAMES,
                                                   hint_offset + _HINT_FRAMES + 1))
  if ber > max_ber:
    inc_counter(STAGE, 'full_searches')
    ber, offset = match(a, b)
  if ber > max_ber:
    return None
  loud = loud_ber(a, b, node_a.levels, node_b.levels, offset_frames=offset)
  if loud is not None and loud > max_loud_ber:
    inc_counter(STAGE, 'rejected_by_loud_ber')
    return None
  unmatched = unmatched_speech_s(len(a), len(b), node_a.levels, node_b.levels,
                                 offset_frames=offset)
  if unmatched is not None and unmatched > max_unmatched_s:
    inc_counter(STAGE, 'rejected_by_unmatched_speech')
    return None
  return ber, loud, offset


_HINT_FRAMES = 2


class _VerifyFn(beam.DoFn):
  """(b, {'node': [node b], 'halves': [(node a, offset), ...]}) -> matches, as
  tuples of :class:`~transforms.dedup_survivors.Match`'s fields
  (:func:`verify_pair`)."""
  def __init__(self, *, max_ber: float, max_loud_ber: float, max_unmatched_s: float):
    self._max_ber = max_ber
    self._max_loud_ber = max_loud_ber
    self._max_unmatched_s = max_unmatched_s

  @timed(STAGE)
  def process(self, element: tuple[int, dict[str, list]]) -> Iterator[tuple]:
    _, joined = element
    for node_b in joined['node']:
      for node_a, hint in joined['halves']:
        inc_counter(STAGE, 'candidates')
        verdict = verify_pair(node_a, node_b, hint_offset=hint, max_ber=self._max_ber,
                              max_loud_ber=self._max_loud_ber,
                              max_unmatched_s=self._max_unmatched_s)
        if verdict is None:
          continue
        inc_counter(STAGE, 'matches')
        ber, loud, offset = verdict
        better, worse = node_a, node_b
        if better.rank > worse.rank:
          better, worse, offset = node_b, node_a, -offset
        # A plain tuple: Beam encodes it without pickling; Resolve makes the Match.
        yield (better.key, better.rank, better.contributor_id, worse.key, worse.rank,
               worse.contributor_id, ber, offset, loud)


class _ApplyFn(StageFn):
  """Rejects the clips that have a decision; counts received and emitted."""
  STAGE = STAGE

  def __init__(self, *, config: NearDedupConfig):
    self._config = config

  def process(self, clip: Clip, decisions: dict[str, Decision | _Failure]) -> Iterator:
    decision = decisions.get(clip.upload_id)
    if isinstance(decision, _Failure):
      inc_counter(self.STAGE, 'received')
      yield self.reject(clip, 'internal_error', decision.traceback)
      return
    if decision is None:
      yield from super().process(clip)
      return
    inc_counter(self.STAGE, 'received')
    if decision.cross_contributor:
      inc_counter(self.STAGE, 'rejected_cross_contributor')
    why = 'published in an earlier build' if decision.kept_is_reference else 'kept'
    loud = ('' if decision.loud_ber is None else
            f', loud_ber={decision.loud_ber:.3f} (threshold {self._config.max_loud_ber:g})')
    yield self.reject(
        clip, 'near_duplicate',
        f'the same recording as upload {decision.duplicate_of!r} ({why}): '
        f'ber={decision.ber:.3f} (threshold {self._config.max_ber:g}){loud} with this clip '
        f'starting {decision.offset_frames * HOP_S:+.2f} s into it',
        duplicate_of=decision.duplicate_of, cross_contributor=decision.cross_contributor)

  def process_clip(self, clip: Clip) -> Clip:
    return clip


class DeduplicateNear(beam.PTransform):
  """Rejects clips that are transformed copies of a better clip.

  Args:
    config: the match threshold, the bucket bound, the candidate score and the
      partitions; ``enabled: false`` passes every clip through.
    reference: optional fingerprints of clips published by earlier builds,
      as :func:`schemas.tables.fingerprint_row` dicts (``fingerprint`` as
      little-endian uint32 bytes). They are never rejected and win as survivors.

  Input clips need ``upload_id``, ``contributor_id``, ``uploaded_at`` (RFC 3339
  or None) and ``fingerprint`` (uint32 words from
  :func:`transforms.fingerprint.fingerprint`); clips without a fingerprint pass
  unchecked (counted as ``skipped_no_fingerprint``).
  """
  def __init__(self, *, config: NearDedupConfig, reference: beam.PCollection | None = None):
    super().__init__()
    self._config = config
    self._reference = reference

  def expand(self, clips: beam.PCollection) -> StageOutputs:
    config = self._config
    if not config.enabled:
      return StageOutputs(clips, clips.pipeline | 'NoRejects' >> beam.Create([]))
    made = clips | 'Nodes' >> beam.ParDo(_InputNodeFn()).with_outputs(
        _InputNodeFn.FAILED, main='nodes')
    nodes = made.nodes
    if self._reference is not None:
      input_keys = nodes | 'InputKeys' >> beam.CombineGlobally(
          KeySet(max_keys=config.reference_filter_max_keys))
      published = self._reference | 'ReferenceNodes' >> beam.ParDo(
          _ReferenceNodeFn(min_aligned_blocks=config.min_aligned_blocks),
          beam.pvalue.AsSingleton(input_keys))
      nodes = (nodes, published) | 'AllNodes' >> beam.Flatten()
    by_id = nodes | 'ById' >> beam.Map(lambda node: (node.id, node))
    halves = (nodes, by_id) | 'FindCandidates' >> FindCandidates(
        max_bucket_size=config.max_bucket_size, min_aligned_blocks=config.min_aligned_blocks,
        partitions=config.lsh_partitions)
    matches = ({'node': by_id, 'halves': halves}
               | 'JoinCandidate' >> beam.CoGroupByKey()
               | 'Verify' >> beam.ParDo(_VerifyFn(
                   max_ber=config.max_ber, max_loud_ber=config.max_loud_ber,
                   max_unmatched_s=config.max_unmatched_speech_s)))
    decisions = (matches
                 | 'AllMatches' >> beam.combiners.ToList()
                 | 'Resolve' >> beam.FlatMap(resolve_all))
    verdicts = (decisions, made[_InputNodeFn.FAILED]) | 'Verdicts' >> beam.Flatten()
    outputs = clips | 'Apply' >> beam.ParDo(
        _ApplyFn(config=config), decisions=beam.pvalue.AsDict(verdicts)
    ).with_outputs(REJECTED, main=ACCEPTED)
    return StageOutputs(outputs[ACCEPTED], outputs[REJECTED])
