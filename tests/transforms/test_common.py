import time

import apache_beam as beam

from pipelines.job_metrics import job_metrics
from tests.conftest import clip_of, local_pipeline
from transforms.common import RejectUpload, StageFn, apply_stage, timed


def _spin(seconds: float) -> None:
  """Uses ``seconds`` of this thread's CPU (the timings count CPU, not sleep)."""
  end = time.thread_time() + seconds
  while time.thread_time() < end:
    pass


class _SpinFn(StageFn):
  STAGE = 'spinning'

  def process_clip(self, clip):
    _spin(0.02)
    if clip.upload_id == 'bad':
      raise RejectUpload('silence', 'nothing to hear')
    return clip


class _TimedFn(beam.DoFn):
  @timed('splitter')
  def process(self, clip):
    _spin(0.01)
    yield clip
    yield clip


class _SlowConsumerFn(beam.DoFn):
  def process(self, clip):
    _spin(0.05)  # runs while _TimedFn is suspended at its yield: not its time
    yield clip


def test_stage_times_are_distributions_of_microseconds_per_element():
  p = local_pipeline()
  staged = apply_stage(p | beam.Create([clip_of(upload_id='good'), clip_of(upload_id='bad')]),
                       _SpinFn())
  _ = (staged.clips | beam.ParDo(_TimedFn()) | beam.ParDo(_SlowConsumerFn()))
  result = p.run()
  result.wait_until_finish()
  metrics = job_metrics(result)
  spinning = metrics['distributions']['spinning.us']
  assert spinning['count'] == 2  # rejects are timed too
  assert 20_000 <= spinning['min'] <= spinning['max'] < 1_000_000
  splitter = metrics['distributions']['splitter.us']
  assert splitter['count'] == 1
  assert 10_000 <= splitter['sum'] < 50_000  # the consumer's 2 x 50 ms are not counted
  assert metrics['counters']['spinning.received'] == 2
  assert metrics['counters']['spinning.emitted'] == 1
  assert metrics['counters']['spinning.rejected.silence'] == 1
