"""Hostile uploads: valid files of every format, mutated, and known-bad cases crafted.

* :func:`fuzz_corpus`: yields :class:`FuzzCase` uploads (audio bytes, sidecar
  bytes or None, a file name, a category) from a seed; the same seed gives the
  same corpus.
* :func:`write_corpus`: writes them under an uploads root.

Categories (see README, Reliability):

* ``truncated``: a valid file cut at a random offset;
* ``header_bitflip`` / ``body_bitflip``: 1-8 random bits flipped in the first
  128 bytes, or anywhere;
* ``random_bytes``: noise (0-64 kB) named with an audio extension;
* ``zero_length``: no bytes;
* ``lying_header``: WAV and FLAC headers that lie about length (hours of
  audio, gigabytes of data), rate or channels;
* ``odd_format``: NaN/Inf float samples, one sample, 64 channels, 384 kHz,
  8-bit, mu-law and A-law, an mp3 that is only an ID3 tag, an archive named
  .wav, a gzip named .flac;
* ``bad_sidecar``: a valid upload whose sidecar is huge, deeply nested, not
  UTF-8, not an object, carries control characters or a 10 MB transcript;
* ``hostile_id``: a valid upload whose ids hold ``../``, absolute paths, URL
  schemes, NUL bytes or 4,000 characters;
* ``valid``: the unmutated seeds (and their ID3-tagged mp3), to show the
  build still accepts what it should next to all that.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import os
import struct
import zipfile
from collections.abc import Callable, Iterator

import numpy as np
import soundfile as sf

from pipelines.sample_audio import EXTENSIONS, FORMATS, encode_audio, random_voice, synth_speech

__all__ = ['FuzzCase', 'fuzz_corpus', 'write_corpus', 'seed_uploads', 'CATEGORIES']

CATEGORIES = ('valid', 'truncated', 'header_bitflip', 'body_bitflip', 'random_bytes',
              'zero_length', 'lying_header', 'odd_format', 'bad_sidecar', 'hostile_id')
_AUDIO_EXTENSIONS = ('.wav', '.flac', '.ogg', '.mp3', '.webm', '.m4a', '.aac', '.aiff')
_SEED_RATE_HZ = 48000


@dataclasses.dataclass(frozen=True)
class FuzzCase:
  """One upload: ``name`` (relative path with extension), its bytes, its sidecar."""
  name: str
  category: str
  audio: bytes
  sidecar: bytes | None


def _sidecar(contributor: str, **extra) -> bytes:
  return json.dumps({'contributor_id': contributor, 'consent': True, 'locale': 'en-US',
                     'transcript': 'a few words read out loud for the fuzzer', **extra}).encode()


def _soundfile_bytes(samples: np.ndarray, rate: int, fmt: str, subtype: str) -> bytes:
  buffer = io.BytesIO()
  sf.write(buffer, samples, rate, format=fmt, subtype=subtype)
  return buffer.getvalue()


def seed_uploads(rng: np.random.Generator) -> dict[str, bytes]:
  """Valid files by name: every upload format, mono and stereo, and a 24-bit AIFF."""
  def speech() -> np.ndarray:  # another voice each time: the seeds are no duplicates
    return synth_speech(rng, sample_rate=_SEED_RATE_HZ, duration_s=3.0, voice=random_voice(rng))
  seeds = {}
  for fmt in FORMATS:
    seeds[f'{fmt}{EXTENSIONS[fmt]}'] = encode_audio(speech(), sample_rate=_SEED_RATE_HZ,
                                                    fmt=fmt)
    mono = speech()
    seeds[f'{fmt}_stereo{EXTENSIONS[fmt]}'] = encode_audio(
        np.stack([mono, 0.5 * mono], axis=1), sample_rate=_SEED_RATE_HZ, fmt=fmt)
  seeds['aiff_pcm24.aiff'] = _soundfile_bytes(speech(), _SEED_RATE_HZ, 'AIFF', 'PCM_24')
  return seeds


def _flip_bits(data: bytes, rng: np.random.Generator, *, span: int) -> bytes:
  mutated = bytearray(data)
  for _ in range(int(rng.integers(1, 9))):
    position = int(rng.integers(0, min(span, len(mutated))))
    mutated[position] ^= 1 << int(rng.integers(0, 8))
  return bytes(mutated)


def _wav_header(*, riff_size: int, channels: int, rate: int, bits: int, data_size: int,
                fmt_tag: int = 1) -> bytes:
  block = channels * bits // 8
  return (b'RIFF' + struct.pack('<I', riff_size & 0xFFFFFFFF) + b'WAVE'
          + b'fmt ' + struct.pack('<IHHIIHH', 16, fmt_tag, channels & 0xFFFF,
                                  rate & 0xFFFFFFFF, (rate * block) & 0xFFFFFFFF,
                                  block & 0xFFFF, bits)
          + b'data' + struct.pack('<I', data_size & 0xFFFFFFFF))


def _lying_headers(rng: np.random.Generator) -> Iterator[tuple[str, bytes]]:
  """WAV and FLAC headers whose length, rate or channels disagree with the data."""
  pcm = (rng.standard_normal(16000) * 3000).astype('<i2').tobytes()
  hours_of_audio = 3 * 3600 * 16000 * 2
  honest = dict(riff_size=len(pcm) + 36, channels=1, rate=16000, bits=16, data_size=len(pcm))
  lies = {
      'hours': dict(honest, riff_size=hours_of_audio + 36, data_size=hours_of_audio),
      'gigabytes': dict(honest, riff_size=0xFFFFFFFF, data_size=0xFFFFFFF0),
      'rate_zero': dict(honest, rate=0),
      'rate_one': dict(honest, rate=1),
      'rate_4ghz': dict(honest, rate=0xFFFFFFFF),
      'channels_zero': dict(honest, channels=0),
      'channels_65535': dict(honest, channels=65535),
      'channels_64': dict(honest, channels=64),
      'bits_zero': dict(honest, bits=0),
      'bits_64_int': dict(honest, bits=64),
      'float_tag_16_bits': dict(honest, fmt_tag=3),
      'unknown_codec': dict(honest, fmt_tag=0x1234),
      'riff_size_tiny': dict(honest, riff_size=4),
      'data_size_odd': dict(honest, channels=2, data_size=len(pcm) - 1),
  }
  for name, fields in lies.items():
    yield f'wav_{name}.wav', _wav_header(**fields) + pcm
  flac = _soundfile_bytes(rng.standard_normal(16000) * 0.1, 16000, 'FLAC', 'PCM_16')
  # STREAMINFO follows 'fLaC' and a 4-byte block header: bytes 18-25 pack the sample
  # rate (20 bits), channels - 1 (3), bits - 1 (5) and the total samples (36).
  for name, patch in (('flac_total_samples_max', lambda b: b[:21] + bytes([b[21] | 0x0F])
                       + b'\xff' * 4 + b[26:]),
                      ('flac_rate_zero', lambda b: b[:18] + b'\x00\x00' + bytes(
                          [b[20] & 0x0F]) + b[21:]),
                      ('flac_rate_max', lambda b: b[:18] + b'\xff\xff' + bytes(
                          [b[20] | 0xF0]) + b[21:]),
                      ('flac_8_channels', lambda b: b[:20] + bytes(
                          [b[20] | 0x0E]) + b[21:])):
    yield f'{name}.flac', patch(flac)


def _odd_formats(rng: np.random.Generator) -> Iterator[tuple[str, bytes]]:
  speech = synth_speech(rng, sample_rate=16000, duration_s=2.0, voice=random_voice(rng))
  for value, name in ((np.nan, 'nan'), (np.inf, 'inf'), (-np.inf, 'minus_inf')):
    samples = speech.copy()
    samples[int(rng.integers(0, len(samples)))] = value
    yield f'float_{name}.wav', _soundfile_bytes(samples, 16000, 'WAV', 'FLOAT')
    yield f'double_{name}.wav', _soundfile_bytes(samples.astype(np.float64), 16000, 'WAV',
                                                 'DOUBLE')
  yield 'one_sample.wav', _soundfile_bytes(speech[:1], 16000, 'WAV', 'PCM_16')
  yield 'one_sample.flac', _soundfile_bytes(speech[:1], 16000, 'FLAC', 'PCM_16')
  yield 'channels_64.wav', _soundfile_bytes(np.tile(speech[:, None], (1, 64)), 16000,
                                            'WAV', 'PCM_16')
  yield 'channels_8.flac', _soundfile_bytes(np.tile(speech[:, None], (1, 8)), 16000,
                                            'FLAC', 'PCM_16')
  fast = np.repeat(speech, 24)
  yield 'rate_384k.wav', _soundfile_bytes(fast, 384000, 'WAV', 'PCM_16')
  yield 'rate_384k.flac', _soundfile_bytes(fast, 384000, 'FLAC', 'PCM_24')
  yield 'rate_384k_8ch_2min.wav', (  # a valid header for 2 minutes of 8 x 384 kHz: 737 MB
      _wav_header(riff_size=36 + 120 * 384000 * 16, channels=8, rate=384000, bits=16,
                  data_size=120 * 384000 * 16) + fast.astype('<f4').view('<i2').tobytes())
  for subtype in ('PCM_U8', 'PCM_S8', 'ULAW', 'ALAW'):
    fmt = 'AIFF' if subtype == 'PCM_S8' else 'WAV'
    yield f'{subtype.lower()}.{fmt.lower()}', _soundfile_bytes(speech, 16000, fmt, subtype)
  yield 'id3_only.mp3', (b'ID3\x04\x00\x00\x00\x00\x01\x00' + b'TIT2' + struct.pack(
      '>I', 20) + b'\x00\x00\x03' + b'just a title here' + b'\x00' * 100)
  wav = _soundfile_bytes(speech, 16000, 'WAV', 'PCM_16')
  archive = io.BytesIO()
  with zipfile.ZipFile(archive, 'w') as z:
    z.writestr('inner.wav', wav)
  yield 'archive.wav', archive.getvalue()
  yield 'gzip.flac', gzip.compress(wav)
  yield 'riff_not_wave.wav', b'RIFF' + struct.pack('<I', 100) + b'AVI ' + wav[12:200]
  yield 'ogg_page_only.ogg', b'OggS' + bytes(60)
  yield 'ftyp_only.m4a', struct.pack('>I', 16) + b'ftypM4A \x00\x00\x00\x00'
  yield 'ebml_only.webm', b'\x1a\x45\xdf\xa3' + b'\x9f\x42\x86\x81\x01webm' + bytes(20)
  yield 'mpeg_sync_garbage.mp3', b'\xff\xfb' + rng.bytes(4000)
  yield 'adts_sync_garbage.aac', b'\xff\xf1' + rng.bytes(4000)


def _bad_sidecars(rng: np.random.Generator) -> Iterator[tuple[str, bytes]]:
  transcript_10mb = 'word ' * (2 * 1024 * 1024)
  yield 'huge', b'{"contributor_id": "c", "padding": "' + b'x' * 3_000_000 + b'"}'
  yield 'transcript_10mb', json.dumps({'contributor_id': 'c', 'consent': True,
                                       'transcript': transcript_10mb}).encode()
  yield 'nested_arrays', b'[' * 200_000 + b']' * 200_000
  yield 'nested_in_object', (b'{"contributor_id": "c", "consent": true, "x": '
                             + b'{"a":' * 50_000 + b'1' + b'}' * 50_000 + b'}')
  yield 'latin1', _sidecar('c\xe9').decode().encode('latin-1')
  yield 'utf16', _sidecar('c').decode().encode('utf-16')
  yield 'random_bytes', rng.bytes(300)
  for name, doc in (('list', b'[1, 2, 3]'), ('string', b'"contributor_id"'),
                    ('number', b'42'), ('null', b'null'), ('true', b'true'),
                    ('empty', b''), ('bom_object', b'\xef\xbb\xbf{"contributor_id": "c"}'),
                    ('duplicate_keys', b'{"contributor_id": "a", "contributor_id": 7}'),
                    ('nan_value', b'{"contributor_id": "c", "consent": NaN}')):
    yield name, doc
  for field in ('contributor_id', 'upload_id', 'transcript', 'prompt_id', 'locale'):
    for char in ('\x00', '\x07', '\x1b', '\x7f', '\x85'):
      yield f'control_{field}_{ord(char):02x}', _sidecar('c', **{field: f'a{char}b'})
  for name, value in (('contributor_list', ['a']), ('contributor_object', {'a': 1}),
                      ('contributor_number', 1e308), ('consent_string', 'yes'),
                      ('uploaded_at_year_0', '0000-01-01T00:00:00Z'),
                      ('uploaded_at_huge', '9999-12-31T23:59:59-23:59')):
    key = name.split('_')[0]
    key = {'contributor': 'contributor_id', 'uploaded': 'uploaded_at'}.get(key, key)
    yield name, _sidecar('c', **{key: value})


def _hostile_ids() -> Iterator[tuple[str, dict]]:
  for name, value in (('dotdot', '../../../../etc/passwd'), ('dotdot_win', '..\\..\\x'),
                      ('absolute', '/etc/passwd'), ('absolute_tmp', '/tmp/fuzz-escape'),
                      ('url_gs', 'gs://another-bucket/x'), ('url_file', 'file:///etc/x'),
                      ('url_http', 'http://example.com/x?y=1'), ('nul', 'a\x00b'),
                      ('long_4000', 'x' * 4000), ('long_512', 'y' * 512),
                      ('html', '<script>alert(1)</script>'), ('dot', '.'),
                      ('empty', ''), ('slashes', '////'), ('unicode', 'ﬁ\u202eevil')):
    yield f'upload_{name}', {'upload_id': value}
    yield f'contributor_{name}', {'contributor_id': value or 'c'}
    yield f'prompt_{name}', {'prompt_id': value}
    yield f'transcript_{name}', {'transcript': value}


def fuzz_corpus(*, count: int = 1000, seed: int = 0) -> Iterator[FuzzCase]:
  """At least ``count`` hostile uploads (the crafted ones all, the random rest).

  Args:
    count: how many uploads, at least; random mutations of the seeds fill up
      what the crafted cases leave.
    seed: the same seed gives the same corpus.
  """
  rng = np.random.default_rng(seed)
  seeds = seed_uploads(rng)
  made = 0

  def case(name: str, category: str, audio: bytes, sidecar: bytes | None = b'') -> FuzzCase:
    nonlocal made
    made += 1
    contributor = f'fuzz-{made % 23:02d}'
    return FuzzCase(f'{category}/{made:05d}-{name}', category, audio,
                    _sidecar(contributor) if sidecar == b'' else sidecar)

  for name, data in seeds.items():
    yield case(name, 'valid', data)
  crafted: list[tuple[str, str, bytes, bytes | None]] = []
  crafted += [(name, 'lying_header', data, b'') for name, data in _lying_headers(rng)]
  crafted += [(name, 'odd_format', data, b'') for name, data in _odd_formats(rng)]
  valid_wav = seeds['wav_pcm16.wav']
  crafted += [(f'{name}.wav', 'bad_sidecar', valid_wav, doc)
              for name, doc in _bad_sidecars(rng)]
  crafted.append(('no_sidecar.wav', 'bad_sidecar', valid_wav, None))
  crafted += [(f'{name}.flac', 'hostile_id', seeds['flac.flac'], _sidecar('c', **fields))
              for name, fields in _hostile_ids()]
  crafted += [(f'empty{ext}', 'zero_length', b'', b'') for ext in _AUDIO_EXTENSIONS]
  for name, category, data, sidecar in crafted:
    yield case(name, category, data, sidecar)

  names = sorted(seeds)
  mutations: dict[str, Callable[[bytes], bytes]] = {
      'truncated': lambda d: d[:int(rng.integers(0, len(d)))],
      'header_bitflip': lambda d: _flip_bits(d, rng, span=128),
      'body_bitflip': lambda d: _flip_bits(d, rng, span=len(d)),
  }
  while made < count:
    kind = ('truncated', 'header_bitflip', 'body_bitflip', 'random_bytes')[made % 4]
    if kind == 'random_bytes':
      ext = _AUDIO_EXTENSIONS[int(rng.integers(len(_AUDIO_EXTENSIONS)))]
      yield case(f'noise{ext}', kind, rng.bytes(int(rng.integers(1, 65536))))
      continue
    name = names[int(rng.integers(len(names)))]
    yield case(name, kind, mutations[kind](seeds[name]))


def write_corpus(cases: Iterator[FuzzCase], root: str) -> list[FuzzCase]:
  """Writes each case's audio (and sidecar, if any) under ``root``; returns the cases."""
  written = []
  for case in cases:
    path = os.path.join(root, case.name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
      f.write(case.audio)
    if case.sidecar is not None:
      with open(os.path.splitext(path)[0] + '.json', 'wb') as f:
        f.write(case.sidecar)
    written.append(case)
  return written
