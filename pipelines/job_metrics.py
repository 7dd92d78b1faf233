"""The Beam metrics of a finished job, as plain JSON.

:func:`job_metrics` reads a :class:`~apache_beam.runners.runner.PipelineResult`'s
counters and distributions in the project's namespace; ``build_dataset
--metrics_json FILE`` writes them after a run, and :mod:`pipelines.bench_throughput`
reads the stage timings (distributions named ``STAGE.us``, microseconds per
element) from there.
"""

from __future__ import annotations

from apache_beam.metrics.metric import MetricsFilter
from apache_beam.runners.runner import PipelineResult

from transforms.common import METRICS_NAMESPACE

__all__ = ['job_metrics']


def _value(result):
  return result.committed if result.committed is not None else result.attempted


def job_metrics(result: PipelineResult) -> dict:
  """``{'counters': {name: n}, 'distributions': {name: {count, sum, min, max}}}``.

  A metric reported by several steps (one stage's DoFns) is summed over them.
  """
  query = result.metrics().query(MetricsFilter().with_namespace(METRICS_NAMESPACE))
  counters: dict[str, int] = {}
  for counter in query['counters']:
    name = counter.key.metric.name
    counters[name] = counters.get(name, 0) + int(_value(counter) or 0)
  distributions: dict[str, dict[str, int]] = {}
  for dist in query['distributions']:
    value = _value(dist)
    if value is None or not value.count:
      continue
    total = distributions.setdefault(dist.key.metric.name,
                                     {'count': 0, 'sum': 0, 'min': value.min, 'max': value.max})
    total['count'] += value.count
    total['sum'] += value.sum
    total['min'] = min(total['min'], value.min)
    total['max'] = max(total['max'], value.max)
  return {'counters': dict(sorted(counters.items())),
          'distributions': dict(sorted(distributions.items()))}
