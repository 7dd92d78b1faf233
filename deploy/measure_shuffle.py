"""What a build shuffles: the bytes entering every GroupByKey, per clip (docs/scaling.md).

    .venv/bin/python deploy/measure_shuffle.py --uploads DIR [--config FILE]

Builds the same pipeline as ``pipelines.build_dataset``, puts a probe on the
input of every GroupByKey (the Reshuffle, exact and near dedup, the writes'
finalization...), runs it on the local FnApiRunner in one process and prints,
per GroupByKey, the elements and the bytes of their encoding with the
PCollection's own coder: what a runner ships through its shuffle. The totals
are scaled to a million clips entering exact dedup.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence

import apache_beam as beam
from apache_beam.coders import registry
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.pipeline import PipelineVisitor

from pipelines.build_dataset import build_pipeline
from pipelines.publish import staging_dir
from schemas.config import load_config

_NAMESPACE = 'shuffle'
_DEDUP = 'Dedup/GroupByClipId'


class _GroupInputs(PipelineVisitor):
  """Collects (label, input PCollection) of every GroupByKey."""
  def __init__(self):
    self.found: list[tuple[str, beam.PCollection]] = []

  def visit_transform(self, node) -> None:
    if isinstance(node.transform, beam.GroupByKey):
      self.found.append((node.full_label, node.inputs[0]))


class _EncodedSizeFn(beam.DoFn):
  def __init__(self, *, label: str, coder):
    self._label = label
    self._coder = coder

  def setup(self) -> None:
    self._sizes = Metrics.distribution(_NAMESPACE, self._label)

  def process(self, element) -> None:
    self._sizes.update(len(self._coder.encode(element)))


def measure(uploads: str, *, config_path: str | None = None) -> dict[str, tuple[int, int]]:
  """``{GroupByKey label: (elements, bytes)}`` for one build of ``uploads``."""
  config = load_config(config_path)
  options = PipelineOptions(['--runner=FnApiRunner', '--direct_running_mode=in_memory'])
  with tempfile.TemporaryDirectory() as out:
    p = beam.Pipeline(options=options)
    build_pipeline(p, uploads=uploads, staging=staging_dir(out, 'measure'),
                   build_id='measure', config=config)
    groups = _GroupInputs()
    p.visit(groups)
    for i, (label, pcoll) in enumerate(groups.found):
      coder = registry.get_coder(pcoll.element_type)
      _ = pcoll | f'ShuffleProbe{i}' >> beam.ParDo(_EncodedSizeFn(label=label, coder=coder))
    result = p.run()
    result.wait_until_finish()
  sizes = result.metrics().query(MetricsFilter().with_namespace(_NAMESPACE))['distributions']
  return {d.key.metric.name: (d.committed.count, d.committed.sum) for d in sizes}


def report(sizes: dict[str, tuple[int, int]]) -> str:
  clips = sizes.get(_DEDUP, (0, 0))[0]
  lines = [f'{"GroupByKey input":58s} {"elements":>9s} {"bytes":>12s} {"bytes/elem":>11s}']
  for label, (count, total) in sorted(sizes.items(), key=lambda kv: -kv[1][1]):
    lines.append(f'{label:58s} {count:9d} {total:12d} {total / max(count, 1):11.0f}')
  total = sum(size for _, size in sizes.values())
  if clips:
    dedup = sizes[_DEDUP][1]
    lines.append(f'clips entering exact dedup: {clips}')
    lines.append(f'per million clips: exact dedup {dedup / clips / 1e3:.1f} GB, '
                 f'all GroupByKeys {total / clips / 1e3:.1f} GB')
  return '\n'.join(lines)


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--uploads', required=True)
  parser.add_argument('--config', default=None)
  args = parser.parse_args(argv)
  print(report(measure(args.uploads, config_path=args.config)))
  return 0


if __name__ == '__main__':
  sys.exit(main())
