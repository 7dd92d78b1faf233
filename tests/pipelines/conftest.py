"""The sample build, shared by every test of the build's outputs (built once per session)."""

from __future__ import annotations

import pytest
from apache_beam.runners.portability import prism_runner

from pipelines.build_dataset import run
from pipelines.make_sample import make_sample


def _refuse_prism(*args, **kwargs):
  raise AssertionError('a local build must not start the Prism runner')


BUILT_METRICS = 'built-metrics.json'
"""The ``--metrics_json`` of the ``built`` build, in pytest's base temp directory."""


@pytest.fixture(scope='session')
def sample(tmp_path_factory):
  root = tmp_path_factory.mktemp('uploads')
  return str(root), make_sample(str(root))


@pytest.fixture(scope='session')
def built(sample, tmp_path_factory):
  """One real build of the sample with the default runner and config."""
  root, expected = sample
  out = str(tmp_path_factory.mktemp('out'))
  metrics = tmp_path_factory.getbasetemp() / BUILT_METRICS
  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(prism_runner.PrismRunner, 'run_pipeline', _refuse_prism)
    summary = run(['--uploads', root, '--output', out, '--build_id', 'b1',
                   '--config', 'configs/default.yaml', '--metrics_json', str(metrics)])
  return out, summary, expected
