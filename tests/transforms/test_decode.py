import io

import apache_beam as beam
import av
import numpy as np
import pytest
import soundfile as sf
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.util import assert_that, equal_to

from pipelines.sample_audio import FORMATS, encode_audio
from schemas.config import DecodeConfig
from tests.conftest import clip_of, local_pipeline, speech
from transforms.common import RejectUpload
from transforms.decode import DecodeAudio, decode_bytes, sniff_container

CONFIG = DecodeConfig()
EXPECTED = {'wav_pcm16': ('wav', 'pcm_16'), 'wav_float32': ('wav', 'float'),
            'flac': ('flac', 'pcm_16'), 'ogg_vorbis': ('ogg', 'vorbis'),
            'ogg_opus': ('ogg', 'opus'), 'mp3': ('mp3', 'mpeg_layer_iii'),
            'webm_opus': ('webm', 'opus'), 'm4a_aac': ('mp4', 'aac')}


def reject_reason(data, config=CONFIG):
  with pytest.raises(RejectUpload) as e:
    decode_bytes(data, config=config)
  return e.value.reason, e.value.detail


@pytest.mark.parametrize('fmt', FORMATS)
@pytest.mark.parametrize('channels', [1, 2])
def test_every_format_decodes_with_its_facts(fmt, channels):
  x = speech(1, sample_rate=48000, duration_s=2.0)
  if channels == 2:
    x = np.stack([x, -x], axis=1)
  decoded = decode_bytes(encode_audio(x, sample_rate=48000, fmt=fmt), config=CONFIG)
  assert (decoded.container, decoded.codec) == EXPECTED[fmt]
  assert decoded.sample_rate == 48000
  assert decoded.samples.shape[1] == channels
  assert decoded.samples.dtype == np.float32
  assert abs(decoded.samples.shape[0] / 48000 - 2.0) < 0.1


def test_container_is_detected_by_content_not_extension():
  data = encode_audio(speech(2, sample_rate=44100), sample_rate=44100, fmt='m4a_aac')
  assert sniff_container(data[:64]) == 'mp4'
  assert decode_bytes(data, config=CONFIG).sample_rate == 44100


def test_lossless_decode_is_exact():
  x = speech(3, sample_rate=16000)
  decoded = decode_bytes(encode_audio(x, sample_rate=16000, fmt='flac'), config=CONFIG)
  expected = np.round(np.clip(x, -1, 32767 / 32768) * 32767) / 32768
  assert np.max(np.abs(decoded.samples[:, 0] - expected)) <= 1 / 32768


def wav(samples, rate, subtype='PCM_16'):
  buffer = io.BytesIO()
  sf.write(buffer, samples, rate, format='WAV', subtype=subtype)
  return buffer.getvalue()


def test_bad_inputs_are_rejected_with_reasons():
  assert reject_reason(b'')[0] == 'empty_file'
  assert reject_reason(b'hello world, not audio')[0] == 'unsupported_format'
  flac = encode_audio(speech(4), sample_rate=16000, fmt='flac')
  assert reject_reason(flac[:50])[0] == 'undecodable'
  webm = encode_audio(speech(4), sample_rate=16000, fmt='webm_opus')
  reason, detail = reject_reason(webm[:40])
  assert reason == 'undecodable' and 'FFmpeg' in detail
  assert reject_reason(wav(np.zeros(100), 1000))[0] == 'invalid_sample_rate'
  assert reject_reason(wav(np.zeros((100, 16)), 16000))[0] == 'too_many_channels'
  nan = np.zeros(1000, np.float32)
  nan[10] = np.nan
  assert reject_reason(wav(nan, 16000, 'FLOAT'))[0] == 'non_finite_samples'
  assert reject_reason(wav(np.zeros(0), 16000))[0] == 'no_samples'


def test_long_header_is_rejected_before_decoding():
  data = wav(np.zeros(16000 * 3), 16000)
  reason, detail = reject_reason(data, DecodeConfig(max_duration_s=2.0))
  assert reason == 'header_too_long' and '3.0 s' in detail


def test_long_stream_without_duration_is_cut_at_the_limit():
  # A webm from MediaRecorder may carry no duration: decoding stops at the limit.
  data = encode_audio(speech(5, sample_rate=48000, duration_s=3.0), sample_rate=48000,
                      fmt='webm_opus')
  with av.open(io.BytesIO(data)) as reader:
    assert reader.streams.audio[0].codec_context.sample_rate == 48000
  assert reject_reason(data, DecodeConfig(max_duration_s=1.0))[0] == 'header_too_long'


def test_decode_transform_reads_files_and_reports_rejects(tmp_path):
  good = tmp_path / 'good.mp3'
  good.write_bytes(encode_audio(speech(6, sample_rate=44100), sample_rate=44100, fmt='mp3'))
  bad = tmp_path / 'bad.wav'
  bad.write_bytes(b'\x00' * 100)
  clips = [clip_of(upload_id='good', source_uri=str(good)),
           clip_of(upload_id='bad', source_uri=str(bad)),
           clip_of(upload_id='gone', source_uri=str(tmp_path / 'gone.wav'))]
  with local_pipeline() as p:
    out = p | beam.Create(clips) | DecodeAudio(config=CONFIG)
    assert_that(out.clips | 'Ok' >> beam.Map(
        lambda c: (c.upload_id, c.container, c.source_sample_rate, c.source_channels,
                   round(c.source_duration_s), c.metrics['clipping_ratio'])),
        equal_to([('good', 'mp3', 44100, 1, 3, 0.0)]), label='clips')
    assert_that(out.rejected | 'Bad' >> beam.Map(
        lambda r: (r.upload_id, r.stage, r.reason, 'Traceback' in r.detail)),
        equal_to([('bad', 'decode', 'unsupported_format', False),
                  ('gone', 'decode', 'internal_error', True)]), label='rejects')


def test_stage_counters_report_received_emitted_and_rejects(tmp_path):
  good = tmp_path / 'good.flac'
  good.write_bytes(encode_audio(speech(7), sample_rate=16000, fmt='flac'))
  (tmp_path / 'bad.wav').write_bytes(b'nonsense')
  p = local_pipeline()
  _ = (p | beam.Create([clip_of(upload_id='g', source_uri=str(good)),
                        clip_of(upload_id='b', source_uri=str(tmp_path / 'bad.wav'))])
       | DecodeAudio(config=CONFIG))
  result = p.run()
  result.wait_until_finish()
  counters = {c.key.metric.name: c.committed for c in result.metrics().query(
      MetricsFilter().with_namespace('audio_dataset'))['counters']}
  assert counters == {'decode.received': 2, 'decode.emitted': 1,
                      'decode.rejected.unsupported_format': 1}
