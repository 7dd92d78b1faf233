import json

import pyarrow as pa

from schemas.records import METRIC_FIELDS, Clip, Reject
from schemas.tables import REJECT_SCHEMA, manifest_row, manifest_schema, reject_row


def encoded_clip(**changes):
  clip = Clip(source_uri='/u/a.wav', upload_id='a', contributor_id='c', transcript='hi',
              uploaded_at='2026-11-01T08:00:00Z', sample_rate=16000, clip_id='f' * 32,
              flac=b'fLaC...', split='train', metrics={name: 1.0 for name in METRIC_FIELDS})
  return clip.replace(**changes)


def test_manifest_schema_carries_huggingface_audio_feature():
  schema = manifest_schema(sample_rate=16000)
  features = json.loads(schema.metadata[b'huggingface'])['info']['features']
  assert features['audio'] == {'_type': 'Audio', 'sampling_rate': 16000}
  assert features['duration_s'] == {'_type': 'Value', 'dtype': 'float64'}
  assert set(features) == set(schema.names)
  assert schema.field('audio').type == pa.struct([('bytes', pa.binary()),
                                                  ('path', pa.string())])


def test_rows_fit_their_schemas():
  row = manifest_row(encoded_clip(), build_id='b', pipeline_version='v')
  table = pa.Table.from_pylist([row], schema=manifest_schema(sample_rate=16000))
  assert table.column('audio')[0].as_py() == {'bytes': b'fLaC...', 'path': 'f' * 32 + '.flac'}
  assert str(table.column('uploaded_at')[0].as_py()) == '2026-11-01 08:00:00+00:00'
  reject = Reject.of(encoded_clip(), stage='filter', reason='low_snr', detail='snr 3 < 10',
                     reasons=('low_snr', 'no_speech'))
  table = pa.Table.from_pylist([reject_row(reject, build_id='b', pipeline_version='v')],
                               schema=REJECT_SCHEMA)
  assert table.column('reasons')[0].as_py() == ['low_snr', 'no_speech']
  assert table.column('snr_db')[0].as_py() == 1.0
