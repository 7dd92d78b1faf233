"""The nightly build: incremental, versioned, atomic, and honouring consent withdrawal.

    python -m pipelines.nightly --uploads DIR_OR_GS --output DIR_OR_GS \\
        [--config configs/nightly.yaml] [--build_id YYYYMMDD] [--set nightly.keep_builds=14] \\
        [any Beam option]

Tonight's build starts from the one ``OUT/LATEST`` names (its *base*), and:

1. lists the uploads and keeps those that are new or changed since the base
   (:class:`~transforms.select_new.SelectNewUploads`: by path and content hash);
2. pairs them with their sidecars, rejects those of withdrawn contributors,
   and runs the one-shot build's stages on the rest, deduplicating exactly and
   near against each other and against every clip of the base snapshot;
3. stores each accepted clip's FLAC once in ``OUT/audio/HH/CLIP_ID.flac``;
4. writes ``OUT/builds/ID/``: ``manifests/`` (the full snapshot: the base's
   clips minus withdrawn contributors and superseded uploads, plus tonight's),
   ``delta/`` (tonight's clips), ``rejects/`` (tonight's), ``fingerprints/``
   and ``state/uploads/`` (what tomorrow starts from), ``withdrawn/`` and
   ``summary.json``, in a staging place first;
5. verifies it, promotes it, moves LATEST if it still names the base (a
   generation precondition on GCS), then deletes the withdrawn contributors'
   audio objects and the builds beyond ``nightly.keep_builds``.

Running the same build id again after LATEST names it only finishes step 5.
A night with nothing new publishes an unchanged snapshot and an empty delta.

Exit codes: 0 published; 2 bad option, config or withdrawals file (nothing
started); 1 not published (the last line says why, and that LATEST is unchanged).
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import sys
import traceback
from collections.abc import Sequence

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines import __version__
from pipelines.build_dataset import format_summary, process_uploads
from pipelines.nightly_publish import (
  FinishNight,
  Latest,
  PublishConflict,
  after_publish,
  audio_root,
  finish_night,
  read_latest,
)
from pipelines.options import BuildOptions, check_build_id, normalize_uri
from pipelines.publish import ConservationError, build_dir, read_json, staging_dir, write_json
from pipelines.runner import (
  choose_runner,
  expand_runner_config,
  job_finished_here,
  publishes_in_pipeline,
)
from schemas.config import BuildConfig, ConfigError, load_config
from schemas.tables import (
  FINGERPRINT_SCHEMA,
  REJECT_SCHEMA,
  UPLOAD_STATE_SCHEMA,
  WITHDRAWN_SCHEMA,
  reject_row,
)
from schemas.withdrawals import Withdrawal, parse_withdrawals
from transforms.describe import DescribeBuild
from transforms.discover import ListUploads, PairUploads
from transforms.redact import RedactRejects
from transforms.select_new import SelectNewUploads
from transforms.snapshot import AssembleSnapshot
from transforms.store import StoreAudio
from transforms.summarize import SummarizeBuild
from transforms.withdraw import RejectWithdrawn
from transforms.write import WriteManifests, WriteTable

__all__ = ['build_night', 'run', 'main', 'read_withdrawals', 'format_night']

_LOG = logging.getLogger('pipelines.nightly')


def read_withdrawals(path: str | None) -> list[Withdrawal]:
  """The withdrawals file named by ``nightly.withdrawals`` (none for None).

  Raises:
    ConfigError: the file cannot be read or breaks the contract.
  """
  if path is None:
    return []
  try:
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
      data = f.read()
  except Exception as e:  # noqa: BLE001 -- any failure to read it must stop the night
    raise ConfigError(f'nightly.withdrawals={path}: cannot read it ({e}); a night never '
                      'runs without its withdrawals') from e
  return parse_withdrawals(data, source=path)


def _previous(p: beam.Pipeline, base: str | None, table: str) -> beam.PCollection:
  """The base build's table, or nothing (the first night, or an empty table)."""
  shards = '*/*.parquet' if table == 'manifests' else '*.parquet'
  pattern = f'{base}/{table}/{shards}' if base else None
  label = f'Previous{table.replace("/", "_").title().replace("_", "")}'
  if pattern and FileSystems.match([pattern])[0].metadata_list:
    return p | label >> beam.io.ReadFromParquet(pattern)
  return p | label >> beam.Create([])


