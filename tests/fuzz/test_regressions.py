"""Every input a fuzzer crashed on stays a test: the targets now pass it, and briefly
fuzzing both targets finds nothing new (``make fuzz-long`` fuzzes for longer)."""

from __future__ import annotations

import glob
import os
import subprocess
import sys

import pytest

from schemas.config import DecodeConfig
from schemas.metadata import MetadataError, parse_sidecar
from schemas.records import REASONS
from transforms.common import RejectUpload
from transforms.decode import decode_bytes

CRASHES = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'crashes')
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def crash_inputs(target: str) -> list[str]:
  return sorted(glob.glob(f'{CRASHES}/{target}/*'))


@pytest.mark.parametrize('path', crash_inputs('decode'), ids=os.path.basename)
def test_decode_crashes_now_decode_or_are_rejects(path):
  with open(path, 'rb') as f:
    data = f.read()
  try:
    decoded = decode_bytes(data, config=DecodeConfig())
  except RejectUpload as e:
    assert e.reason in REASONS and e.reason != 'internal_error' and e.detail
  else:
    assert decoded.samples.shape[0] > 0


@pytest.mark.parametrize('path', crash_inputs('sidecar'), ids=os.path.basename)
def test_sidecar_crashes_are_now_metadata_errors(path):
  with open(path, 'rb') as f:
    data = f.read()
  with pytest.raises(MetadataError) as e:
    parse_sidecar(data, default_upload_id='u')
  assert e.value.reason == 'invalid_metadata' and e.value.detail


@pytest.mark.parametrize('target, runs', [('decode', 1500), ('sidecar', 20000)])
def test_a_brief_coverage_guided_run_finds_no_crash(target, runs, tmp_path):
  pytest.importorskip('atheris')  # wheels for CPython 3.11-3.13 on x86-64 Linux only
  result = subprocess.run(
      [sys.executable, '-m', 'tests.fuzz.atheris_targets', '--target', target,
       f'-atheris_runs={runs}', '-seed=1', f'-artifact_prefix={tmp_path}/'],
      cwd=REPO, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert f'Done {runs} ' in result.stderr
  assert not os.listdir(tmp_path)
