"""The build report, ``OUT/builds/ID/report.html``: one self-contained page.

* :func:`render_report`: summary, profile, top contributors and examples ->
  HTML.

The page has no script and loads nothing: styles are inline and the plots are
SVG written by :mod:`transforms.plots`. Every value that comes from uploads
(ids, transcripts, reject details, paths) is escaped, so a transcript holding
``<script>`` shows as text.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from schemas.records import SPLITS
from transforms.plots import bar_svg, histogram_svg

__all__ = ['render_report', 'HISTOGRAM_PLOTS']

_ACCEPTED = ('accepted', '#3b7dd8')
_REJECTED = ('rejected', '#e0a030')
_SPLIT_COLOURS = {'train': '#3b7dd8', 'dev': '#49a86b', 'test': '#9b59b6'}

#: metric -> (title, unit, filter thresholds drawn as markers)
HISTOGRAM_PLOTS = {
    'duration_s': ('Duration after trimming', 's', ('min_duration_s', 'max_duration_s')),
    'snr_db': ('SNR (WADA)', 'dB', ('min_snr_db',)),
    'loudness_lufs': ('Loudness (BS.1770)', 'LUFS', ('min_loudness_lufs',)),
    'speech_ratio': ('Speech ratio (Silero VAD)', 'share of 32 ms windows',
                     ('min_speech_ratio',)),
}

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; max-width: 1340px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 28px; }
.meta { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 8px 0; font-size: 13px; }
th, td { border-bottom: 1px solid #ddd; padding: 3px 10px; text-align: left; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
.plots { display: flex; flex-wrap: wrap; gap: 12px; }
.plots svg { border: 1px solid #e3e3e3; border-radius: 4px; background: #fff; }
.note { color: #666; font-size: 12px; }
td.text { max-width: 520px; overflow-wrap: anywhere; }
"""


def _esc(value: object) -> str:
  return html.escape('' if value is None else str(value), quote=True)


def _hours(hours: float) -> str:
  return f'{hours:.2f} h' if hours >= 1 else f'{hours * 60:.1f} min'


def _table(header: Sequence[str], rows: Sequence[Sequence[object]],
           numeric: Sequence[bool], css_class: str = '') -> str:
  head = ''.join(f'<th class="{"n" if n else ""}">{_esc(h)}</th>'
                 for h, n in zip(header, numeric, strict=True))
  body = ''.join(
      '<tr>' + ''.join(
          f'<td class="{"n" if n else "text"}">{_esc(cell)}</td>'
          for cell, n in zip(row, numeric, strict=True)) + '</tr>'
      for row in rows)
  return f'<table class="{css_class}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _fmt(value: float | None, pattern: str = '{:.1f}') -> str:
  return '' if value is None else pattern.format(value)


def _summary_table(summary: dict) -> str:
  rows = [(split, part['clips'], _hours(part['hours']), part['contributors'])
          for split, part in summary['splits'].items()]
  rows.append(('total', summary['accepted'], _hours(summary['audio_hours_out']),
               summary['contributors']))
  return _table(('split', 'clips', 'audio', 'speakers'), rows, (False, True, True, True))


def _histograms(summary: dict, profile: dict) -> list[str]:
  thresholds = summary.get('config', {}).get('filter', {})
  plots = []
  for metric, (title, unit, keys) in HISTOGRAM_PLOTS.items():
    hist = profile['histograms'][metric]
    markers = [(thresholds[key], key) for key in keys if thresholds.get(key) is not None]
    plots.append(histogram_svg(
        plot_id=metric.replace('_', '-'), title=title, edges=hist['edges'],
        counts=[hist['accepted'], hist['rejected']], series=[_ACCEPTED, _REJECTED],
        unit=unit, markers=markers))
  return plots


