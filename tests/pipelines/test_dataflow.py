"""Dataflow, offline: the runner config, the job, the staged project, the Flex Template.

Nothing here reaches Google: ``--dry_run=True`` builds the job without
submitting it, and ``--template_location=FILE`` stages the project and writes
the job JSON, with temp and staging locations on the GCS emulator (Beam checks
those buckets even for a dry run).
"""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import importlib.util
import inspect
import io
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import (
  DebugOptions,
  GoogleCloudOptions,
  PipelineOptions,
  SetupOptions,
  WorkerOptions,
)
from apache_beam.portability.api import beam_runner_api_pb2

from pipelines.build_dataset import build_pipeline, run
from pipelines.options import BuildOptions
from pipelines.publish import staging_dir
from pipelines.runner import (
  SETUP_FILE,
  choose_runner,
  dataflow_job_name,
  expand_runner_config,
)
from schemas.config import BuildConfig, ConfigError
from tests.gcs.emulator import PROJECT, GcsEmulator, emulator_env

REPO = os.path.dirname(SETUP_FILE)
RUNNER_CONFIG = os.path.join(REPO, 'configs', 'dataflow.yaml')
STAGES = ['Discover', 'Spread', 'Decode', 'Standardize', 'Trim', 'Measure', 'Filter', 'Encode',
          'Dedup', 'Split', 'Rejects', 'Write', 'Inputs', 'Summarize', 'Stamp', 'WriteSummary']
FIRST_PARTY = ('pipelines', 'transforms', 'schemas')
# build_dataset with the hook that lets a Dataflow job publish itself (see the README).
HOOKED = 'publish_to' in inspect.signature(build_pipeline).parameters
needs_hook = pytest.mark.skipif(not HOOKED, reason='build_dataset.build_pipeline has no '
                                'publish_to yet: the Dataflow hook is not applied')


def dataflow_argv(*extra: str, bucket: str = 'staging') -> list[str]:
  return expand_runner_config([
      '--runner_config', RUNNER_CONFIG, '--uploads', 'gs://uploads/incoming',
      '--output', 'gs://datasets/out', '--build_id', 'B1', '--project', PROJECT,
      '--region', 'europe-west1', '--temp_location', f'gs://{bucket}/tmp', *extra])


@pytest.mark.parametrize('build_id, job_name', [
    ('b1', 'audio-dataset-b1'),
    ('20261124T115532Z', 'audio-dataset-20261124t115532z'),
    ('nightly_2026.11.24', 'audio-dataset-nightly-2026-11-24'),
    ('x' * 128, 'audio-dataset-' + 'x' * 49),
])
def test_job_name_follows_the_build_id(build_id, job_name):
  assert dataflow_job_name(build_id) == job_name
  assert re.fullmatch(r'[a-z]([-a-z0-9]*[a-z0-9])?', job_name)


def test_runner_config_becomes_flags_and_the_command_line_wins():
  argv = expand_runner_config(['--runner_config', RUNNER_CONFIG, '--max_num_workers=4',
                               '--experiments=enable_data_sampling', '--uploads', 'gs://u/x'])
  assert '--runner_config' not in ' '.join(argv)
  options = PipelineOptions(argv)
  worker = options.view_as(WorkerOptions)
  assert (worker.machine_type, worker.disk_size_gb, worker.max_num_workers) == (
      'n2-standard-4', 50, 4)
  assert worker.autoscaling_algorithm == 'THROUGHPUT_BASED'
  assert options.view_as(DebugOptions).experiments == [
      'use_runner_v2', 'shuffle_mode=service', 'enable_data_sampling']
  assert options.view_as(BuildOptions).uploads == 'gs://u/x'
  assert expand_runner_config(argv) == argv


@pytest.mark.parametrize('body, message', [
    ('max_workers: 3\n', 'unknown Beam option max_workers'),
    ('max_num_workers: many\n', "max_num_workers='many' is not a valid value"),
    ('use_public_ips: false\n', 'no_use_public_ips'),
    ('--machine_type: n2\n', 'not a Beam option name'),
    ('- machine_type\n', 'must be a mapping'),
])
def test_runner_config_names_what_is_wrong(tmp_path, body, message):
  path = tmp_path / 'bad.yaml'
  path.write_text(body)
  with pytest.raises(ConfigError, match=re.escape(message)):
    expand_runner_config([f'--runner_config={path}'])


