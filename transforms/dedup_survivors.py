"""Which of a group of near-duplicate clips is kept: survivor order and resolution.

Step 6 of :class:`transforms.near_dedup.DeduplicateNear`: :func:`resolve` turns
all verified matches into decisions, in survivor order (:func:`survivor_rank`).
"""

from __future__ import annotations

import dataclasses
import datetime
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

from transforms.common import inc_counter, timed

__all__ = ['survivor_rank', 'resolve', 'resolve_all', 'Match', 'Decision', 'NodeKey']

STAGE = 'near_dedup'  # the counters belong to the stage this is a part of

NodeKey = tuple[bool, str]
"""(is a reference row, upload_id): unique even when a published upload is
processed again and appears both as an input clip and as a reference row."""


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
  loud_ber: float | None = None


@dataclasses.dataclass(frozen=True)
class Decision:
  """Why an input clip is rejected."""
  duplicate_of: str
  kept_is_reference: bool
  cross_contributor: bool
  ber: float
  offset_frames: int
  loud_ber: float | None = None


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
          offset_frames=m.offset_frames, loud_ber=m.loud_ber)
  return decisions, {'groups': len(groups), 'kept_in_chain': chains}


@timed(STAGE)
def resolve_all(matches: list[tuple]) -> Iterator[tuple[str, Decision]]:
  decisions, stats = resolve(Match(*m) for m in matches)
  for name, value in stats.items():
    inc_counter(STAGE, name, value)
  yield from decisions.items()


