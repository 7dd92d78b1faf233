"""What every stage shares: the reject exception, output tags and a stage DoFn.

A stage's DoFn implements :meth:`StageFn.process_clip`, which returns the
transformed clip or raises :class:`RejectUpload`. The base class turns the
exception into a :class:`~schemas.records.Reject` on the ``rejected`` output,
turns any other exception into an ``internal_error`` reject carrying the
traceback, counts what it received, emitted and rejected per reason, and
records the CPU time ``process_clip`` took in the distribution ``STAGE.us``
(microseconds of the worker thread's CPU per clip: not inflated when other
processes share the machine; :func:`timed` does the same for other DoFns).
"""

from __future__ import annotations

import functools
import time
import traceback
from collections.abc import Callable, Iterator
from typing import NamedTuple

import apache_beam as beam
from apache_beam.metrics import Metrics

from schemas.records import Clip, Reject
from transforms.errors import RejectUpload

__all__ = ['RejectUpload', 'StageFn', 'StageOutputs', 'ACCEPTED', 'REJECTED',
           'apply_stage', 'METRICS_NAMESPACE', 'inc_counter', 'timed', 'stage_timer',
           'TIME_SUFFIX']

ACCEPTED = 'clips'
REJECTED = 'rejected'
METRICS_NAMESPACE = 'audio_dataset'
TIME_SUFFIX = '.us'
"""Distributions named ``STAGE.us`` hold the thread CPU microseconds of each element.

The stages' libraries (FFmpeg, soxr, libFLAC, Silero VAD's ONNX runtime with one
intra-op thread, numpy) compute in the calling thread, so its CPU time is the
stage's whole cost."""


def inc_counter(stage: str, name: str, value: int = 1) -> None:
  """Increments the counter ``STAGE.NAME`` in the project's namespace."""
  Metrics.counter(METRICS_NAMESPACE, f'{stage}.{name}').inc(value)


def stage_timer(stage: str):
  """The distribution of a stage's microseconds per element (``STAGE.us``)."""
  return Metrics.distribution(METRICS_NAMESPACE, f'{stage}{TIME_SUFFIX}')


def timed(stage: str) -> Callable:
  """Decorates a DoFn's generator ``process`` (or a generator function given to
  ``FlatMap``) to record its time per element in ``STAGE.us``.

  Only the time spent inside ``process`` counts: while it is suspended at a
  ``yield``, the fused downstream steps run, and their time is theirs.
  """
  def decorate(process: Callable) -> Callable:
    @functools.wraps(process)
    def wrapper(*args, **kwargs):
      spent = 0
      outputs = process(*args, **kwargs)
      while True:
        start = time.thread_time_ns()
        try:
          output = next(outputs)
        except StopIteration:
          stage_timer(stage).update((spent + time.thread_time_ns() - start) // 1000)
          return
        spent += time.thread_time_ns() - start
        yield output
    return wrapper
  return decorate


class StageFn(beam.DoFn):
  """Base DoFn of a per-upload stage; subclasses set ``STAGE``."""
  STAGE = 'stage'

  def process_clip(self, clip: Clip) -> Clip:
    raise NotImplementedError

  def process(self, clip: Clip) -> Iterator[Clip | beam.pvalue.TaggedOutput]:
    inc_counter(self.STAGE, 'received')
    start = time.thread_time_ns()
    try:
      result = self.process_clip(clip)
    except RejectUpload as e:
      result = self.reject(clip, e.reason, e.detail, reasons=e.reasons,
                           duplicate_of=e.duplicate_of, cross_contributor=e.cross_contributor)
    except Exception:  # noqa: BLE001 -- any failure becomes a reject
      # One upload must never fail the build: record the traceback as its reason.
      result = self.reject(clip, 'internal_error', traceback.format_exc())
    stage_timer(self.STAGE).update((time.thread_time_ns() - start) // 1000)
    if not isinstance(result, beam.pvalue.TaggedOutput):
      inc_counter(self.STAGE, 'emitted')
    yield result

  def reject(self, clip: Clip, reason: str, detail: str, *,
             reasons: tuple[str, ...] = (), duplicate_of: str | None = None,
             cross_contributor: bool | None = None) -> beam.pvalue.TaggedOutput:
    """A tagged reject of ``clip``, counted under ``STAGE.rejected.REASON``."""
    inc_counter(self.STAGE, f'rejected.{reason}')
    return beam.pvalue.TaggedOutput(REJECTED, Reject.of(
        clip, stage=self.STAGE, reason=reason, detail=detail, reasons=tuple(reasons),
        duplicate_of=duplicate_of, cross_contributor=cross_contributor))


class StageOutputs(NamedTuple):
  """What every stage returns: the clips that go on, and the rejects."""
  clips: beam.PCollection
  rejected: beam.PCollection


def apply_stage(clips: beam.PCollection, fn: beam.DoFn) -> StageOutputs:
  """Runs ``fn`` over ``clips``, splitting its ``rejected`` output off."""
  outputs = clips | beam.ParDo(fn).with_outputs(REJECTED, main=ACCEPTED)
  return StageOutputs(outputs[ACCEPTED], outputs[REJECTED])
