"""Decoding a file's bytes with the codecs: no Beam, so that the decoder child loads fast.

* :func:`decode_bytes`: a whole file's bytes -> :class:`Decoded` samples, or
  :class:`~transforms.errors.RejectUpload` with the reason.
* :func:`sniff_container`: the container named by a file's first bytes.

wav, flac, ogg (vorbis, opus), mp3 and aiff go through soundfile (libsndfile);
webm/matroska, mp4/m4a and ADTS AAC go through PyAV (FFmpeg). The stage that
uses them is :class:`transforms.decode.DecodeAudio`; it runs them in the child
process of :mod:`transforms.decode_process`, which imports only this module
(1.5 s of CPU less per child than importing Beam).
"""

from __future__ import annotations

import io

import av
import numpy as np
import soundfile as sf

from schemas.config import DecodeConfig
from transforms.errors import RejectUpload

__all__ = ['sniff_container', 'decode_bytes', 'Decoded', 'SOUNDFILE_CONTAINERS',
           'PYAV_CONTAINERS']

SOUNDFILE_CONTAINERS = frozenset({'wav', 'flac', 'ogg', 'mp3', 'aiff'})
PYAV_CONTAINERS = frozenset({'webm', 'matroska', 'mp4', 'aac'})


def sniff_container(head: bytes) -> str | None:
  """The container named by a file's first 64 bytes, or None if unknown."""
  if len(head) >= 12 and head[:4] in (b'RIFF', b'RF64', b'BW64') and head[8:12] == b'WAVE':
    return 'wav'
  if head[:4] == b'fLaC':
    return 'flac'
  if head[:4] == b'OggS':
    return 'ogg'
  if len(head) >= 12 and head[:4] == b'FORM' and head[8:12] in (b'AIFF', b'AIFC'):
    return 'aiff'
  if head[:4] == b'\x1a\x45\xdf\xa3':
    return 'webm' if b'webm' in head[:64] else 'matroska'
  if len(head) >= 8 and head[4:8] == b'ftyp':
    return 'mp4'
  if head[:3] == b'ID3':
    return 'mp3'
  if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
    # MPEG frame sync: layer bits 00 mean ADTS AAC, anything else MPEG audio.
    return 'aac' if head[1] & 0x06 == 0 else 'mp3'
  return None


class Decoded:
  """Samples ``(frames, channels)`` float32 and the facts of their source."""
  __slots__ = ('samples', 'sample_rate', 'container', 'codec', 'full_scale')

  def __init__(self, samples: np.ndarray, *, sample_rate: int, container: str,
               codec: str, full_scale: float):
    self.samples = samples
    self.sample_rate = sample_rate
    self.container = container
    self.codec = codec
    self.full_scale = full_scale


def _full_scale(subtype: str) -> float:
  """The float value an integer PCM source reaches at its positive full scale."""
  bits = {'PCM_S8': 8, 'PCM_U8': 8, 'PCM_16': 16, 'PCM_24': 24, 'PCM_32': 32}.get(subtype)
  if bits is None:
    return 1.0 if subtype in ('FLOAT', 'DOUBLE') else 0.99
  return (2 ** (bits - 1) - 1) / 2 ** (bits - 1)


def _check_format(*, sample_rate: int, channels: int, duration_s: float | None,
                  config: DecodeConfig) -> None:
  if not config.min_sample_rate_hz <= sample_rate <= config.max_sample_rate_hz:
    raise RejectUpload('invalid_sample_rate',
                       f'sample rate {sample_rate} Hz is outside '
                       f'[{config.min_sample_rate_hz}, {config.max_sample_rate_hz}]')
  if not 1 <= channels <= config.max_channels:
    raise RejectUpload('too_many_channels',
                       f'{channels} channels; at most {config.max_channels} are accepted')
  if duration_s is not None and duration_s > config.max_duration_s:
    raise RejectUpload('header_too_long',
                       f'the header says {duration_s:.1f} s; at most '
                       f'{config.max_duration_s:g} s are decoded')


def _decode_soundfile(data: bytes, container: str, config: DecodeConfig) -> Decoded:
  try:
    with sf.SoundFile(io.BytesIO(data)) as f:
      _check_format(sample_rate=f.samplerate, channels=f.channels,
                    duration_s=f.frames / f.samplerate if f.frames > 0 else None,
                    config=config)
      limit = int(config.max_duration_s * f.samplerate) + 1
      samples = f.read(frames=limit, dtype='float32', always_2d=True)
      return Decoded(samples, sample_rate=f.samplerate, container=container,
                     codec=f.subtype.lower(), full_scale=_full_scale(f.subtype))
  except sf.LibsndfileError as e:
    raise RejectUpload('undecodable', f'libsndfile cannot decode this {container}: '
                       f'{e.error_string}') from e


def _decode_pyav(data: bytes, container: str, config: DecodeConfig) -> Decoded:
  try:
    # Tags are the uploader's bytes: a non-UTF-8 title must not fail the decode.
    with av.open(io.BytesIO(data), mode='r', metadata_errors='replace') as reader:
      stream = next((s for s in reader.streams if s.type == 'audio'), None)
      if stream is None:
        raise RejectUpload('no_audio_stream', f'the {container} holds no audio stream')
      context = stream.codec_context
      if context is None:
        raise RejectUpload('undecodable', f'FFmpeg has no decoder for the audio stream '
                           f'of this {container}')
      sample_rate, channels = context.sample_rate, context.layout.nb_channels
      duration_s = (float(stream.duration * stream.time_base) if stream.duration
                    else (reader.duration / av.time_base if reader.duration else None))
      _check_format(sample_rate=sample_rate, channels=channels, duration_s=duration_s,
                    config=config)
      limit = int(config.max_duration_s * sample_rate) + 1
      resampler = av.AudioResampler(format='fltp', layout=context.layout, rate=sample_rate)
      chunks, frames = [], 0
      for frame in reader.decode(stream):
        for out in resampler.resample(frame):
          chunks.append(out.to_ndarray())
          frames += chunks[-1].shape[1]
        if frames >= limit:
          break
      for out in resampler.resample(None):
        chunks.append(out.to_ndarray())
      samples = (np.concatenate(chunks, axis=1).T if chunks
                 else np.zeros((0, channels), np.float32))
      return Decoded(np.ascontiguousarray(samples[:limit], dtype=np.float32),
                     sample_rate=sample_rate, container=container,
                     codec=context.name, full_scale=0.99)
  except av.FFmpegError as e:
    raise RejectUpload('undecodable', f'FFmpeg cannot decode this {container}: {e}') from e


def decode_bytes(data: bytes, *, config: DecodeConfig) -> Decoded:
  """Decodes a whole file's bytes; raises :class:`RejectUpload` when it can't."""
  if not data:
    raise RejectUpload('empty_file', 'the file has no bytes')
  container = sniff_container(data[:64])
  if container is None:
    raise RejectUpload('unsupported_format',
                       f'unrecognised content starting with {data[:8].hex()}')
  if container in SOUNDFILE_CONTAINERS:
    decoded = _decode_soundfile(data, container, config)
  else:
    decoded = _decode_pyav(data, container, config)
  if decoded.samples.shape[0] == 0:
    raise RejectUpload('no_samples', f'the {container} decodes to no samples')
  if decoded.samples.shape[0] > config.max_duration_s * decoded.sample_rate:
    raise RejectUpload('header_too_long',
                       f'the audio runs past {config.max_duration_s:g} s, the most decoded')
  if not np.isfinite(decoded.samples).all():
    raise RejectUpload('non_finite_samples', 'the audio contains NaN or infinite samples')
  return decoded
