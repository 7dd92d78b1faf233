import pytest

from schemas.config import BuildConfig, ConfigError, load_config


def write(tmp_path, text):
  path = tmp_path / 'c.yaml'
  path.write_text(text)
  return str(path)


def test_default_yaml_equals_builtin_defaults():
  assert load_config('configs/default.yaml') == BuildConfig()


def test_overrides_are_parsed_as_yaml():
  config = load_config(None, ['filter.min_snr_db=5', 'filter.min_bandwidth_hz=3000',
                              'discover.require_consent=false'])
  assert config.filter.min_snr_db == 5.0
  assert config.filter.min_bandwidth_hz == 3000.0
  assert config.discover.require_consent is False


@pytest.mark.parametrize('text, words', [
    ('filter:\n  min_snr: 3\n', 'unknown config key filter.min_snr'),
    ('colour: red\n', 'unknown config key colour'),
    ('filter:\n  min_snr_db: loud\n', 'filter.min_snr_db'),
    ('decode:\n  max_channels: 2.5\n', 'decode.max_channels'),
    ('discover:\n  require_consent: 1\n', 'discover.require_consent'),
    ('split:\n  train: 0.9\n', 'train + dev + test must be 1'),
    ('sample_rate_hz: 1000\n', 'sample_rate_hz'),
    ('filter:\n  max_clipping_ratio: 2\n', 'filter.max_clipping_ratio'),
    ('measure:\n  vad_threshold: 1.5\n', 'measure.vad_threshold'),
    ('filter: 3\n', 'filter must be a mapping'),
    ('sample_rate_hz: null\n', 'sample_rate_hz: must not be null'),
    ('[1, 2]\n', 'must hold a mapping'),
    ('a: [\n', 'not valid YAML'),
])
def test_bad_config_names_the_key(tmp_path, text, words):
  with pytest.raises(ConfigError, match=None) as e:
    load_config(write(tmp_path, text))
  assert words in str(e.value)


def test_missing_file_is_a_config_error(tmp_path):
  with pytest.raises(ConfigError, match='cannot read config file'):
    load_config(str(tmp_path / 'nope.yaml'))


def test_bad_override_is_a_config_error():
  with pytest.raises(ConfigError, match='section.key=value'):
    load_config(None, ['filter.min_snr_db'])