def test_an_unexpanded_runner_config_is_refused():
  argv = ['--runner_config', RUNNER_CONFIG]
  with pytest.raises(ConfigError, match='expand_runner_config'):
    choose_runner(PipelineOptions(argv), argv)


@pytest.mark.parametrize('change, message', [
    (('--uploads', '/data/uploads'), '--uploads=/data/uploads'),
    (('--output', '/data/out'), '--output=/data/out'),
    (('--temp_location', '/tmp/x'), '--temp_location=/tmp/x'),
])
def test_dataflow_needs_cloud_locations(change, message):
  argv = dataflow_argv()
  flag, value = change
  argv[argv.index(flag) + 1] = value
  with pytest.raises(ConfigError, match=re.escape(message)):
    choose_runner(PipelineOptions(argv), argv)


def test_dataflow_options_are_completed_from_the_build():
  argv = dataflow_argv()
  options = PipelineOptions(argv)
  assert choose_runner(options, argv) == 'DataflowRunner'
  cloud = options.view_as(GoogleCloudOptions)
  assert cloud.job_name == 'audio-dataset-b1' and cloud.labels == ['build_id=b1']
  assert options.view_as(SetupOptions).setup_file == SETUP_FILE
  argv = dataflow_argv('--job_name', 'mine', '--setup_file', './setup.py')
  options = PipelineOptions(argv)
  choose_runner(options, argv, build_id='other')
  assert options.view_as(GoogleCloudOptions).job_name == 'mine'
  assert options.view_as(SetupOptions).setup_file == './setup.py'


@pytest.fixture(scope='module')
def gcs(tmp_path_factory):
  """The GCS emulator, holding the staging bucket, with this process pointed at it."""
  workdir = str(tmp_path_factory.mktemp('dataflow-gcs'))
  with GcsEmulator(workdir=workdir) as emulator, emulator_env(emulator.url, workdir=workdir):
    emulator.client().create_bucket('staging')
    yield emulator


def submit(argv: list[str]):
  """Builds the pipeline for DataflowRunner the way build_dataset.run does, and runs it."""
  options = PipelineOptions(argv)
  choose_runner(options, argv, build_id='B1')
  p = beam.Pipeline(options=options)
  hook = {'publish_to': 'gs://datasets/out'} if HOOKED else {}
  build_pipeline(p, uploads='gs://uploads/incoming', build_id='B1', config=BuildConfig(),
                 staging=staging_dir('gs://datasets/out', 'B1'), **hook)
  return p.run()


def top_level_names(pipeline: beam_runner_api_pb2.Pipeline) -> set[str]:
  return {t.unique_name for t in pipeline.components.transforms.values()
          if '/' not in t.unique_name}


def test_dry_run_builds_the_dataflow_job_without_submitting_it(gcs):
  result = submit(dataflow_argv('--dry_run=True'))
  job = result.job
  assert job.proto.name == 'audio-dataset-b1'
  assert dict(job.proto.labels) == {'build_id': 'b1'}
  assert set(STAGES) <= top_level_names(job.proto_pipeline)
  if HOOKED:
    assert 'Publish' in top_level_names(job.proto_pipeline)
  staged = [beam_runner_api_pb2.ArtifactStagingToRolePayload.FromString(d.role_payload)
            .staged_name for env in job.proto_pipeline.components.environments.values()
            for d in env.dependencies]
  assert 'workflow.tar.gz' in staged
  worker = job.options.view_as(WorkerOptions)
  assert (worker.machine_type, worker.max_num_workers, worker.disk_size_gb) == (
      'n2-standard-4', 32, 50)


@pytest.fixture(scope='module')
def template(gcs, tmp_path_factory):
  """The job JSON written by --template_location, with the staged files in the emulator."""
  path = tmp_path_factory.mktemp('template') / 'job.json'
  submit(dataflow_argv(f'--template_location={path}',
                       '--staging_location=gs://staging/staging'))
  return json.loads(path.read_text())


