"""Stage 10: describe the build for the people who use it.

* :class:`DescribeBuild`: ``(accepted clips, rejects, summary, written files)``
  -> writes, beside the tables, ``contributors.parquet`` (one scorecard per
  contributor), ``README.md`` (the Hugging Face dataset card) and
  ``report.html`` (plots); returns their paths.

Everything is computed inside the pipeline with combiners of bounded size
(fixed-bin histograms, top-N lists), and written through Beam's FileSystems,
so the same stage runs on a laptop and on Dataflow with ``gs://``. File names
are fixed; nothing in a path comes from upload metadata.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from schemas.config import SplitConfig
from schemas.records import SPLITS, Clip, Reject
from schemas.reports import CONTRIBUTOR_SCHEMA
from transforms.card import render_card
from transforms.common import inc_counter
from transforms.profile import ProfileBuild
from transforms.report_html import render_report
from transforms.scorecard import ScoreContributors
from transforms.write import WriteParquet

__all__ = ['DescribeBuild', 'shard_stats', 'CARD_NAME', 'REPORT_NAME', 'CONTRIBUTORS_NAME']

CARD_NAME = 'README.md'
REPORT_NAME = 'report.html'
CONTRIBUTORS_NAME = 'contributors.parquet'
TOP_CONTRIBUTORS = 10
EXAMPLES = 8
_STAGE = 'describe'
_MANIFEST_SHARD = re.compile(r'^(?P<split>[a-z]+)-\d{5}-of-\d{5}\.parquet$')


def _write_text(path: str, text: str, *, mime_type: str) -> str:
  with FileSystems.create(path, mime_type=mime_type,
                          compression_type=CompressionTypes.UNCOMPRESSED) as f:
    f.write(text.encode('utf-8'))
  inc_counter(_STAGE, 'written')
  return path


def shard_stats(paths: Iterable[str]) -> dict[str, dict]:
  """split -> files, rows, uncompressed row-group bytes and file bytes of its manifest shards.

  Reads only the Parquet footers of the files under ``manifests/data/``.
  """
  stats = {split: {'files': 0, 'num_examples': 0, 'num_bytes': 0, 'download_bytes': 0}
           for split in SPLITS}
  for path in paths:
    match = _MANIFEST_SHARD.match(posixpath.basename(path))
    if not match or '/manifests/data/' not in path or match['split'] not in stats:
      continue
    part = stats[match['split']]
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
      meta = pq.ParquetFile(f).metadata
    part['files'] += 1
    part['num_examples'] += meta.num_rows
    part['num_bytes'] += sum(meta.row_group(i).total_byte_size
                             for i in range(meta.num_row_groups))
    part['download_bytes'] += FileSystems.match([path])[0].metadata_list[0].size_in_bytes
  return stats


def _clip_example(clip: Clip) -> dict:
  return {'clip_id': clip.clip_id, 'upload_id': clip.upload_id,
          'contributor_id': clip.contributor_id, 'duration_s': clip.metrics.get('duration_s'),
          'snr_db': clip.metrics.get('snr_db'), 'transcript': clip.transcript}


def _reject_example(reject: Reject) -> tuple[str, dict]:
  return reject.reason, {'reason': reject.reason, 'upload_id': reject.upload_id,
                         'contributor_id': reject.contributor_id, 'detail': reject.detail}


def _first_upload(examples: Iterable[dict]) -> dict:
  return min(examples, key=lambda example: example['upload_id'])


def _write_card(summary: dict, *, build_dir: str, sample_rate_hz: int, profile: dict,
                written: list[str]) -> str:
  card = render_card(summary=summary, profile=profile, shards=shard_stats(written),
                     sample_rate_hz=sample_rate_hz)
  return _write_text(f'{build_dir}/{CARD_NAME}', card, mime_type='text/markdown')


def _write_report(summary: dict, *, build_dir: str, profile: dict, most_rejects: list[dict],
                  most_duplicates: list[dict], clip_examples: list[dict],
                  reject_examples: list[dict]) -> str:
  page = render_report(summary=summary, profile=profile, most_rejects=most_rejects,
                       most_duplicates=most_duplicates, clip_examples=clip_examples,
                       reject_examples=sorted(reject_examples, key=lambda r: r['reason']))
  return _write_text(f'{build_dir}/{REPORT_NAME}', page, mime_type='text/html')


def _most(field: str):
  def key(row: dict) -> tuple:
    return row[field], row['uploads'], row['contributor_id'] or ''
  return key


class DescribeBuild(beam.PTransform):
  """Writes the contributor scorecards, the dataset card and the report of a build.

  Args:
    build_dir: the build's directory (local or ``gs://``).
    build_id: stamped on the scorecards.
    pipeline_version: stamped on the scorecards.
    sample_rate_hz: the clips' rate, for the card's Audio feature.
    split_config: names each contributor's split in the scorecards.
  """
  def __init__(self, *, build_dir: str, build_id: str, pipeline_version: str,
               sample_rate_hz: int, split_config: SplitConfig):
    super().__init__()
    self._build_dir = build_dir.rstrip('/')
    self._build_id = build_id
    self._pipeline_version = pipeline_version
    self._sample_rate_hz = sample_rate_hz
    self._split_config = split_config

  def expand(self, inputs: tuple[beam.PCollection, ...]) -> beam.PCollection:
    clips, rejects, summary, written = inputs
    build_dir = self._build_dir
    scorecards = (clips, rejects) | 'Score' >> ScoreContributors(
        split_config=self._split_config, build_id=self._build_id,
        pipeline_version=self._pipeline_version)
    contributors = scorecards | 'WriteContributors' >> WriteParquet(
        f'{build_dir}/{CONTRIBUTORS_NAME.removesuffix(".parquet")}',
        schema=CONTRIBUTOR_SCHEMA, row_group_rows=10_000, shard_name_template='')
    profile = (clips, rejects) | 'Profile' >> ProfileBuild()
    most_rejects = (scorecards
                    | 'WithRejects' >> beam.Filter(lambda row: row['rejected'] > 0)
                    | 'MostRejects' >> beam.combiners.Top.Of(TOP_CONTRIBUTORS,
                                                             key=_most('rejected')))
    most_duplicates = (scorecards
                       | 'WithDuplicates' >> beam.Filter(lambda row: row['duplicates'] > 0)
                       | 'MostDuplicates' >> beam.combiners.Top.Of(TOP_CONTRIBUTORS,
                                                                   key=_most('duplicates')))
    clip_examples = (clips
                     | 'ClipExamples' >> beam.Map(_clip_example)
                     | 'SomeClips' >> beam.combiners.Top.Smallest(
                         EXAMPLES, key=lambda example: example['clip_id']))
    reject_examples = (rejects
                       | 'RejectExamples' >> beam.Map(_reject_example)
                       | 'OnePerReason' >> beam.CombinePerKey(_first_upload)
                       | 'Examples' >> beam.Values())

    card = summary | 'WriteCard' >> beam.Map(
        _write_card, build_dir=build_dir, sample_rate_hz=self._sample_rate_hz,
        profile=beam.pvalue.AsSingleton(profile), written=beam.pvalue.AsList(written))
    report = summary | 'WriteReport' >> beam.Map(
        _write_report, build_dir=build_dir, profile=beam.pvalue.AsSingleton(profile),
        most_rejects=beam.pvalue.AsSingleton(most_rejects),
        most_duplicates=beam.pvalue.AsSingleton(most_duplicates),
        clip_examples=beam.pvalue.AsSingleton(clip_examples),
        reject_examples=beam.pvalue.AsList(reject_examples))
    return (contributors, card, report) | 'Described' >> beam.Flatten()
