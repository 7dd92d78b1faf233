"""Progress of a local run, counted by the workers into a local directory.

* :class:`TrackProgress`: counts the elements (and their source audio seconds)
  of a PCollection into ``DIRECTORY/KIND-WORKERID.json``; outputs nothing.
* :func:`track_progress`: adds the counters of a build.
* :func:`read_progress`: sums those files: ``{kind: (count, seconds)}``.

With the multi-process FnApiRunner the main process cannot see counters
until the end, so each DoFn instance keeps its own running totals and
rewrites one small file (write, then rename: a reader never sees half a
file) at most every :data:`FLUSH_S` seconds and at the end of each bundle.
Local runs only: the directory is a local temporary one.
"""

from __future__ import annotations

import glob
import json
import os
import time
import uuid

import apache_beam as beam

__all__ = ['TrackProgress', 'track_progress', 'read_progress', 'TOTAL', 'DONE', 'FLUSH_S']

TOTAL = 'total'  # uploads discovered
DONE = 'done'  # uploads through the per-upload stages (accepted so far, or rejected)
FLUSH_S = 0.5


class _CountFn(beam.DoFn):
  def __init__(self, *, directory: str, kind: str):
    self._directory = directory
    self._kind = kind

  def setup(self):
    self._path = os.path.join(self._directory, f'{self._kind}-{uuid.uuid4().hex}.json')
    self._count = 0
    self._seconds = 0.0
    self._flushed_at = 0.0

  def _flush(self) -> None:
    tmp = f'{self._path}.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
      json.dump({'count': self._count, 'seconds': self._seconds}, f)
    os.replace(tmp, self._path)
    self._flushed_at = time.monotonic()

  def process(self, element):
    self._count += 1
    self._seconds += getattr(element, 'source_duration_s', None) or 0.0
    if time.monotonic() - self._flushed_at >= FLUSH_S:
      self._flush()
    return ()

  def finish_bundle(self):
    if self._count:
      self._flush()


class TrackProgress(beam.PTransform):
  """Counts a PCollection's elements into ``directory`` for a live progress line.

  Args:
    directory: a local directory the main process polls.
    kind: :data:`TOTAL` or :data:`DONE`.
  """
  def __init__(self, *, directory: str, kind: str):
    super().__init__()
    self._directory = directory
    self._kind = kind

  def expand(self, pcoll: beam.PCollection) -> beam.PCollection:
    return pcoll | 'Count' >> beam.ParDo(_CountFn(directory=self._directory, kind=self._kind))


def read_progress(directory: str) -> dict[str, tuple[int, float]]:
  """``{kind: (elements, source seconds)}`` summed over every worker's file."""
  totals = {TOTAL: (0, 0.0), DONE: (0, 0.0)}
  for path in glob.glob(os.path.join(directory, '*-*.json')):
    kind = os.path.basename(path).split('-', 1)[0]
    try:
      with open(path, encoding='utf-8') as f:
        doc = json.load(f)
    except (OSError, ValueError):
      continue  # replaced between listing and reading: counted at the next poll
    count, seconds = totals.get(kind, (0, 0.0))
    totals[kind] = (count + int(doc['count']), seconds + float(doc['seconds']))
  return totals


def track_progress(*, directory: str, total: list[beam.PCollection],
                   done: list[beam.PCollection]) -> None:
  """Counts ``total`` (every upload found) and ``done`` (uploads through) into ``directory``.

  Each PCollection gets its own counter so that it fuses with the stage that
  produces it and counts live, rather than after a flatten.
  """
  for kind, pcolls in ((TOTAL, total), (DONE, done)):
    for i, pcoll in enumerate(pcolls):
      _ = pcoll | f'Progress{kind.title()}{i}' >> TrackProgress(directory=directory, kind=kind)
