"""The embedded sample, generated once per test session, and comparing two builds of it."""

from __future__ import annotations

import math
import os

import pytest

from pipelines.make_sample import make_sample
from transforms.redact import WITHHELD

__all__ = ['session_sample', 'upload_files', 'same_summary', 'expected_rows']

_SAMPLES: dict[int, tuple[str, dict[str, str]]] = {}


def session_sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, str]]:
  """``(root, expected outcome per upload_id)``, generated on first use in this session."""
  key = id(tmp_path_factory)
  if key not in _SAMPLES:
    root = str(tmp_path_factory.mktemp('shared-uploads'))
    _SAMPLES[key] = (root, make_sample(root))
  return _SAMPLES[key]


def expected_rows(expected: dict[str, str]) -> list[tuple[str, str]]:
  """``(upload_id, outcome)`` as the tables show them, sorted: an upload without consent
  is counted under its reason but not named (``transforms/redact.py``)."""
  return sorted((WITHHELD if outcome == 'no_consent' else upload_id, outcome)
                for upload_id, outcome in expected.items())


def upload_files(root: str) -> list[str]:
  """Every file of an uploads tree, relative to ``root``, with ``/`` separators."""
  return sorted(os.path.relpath(os.path.join(d, name), root).replace(os.sep, '/')
                for d, _, names in os.walk(root) for name in names)


def _close(a, b) -> bool:
  if isinstance(a, dict) and isinstance(b, dict):
    return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
  if isinstance(a, float) and isinstance(b, float):
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-5)
  return a == b


def same_summary(a: dict, b: dict) -> bool:
  """Equal but for ``path``, and for floats up to summation order (hours add up per bundle)."""
  return _close({k: v for k, v in a.items() if k != 'path'},
                {k: v for k, v in b.items() if k != 'path'})