def _counts(pcolls: dict[str, beam.PCollection]) -> beam.PCollection:
  """One dict ``{name: number of elements}`` for the named PCollections (0 when empty)."""
  names = sorted(pcolls)
  events = [pcolls[name] | f'Count{name}' >> beam.Map(lambda _, n=name: n) for name in names]
  return (events
          | 'CountEvents' >> beam.Flatten()
          | 'CountPerName' >> beam.combiners.Count.PerElement()
          | 'CountDict' >> beam.combiners.ToDict()
          | 'CountAll' >> beam.Map(lambda found: {n: found.get(n, 0) for n in names}))


def _night_summary(summary: dict, counts: dict, by_split: dict, *, stamp: dict) -> dict:
  return {**stamp, **summary,
          'uploads_known': counts['state'],
          'snapshot': {'clips': counts['snapshot'], 'previous': counts['previous'],
                       'carried': counts['carried'], 'superseded':
                       counts['previous'] - counts['carried'] - counts['withdrawn'],
                       'removed_withdrawn': counts['withdrawn'],
                       'splits': {split: by_split.get(split, 0)
                                  for split in ('train', 'dev', 'test')}}}


def build_night(p: beam.Pipeline, *, uploads: str, output: str, staging: str, build_id: str,
                base: Latest, withdrawals: Sequence[Withdrawal], config: BuildConfig,
                finish_in_job: bool = False) -> None:
  """Adds tonight's build, from listing uploads to writing its tables, to ``p``."""
  base_dir = build_dir(output, base.build_id) if base.build_id else None
  withdrawn = frozenset(w.contributor_id for w in withdrawals)
  previous_manifests = _previous(p, base_dir, 'manifests')
  previous_prints = _previous(p, base_dir, 'fingerprints')
  previous_state = _previous(p, base_dir, 'state/uploads')

  listed = p | 'List' >> ListUploads(root=uploads)
  selected = listed | 'SelectNew' >> SelectNewUploads(state=previous_state, build_id=build_id)
  discovered = selected.stems | 'Discover' >> PairUploads(root=uploads, config=config.discover)
  consenting = discovered.clips | 'Withdrawn' >> RejectWithdrawn(contributors=withdrawn)
  reference = previous_prints | 'Reference' >> beam.Filter(
      lambda row, gone: row['contributor_id'] not in gone, withdrawn)
  processed = process_uploads(consenting.clips, config=config, published=reference,
                              reference=reference)
  stored = processed.clips | 'Store' >> StoreAudio(audio_root=audio_root(output))

  inputs = (discovered.clips, discovered.rejected) | 'Inputs' >> beam.Flatten()
  snapshot = stored | 'Snapshot' >> AssembleSnapshot(
      previous_manifests=previous_manifests, previous_fingerprints=previous_prints,
      processed_ids=inputs | 'InputIds' >> beam.Map(lambda upload: upload.upload_id),
      withdrawn=withdrawn, audio_root=audio_root(output), build_id=build_id,
      pipeline_version=__version__)
  rejected = ([discovered.rejected, consenting.rejected, *processed.rejected]
              | 'Rejects' >> beam.Flatten()
              | 'Redact' >> RedactRejects(withdrawn=withdrawn))

  stamp = {'build_id': build_id, 'pipeline_version': __version__}
  write = {'build_dir': staging, 'config': config.write}
  manifests = {'sample_rate_hz': config.sample_rate_hz, **write}
  written = [
      snapshot.manifests | 'WriteSnapshot' >> WriteManifests(prefix='manifests', **manifests),
      snapshot.delta | 'WriteDelta' >> WriteManifests(prefix='delta', **manifests),
      (rejected | 'RejectRows' >> beam.Map(reject_row, **stamp)
       | 'WriteRejects' >> WriteTable(prefix='rejects', schema=REJECT_SCHEMA, **write)),
      snapshot.fingerprints | 'WriteFingerprints' >> WriteTable(
          prefix='fingerprints', schema=FINGERPRINT_SCHEMA, **write),
      selected.state | 'WriteState' >> WriteTable(
          prefix='state/uploads', schema=UPLOAD_STATE_SCHEMA, **write),
      snapshot.withdrawn | 'WriteWithdrawn' >> WriteTable(
          prefix='withdrawn', schema=WITHDRAWN_SCHEMA, **write),
  ]

  counts = _counts({'snapshot': snapshot.manifests, 'previous': previous_manifests,
                    'carried': snapshot.manifests | 'Carried' >> beam.Filter(
                        lambda row, night: row['build_id'] != night, build_id),
                    'withdrawn': snapshot.withdrawn, 'state': selected.state})
  by_split = (snapshot.manifests
              | 'SnapshotSplits' >> beam.Map(lambda row: row['split'])
              | 'CountSplits' >> beam.combiners.Count.PerElement()
              | 'SplitDict' >> beam.combiners.ToDict())
  config_doc = dataclasses.asdict(config)
  summary = ((inputs, stored, rejected)
             | 'Summarize' >> SummarizeBuild()
             | 'Stamp' >> beam.Map(
                 _night_summary, beam.pvalue.AsSingleton(counts),
                 beam.pvalue.AsSingleton(by_split, default_value={}),
                 stamp={**stamp, 'uploads': uploads, 'base_build': base.build_id,
                        'config': config_doc,
                        'withdrawals': {'contributors': len(withdrawn)}}))
  summary_written = summary | 'WriteSummary' >> beam.Map(
      lambda s: write_json(f'{staging}/summary.json', s))
  # Tonight's scorecards and report (the redacted rejects name no contributor); the
  # card describes the snapshot's files.
  described = ((stored, rejected, summary, written | 'AllWritten' >> beam.Flatten())
               | 'Describe' >> DescribeBuild(
                   build_dir=staging, build_id=build_id, pipeline_version=__version__,
                   sample_rate_hz=config.sample_rate_hz, split_config=config.split))
  if finish_in_job:
    _ = summary | 'Finish' >> FinishNight(
        staging=staging, output=output, build_id=build_id, expected=base,
        keep_builds=config.nightly.keep_builds,
        after=[*written, summary_written, described])


