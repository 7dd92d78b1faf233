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
2. ``Keys``: each node's LSH keys and where they occur, spread over
   ``lsh_partitions`` hash partitions: one element per node and partition.
3. ``Buckets``: per partition (``GroupByKey``), the nodes sharing an exact key
   form a bucket. Buckets of more than ``max_bucket_size`` nodes are skipped
   and counted (``buckets_oversized``, ``bucket_entries_skipped``); each node
   of the others is told who shares the key and where (one element per node
   and partition).
4. ``Candidates``: per node (``CoGroupByKey`` with its record), the shared
   keys from all partitions are scored by :func:`~transforms.fingerprint.aligned_blocks`;
   pairs scoring ``min_aligned_blocks`` are candidates. A clip has a bounded
   number of keys and a key at most ``max_bucket_size`` nodes, so the work per
   clip is bounded, whatever the data, and no pair is formed that does not
   share a key.
5. ``Verify``: each candidate pair leaves its lower-id node (which joined its
   own record in step 4) for the other (``CoGroupByKey`` by node id), where
   both fingerprints meet and :func:`~transforms.fingerprint.match` scores
   them; ``ber <= max_ber`` is a match.
6. ``Resolve``: see :func:`resolve`. All matches, and only matches, meet in one
   worker (about 200 bytes each).
7. ``Apply``: each clip either goes on or is rejected with its decision.

Survivor order (:func:`survivor_rank`): a clip published by an earlier build
(a ``reference`` row) first, then the earliest ``uploaded_at`` (clips without
one last), then ``upload_id``. Reference rows are never rejected. An input clip
whose ``upload_id`` is a reference row's is that published upload processed
again: it is never compared with its own row.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import traceback
from collections import defaultdict
from collections.abc import Iterable, Iterator
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
)
from transforms.fingerprint import (
  HOP_S,
  aligned_blocks_by_group,
  is_low_information,
  lsh_key_arrays,
  match,
)

__all__ = ['DeduplicateNear', 'survivor_rank', 'bucket_hits', 'candidate_pairs', 'resolve',
           'node_id', 'Node', 'Match', 'Decision', 'STAGE']

STAGE = 'near_dedup'
NodeKey = tuple[bool, str]
"""(is a reference row, upload_id): unique even when a published upload is
processed again and appears both as an input clip and as a reference row."""


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

  @property
  def id(self) -> int:
    return node_id(self.key)

  def __reduce__(self) -> tuple:
    # Pickled once per candidate pair and join: primitives and bytes, not __dict__.
    return (_node_of_state, (self.key, self.rank, self.contributor_id,
                             self.fingerprint.astype('<u4').tobytes()))


def _node_of_state(key: NodeKey, rank: tuple, contributor_id: str | None,
                   fingerprint: bytes) -> Node:
  return Node(key, rank, contributor_id, np.frombuffer(fingerprint, '<u4').astype(np.uint32))


@dataclasses.dataclass(frozen=True)
class Match:
  """A verified match; ``better`` precedes ``worse`` in survivor order."""
  better: NodeKey
  better_rank: tuple
  better_contributor: str | None
  worse: NodeKey
  worse_rank: tuple
  worse_contributor: str | None
  ber: float
  offset_frames: int  # the worse clip starts this many frames into the better


@dataclasses.dataclass(frozen=True)
class Decision:
  """Why an input clip is rejected."""
  duplicate_of: str
  kept_is_reference: bool
  cross_contributor: bool
  ber: float
  offset_frames: int


@dataclasses.dataclass(frozen=True)
class _Failure:
  traceback: str


