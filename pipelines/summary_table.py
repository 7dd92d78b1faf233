"""The end-of-run summary printed in the terminal: a table a person reads at a glance.

* :func:`format_summary`: the published summary -> lines like::

      Build b1: published to /data/out/builds/b1

        split      clips      audio   speakers
        train         36    2.5 min          6
        dev            7    0.4 min          1
        test           6    0.5 min          1
        total         49    3.4 min          8

        uploads 62: 49 accepted (79%), 13 rejected; audio in 4.2 min, out 3.4 min

        rejects by reason         uploads
        clipped                         1
        ...

        dataset card    /data/out/builds/b1/README.md
        ...
"""

from __future__ import annotations

from schemas.records import SPLITS

__all__ = ['format_summary', 'ARTIFACTS']

#: What a build holds beside its tables, and the file that holds it.
ARTIFACTS = (('dataset card', 'README.md'), ('report', 'report.html'),
             ('contributors', 'contributors.parquet'), ('manifests', 'manifests/data/'),
             ('rejects', 'rejects/'), ('summary', 'summary.json'))


def _audio(hours: float) -> str:
  return f'{hours:.2f} h' if hours >= 1 else f'{hours * 60:.1f} min'


def format_summary(summary: dict) -> str:
  """Counts, hours, rejects by reason and where the output is, as aligned tables."""
  path = summary['path']
  rejected = sum(summary['rejected'].values())
  inputs = summary['inputs']
  share = f' ({summary["accepted"] / inputs:.0%})' if inputs else ''
  lines = [f'Build {summary["build_id"]}: published to {path}', '',
           f'  {"split":8s} {"clips":>7s} {"audio":>10s} {"speakers":>10s}']
  order = {split: i for i, split in enumerate(SPLITS)}
  for split, part in sorted(summary['splits'].items(), key=lambda s: order.get(s[0], 9)):
    lines.append(f'  {split:8s} {part["clips"]:7d} {_audio(part["hours"]):>10s} '
                 f'{part["contributors"]:10d}')
  lines += [f'  {"total":8s} {summary["accepted"]:7d} {_audio(summary["audio_hours_out"]):>10s} '
            f'{summary["contributors"]:10d}', '',
            f'  uploads {inputs}: {summary["accepted"]} accepted{share}, {rejected} rejected; '
            f'audio in {_audio(summary["audio_hours_in"])}, '
            f'out {_audio(summary["audio_hours_out"])}']
  if summary['rejected']:
    lines += ['', f'  {"rejects by reason":24s} {"uploads":>8s}']
    by_count = sorted(summary['rejected'].items(), key=lambda item: (-item[1], item[0]))
    lines += [f'  {reason:24s} {count:8d}' for reason, count in by_count]
  lines.append('')
  lines += [f'  {name:14s} {path}/{file}' for name, file in ARTIFACTS]
  return '\n'.join(lines)
