"""Build a training-ready dataset from raw contributor uploads.

    python -m pipelines.build_dataset --uploads DIR_OR_GS --output DIR_OR_GS \\
        [--config configs/default.yaml] [--build_id ID] [--set filter.min_snr_db=5] \\
        [any Beam option, e.g. --runner=DataflowRunner]

Every upload ends in exactly one place: a manifest row (accepted) or a reject
row with a reason. The build is written to a staging place, verified (uploads
in == accepted + rejected, and the tables hold those rows), moved to
``OUT/builds/ID/`` and only then named by ``OUT/LATEST``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import logging
import sys
from collections.abc import Sequence
from typing import NamedTuple

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines import __version__
from pipelines.job_metrics import job_metrics
from pipelines.options import BuildOptions, check_build_id, normalize_uri
from pipelines.progress import live_progress
from pipelines.publish import (
  ConservationError,
  PublishBuild,
  build_dir,
  publish,
  read_json,
  staging_dir,
  write_json,
)
from pipelines.runner import (
  choose_runner,
  expand_runner_config,
  job_finished_here,
  publishes_in_pipeline,
)
from pipelines.summary_table import format_summary
from schemas.config import BuildConfig, ConfigError, load_config
from transforms.decode import DecodeAudio
from transforms.dedup import DeduplicateExact
from transforms.dedup_published import DeduplicatePublished
from transforms.describe import DescribeBuild
from transforms.discover import DiscoverUploads
from transforms.encode import EncodeClips
from transforms.filter import FilterQuality
from transforms.measure import MeasureQuality
from transforms.near_dedup import DeduplicateNear
from transforms.progress import track_progress
from transforms.redact import RedactRejects
from transforms.split import AssignSplit
from transforms.standardize import StandardizeAudio
from transforms.summarize import SummarizeBuild
from transforms.trim import TrimSilence
from transforms.write import WriteDataset

__all__ = ['build_pipeline', 'process_uploads', 'Processed', 'run', 'main', 'format_summary']

_LOG = logging.getLogger('pipelines.build_dataset')


class Processed(NamedTuple):
  """What :func:`process_uploads` returns: the accepted clips, split, and every
  reject; the encoded clips and how many of ``rejected`` come from per-upload
  stages (decode to encode), for progress counting."""
  clips: beam.PCollection
  rejected: list[beam.PCollection]
  encoded: beam.PCollection
  per_upload_stages: int


def process_uploads(clips: beam.PCollection, *, config: BuildConfig,
                    published: beam.PCollection | None = None,
                    reference: beam.PCollection | None = None) -> Processed:
  """Adds stages 1-8 (decode to split) to the pipeline of ``clips``.

  Args:
    clips: discovered uploads.
    config: the build config.
    published: optional ``(clip_id, upload_id)`` of clips published by earlier
      builds: a clip with one of those contents is an exact ``duplicate`` of it
      (nightly builds).
    reference: optional fingerprint rows of clips published by earlier builds,
      for :class:`DeduplicateNear`.
  """
  spread = clips | 'Spread' >> beam.Reshuffle()
  decoded = spread | 'Decode' >> DecodeAudio(config=config.decode)
  standardized = decoded.clips | 'Standardize' >> StandardizeAudio(
      sample_rate_hz=config.sample_rate_hz)
  trimmed = standardized.clips | 'Trim' >> TrimSilence(config=config.trim)
  measured = trimmed.clips | 'Measure' >> MeasureQuality(config=config.measure)
  kept = measured.clips | 'Filter' >> FilterQuality(config=config.filter)
  encoded = kept.clips | 'Encode' >> EncodeClips()
  stages = [decoded, standardized, trimmed, measured, kept, encoded]
  new = encoded
  if published is not None:
    new = encoded.clips | 'DedupPublished' >> DeduplicatePublished(published=published)
    stages.append(new)
  unique = new.clips | 'Dedup' >> DeduplicateExact()
  distinct = unique.clips | 'NearDedup' >> DeduplicateNear(config=config.near_dedup,
                                                          reference=reference)
  split = distinct.clips | 'Split' >> AssignSplit(config=config.split)
  stages += [unique, distinct, split]
  return Processed(split.clips, [stage.rejected for stage in stages], encoded.clips, 6)


def build_pipeline(p: beam.Pipeline, *, uploads: str, staging: str, build_id: str,
                   config: BuildConfig, publish_to: str | None = None,
                   progress_dir: str | None = None) -> None:
  """Adds the whole build, from listing uploads to writing tables, to ``p``.

  With ``publish_to`` (the output root) the job also verifies, promotes and
  moves ``LATEST`` itself, for launchers that do not see it end. With
  ``progress_dir`` (local runs) workers count uploads there for a live line.
  """
  discovered = p | 'Discover' >> DiscoverUploads(root=uploads, config=config.discover)
  processed = process_uploads(discovered.clips, config=config)
  if progress_dir:  # an upload is done once encoded or rejected by a per-upload stage
    track_progress(directory=progress_dir, total=[discovered.clips, discovered.rejected],
                   done=[processed.encoded, discovered.rejected,
                         *processed.rejected[:processed.per_upload_stages]])
  rejected = ([discovered.rejected, *processed.rejected]
              | 'Rejects' >> beam.Flatten()
              | 'Redact' >> RedactRejects())
  written = (processed.clips, rejected) | 'Write' >> WriteDataset(
      build_dir=staging, build_id=build_id, pipeline_version=__version__,
      sample_rate_hz=config.sample_rate_hz, config=config.write)

  inputs = (discovered.clips, discovered.rejected) | 'Inputs' >> beam.Flatten()
  summary = ((inputs, processed.clips, rejected)
             | 'Summarize' >> SummarizeBuild()
             | 'Stamp' >> beam.Map(
                 lambda summary: {'build_id': build_id, 'pipeline_version': __version__,
                                  'uploads': uploads, 'config': dataclasses.asdict(config),
                                  **summary}))
  summary_written = summary | 'WriteSummary' >> beam.Map(
      lambda s: write_json(f'{staging}/summary.json', s))
  described = (processed.clips, rejected, summary, written) | 'Describe' >> DescribeBuild(
      build_dir=staging, build_id=build_id, pipeline_version=__version__,
      sample_rate_hz=config.sample_rate_hz, split_config=config.split)
  if publish_to:
    _ = summary | 'Publish' >> PublishBuild(staging=staging, output=publish_to,
                                            build_id=build_id,
                                            after=[written, summary_written, described])


def _default_build_id() -> str:
  return datetime.datetime.now(datetime.timezone.utc).strftime('%Y%m%dT%H%M%SZ')


def run(argv: Sequence[str] | None = None) -> dict:
  """Runs a build to completion and publishes it.

  Returns:
    The published summary (the content of ``summary.json``); for a job that
    was only written or submitted (``--dry_run``, ``--template_location``, a
    Flex Template launch) ``{'build_id', 'path', 'runner', 'launched': True}``.

  Raises:
    ConfigError: before any work, for a bad option or config value.
    ConservationError: after the run, if uploads went missing; nothing is published.
  """
  argv = expand_runner_config(sys.argv[1:] if argv is None else argv)
  options = PipelineOptions(argv)
  build = options.view_as(BuildOptions)
  config = load_config(build.config, build.config_overrides or ())
  uploads = normalize_uri(build.uploads, flag='--uploads')
  output = normalize_uri(build.output, flag='--output')
  build_id = check_build_id(build.build_id or _default_build_id())
  runner = choose_runner(options, argv, build_id=build_id)
  staging = staging_dir(output, build_id)
  _LOG.info('Building %s from %s into %s on %s', build_id, uploads, staging, runner)

  in_job = publishes_in_pipeline(options)
  progress = live_progress(options, runner)
  with progress or contextlib.nullcontext(), beam.Pipeline(options=options) as p:
    build_pipeline(p, uploads=uploads, staging=staging, build_id=build_id, config=config,
                   publish_to=output if in_job else None,
                   progress_dir=progress.directory if progress else None)

  final = build_dir(output, build_id)
  if not job_finished_here(options, p.result):
    _LOG.info('The %s job of %s was written or submitted; it publishes %s', runner,
              build_id, final)
    return {'build_id': build_id, 'path': final, 'runner': runner, 'launched': True}
  if build.metrics_json:
    write_json(build.metrics_json, job_metrics(p.result))
  if in_job:
    summary = read_json(f'{final}/summary.json')
  else:
    summary = read_json(f'{staging}/summary.json')
    publish(staging=staging, output=output, build_id=build_id, summary=summary)
  _LOG.info('Published %s', final)
  return {**summary, 'path': final}


def main(argv: Sequence[str] | None = None) -> int:
  logging.basicConfig(level=logging.WARNING, format='%(levelname)s %(name)s: %(message)s')
  logging.getLogger('pipelines').setLevel(logging.INFO)
  try:
    summary = run(argv)
  except ConfigError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  except ConservationError as e:
    print(f'error: the build is not published: {e}', file=sys.stderr)
    return 1
  if summary.get('launched'):
    print(f'Build {summary["build_id"]}: the {summary["runner"]} job is written or submitted, '
          f'not run here; when it runs it publishes {summary["path"]} and moves LATEST')
  else:
    print(format_summary(summary))
  return 0


if __name__ == '__main__':
  sys.exit(main())
