"""Flex Template entry point: the dataset build, with ``configs/dataflow.yaml`` by default.

The template launcher runs ``python deploy/main.py --uploads=gs://... --output=gs://...
[--pipeline=build_dataset|nightly] [--build_id=...] [--config=...] [--set=...]
[--runner_config=...]`` plus the launch's Dataflow options, which win over the runner
config's values. ``--pipeline`` chooses the one-shot build (default) or the nightly
incremental build (``pipelines.nightly``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from pipelines import build_dataset, nightly
from pipelines.runner import expand_runner_config

RUNNER_CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                             'configs', 'dataflow.yaml')


def template_argv(argv: Sequence[str]) -> list[str]:
  """``argv`` with the Dataflow runner config expanded (the default one unless given)."""
  given = any(a == '--runner_config' or a.startswith('--runner_config=') for a in argv)
  return expand_runner_config(list(argv) if given else ['--runner_config', RUNNER_CONFIG, *argv])


PIPELINES = {'build_dataset': build_dataset.main, 'nightly': nightly.main}


def choose_pipeline(argv: Sequence[str]) -> tuple[str, list[str]]:
  """The ``--pipeline`` value (default ``build_dataset``) and the other arguments."""
  name, rest = 'build_dataset', []
  args = iter(argv)
  for arg in args:
    if arg == '--pipeline':
      name = next(args, '')
    elif arg.startswith('--pipeline='):
      name = arg.split('=', 1)[1]
    else:
      rest.append(arg)
  if name not in PIPELINES:
    raise SystemExit(f'--pipeline={name!r}: must be one of {", ".join(PIPELINES)}')
  return name, rest


if __name__ == '__main__':
  pipeline, args = choose_pipeline(sys.argv[1:])
  sys.exit(PIPELINES[pipeline](template_argv(args)))