def gcs_object(client, location: str) -> bytes:
  """The bytes of a job's ``storage.googleapis.com/BUCKET/NAME`` location."""
  bucket, name = location.removeprefix('storage.googleapis.com/').split('/', 1)
  return client.bucket(bucket).blob(name).download_as_bytes()


def test_template_job_carries_the_setup_file_options_and_worker_settings(template):
  assert template['name'] == 'audio-dataset-b1'
  assert template['type'] == 'JOB_TYPE_BATCH'
  environment = template['environment']
  options = environment['sdkPipelineOptions']['options']
  assert options['setup_file'] == SETUP_FILE
  assert (options['uploads'], options['output'], options['build_id']) == (
      'gs://uploads/incoming', 'gs://datasets/out', 'B1')
  assert options['job_name'] == 'audio-dataset-b1' and options['project'] == PROJECT
  assert {'use_runner_v2', 'shuffle_mode=service'} <= set(environment['experiments'])
  pool = environment['workerPools'][0]
  assert pool['machineType'] == 'n2-standard-4' and pool['diskSizeGb'] == 50
  assert pool['autoscalingSettings'] == {'algorithm': 'AUTOSCALING_ALGORITHM_BASIC',
                                         'maxNumWorkers': 32}
  assert environment['tempStoragePrefix'].startswith('storage.googleapis.com/staging/tmp/')


def test_template_staged_artifacts_exist_in_the_bucket(gcs, template):
  client = gcs.client()
  packages = {p['name']: p['location'] for p in template['environment']['workerPools'][0][
      'packages']}
  assert 'workflow.tar.gz' in packages
  for location in packages.values():
    assert gcs_object(client, location)
  staged = [b.name for b in client.list_blobs('staging', prefix='staging/')]
  graph = [name for name in staged if name.endswith('/pipeline.pb')]
  assert len(graph) == 1
  pipeline = beam_runner_api_pb2.Pipeline.FromString(
      client.bucket('staging').blob(graph[0]).download_as_bytes())
  assert set(STAGES) <= top_level_names(pipeline)


def _imports(path: str) -> set[str]:
  with open(path, encoding='utf-8') as f:
    tree = ast.parse(f.read())
  names = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names |= {alias.name for alias in node.names}
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
      names |= {node.module} | {f'{node.module}.{alias.name}' for alias in node.names}
  return names


def worker_imports() -> tuple[set[str], set[str]]:
  """First-party module files and third-party top-level names the build imports."""
  files, third_party, todo = set(), set(), ['pipelines.build_dataset']
  while todo:
    module = todo.pop()
    parts = module.split('.')
    for i in range(1, len(parts) + 1):  # a module's packages are imported with it
      for candidate in ('/'.join(parts[:i]) + '.py', '/'.join(parts[:i]) + '/__init__.py'):
        if os.path.exists(os.path.join(REPO, candidate)) and candidate not in files:
          files.add(candidate)
          for name in _imports(os.path.join(REPO, candidate)):
            top = name.split('.')[0]
            if top in FIRST_PARTY:
              todo.append(name)
            elif top not in sys.stdlib_module_names and top != '__future__':
              third_party.add(top)
  return files, third_party


def _requirement_names(requirements: list[str]) -> set[str]:
  names = set()
  for line in requirements:
    name = re.match(r'\s*([A-Za-z0-9._-]+)', line)
    if name and ';' not in line:
      names.add(re.sub(r'[-_.]+', '-', name.group(1)).lower())
  return names


def _closure(names: set[str], *, skip: set[str]) -> set[str]:
  """The installed distributions that ``names`` pull in, without the ``skip`` subtrees."""
  seen, todo = set(), list(names - skip)
  while todo:
    name = todo.pop()
    if name in seen:
      continue
    seen.add(name)
    requires = metadata.distribution(name).requires or []
    todo += sorted(_requirement_names(requires) - seen - skip)
  return seen


