import apache_beam as beam

from tests.conftest import clip_of, local_pipeline
from transforms.progress import DONE, TOTAL, TrackProgress, read_progress


def test_workers_counts_add_up(tmp_path):
  clips = [clip_of(upload_id=f'u{i}', source_duration_s=1.5) for i in range(40)]
  with local_pipeline() as p:
    created = p | beam.Create(clips)
    _ = created | 'Total' >> TrackProgress(directory=str(tmp_path), kind=TOTAL)
    _ = created | 'Done' >> TrackProgress(directory=str(tmp_path), kind=DONE)
    _ = (p | 'More' >> beam.Create([clip_of(upload_id='x')])
         | 'DoneMore' >> TrackProgress(directory=str(tmp_path), kind=DONE))
  assert read_progress(str(tmp_path)) == {TOTAL: (40, 60.0), DONE: (41, 60.0)}
  assert not list(tmp_path.glob('*.tmp'))


def test_unreadable_files_are_skipped(tmp_path):
  (tmp_path / 'done-a.json').write_text('{"count": 3, "seconds": 2.0}')
  (tmp_path / 'done-b.json').write_text('{"cou')
  assert read_progress(str(tmp_path)) == {TOTAL: (0, 0.0), DONE: (3, 2.0)}
