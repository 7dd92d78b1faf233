import io
import json
import os

from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.progress import LiveProgress, format_progress, live_progress
from pipelines.runner import DATAFLOW_RUNNER, LOCAL_RUNNER


class _Terminal(io.StringIO):
  def isatty(self):
    return True


def test_line_reads_uploads_hours_rate_and_time_left():
  assert format_progress(done=31, total=62, audio_s=3600.0, rate=3.1) == (
      'uploads 31/62 (50%) \u00b7 audio 1.00 h \u00b7 3.1 uploads/s \u00b7 ~10 s left')
  assert format_progress(done=0, total=600, audio_s=0.0, rate=None).endswith(
      'measuring the rate...')
  assert '~2 min 00 s left' in format_progress(done=0, total=240, audio_s=0.0, rate=2.0)
  assert format_progress(done=5, total=5, audio_s=0.0, rate=1.0).endswith(
      'deduplicating and writing...')
  assert format_progress(done=0, total=0, audio_s=0.0, rate=None) == 'listing uploads...'


def _counts(directory, kind, count, seconds):
  with open(os.path.join(directory, f'{kind}-w1.json'), 'w') as f:
    json.dump({'count': count, 'seconds': seconds}, f)


def test_live_line_redraws_from_the_workers_files():
  stream = _Terminal()
  progress = LiveProgress(stream, poll_s=0.01)
  _counts(progress.directory, 'total', 10, 0.0)
  _counts(progress.directory, 'done', 2, 7200.0)
  assert progress.line(now=100.0) == format_progress(done=2, total=10, audio_s=7200.0,
                                                     rate=None)
  _counts(progress.directory, 'done', 6, 9000.0)
  assert progress.line(now=102.0).startswith('uploads 6/10 (60%) \u00b7 audio 2.50 h \u00b7 '
                                             '2.0 uploads/s \u00b7 ~2 s left')
  with progress:
    pass
  out = stream.getvalue()
  assert out.startswith('\r\x1b[K') and out.endswith('\n') and 'uploads 6/10' in out
  assert not os.path.exists(progress.directory)


def test_quiet_off_a_terminal_and_off_local_runners():
  auto = PipelineOptions([])
  assert live_progress(auto, LOCAL_RUNNER, stream=io.StringIO()) is None
  assert live_progress(PipelineOptions(['--progress=never']), LOCAL_RUNNER,
                       stream=_Terminal()) is None
  assert live_progress(auto, DATAFLOW_RUNNER, stream=_Terminal()) is None
  for options, stream in ((auto, _Terminal()),
                          (PipelineOptions(['--progress=always']), io.StringIO())):
    progress = live_progress(options, LOCAL_RUNNER, stream=stream)
    assert isinstance(progress, LiveProgress)
    progress.close()