def test_staged_sdist_holds_everything_the_workers_import(gcs, template):
  packages = {p['name']: p['location'] for p in template['environment']['workerPools'][0][
      'packages']}
  with tarfile.open(fileobj=io.BytesIO(gcs_object(gcs.client(), packages['workflow.tar.gz']))
                    ) as sdist:
    members = {name.split('/', 1)[1] for name in sdist.getnames() if '/' in name}
    requires_txt = next(name for name in sdist.getnames() if name.endswith('requires.txt'))
    requires = sdist.extractfile(requires_txt).read().decode().splitlines()
  files, third_party = worker_imports()
  assert files and files <= members, sorted(files - members)
  extras = [i for i, line in enumerate(requires) if line.startswith('[')]  # [bench], [test]
  declared = _requirement_names(requires[:extras[0]] if extras else requires)
  installed = _closure(declared, skip=set())
  distributions = metadata.packages_distributions()
  for top in third_party:
    assert {re.sub(r'[-_.]+', '-', d).lower() for d in distributions[top]} & installed, top


@pytest.mark.skipif(sys.platform != 'linux' or platform.machine() != 'x86_64',
                    reason='Dataflow workers are linux x86_64')
def test_worker_requirements_install_from_wheels():
  # The worker image ships Beam; pip installs the rest at start-up: no compiler needed.
  requires = metadata.distribution('audio-dataset-pipeline').requires
  declared = _requirement_names([r for r in requires if 'extra ==' not in r])
  for name in sorted(_closure(declared, skip={'apache-beam'})):
    tags = [line.split(': ', 1)[1] for line in
            (metadata.distribution(name).read_text('WHEEL') or '').splitlines()
            if line.startswith('Tag: ')]
    assert tags and all(t.endswith('-any') or 'manylinux' in t for t in tags), (name, tags)


def test_template_metadata_documents_every_parameter():
  with open(os.path.join(REPO, 'deploy', 'metadata.json'), encoding='utf-8') as f:
    spec = json.load(f)
  flags = {re.sub(r'^--', '', action.option_strings[0])
           for action in _build_option_actions()}
  parameters = {p['name']: p for p in spec['parameters']}
  assert set(parameters) == flags | {'pipeline'}  # pipeline: deploy/main.py's own choice
  for name, parameter in parameters.items():
    assert parameter['label'] and parameter['helpText'] and parameter['regexes'], name
    example = parameter['helpText'].rsplit('Example: ', 1)[1]
    assert all(re.fullmatch(regex, example) for regex in parameter['regexes']), name
    assert parameter.get('isOptional', False) == (name not in ('uploads', 'output')), name
  assert not re.fullmatch(parameters['uploads']['regexes'][0], '/local/uploads')
  assert not re.fullmatch(parameters['build_id']['regexes'][0], '../x')


def _build_option_actions():
  import argparse
  parser = argparse.ArgumentParser()
  BuildOptions._add_argparse_args(parser)
  return [a for a in parser._actions if a.option_strings and a.dest != 'help']


@pytest.mark.skipif(not shutil.which('gcloud'), reason='gcloud is not installed')
def test_gcloud_composes_the_template_spec_offline(tmp_path):
  env = {**os.environ, 'CLOUDSDK_CONFIG': str(tmp_path), 'CLOUDSDK_CORE_DISABLE_PROMPTS': '1',
         'CLOUDSDK_CORE_DISABLE_USAGE_REPORTING': 'true',
         'CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK': 'true'}
  result = subprocess.run(
      ['gcloud', 'dataflow', 'flex-template', 'build', 'gs://b/templates/audio-dataset.json',
       '--image=europe-west1-docker.pkg.dev/p/audio-dataset/launcher:t',
       '--sdk-language=PYTHON', f'--metadata-file={REPO}/deploy/metadata.json',
       '--print-only', '--project=p'],
      capture_output=True, text=True, timeout=120, env=env, check=False)
  assert result.returncode == 0, result.stderr
  assert '"sdkInfo"' in result.stdout and '"runner_config"' in result.stdout


