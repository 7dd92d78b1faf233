"""Choosing a runner that never reaches for the network when run locally.

Beam 2.77's DirectRunner first tries to download a Prism binary and falls back
to the FnApiRunner when that fails. A build asks for the FnApiRunner directly
instead (the same engine the DirectRunner falls back to), on all cores unless
told otherwise. ``--runner=PrismRunner`` is honoured only with a local
``--prism_location``.
"""

from __future__ import annotations

from collections.abc import Sequence

from apache_beam.options.pipeline_options import (
  DirectOptions,
  PipelineOptions,
  PrismRunnerOptions,
  StandardOptions,
)

from schemas.config import ConfigError

__all__ = ['choose_local_runner', 'LOCAL_RUNNER']

LOCAL_RUNNER = 'FnApiRunner'
_DIRECT_NAMES = (None, 'DirectRunner', 'SwitchingDirectRunner')


def _given(argv: Sequence[str], flag: str) -> bool:
  return any(arg == f'--{flag}' or arg.startswith(f'--{flag}=') for arg in argv)


def choose_local_runner(options: PipelineOptions, argv: Sequence[str]) -> str | None:
  """Rewrites a DirectRunner request to the FnApiRunner, in place.

  Args:
    options: the pipeline options, modified in place.
    argv: the command line, to tell defaults from explicit choices.

  Returns:
    The runner name that will run the pipeline.

  Raises:
    ConfigError: for ``PrismRunner`` without a local ``--prism_location``.
  """
  standard = options.view_as(StandardOptions)
  if standard.runner in _DIRECT_NAMES:
    standard.runner = LOCAL_RUNNER
    direct = options.view_as(DirectOptions)
    if not _given(argv, 'direct_running_mode'):
      direct.direct_running_mode = 'multi_processing'
    if not _given(argv, 'direct_num_workers'):
      direct.direct_num_workers = 0  # one worker per core
  elif standard.runner == 'PrismRunner':
    location = options.view_as(PrismRunnerOptions).prism_location or ''
    if not location or '://' in location:
      raise ConfigError('--runner=PrismRunner needs --prism_location=PATH: a local run '
                        'must not download the Prism binary')
  return standard.runner
