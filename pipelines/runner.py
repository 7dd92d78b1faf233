"""Choosing and preparing the runner: local without the network, or Dataflow.

Beam 2.77's DirectRunner first tries to download a Prism binary and falls back
to the FnApiRunner when that fails. A build asks for the FnApiRunner directly
instead (the same engine the DirectRunner falls back to), on all cores unless
told otherwise. ``--runner=PrismRunner`` is honoured only with a local
``--prism_location``.

On ``--runner=DataflowRunner`` the workers are other machines: the uploads
and the output must be ``gs://``, the project is staged with ``--setup_file``
(this repository's ``setup.py`` unless told otherwise) and the job is named
after the build id. Such a job publishes itself (:class:`~pipelines.publish.
PublishBuild`), because its launcher may not see it end: a Flex Template
launch only writes the job and returns.

``--runner_config FILE`` (e.g. ``configs/dataflow.yaml``) holds Beam options
as YAML; :func:`expand_runner_config` turns them into flags placed before the
command line's, so a flag given on the command line wins.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

import yaml
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import (
  DirectOptions,
  GoogleCloudOptions,
  PipelineOptions,
  PrismRunnerOptions,
  SetupOptions,
  StandardOptions,
  TestOptions,
)
from apache_beam.runners.runner import PipelineResult, PipelineState

from pipelines.options import BuildOptions
from schemas.config import ConfigError

__all__ = ['choose_runner', 'choose_local_runner', 'LOCAL_RUNNER', 'DATAFLOW_RUNNER',
           'dataflow_job_name', 'expand_runner_config', 'runner_config_flags',
           'publishes_in_pipeline', 'job_finished_here', 'SETUP_FILE']

LOCAL_RUNNER = 'FnApiRunner'
DATAFLOW_RUNNER = 'DataflowRunner'
_DIRECT_NAMES = (None, 'DirectRunner', 'SwitchingDirectRunner')
_RUNNER_CONFIG = 'runner_config'
_JOB_NAME_PREFIX = 'audio-dataset-'
_MAX_JOB_NAME_CHARS = 63  # Dataflow accepts more; 63 keeps names readable in the console

#: This repository's ``setup.py``, staged for Dataflow workers by default.
SETUP_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          'setup.py')


def _given(argv: Sequence[str], flag: str) -> bool:
  return any(arg == f'--{flag}' or arg.startswith(f'--{flag}=') for arg in argv)


def _option_flags(path: str, key: Any, value: Any) -> list[str]:
  if not isinstance(key, str) or not key or key.startswith('-'):
    raise ConfigError(f'{path}: {key!r} is not a Beam option name (write machine_type, '
                      'not --machine_type)')
  if value is None:
    return []
  if isinstance(value, bool):
    if not value:
      raise ConfigError(f'{path}: {key}: false is the default of a switch; remove it '
                        '(or use its no_ form, e.g. no_use_public_ips: true)')
    return [f'--{key}']
  if isinstance(value, list):
    if not all(isinstance(item, (str, int, float)) for item in value):
      raise ConfigError(f'{path}: {key}: a list holds plain values only')
    return [f'--{key}={item}' for item in value]
  if isinstance(value, (str, int, float)):
    return [f'--{key}={value}']
  raise ConfigError(f'{path}: {key}={value!r}: must be a string, a number, true or a list')


def runner_config_flags(path: str) -> list[str]:
  """The Beam flags a runner config YAML holds, each option checked against Beam's.

  Args:
    path: a YAML mapping of Beam option names to values (a list repeats the
      flag, ``true`` sets a switch).

  Raises:
    ConfigError: naming the file and the first unknown option or bad value.
  """
  try:
    with open(path, encoding='utf-8') as f:
      doc = yaml.safe_load(f)
  except (OSError, yaml.YAMLError) as e:
    raise ConfigError(f'--runner_config={path}: cannot read it: {e}') from e
  if doc is None:
    return []
  if not isinstance(doc, dict):
    raise ConfigError(f'--runner_config={path}: must be a mapping of Beam option names')
  known = set(PipelineOptions([]).get_all_options())
  flags = []
  for key, value in doc.items():
    if key == _RUNNER_CONFIG:
      raise ConfigError(f'{path}: a runner config cannot name another one')
    option_flags = _option_flags(path, key, value)
    try:
      parsed = PipelineOptions(option_flags).get_all_options(retain_unknown_options=True)
    except SystemExit as e:  # argparse's answer to a value of the wrong type
      raise ConfigError(f'{path}: {key}={value!r} is not a valid value') from e
    unknown = sorted(set(parsed) - known)
    if unknown:
      raise ConfigError(f'{path}: unknown Beam option {unknown[0]}; the names are Beam\'s '
                        'flags without "--", e.g. max_num_workers')
    flags += option_flags
  return flags


def expand_runner_config(argv: Sequence[str]) -> list[str]:
  """``argv`` with ``--runner_config FILE`` replaced by the flags the file holds.

  The file's flags come first: a flag on the command line overrides a value
  (list options such as ``--experiments`` add up).

  Raises:
    ConfigError: for an unreadable file, an unknown option or a bad value.
  """
  rest, paths = [], []
  args = iter(argv)
  for arg in args:
    if arg == f'--{_RUNNER_CONFIG}':
      path = next(args, None)
      if path is None:
        raise ConfigError(f'--{_RUNNER_CONFIG} needs a file')
      paths.append(path)
    elif arg.startswith(f'--{_RUNNER_CONFIG}='):
      paths.append(arg.split('=', 1)[1])
    else:
      rest.append(arg)
  flags = [flag for path in paths for flag in runner_config_flags(path)]
  return flags + rest


def dataflow_job_name(build_id: str) -> str:
  """A Dataflow job name for a build: ``audio-dataset-`` and the id, lowercased.

  Dataflow names match ``[a-z]([-a-z0-9]*[a-z0-9])?``; other characters of the
  id become ``-``.
  """
  tail = re.sub(r'[^a-z0-9-]', '-', build_id.lower())
  return (_JOB_NAME_PREFIX + tail)[:_MAX_JOB_NAME_CHARS].rstrip('-')


def _label_value(build_id: str) -> str:
  return re.sub(r'[^a-z0-9_-]', '-', build_id.lower())[:63]


def _is_gcs(uri: str | None) -> bool:
  return bool(uri) and FileSystems.get_scheme(uri) == 'gs'


def _prepare_dataflow(options: PipelineOptions, argv: Sequence[str],
                      build_id: str | None) -> None:
  for view, flags, why in (
      (BuildOptions, ('uploads', 'output'), "Dataflow workers cannot read the launcher's disk"),
      (GoogleCloudOptions, ('temp_location', 'staging_location'),
       'Dataflow stages and writes temporary files on Cloud Storage')):
    for flag in flags:
      value = getattr(options.view_as(view), flag)
      if value and not _is_gcs(value):
        raise ConfigError(f'--{flag}={value}: {why}; use a gs:// location')
  cloud = options.view_as(GoogleCloudOptions)
  setup = options.view_as(SetupOptions)
  if not setup.setup_file and os.path.exists(SETUP_FILE):
    setup.setup_file = SETUP_FILE
  if not setup.setup_file and not _given(argv, 'sdk_container_image'):
    raise ConfigError('--runner=DataflowRunner needs --setup_file=setup.py (or an '
                      '--sdk_container_image with this project installed)')
  if build_id and not cloud.job_name:
    cloud.job_name = dataflow_job_name(build_id)
  if build_id and not any(label.startswith('build_id=') for label in cloud.labels or ()):
    cloud.labels = [*(cloud.labels or ()), f'build_id={_label_value(build_id)}']


def choose_runner(options: PipelineOptions, argv: Sequence[str], *,
                  build_id: str | None = None) -> str | None:
  """Settles the runner and its options, in place.

  A DirectRunner request becomes the FnApiRunner on all cores; PrismRunner
  needs a local binary; DataflowRunner gets its staging, job name and checks.

  Args:
    options: the pipeline options, modified in place.
    argv: the command line, to tell defaults from explicit choices.
    build_id: names the Dataflow job; default: ``--build_id``.

  Returns:
    The runner name that will run the pipeline.

  Raises:
    ConfigError: for an option that cannot work, before any work starts.
  """
  if options.view_as(BuildOptions).runner_config:
    raise ConfigError('--runner_config must be expanded before the options are parsed: '
                      'pass the command line through expand_runner_config()')
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
  elif standard.runner == DATAFLOW_RUNNER:
    _prepare_dataflow(options, argv, build_id or options.view_as(BuildOptions).build_id)
  return standard.runner


#: The name build_dataset imports; the same function.
choose_local_runner = choose_runner


def publishes_in_pipeline(options: PipelineOptions) -> bool:
  """Whether the job itself verifies, promotes and moves LATEST (on Dataflow)."""
  return options.view_as(StandardOptions).runner == DATAFLOW_RUNNER


def job_finished_here(options: PipelineOptions, result: PipelineResult) -> bool:
  """Whether the job ran to its end and this process saw it.

  False for ``--dry_run`` (the job is built, not submitted), for
  ``--template_location`` (the job is written, the way a Flex Template launch
  works), for ``--no_wait_until_finish``, and for a runner result without a
  job: in those cases whatever must happen at the end is the job's own work.
  """
  if (options.view_as(TestOptions).dry_run
      or options.view_as(GoogleCloudOptions).template_location
      or options.view_as(StandardOptions).no_wait_until_finish):
    return False
  return getattr(result, 'has_job', True) and result.state == PipelineState.DONE
