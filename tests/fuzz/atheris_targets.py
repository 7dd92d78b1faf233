"""Coverage-guided fuzz targets (atheris, libFuzzer) for decoding and sidecar parsing.

    python -m tests.fuzz.atheris_targets --target decode|sidecar [libFuzzer flags] [corpus dirs]
    e.g. -atheris_runs=200000 (make fuzz-long), -max_total_time=60

A target passes an input when the function under test returns or raises the
reject it documents (:class:`~transforms.common.RejectUpload` from
:func:`~transforms.decode.decode_bytes`, :class:`~schemas.metadata.MetadataError`
from :func:`~schemas.metadata.parse_sidecar`); any other exception is a crash:
libFuzzer stops and writes the input under ``fuzz/crashes-TARGET/``. Copy it
to ``tests/fuzz/crashes/TARGET/``: ``test_regressions.py`` replays every file
there. Without corpus directories the seeds are valid files of every upload
format (decode) or valid and broken sidecars (sidecar).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile

import apache_beam  # noqa: F401 -- imported before instrumentation: only our code is traced
import atheris
import av  # noqa: F401
import numpy as np
import soundfile  # noqa: F401

with atheris.instrument_imports(include=['transforms', 'schemas']):
  from schemas.config import DecodeConfig
  from schemas.metadata import MetadataError, parse_sidecar
  from transforms.common import RejectUpload
  from transforms.decode import decode_bytes

__all__ = ['check_decode', 'check_sidecar', 'TARGETS']

# Small limits keep each run fast; the code paths are those of the default config.
_CONFIG = DecodeConfig(max_duration_s=5.0)


def check_decode(data: bytes) -> None:
  """Decodes ``data``; only a RejectUpload (a bad file's documented outcome) may come out."""
  with contextlib.suppress(RejectUpload):
    decode_bytes(data, config=_CONFIG)


def check_sidecar(data: bytes) -> None:
  """Parses ``data`` as a sidecar; only a MetadataError (a bad sidecar's) may come out."""
  with contextlib.suppress(MetadataError):
    parse_sidecar(data, default_upload_id='fuzz/upload')


TARGETS = {'decode': check_decode, 'sidecar': check_sidecar}


def _write_seeds(target: str, directory: str) -> None:
  if target == 'decode':
    from pipelines.fuzz_corpus import seed_uploads  # noqa: PLC0415 -- only without a corpus
    seeds = seed_uploads(np.random.default_rng(0))
  else:
    valid = {'contributor_id': 'c', 'upload_id': 'u', 'transcript': 'hello there',
             'prompt_id': 'p', 'locale': 'en-US', 'uploaded_at': '2026-11-01T10:00:00+02:00',
             'consent': True}
    seeds = {'valid.json': json.dumps(valid).encode(), 'list.json': b'[1]',
             'nested.json': b'{"a": [{"b": null}]}'}
  for name, data in seeds.items():
    with open(os.path.join(directory, name), 'wb') as f:
      f.write(data)


def main(argv: list[str]) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--target', choices=sorted(TARGETS), required=True)
  args, fuzzer_argv = parser.parse_known_args(argv[1:])
  flags = [f for f in fuzzer_argv if f.startswith('-')]
  corpus = [f for f in fuzzer_argv if not f.startswith('-')]
  seeds = tempfile.TemporaryDirectory(prefix=f'atheris-{args.target}-')
  if not corpus:
    _write_seeds(args.target, seeds.name)
    corpus = [seeds.name]
  given = {flag.split('=')[0] for flag in flags}
  if '-artifact_prefix' not in given:
    crashes = os.path.join('fuzz', f'crashes-{args.target}')
    os.makedirs(crashes, exist_ok=True)
    flags.append(f'-artifact_prefix={crashes}/')
  defaults = ['-timeout=20', '-rss_limit_mb=2048', '-max_len=262144']
  flags += [flag for flag in defaults if flag.split('=')[0] not in given]
  atheris.Setup([argv[0], *flags, *corpus], TARGETS[args.target])
  atheris.Fuzz()


if __name__ == '__main__':
  main(sys.argv)
