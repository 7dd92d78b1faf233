"""Command-line options of the dataset build, on top of Beam's own.

``--config`` says what to build (a :class:`~schemas.config.BuildConfig` YAML);
``--runner_config`` says how to run it (a YAML of Beam options such as
``configs/dataflow.yaml``, read by :func:`pipelines.runner.expand_runner_config`
before the options are parsed).
"""

from __future__ import annotations

import os
import re

from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from schemas.config import ConfigError

__all__ = ['BuildOptions', 'check_build_id', 'normalize_uri']

_BUILD_ID_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$')


class BuildOptions(PipelineOptions):
  """``--uploads``, ``--output``, ``--build_id``, ``--config``, ``--set``, ``--metrics_json``,
  ``--runner_config``."""
  @classmethod
  def _add_argparse_args(cls, parser):
    parser.add_argument('--uploads', help='Root of the raw uploads (local path or gs://).')
    parser.add_argument('--output', help='Root of the dataset builds (local path or gs://).')
    parser.add_argument('--build_id', default=None,
                        help='Id of this build; default: the UTC time, YYYYMMDDTHHMMSSZ.')
    parser.add_argument('--config', default=None,
                        help='YAML build config; default: the built-in defaults.')
    parser.add_argument('--set', dest='config_overrides', action='append', default=None,
                        help='Override one config value: --set filter.min_snr_db=5 '
                        '(repeatable).')
    parser.add_argument('--metrics_json', default=None,
                        help='After a run seen to its end, write the job\'s counters and '
                        'distributions (stage timings: STAGE.us) to this local JSON file.')
    parser.add_argument('--runner_config', default=None,
                        help='YAML of Beam options, e.g. configs/dataflow.yaml; options given '
                        'on the command line win.')


def check_build_id(build_id: str) -> str:
  """Returns ``build_id`` if it is a safe single path segment, else raises."""
  if not _BUILD_ID_RE.match(build_id) or '..' in build_id:
    raise ConfigError(f'--build_id={build_id!r}: use letters, digits, ".", "_" and "-" '
                      'only, at most 128, starting with a letter or digit')
  return build_id


def normalize_uri(uri: str | None, *, flag: str) -> str:
  """An absolute local path or a URL, without a trailing slash."""
  if not uri:
    raise ConfigError(f'{flag} is required')
  if FileSystems.get_scheme(uri) in (None, 'file'):
    uri = os.path.abspath(uri.removeprefix('file://'))
  return uri.rstrip('/') or '/'