def _default_build_id() -> str:
  return datetime.datetime.now(datetime.timezone.utc).strftime('%Y%m%d')


def run(argv: Sequence[str] | None = None) -> dict:
  """Runs tonight's build and publishes it.

  Returns:
    The published summary plus ``path`` and what the steps after publishing did
    (``audio_objects_deleted``, ``builds_deleted``); with ``already_published``
    when LATEST named this build already. For a job only submitted (Dataflow),
    ``{'build_id', 'path', 'runner', 'launched': True}``.

  Raises:
    ConfigError: before any work.
    ConservationError, PublishConflict: after the run; nothing is published.
  """
  argv = expand_runner_config(sys.argv[1:] if argv is None else argv)
  options = PipelineOptions(argv)
  build = options.view_as(BuildOptions)
  config = load_config(build.config, build.config_overrides or ())
  uploads = normalize_uri(build.uploads, flag='--uploads')
  output = normalize_uri(build.output, flag='--output')
  build_id = check_build_id(build.build_id or _default_build_id())
  withdrawals = read_withdrawals(config.nightly.withdrawals)
  runner = choose_runner(options, argv, build_id=build_id)
  final = build_dir(output, build_id)

  base = read_latest(output)
  if base.build_id == build_id:
    _LOG.info('LATEST already names %s: finishing the steps after publishing', build_id)
    done = after_publish(output, build_id, keep_builds=config.nightly.keep_builds)
    return {**read_json(f'{final}/summary.json'), 'path': final, 'already_published': True,
            **done}
  if base.build_id is not None:
    base_summary = read_json(f'{build_dir(output, base.build_id)}/summary.json')
    if 'snapshot' not in base_summary:
      raise ConfigError(f'LATEST names {base.build_id}, which is not a nightly build (a '
                        'one-shot build keeps no state): give the nightly build its own '
                        '--output')
    # A run killed after LATEST moved may not have deleted withdrawn audio yet.
    after_publish(output, base.build_id, keep_builds=config.nightly.keep_builds)

  staging = staging_dir(output, build_id)
  in_job = publishes_in_pipeline(options)
  _LOG.info('Nightly %s from %s on top of %s into %s on %s', build_id, uploads,
            base.build_id or 'nothing (first night)', staging, runner)
  with beam.Pipeline(options=options) as p:
    build_night(p, uploads=uploads, output=output, staging=staging, build_id=build_id,
                base=base, withdrawals=withdrawals, config=config, finish_in_job=in_job)
  if not job_finished_here(options, p.result):
    return {'build_id': build_id, 'path': final, 'runner': runner, 'launched': True}
  if in_job:
    return {**read_json(f'{final}/summary.json'), 'path': final}
  summary = read_json(f'{staging}/summary.json')
  done = finish_night(staging=staging, output=output, build_id=build_id, summary=summary,
                      expected=base, keep_builds=config.nightly.keep_builds)
  _LOG.info('Published %s', final)
  return {**summary, 'path': final, **done}


