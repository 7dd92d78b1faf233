"""The ready-to-use schedules of the nightly build: the cron line and Cloud Scheduler.

Both are parsed as they would run: the cron line's command through ``make -n``,
the Cloud Scheduler script with ``gcloud`` replaced by a program that records
its arguments, and what they launch is checked against the nightly's options,
the config and the Flex Template's parameters.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import stat
import subprocess
import sys

from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.options import BuildOptions
from schemas.config import load_config

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_CRON_FIELD = re.compile(r'^(\*|\d+(-\d+)?)(/\d+)?(,(\*|\d+(-\d+)?)(/\d+)?)*$')
_CRON_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))


def valid_cron(schedule: str) -> bool:
  fields = schedule.split()
  if len(fields) != 5:
    return False
  for field, (low, high) in zip(fields, _CRON_RANGES, strict=True):
    if not _CRON_FIELD.match(field):
      return False
    numbers = [int(n) for n in re.findall(r'(?<!/)\b\d+', field)]
    if not all(low <= n <= high for n in numbers):
      return False
  return True


def test_valid_cron_rejects_bad_schedules():
  assert valid_cron('0 3 * * *') and valid_cron('*/15 1-5 * * 1,3')
  assert not valid_cron('0 25 * * *') and not valid_cron('0 3 * *')
  assert not valid_cron('@nightly x y z w')


def test_cron_line_runs_make_nightly_with_a_valid_command():
  with open(os.path.join(REPO, 'deploy', 'nightly.cron'), encoding='utf-8') as f:
    lines = [line for line in f.read().splitlines() if line and not line.startswith('#')]
  env = dict(line.split('=', 1) for line in lines if re.match(r'^[A-Z_]+=', line))
  assert env['CRON_TZ'] == 'UTC'
  (job,) = [line for line in lines if not re.match(r'^[A-Z_]+=', line)]
  fields = job.split(None, 5)
  assert valid_cron(' '.join(fields[:5])), job
  command = shlex.split(fields[5])
  make = command[command.index('make'):command.index('>>')]
  assert make[1] == 'nightly'
  variables = dict(arg.split('=', 1) for arg in make[2:])
  assert set(variables) == {'UPLOADS', 'NIGHTLY_OUT', 'WITHDRAWALS'}
  env = {k: v for k, v in os.environ.items() if k not in ('MAKEFLAGS', 'MAKELEVEL', 'MFLAGS')}
  dry = subprocess.run(['make', '-n', '--no-print-directory', *make[1:]], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=60, check=True).stdout
  (launch,) = [line for line in dry.replace('\\\n', ' ').splitlines()
               if 'pipelines.nightly' in line]
  argv = shlex.split(launch)
  assert argv[:3] == ['.venv/bin/python', '-m', 'pipelines.nightly']
  options = PipelineOptions(argv[3:]).view_as(BuildOptions)
  assert (options.uploads, options.output) == (variables['UPLOADS'], variables['NIGHTLY_OUT'])
  config = load_config(os.path.join(REPO, options.config), options.config_overrides)
  assert config.nightly.withdrawals == variables['WITHDRAWALS']


def record_gcloud(tmp_path) -> str:
  """A ``gcloud`` that writes its arguments as JSON and does nothing else."""
  script = tmp_path / 'gcloud'
  script.write_text(f'#!{sys.executable}\nimport json, sys\n'
                    f'open({str(tmp_path / "argv.json")!r}, "w").write(json.dumps(sys.argv[1:]))\n')
  script.chmod(script.stat().st_mode | stat.S_IEXEC)
  return str(script)


def test_cloud_scheduler_job_launches_the_nightly_flex_template(tmp_path):
  env = {**os.environ, 'GCLOUD': record_gcloud(tmp_path), 'PROJECT': 'my-project',
         'REGION': 'europe-west1', 'BUCKET': 'my-bucket',
         'SCHEDULER_SA': 'scheduler@my-project.iam.gserviceaccount.com'}
  subprocess.run(['bash', os.path.join(REPO, 'deploy', 'nightly_schedule.sh')], env=env,
                 check=True, timeout=60)
  argv = json.loads((tmp_path / 'argv.json').read_text())
  assert argv[:5] == ['scheduler', 'jobs', 'create', 'http', 'audio-dataset-nightly']
  flags = dict(zip(argv[5::2], argv[6::2], strict=True))
  assert valid_cron(flags['--schedule']) and flags['--http-method'] == 'POST'
  assert flags['--uri'] == ('https://dataflow.googleapis.com/v1b3/projects/my-project/'
                            'locations/europe-west1/flexTemplates:launch')
  assert flags['--oauth-token-scope'] == 'https://www.googleapis.com/auth/cloud-platform'
  launch = json.loads(flags['--message-body'])['launchParameter']
  assert launch['containerSpecGcsPath'] == 'gs://my-bucket/templates/audio-dataset.json'
  assert re.fullmatch(r'[a-z]([-a-z0-9]*[a-z0-9])?', launch['jobName'])
  with open(os.path.join(REPO, 'deploy', 'metadata.json'), encoding='utf-8') as f:
    spec = {p['name']: p for p in json.load(f)['parameters']}
  parameters = launch['parameters']
  assert parameters['pipeline'] == 'nightly'
  for name, value in parameters.items():
    assert all(re.fullmatch(regex, value) for regex in spec[name]['regexes']), name
  assert all(name in parameters for name, p in spec.items() if not p.get('isOptional'))
  config_path = parameters['config'].replace('/template/', f'{REPO}/', 1)
  config = load_config(config_path, [parameters['set']])
  assert config.nightly.withdrawals == 'gs://my-bucket/consent/withdrawals.jsonl'


def test_template_entry_dispatches_to_the_nightly_build():
  import importlib.util
  spec = importlib.util.spec_from_file_location('template_main',
                                                os.path.join(REPO, 'deploy', 'main.py'))
  entry = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(entry)
  name, rest = entry.choose_pipeline(['--pipeline=nightly', '--uploads=gs://u/x'])
  assert name == 'nightly' and rest == ['--uploads=gs://u/x']
  assert entry.choose_pipeline(['--output=gs://o'])[0] == 'build_dataset'
  from pipelines import nightly
  assert entry.PIPELINES['nightly'] is nightly.main