def test_dockerfile_runs_the_template_entry_on_the_python_311_launcher():
  with open(os.path.join(REPO, 'deploy', 'Dockerfile'), encoding='utf-8') as f:
    dockerfile = f.read()
  assert re.search(r'python311-template-launcher-base', dockerfile)
  env = dict(re.findall(r'^ENV (\w+)=(\S+)$', dockerfile, re.M))
  assert env['FLEX_TEMPLATE_PYTHON_PY_FILE'] == '/template/deploy/main.py'
  assert env['FLEX_TEMPLATE_PYTHON_SETUP_FILE'] == '/template/setup.py'
  for source in re.findall(r'^COPY (.+) \S+$', dockerfile, re.M):
    for path in source.split():
      assert os.path.exists(os.path.join(REPO, path)), path


def load_template_entry():
  spec = importlib.util.spec_from_file_location('template_main',
                                                os.path.join(REPO, 'deploy', 'main.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_template_entry_uses_the_dataflow_runner_config_unless_given(tmp_path):
  entry = load_template_entry()
  argv = entry.template_argv(['--uploads=gs://u/x', '--machine_type=n2-highcpu-8'])
  worker = PipelineOptions(argv).view_as(WorkerOptions)
  assert (worker.machine_type, worker.max_num_workers) == ('n2-highcpu-8', 32)
  other = tmp_path / 'small.yaml'
  other.write_text('runner: DataflowRunner\nmax_num_workers: 2\n')
  argv = entry.template_argv([f'--runner_config={other}'])
  assert PipelineOptions(argv).view_as(WorkerOptions).max_num_workers == 2


def test_build_template_script_builds_the_image_then_the_spec(tmp_path):
  log = tmp_path / 'calls'
  fake = tmp_path / 'bin'
  fake.mkdir()
  (fake / 'gcloud').write_text(f'#!/bin/sh\necho "gcloud $*" >> {log}\n')
  (fake / 'gcloud').chmod(0o755)
  env = {**os.environ, 'PATH': f'{fake}{os.pathsep}{os.environ["PATH"]}', 'PROJECT': 'p',
         'REGION': 'europe-west1', 'BUCKET': 'b', 'TAG': 't1'}
  result = subprocess.run(['bash', os.path.join(REPO, 'deploy', 'build_template.sh')],
                          env=env, capture_output=True, text=True, timeout=60, check=False)
  assert result.returncode == 0, result.stderr
  image = 'europe-west1-docker.pkg.dev/p/audio-dataset/launcher:t1'
  build, spec = log.read_text().splitlines()
  assert build.startswith('gcloud builds submit') and f'_IMAGE={image}' in build
  assert spec.startswith('gcloud dataflow flex-template build gs://b/templates/'
                         'audio-dataset.json') and f'--image {image}' in spec
  assert '--metadata-file deploy/metadata.json' in spec and '--sdk-language PYTHON' in spec


@needs_hook
def test_run_with_a_template_location_returns_after_writing_the_job(gcs, tmp_path):
  path = tmp_path / 'job.json'
  summary = run(dataflow_argv(f'--template_location={path}',
                              '--staging_location=gs://staging/run'))
  assert summary == {'build_id': 'B1', 'path': 'gs://datasets/out/builds/B1',
                     'runner': 'DataflowRunner', 'launched': True}
  assert json.loads(path.read_text())['name'] == 'audio-dataset-b1'


def test_measure_shuffle_counts_what_each_group_by_key_receives(tmp_path):
  from tests.conftest import speech, wav_bytes, write_upload
  for i in range(2):
    write_upload(str(tmp_path), f'c{i}/u.wav', wav_bytes(speech(i)),
                 {'contributor_id': f'c{i}', 'consent': True, 'transcript': 'hello there'})
  spec = importlib.util.spec_from_file_location(
      'measure_shuffle', os.path.join(REPO, 'deploy', 'measure_shuffle.py'))
  tool = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(tool)
  sizes = tool.measure(str(tmp_path))
  clips, payload = sizes['Dedup/GroupByClipId']
  assert clips >= 1 and payload / clips > 10_000  # FLAC of ~3 s of speech per clip
  assert sizes['Discover/GroupByStem'][0] == 4  # two audio files, two sidecars
  assert 'per million clips: exact dedup' in tool.report(sizes)
