"""Print every metric and the verdict for one upload: for tuning and for support.

    python -m pipelines.inspect_upload FILE [--transcript TEXT] [--config YAML]
        [--set filter.min_snr_db=5]

Runs the same functions as the build's decode, standardize, trim, measure and
filter stages on one file (local or gs://), so a support team can tell a
contributor exactly which rule their recording failed, by how much.
"""

from __future__ import annotations

import argparse
import sys

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from schemas.config import BuildConfig, ConfigError, load_config
from transforms.common import RejectUpload
from transforms.decode import decode_bytes
from transforms.filter import failed_rules
from transforms.measure import make_vad, measure_clip
from transforms.metrics import clipping_ratio
from transforms.standardize import standardize
from transforms.trim import sound_span

__all__ = ['inspect', 'main']


def inspect(path: str, *, transcript: str | None, config: BuildConfig) -> list[str]:
  """The report lines for one upload; the last line is the verdict."""
  with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
    data = f.read(config.discover.max_upload_bytes + 1)
  if len(data) > config.discover.max_upload_bytes:
    return [f'verdict: rejected (file_too_large): more than '
            f'{config.discover.max_upload_bytes} bytes']
  try:
    source = decode_bytes(data, config=config.decode)
  except RejectUpload as e:
    return [f'verdict: rejected ({e.reason}): {e.detail}']
  frames, channels = source.samples.shape
  lines = [f'source: {source.container}/{source.codec}, {source.sample_rate} Hz, '
           f'{channels} channel(s), {frames / source.sample_rate:.2f} s']
  pcm = standardize(source.samples, sample_rate=source.sample_rate,
                    target_rate=config.sample_rate_hz)
  span = sound_span(pcm, sample_rate=config.sample_rate_hz, config=config.trim)
  if span is None:
    return lines + [f'verdict: rejected (silence): nothing above {config.trim.floor_dbfs:g} dBFS']
  start, stop = span
  lines.append(f'trim: kept {start / config.sample_rate_hz:.2f} s to '
               f'{stop / config.sample_rate_hz:.2f} s')
  metrics = {'clipping_ratio': clipping_ratio(source.samples, full_scale=source.full_scale,
                                              min_run=config.decode.clipping_min_run)}
  metrics.update(measure_clip(pcm[start:stop], sample_rate=config.sample_rate_hz,
                              transcript=transcript, vad=make_vad(), config=config.measure))
  lines += [f'  {name:18s} {"null" if value is None else f"{value:.4g}"}'
            for name, value in metrics.items()]
  failures = failed_rules(metrics, config.filter)
  if not failures:
    return lines + ['verdict: passes every quality rule (dedup is decided in the build)']
  return lines + [f'verdict: rejected ({failures[0][0]}): '
                  + '; '.join(detail for _, detail in failures)]


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('file', help='an upload: a local path or gs:// URI')
  parser.add_argument('--transcript', default=None, help='the text that was read')
  parser.add_argument('--config', default=None, help='YAML build config')
  parser.add_argument('--set', dest='overrides', action='append', default=[],
                      help='override one config value, e.g. filter.min_snr_db=5')
  args = parser.parse_args(argv)
  try:
    config = load_config(args.config, args.overrides)
  except ConfigError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  print('\n'.join(inspect(args.file, transcript=args.transcript, config=config)))
  return 0


if __name__ == '__main__':
  sys.exit(main())