def _utc(value: Any) -> str | None:
  """A timestamp (RFC 3339 string or datetime; naive means UTC) as a sortable
  UTC string with microseconds."""
  if value is None:
    return None
  moment = (datetime.datetime.fromisoformat(value.replace('Z', '+00:00'))
            if isinstance(value, str) else value)
  if moment.tzinfo is None:
    moment = moment.replace(tzinfo=datetime.timezone.utc)
  return moment.astimezone(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ')


def survivor_rank(*, published: bool, uploaded_at: Any, upload_id: str) -> tuple:
  """Sort key: of clips of one recording, the first is kept.

  Published clips first, then the earliest ``uploaded_at`` (``None`` last),
  then ``upload_id``; a reference row before the input clip of the same upload.
  """
  moment = _utc(uploaded_at)
  return (not published, moment is None, moment or '', upload_id, not published)


def _node_of_clip(clip: Clip) -> Node:
  fp = np.asarray(clip.fingerprint)
  if fp.ndim != 1 or fp.dtype != np.uint32:
    raise ValueError(f'fingerprint must be 1-D uint32, got {fp.dtype} {fp.shape}')
  return Node(key=(False, clip.upload_id),
              rank=survivor_rank(published=False, uploaded_at=clip.uploaded_at,
                                 upload_id=clip.upload_id),
              contributor_id=clip.contributor_id, fingerprint=fp)


def _node_of_row(row: dict[str, Any]) -> Node:
  """A node from a :func:`schemas.tables.fingerprint_row` dict."""
  fp = np.frombuffer(row['fingerprint'], dtype='<u4').astype(np.uint32)
  return Node(key=(True, row['upload_id']),
              rank=survivor_rank(published=True, uploaded_at=row.get('uploaded_at'),
                                 upload_id=row['upload_id']),
              contributor_id=row.get('contributor_id'), fingerprint=fp)


class _InputNodeFn(beam.DoFn):
  """Clips -> nodes; clips that cannot be compared are counted, and failures
  go to ``failed`` to be rejected as ``internal_error`` by the last step."""
  FAILED = 'failed'

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
  """Reference rows -> nodes; rows that cannot be compared are counted."""
  def process(self, row: dict[str, Any]) -> Iterator[Node]:
    inc_counter(STAGE, 'reference_rows')
    node = _node_of_row(row)
    if is_low_information(node.fingerprint):
      inc_counter(STAGE, 'reference_skipped_low_information')
      return
    yield node


def _partition_of(keys: np.ndarray, partitions: int) -> np.ndarray:
  """A well-mixed partition per key (Fibonacci hashing)."""
  mixed = keys.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
  return ((mixed >> np.uint64(32)) % np.uint64(partitions)).astype(np.int64)


class _PartitionKeysFn(beam.DoFn):
  """Node -> (partition, (node id, words, keys, frames)) per partition it has keys in."""
  def __init__(self, *, partitions: int):
    self._partitions = partitions

  def process(self, node: Node) -> Iterator[tuple[int, tuple[int, int, bytes, bytes]]]:
    keys, frames = lsh_key_arrays(node.fingerprint)
    inc_counter(STAGE, 'nodes')
    inc_counter(STAGE, 'lsh_keys', len(keys))
    partition = _partition_of(keys, self._partitions)
    order = np.argsort(partition, kind='stable')
    partition, keys, frames = partition[order], keys[order], frames[order]
    bounds = np.flatnonzero(np.r_[True, partition[1:] != partition[:-1], True])
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
      yield int(partition[lo]), (node.id, len(node.fingerprint),
                                 keys[lo:hi].astype('<i8').tobytes(),
                                 frames[lo:hi].astype('<i4').tobytes())


_Hits = tuple[int, bytes, bytes, bytes, bytes]
"""What one partition tells one node: its length in words, then for every key
it shares, as '<i8', '<i4', '<i4', '<i4' bytes: the other node's id and
length, this node's frame and the other's frame."""


def bucket_hits(members: Iterable[tuple[int, int, np.ndarray, np.ndarray]], *,
                max_bucket_size: int, hits_per_pair: int = 8
                ) -> tuple[dict[int, _Hits], dict[str, int]]:
  """Who shares which key with whom, in one partition.

  Args:
    members: (node id, fingerprint length, its distinct keys in this partition,
      the frame of each).
    max_bucket_size: buckets (nodes sharing one exact key) larger than this
      are skipped.
    hits_per_pair: most hits kept per pair of nodes (copies share hundreds of
      keys; a few dozen spread over the clip show that they line up).

  Returns:
    Per node id, its hits (:data:`_Hits`), in both directions; and counts
    (``buckets``, ``buckets_oversized``, ``bucket_entries_skipped``,
    ``key_hits``).
  """
  ids, lengths, key_parts, frame_parts, owner_parts = [], [], [], [], []
  for index, (nid, length, keys, frames) in enumerate(members):
    ids.append(nid)
    lengths.append(length)
    key_parts.append(np.asarray(keys, np.int64))
    frame_parts.append(np.asarray(frames, np.int64))
    owner_parts.append(np.full(len(keys), index, np.int64))
  stats = {'buckets': 0, 'buckets_oversized': 0, 'bucket_entries_skipped': 0, 'key_hits': 0}
  if len(ids) < 2:
    return {}, stats
  keys, frames, owner = (np.concatenate(key_parts), np.concatenate(frame_parts),
                         np.concatenate(owner_parts))
  order = np.argsort(keys, kind='stable')
  keys, frames, owner = keys[order], frames[order], owner[order]
  starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
  sizes = np.diff(np.r_[starts, len(keys)])
  oversized = sizes > max_bucket_size
  stats['buckets'] = int(np.sum(sizes >= 2))
  stats['buckets_oversized'] = int(np.sum(oversized))
  stats['bucket_entries_skipped'] = int(np.sum(sizes[oversized]))
  me_parts, other_parts = [], []  # positions in the sorted arrays, per hit
  for size in np.unique(sizes[(sizes >= 2) & ~oversized]):
    first = starts[sizes == size]
    mine, other = np.nonzero(~np.eye(size, dtype=bool))  # ordered pairs in a bucket
    for chunk in range(0, len(first), max(_ENTRIES_PER_CHUNK // len(mine), 1)):
      at = first[chunk:chunk + max(_ENTRIES_PER_CHUNK // len(mine), 1)][:, None]
      me_parts.append((at + mine).ravel())
      other_parts.append((at + other).ravel())
  if not me_parts:
    return {}, stats
  me_at, other_at = np.concatenate(me_parts), np.concatenate(other_parts)
  # Ordered by node, then other node, then key (pseudo-random in time); a pair
  # keeps its first hits only: enough to show they line up, bounded per pair.
  pair = owner[me_at] * len(ids) + owner[other_at]
  order = np.argsort(pair, kind='stable')
  pair = pair[order]
  pair_start = np.flatnonzero(np.r_[True, pair[1:] != pair[:-1]])
  rank = np.arange(len(pair)) - np.repeat(pair_start, np.diff(np.r_[pair_start, len(pair)]))
  kept = order[rank < hits_per_pair]
  me_at, other_at = me_at[kept], other_at[kept]
  hits = np.stack([owner[me_at], owner[other_at], frames[me_at], frames[other_at]])
  stats['key_hits'] = hits.shape[1]
  ids_array, lengths_array = np.asarray(ids, np.int64), np.asarray(lengths, np.int64)
  out = {}
  bounds = np.flatnonzero(np.r_[True, hits[0, 1:] != hits[0, :-1], True])
  for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
    me = int(hits[0, lo])
    out[ids[me]] = (lengths[me], ids_array[hits[1, lo:hi]].astype('<i8').tobytes(),
                    lengths_array[hits[1, lo:hi]].astype('<i4').tobytes(),
                    hits[2, lo:hi].astype('<i4').tobytes(),
                    hits[3, lo:hi].astype('<i4').tobytes())
  return out, stats


_ENTRIES_PER_CHUNK = 1 << 20  # bounds the memory of one bucket size class at a time
_HITS_PER_PAIR = 64  # over all partitions: at 3 aligned blocks of 32, plenty


class _BucketHitsFn(beam.DoFn):
  def __init__(self, *, max_bucket_size: int, partitions: int):
    self._max_bucket_size = max_bucket_size
    self._hits_per_pair = max(-(-_HITS_PER_PAIR // partitions), 2)

  def process(self, element: tuple[int, Iterable[tuple[int, int, bytes, bytes]]]) -> Iterator:
    _, members = element
    hits, stats = bucket_hits(
        ((nid, length, np.frombuffer(keys, '<i8'), np.frombuffer(frames, '<i4'))
         for nid, length, keys, frames in members),
        max_bucket_size=self._max_bucket_size, hits_per_pair=self._hits_per_pair)
    for name, value in stats.items():
      inc_counter(STAGE, name, value)
    yield from hits.items()


def candidate_pairs(me: int, hits: Iterable[_Hits], *, min_aligned_blocks: int
                    ) -> list[tuple[int, int]]:
  """The other nodes one node's hits make candidates with: ``(other id, offset)``
  for every other node whose shared keys score ``min_aligned_blocks`` by
  :func:`~transforms.fingerprint.aligned_blocks` (both nodes of a pair get the
  same hits, so both compute the same score); ``offset`` is where the keys line
  up (this node's frame minus the other's). Pairs of two reference rows, or of
  one upload's clip and reference row, are left out."""
  hits = list(hits)
  if not hits:
    return []
  others = np.concatenate([np.frombuffer(h[1], '<i8') for h in hits])
  their_lengths = np.concatenate([np.frombuffer(h[2], '<i4') for h in hits])
  mine = np.concatenate([np.frombuffer(h[3], '<i4') for h in hits])
  theirs = np.concatenate([np.frombuffer(h[4], '<i4') for h in hits])
  # Not the same upload (ids differ only in the reference bit), not two references.
  keep = (others >> 1 != me >> 1) & ((others & me & 1) == 0)
  distinct, counts = np.unique(others[keep], return_counts=True)
  keep &= np.isin(others, distinct[counts >= min_aligned_blocks])
  if not keep.any():
    return []
  groups, scores, offsets = aligned_blocks_by_group(
      others[keep], mine[keep], theirs[keep], length_a=hits[0][0],
      lengths_b=their_lengths[keep])
  chosen = scores >= min_aligned_blocks
  return list(zip(groups[chosen].tolist(), offsets[chosen].tolist(), strict=True))


class _CandidatesFn(beam.DoFn):
  """(id, {'node': [node], 'hits': [hits, ...]}) -> (other id, (node, offset))
  for every candidate pair, from its lower-id end only (both ends score it
  alike)."""
  def __init__(self, *, min_aligned_blocks: int):
    self._min_aligned_blocks = min_aligned_blocks

  def process(self, element: tuple[int, dict[str, list]]) -> Iterator[tuple[int, tuple]]:
    me, joined = element
    for node in joined['node']:
      for other, offset in candidate_pairs(me, joined['hits'],
                                           min_aligned_blocks=self._min_aligned_blocks):
        if me < other:
          yield other, (node, offset)


class _VerifyFn(beam.DoFn):
  """(b, {'node': [node b], 'halves': [(node a, offset), ...]}) -> matches, as
  tuples of :class:`Match`'s fields.

  The BER is taken first where the shared keys line up (give or take
  ``_HINT_FRAMES``); at or under ``max_ber`` there, the best alignment is too,
  and the pair matches. Otherwise every alignment is searched."""
  def __init__(self, *, max_ber: float):
    self._max_ber = max_ber

  def process(self, element: tuple[int, dict[str, list]]) -> Iterator[tuple]:
    _, joined = element
    for node_b in joined['node']:
      for node_a, offset in joined['halves']:
        inc_counter(STAGE, 'candidates')
        hinted = range(offset - _HINT_FRAMES, offset + _HINT_FRAMES + 1)
        ber, offset = match(node_a.fingerprint, node_b.fingerprint, offsets_frames=hinted)
        if ber > self._max_ber:
          inc_counter(STAGE, 'full_searches')
          ber, offset = match(node_a.fingerprint, node_b.fingerprint)
        if ber > self._max_ber:
          continue
        inc_counter(STAGE, 'matches')
        better, worse = node_a, node_b
        if better.rank > worse.rank:
          better, worse, offset = node_b, node_a, -offset
        # A plain tuple: Beam encodes it without pickling; Resolve makes the Match.
        yield (better.key, better.rank, better.contributor_id, worse.key, worse.rank,
               worse.contributor_id, ber, offset)


_HINT_FRAMES = 2


def resolve(matches: Iterable[Match]) -> tuple[dict[str, Decision], dict[str, int]]:
  """Which input clips to reject, from all verified matches.

  The matches split into groups (connected components). In each group, clips
  are taken in survivor order; a clip is kept unless it matches a clip already
  kept, and then it is rejected as a duplicate of the first (best) such clip.
  Reference rows are always kept. So a clip is rejected only for matching a
  kept clip that precedes it; never for matching a rejected one.

  Chains: if A ~ B and B ~ C but A !~ C (each copy differs from the next a
  little more than the threshold allows end to end), A is kept, B is rejected
  as a duplicate of A, and C is kept: it matches no kept clip, and rejecting it
  for a rejected clip's sake would let a chain of small differences link
  unrelated recordings. Such clips are counted as ``kept_in_chain``.

  Returns:
    Decisions by rejected upload_id, and counts (``groups``, ``kept_in_chain``).
  """
  neighbours: dict[NodeKey, dict[NodeKey, Match]] = defaultdict(dict)
  ranks, parent = {}, {}

  def root(key: NodeKey) -> NodeKey:
    while parent[key] != key:
      parent[key] = parent[parent[key]]
      key = parent[key]
    return key

  for m in matches:
    ranks[m.better], ranks[m.worse] = m.better_rank, m.worse_rank
    neighbours[m.better][m.worse] = neighbours[m.worse][m.better] = m
    parent.setdefault(m.better, m.better)
    parent.setdefault(m.worse, m.worse)
    parent[root(m.worse)] = root(m.better)
  groups = defaultdict(list)
  for key in parent:
    groups[root(key)].append(key)
  decisions, chains = {}, 0
  for members in groups.values():
    kept = set()
    for key in sorted(members, key=ranks.__getitem__):
      earlier = sorted((n for n in neighbours[key] if ranks[n] < ranks[key]),
                       key=ranks.__getitem__)
      survivor = next((n for n in earlier if n in kept), None)
      if key[0] or survivor is None:
        kept.add(key)
        chains += bool(earlier) and not key[0]
        continue
      m = neighbours[key][survivor]
      contributors = (m.better_contributor, m.worse_contributor)
      decisions[key[1]] = Decision(
          duplicate_of=survivor[1], kept_is_reference=survivor[0],
          cross_contributor=contributors[0] != contributors[1], ber=m.ber,
          offset_frames=m.offset_frames)
  return decisions, {'groups': len(groups), 'kept_in_chain': chains}


def _resolve_all(matches: list[tuple]) -> Iterator[tuple[str, Decision]]:
  decisions, stats = resolve(Match(*m) for m in matches)
  for name, value in stats.items():
    inc_counter(STAGE, name, value)
  yield from decisions.items()


class _ApplyFn(StageFn):
  """Rejects the clips that have a decision; counts received and emitted."""
  STAGE = STAGE

  def __init__(self, *, max_ber: float):
    self._max_ber = max_ber

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
    yield self.reject(
        clip, 'near_duplicate',
        f'the same recording as upload {decision.duplicate_of!r} ({why}): '
        f'ber={decision.ber:.3f} (threshold {self._max_ber:g}) with this clip starting '
        f'{decision.offset_frames * HOP_S:+.2f} s into it',
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
      published = self._reference | 'ReferenceNodes' >> beam.ParDo(_ReferenceNodeFn())
      nodes = (nodes, published) | 'AllNodes' >> beam.Flatten()
    by_id = nodes | 'ById' >> beam.Map(lambda node: (node.id, node))
    hits = (nodes
            | 'Keys' >> beam.ParDo(_PartitionKeysFn(partitions=config.lsh_partitions))
            | 'GroupByPartition' >> beam.GroupByKey()
            | 'Buckets' >> beam.ParDo(_BucketHitsFn(max_bucket_size=config.max_bucket_size,
                                                    partitions=config.lsh_partitions)))
    halves = ({'node': by_id, 'hits': hits}
              | 'GroupByNode' >> beam.CoGroupByKey()
              | 'Candidates' >> beam.ParDo(
                  _CandidatesFn(min_aligned_blocks=config.min_aligned_blocks)))
    matches = ({'node': by_id, 'halves': halves}
               | 'JoinCandidate' >> beam.CoGroupByKey()
               | 'Verify' >> beam.ParDo(_VerifyFn(max_ber=config.max_ber)))
    decisions = (matches
                 | 'AllMatches' >> beam.combiners.ToList()
                 | 'Resolve' >> beam.FlatMap(_resolve_all))
    verdicts = (decisions, made[_InputNodeFn.FAILED]) | 'Verdicts' >> beam.Flatten()
    outputs = clips | 'Apply' >> beam.ParDo(
        _ApplyFn(max_ber=config.max_ber), decisions=beam.pvalue.AsDict(verdicts)
    ).with_outputs(REJECTED, main=ACCEPTED)
    return StageOutputs(outputs[ACCEPTED], outputs[REJECTED])
