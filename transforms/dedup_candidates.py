"""Candidate pairs for near-duplicate detection: LSH buckets, never all pairs.

Steps 2-4 of :class:`transforms.near_dedup.DeduplicateNear`, as one composite,
:class:`FindCandidates`: nodes (anything with an ``id`` and a ``fingerprint``)
-> for each candidate pair, one ``(higher id, (lower-id node, offset))``.

* ``Keys``: each node's LSH keys (:func:`~transforms.fingerprint.lsh_key_arrays`)
  and where they occur, spread over hash partitions: one element per node and
  partition.
* ``Buckets``: per partition (``GroupByKey``), the nodes sharing an exact key
  form a bucket (:func:`bucket_hits`). Buckets of more than ``max_bucket_size``
  nodes are skipped and counted; each node of the others is told who shares
  the key and where.
* ``Candidates``: per node (``CoGroupByKey`` with its record), the shared keys
  from all partitions are scored by
  :func:`~transforms.fingerprint.aligned_blocks` (:func:`candidate_pairs`).

Reference nodes (clips published earlier) may come with ``keys`` already
chosen: only those they share with the new clips (:class:`KeySet`), so that the
history costs one look-up per published clip, not its share of the shuffle.

A clip has a bounded number of keys and a key at most ``max_bucket_size``
nodes, so the work per clip is bounded whatever the data, and no pair is
formed that does not share a key.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import apache_beam as beam
import numpy as np

from transforms.common import inc_counter, timed
from transforms.fingerprint import aligned_blocks_by_group, lsh_key_arrays

__all__ = ['FindCandidates', 'KeySet', 'bucket_hits', 'candidate_pairs']

STAGE = 'near_dedup'  # the counters belong to the stage this is a part of


def _partition_of(keys: np.ndarray, partitions: int) -> np.ndarray:
  """A well-mixed partition per key (Fibonacci hashing)."""
  mixed = keys.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
  return ((mixed >> np.uint64(32)) % np.uint64(partitions)).astype(np.int64)


class _PartitionKeysFn(beam.DoFn):
  """Node -> (partition, (node id, words, keys, frames)) per partition it has keys in."""
  def __init__(self, *, partitions: int):
    self._partitions = partitions

  @timed(STAGE)
  def process(self, node) -> Iterator[tuple[int, tuple[int, int, bytes, bytes]]]:
    keys, frames = node.keys if node.keys is not None else lsh_key_arrays(
        node.fingerprint, node.levels)
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


class KeySet(beam.CombineFn):
  """Nodes -> the sorted distinct LSH keys of them all (int64), or None when
  they are more than ``max_keys`` (or ``max_keys`` is 0): no set to filter by.

  Keys held are merged (made distinct) every ``_MERGE_EVERY`` nodes, so an
  accumulator holds at most about ``max_keys`` keys plus that many nodes'.
  """
  _MERGE_EVERY = 64

  def __init__(self, *, max_keys: int):
    self._max_keys = max_keys

  def create_accumulator(self) -> list[np.ndarray] | None:
    return [] if self._max_keys else None

  def add_input(self, acc: list[np.ndarray] | None, node) -> list[np.ndarray] | None:
    if acc is None:
      return None
    acc.append(lsh_key_arrays(node.fingerprint, node.levels)[0])
    return self._compact(acc) if len(acc) >= self._MERGE_EVERY else acc

  def merge_accumulators(self, accs: Iterable[list[np.ndarray] | None]
                         ) -> list[np.ndarray] | None:
    merged = []
    for acc in accs:
      if acc is None:
        return None
      merged += acc
    return self._compact(merged)

  def _compact(self, acc: list[np.ndarray]) -> list[np.ndarray] | None:
    keys = np.unique(np.concatenate(acc)) if acc else np.zeros(0, np.int64)
    return None if len(keys) > self._max_keys else [keys]

  def extract_output(self, acc: list[np.ndarray] | None) -> np.ndarray | None:
    acc = None if acc is None else self._compact(acc)
    return None if acc is None else acc[0]


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

  @timed(STAGE)
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

  @timed(STAGE)
  def process(self, element: tuple[int, dict[str, list]]) -> Iterator[tuple[int, tuple]]:
    me, joined = element
    for node in joined['node']:
      for other, offset in candidate_pairs(me, joined['hits'],
                                           min_aligned_blocks=self._min_aligned_blocks):
        if me < other:
          yield other, (node, offset)


class FindCandidates(beam.PTransform):
  """Nodes, and the same keyed by id -> ``(other id, (node, offset))`` for each
  candidate pair, sent from its lower-id node to the higher.

  Args:
    max_bucket_size: larger buckets are skipped (counted).
    min_aligned_blocks: the candidate score a pair needs.
    partitions: hash partitions of the keys.
  """
  def __init__(self, *, max_bucket_size: int, min_aligned_blocks: int, partitions: int):
    super().__init__()
    self._max_bucket_size = max_bucket_size
    self._min_aligned_blocks = min_aligned_blocks
    self._partitions = partitions

  def expand(self, nodes_and_by_id: tuple[beam.PCollection, beam.PCollection]
             ) -> beam.PCollection:
    nodes, by_id = nodes_and_by_id
    hits = (nodes
            | 'Keys' >> beam.ParDo(_PartitionKeysFn(partitions=self._partitions))
            | 'GroupByPartition' >> beam.GroupByKey()
            | 'Buckets' >> beam.ParDo(_BucketHitsFn(max_bucket_size=self._max_bucket_size,
                                                    partitions=self._partitions)))
    return ({'node': by_id, 'hits': hits}
            | 'GroupByNode' >> beam.CoGroupByKey()
            | 'Candidates' >> beam.ParDo(
                _CandidatesFn(min_aligned_blocks=self._min_aligned_blocks)))
