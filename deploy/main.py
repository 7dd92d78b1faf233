"""Flex Template entry point: the dataset build, with ``configs/dataflow.yaml`` by default.

The template launcher runs ``python deploy/main.py --uploads=gs://... --output=gs://...
[--build_id=...] [--config=...] [--set=...] [--runner_config=...]`` plus the launch's Dataflow
options, which win over the runner config's values.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from pipelines.build_dataset import main
from pipelines.runner import expand_runner_config

RUNNER_CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                             'configs', 'dataflow.yaml')


def template_argv(argv: Sequence[str]) -> list[str]:
  """``argv`` with the Dataflow runner config expanded (the default one unless given)."""
  given = any(a == '--runner_config' or a.startswith('--runner_config=') for a in argv)
  return expand_runner_config(list(argv) if given else ['--runner_config', RUNNER_CONFIG, *argv])


if __name__ == '__main__':
  sys.exit(main(template_argv(sys.argv[1:])))