def _breakdowns(summary: dict, profile: dict, most_rejects: Sequence[dict],
                most_duplicates: Sequence[dict]) -> list[str]:
  reasons = sorted(summary['rejected'].items(), key=lambda item: (-item[1], item[0]))
  locales = profile['locales']
  splits = [s for s in SPLITS]
  return [
      bar_svg(plot_id='rejects-by-reason', title='Rejects by reason',
              labels=[reason for reason, _ in reasons],
              values=[[count] for _, count in reasons], series=[_REJECTED]),
      bar_svg(plot_id='hours-by-locale', title='Audio hours per locale and split',
              labels=list(locales),
              values=[[locales[locale].get(split, {}).get('hours', 0.0) for split in splits]
                      for locale in locales],
              series=[(split, _SPLIT_COLOURS[split]) for split in splits],
              value_format='{:.3f} h'),
      bar_svg(plot_id='most-rejects', title='Contributors with the most rejects',
              labels=[_contributor(row) for row in most_rejects],
              values=[[row['rejected'] - row['duplicates'], row['duplicates']]
                      for row in most_rejects],
              series=[('quality and format', '#e0a030'), ('duplicates', '#c0392b')]),
      bar_svg(plot_id='most-duplicates', title='Contributors with the most duplicates',
              labels=[_contributor(row) for row in most_duplicates],
              values=[[row['duplicates_own'], row['duplicates_cross_account']]
                      for row in most_duplicates],
              series=[('own re-uploads', '#e67e22'), ('copies of another account', '#c0392b')]),
  ]


def _contributor(row: dict) -> str:
  return row['contributor_id'] if row['contributor_id'] is not None else '(no contributor)'


def _contributor_table(rows: Sequence[dict]) -> str:
  return _table(
      ('contributor', 'uploads', 'accepted', 'rejected', 'duplicates (own / other account)',
       'median SNR dB', 'quality score'),
      [(_contributor(r), r['uploads'], r['accepted'], r['rejected'],
        f'{r["duplicates_own"]} / {r["duplicates_cross_account"]}',
        _fmt(r['median_snr_db']), _fmt(r['quality_score'])) for r in rows],
      (False, True, True, True, True, True, True), css_class='contributors')


def render_report(*, summary: dict, profile: dict, most_rejects: Sequence[dict],
                  most_duplicates: Sequence[dict], clip_examples: Sequence[dict] = (),
                  reject_examples: Sequence[dict] = ()) -> str:
  """The report page.

  Args:
    summary: the stamped build summary (``summary.json``).
    profile: :class:`transforms.profile.ProfileBuild`'s output.
    most_rejects, most_duplicates: scorecard rows, most first.
    clip_examples: manifest-like dicts (``upload_id``, ``contributor_id``,
      ``duration_s``, ``snr_db``, ``transcript``) to show a few clips.
    reject_examples: one reject dict per reason (``reason``, ``upload_id``,
      ``contributor_id``, ``detail``).
  """
  build_id = summary['build_id']
  rejected = sum(summary['rejected'].values())
  parts: list[Any] = [
      '<!DOCTYPE html>', '<html lang="en"><head><meta charset="utf-8">',
      f'<title>Build {_esc(build_id)}: dataset report</title>',
      f'<style>{_STYLE}</style></head><body>',
      f'<h1>Build {_esc(build_id)}</h1>',
      f'<p class="meta">pipeline {_esc(summary.get("pipeline_version"))} &middot; uploads from '
      f'{_esc(summary.get("uploads"))}</p>',
      f'<p id="totals">{summary["inputs"]} uploads: {summary["accepted"]} accepted, {rejected} '
      f'rejected &middot; audio in {_hours(summary["audio_hours_in"])}, out '
      f'{_hours(summary["audio_hours_out"])} &middot; {summary["contributors"]} contributors</p>',
      _summary_table(summary),
      '<h2>Quality of the uploads</h2>',
      '<p class="note">Accepted and rejected uploads stacked; red dashed lines are the filter '
      'thresholds. Uploads rejected before measuring are not shown.</p>',
      '<div class="plots">', *_histograms(summary, profile), '</div>',
      '<h2>Rejects, locales and contributors</h2>',
      '<div class="plots">', *_breakdowns(summary, profile, most_rejects, most_duplicates),
      '</div>',
      '<h2>Contributors with the most rejects</h2>', _contributor_table(most_rejects),
      '<h2>Contributors with the most duplicates</h2>', _contributor_table(most_duplicates),
  ]
  if reject_examples:
    parts += ['<h2>One reject of each reason</h2>', _table(
        ('reason', 'upload', 'contributor', 'detail'),
        [(r['reason'], r['upload_id'], r['contributor_id'], r['detail'][:400])
         for r in reject_examples], (False, False, False, False), css_class='rejects')]
  if clip_examples:
    parts += ['<h2>A few accepted clips</h2>', _table(
        ('upload', 'contributor', 'duration s', 'SNR dB', 'transcript'),
        [(c['upload_id'], c['contributor_id'], _fmt(c['duration_s']), _fmt(c['snr_db']),
          c['transcript']) for c in clip_examples],
        (False, False, True, True, False), css_class='clips')]
  parts.append('</body></html>\n')
  return '\n'.join(parts)
