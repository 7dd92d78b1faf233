import pytest
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions

from pipelines.runner import LOCAL_RUNNER, choose_local_runner
from schemas.config import ConfigError


def choose(argv):
  options = PipelineOptions(argv)
  return choose_local_runner(options, argv), options


@pytest.mark.parametrize('argv', [[], ['--runner=DirectRunner'], ['--runner', 'DirectRunner']])
def test_direct_runner_becomes_fnapi_on_all_cores(argv):
  runner, options = choose(argv)
  assert runner == LOCAL_RUNNER == options.view_as(StandardOptions).runner
  direct = options.view_as(DirectOptions)
  assert direct.direct_running_mode == 'multi_processing'
  assert direct.direct_num_workers == 0


def test_explicit_direct_options_are_kept():
  _, options = choose(['--direct_running_mode=in_memory', '--direct_num_workers=1'])
  direct = options.view_as(DirectOptions)
  assert (direct.direct_running_mode, direct.direct_num_workers) == ('in_memory', 1)


def test_prism_needs_a_local_binary():
  with pytest.raises(ConfigError, match='prism_location'):
    choose(['--runner=PrismRunner'])
  with pytest.raises(ConfigError, match='prism_location'):
    choose(['--runner=PrismRunner', '--prism_location=https://example.invalid/prism.zip'])
  assert choose(['--runner=PrismRunner', '--prism_location=/opt/prism'])[0] == 'PrismRunner'


def test_other_runners_pass_through():
  assert choose(['--runner=DataflowRunner'])[0] == 'DataflowRunner'