def format_night(summary: dict) -> str:
  """The one-shot build's lines for tonight's uploads, then the snapshot and clean-up."""
  snapshot = summary['snapshot']
  lines = [format_summary(summary).replace('Build ', 'Nightly ', 1),
           f'  on top of {summary["base_build"] or "nothing (first night)"}: snapshot '
           f'{snapshot["clips"]} clips (carried {snapshot["carried"]}, new '
           f'{summary["accepted"]}, superseded {snapshot["superseded"]}, removed for '
           f'withdrawn consent {snapshot["removed_withdrawn"]})',
           '  ' + ', '.join(f'{split} {n}' for split, n in snapshot['splits'].items())]
  if 'audio_objects_deleted' in summary:
    lines.append(f'  audio objects deleted {summary["audio_objects_deleted"]}, builds '
                 f'deleted {len(summary["builds_deleted"])}')
  state = ' (already published: finished the clean-up)' if summary.get(
      'already_published') else ''
  lines.append(f'OK nightly {summary["build_id"]} published; LATEST -> '
               f'{summary["build_id"]}{state}')
  return '\n'.join(lines)


def main(argv: Sequence[str] | None = None) -> int:
  logging.basicConfig(level=logging.WARNING, format='%(levelname)s %(name)s: %(message)s')
  logging.getLogger('pipelines').setLevel(logging.INFO)
  try:
    summary = run(argv)
  except ConfigError as e:
    print(f'FAILED nightly: {e} (nothing was started; LATEST is unchanged)', file=sys.stderr)
    return 2
  except (ConservationError, PublishConflict) as e:
    print(f'FAILED nightly: not published: {e} (LATEST is unchanged)', file=sys.stderr)
    return 1
  except Exception as e:  # noqa: BLE001 -- a scheduled run must end with a clear last line
    traceback.print_exc()
    print(f'FAILED nightly: {type(e).__name__}: {e} (not published; LATEST is unchanged '
          'unless it already named this build)', file=sys.stderr)
    return 1
  if summary.get('launched'):
    print(f'OK nightly {summary["build_id"]}: the {summary["runner"]} job is submitted; it '
          f'publishes {summary["path"]} and moves LATEST when it ends')
  else:
    print(format_night(summary))
  return 0


if __name__ == '__main__':
  sys.exit(main())
