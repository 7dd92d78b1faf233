"""Workers in other processes: the same rows from one process, worker processes and a job service.

The sample is built three times on local disk: in one process
(``--direct_running_mode=in_memory``), with worker processes
(``--direct_running_mode=multi_processing``, the default) and through the
PortableRunner against a local job service whose SDK workers come from an
external worker pool (``apache_beam.runners.worker.worker_pool_main``), as on a
cluster. Nothing the workers need may live only in the launching process.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import time

import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from pipelines.build_dataset import run
from tests.gcs.emulator import free_port
from tests.gcs.sample import same_summary, session_sample

BUILD_ID = 'p1'


@pytest.fixture(scope='module')
def sample(tmp_path_factory):
  return session_sample(tmp_path_factory)


def _wait_for(path: pathlib.Path, process: subprocess.Popen, *, timeout_s: float = 60) -> str:
  """The content of ``path`` once ``process`` has written it."""
  deadline = time.monotonic() + timeout_s
  while not (path.exists() and path.read_text().strip()):
    if process.poll() is not None or time.monotonic() > deadline:
      raise RuntimeError(f'{process.args} did not start')
    time.sleep(0.1)
  return path.read_text().strip()


@pytest.fixture(scope='module')
def job_service(tmp_path_factory):
  """A local job service and an external worker pool, each its own process group."""
  workdir = tmp_path_factory.mktemp('portable')
  env = {**os.environ, 'PATH': os.path.dirname(sys.executable) + os.pathsep + os.environ['PATH']}
  pool_port = free_port()
  pool_log = workdir / 'worker_pool.log'
  with open(pool_log, 'wb') as log:
    pool = subprocess.Popen(
        [sys.executable, '-m', 'apache_beam.runners.worker.worker_pool_main',
         f'--service_port={pool_port}'],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workdir, start_new_session=True)
  port_file = workdir / 'job_service.port'
  with open(workdir / 'job_service.log', 'wb') as log:
    service = subprocess.Popen(
        [sys.executable, '-m', 'apache_beam.runners.portability.local_job_service_main',
         '--port=0', f'--port_file={port_file}'],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workdir, start_new_session=True)
  try:
    job_port = _wait_for(port_file, service)
    yield {'job_endpoint': f'localhost:{job_port}', 'pool': f'localhost:{pool_port}',
           'pool_log': pool_log}
  finally:
    for process in (service, pool):
      if process.poll() is None:
        os.killpg(process.pid, 15)  # the group this fixture started: the server and its workers
        process.wait(timeout=30)


def build(sample, out: str, *runner_flags: str) -> dict:
  root, _ = sample
  return run(['--uploads', root, '--output', out, '--build_id', BUILD_ID, *runner_flags])


def tables(out: str) -> tuple[pa.Table, pa.Table]:
  read = lambda name: ds.dataset(f'{out}/builds/{BUILD_ID}/{name}',  # noqa: E731
                                 format='parquet').to_table().sort_by('upload_id')
  return read('manifests'), read('rejects')


@pytest.fixture(scope='module')
def one_process(sample, tmp_path_factory):
  out = str(tmp_path_factory.mktemp('in-memory'))
  summary = build(sample, out, '--direct_running_mode=in_memory')
  return out, summary


def same_build(out: str, summary: dict, reference: tuple[str, dict]) -> None:
  ref_out, ref_summary = reference
  assert same_summary(summary, ref_summary), (summary, ref_summary)
  manifests, rejects = tables(out)
  ref_manifests, ref_rejects = tables(ref_out)
  assert manifests.num_rows == ref_summary['accepted'] > 0
  assert manifests.equals(ref_manifests)
  assert rejects.equals(ref_rejects)


def test_worker_processes_give_the_same_rows(sample, one_process, tmp_path):
  summary = build(sample, str(tmp_path), '--direct_running_mode=multi_processing',
                  '--direct_num_workers=2')
  same_build(str(tmp_path), summary, one_process)


def test_portable_runner_with_an_external_worker_pool_gives_the_same_rows(
    sample, one_process, job_service, tmp_path):
  summary = build(sample, str(tmp_path), '--runner=PortableRunner',
                  f'--job_endpoint={job_service["job_endpoint"]}',
                  '--environment_type=EXTERNAL',
                  f'--environment_config={job_service["pool"]}')
  same_build(str(tmp_path), summary, one_process)
  assert 'Starting worker with command' in job_service['pool_log'].read_text()
