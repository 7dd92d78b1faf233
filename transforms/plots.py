"""Hand-written SVG charts for the build report: no plotting library, no network.

* :func:`histogram_svg`: stacked bars over fixed bins, with threshold markers.
* :func:`bar_svg`: horizontal stacked bars, one row per label.

Every chart is ``<svg class="plot" id="plot-ID">`` with one ``<rect
class="bar">`` per non-empty bar, so a test can find the plots in the DOM. All
text (labels may be contributor ids) is escaped.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

__all__ = ['histogram_svg', 'bar_svg', 'Series']

Series = tuple[str, str]  # (name, CSS colour)

_WIDTH = 640
_FONT = 'font-family="system-ui, sans-serif" font-size="11"'


def _esc(text: object) -> str:
  return html.escape(str(text), quote=True)


def _number(value: float) -> str:
  return f'{value:.3g}' if abs(value) < 1000 else f'{value:,.0f}'


def _open(plot_id: str, title: str, height: int) -> list[str]:
  return [f'<svg class="plot" id="plot-{_esc(plot_id)}" xmlns="http://www.w3.org/2000/svg" '
          f'width="{_WIDTH}" height="{height}" viewBox="0 0 {_WIDTH} {height}" role="img" '
          f'aria-label="{_esc(title)}" {_FONT}>',
          f'<title>{_esc(title)}</title>',
          f'<text x="8" y="16" font-size="13" font-weight="600">{_esc(title)}</text>']


def _legend(series: Sequence[Series], *, y: int) -> list[str]:
  parts, x = [], _WIDTH - 8
  for name, colour in reversed(series):
    x -= 7 * len(name) + 24
    parts.append(f'<rect x="{x}" y="{y - 9}" width="10" height="10" fill="{_esc(colour)}"/>'
                 f'<text x="{x + 14}" y="{y}">{_esc(name)}</text>')
  return parts


def _empty(parts: list[str], height: int) -> str:
  parts.append(f'<text class="empty" x="{_WIDTH / 2}" y="{height / 2}" '
               'text-anchor="middle" fill="#777">no data</text></svg>')
  return '\n'.join(parts)


def histogram_svg(*, plot_id: str, title: str, edges: Sequence[float],
                  counts: Sequence[Sequence[int]], series: Sequence[Series], unit: str,
                  markers: Sequence[tuple[float, str]] = ()) -> str:
  """Stacked histogram; ``counts[s][i]`` is series ``s`` in bin ``[edges[i], edges[i+1])``.

  The first and last bins also hold the values beyond them (their labels say
  so with <= and >=). ``markers`` draw dashed vertical lines, e.g. thresholds.
  """
  height, left, right, top, bottom = 240, 44, 12, 30, 40
  parts = _open(plot_id, title, height) + _legend(series, y=16)
  totals = [sum(column) for column in zip(*counts, strict=True)] if counts else []
  peak = max(totals, default=0)
  if peak == 0:
    return _empty(parts, height)
  plot_w, plot_h = _WIDTH - left - right, height - top - bottom
  low, high = edges[0], edges[-1]
  bar_w = plot_w / (len(edges) - 1)

  def x_of(value: float) -> float:
    return left + (value - low) / (high - low) * plot_w

  parts.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" '
               f'y2="{top + plot_h}" stroke="#444"/>')
  parts.append(f'<text x="{left - 4}" y="{top + 4}" text-anchor="end">{peak}</text>'
               f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end">0</text>')
  for i in range(len(edges) - 1):
    base = top + plot_h
    for (name, colour), column in zip(series, counts, strict=True):
      if column[i] == 0:
        continue
      h = column[i] / peak * plot_h
      base -= h
      parts.append(f'<rect class="bar" data-series="{_esc(name)}" x="{left + i * bar_w + 0.5:.1f}" '
                   f'y="{base:.1f}" width="{max(bar_w - 1, 1):.1f}" height="{h:.1f}" '
                   f'fill="{_esc(colour)}"><title>{_esc(name)}: {column[i]} in '
                   f'[{_number(edges[i])}, {_number(edges[i + 1])}) {_esc(unit)}</title></rect>')
  step = max(1, (len(edges) - 1) // 7)
  for i in range(0, len(edges), step):
    label = _number(edges[i])
    if i == 0:
      label = f'<={label}'
    elif i == len(edges) - 1:
      label = f'>={label}'
    parts.append(f'<text x="{x_of(edges[i]):.1f}" y="{top + plot_h + 14}" '
                 f'text-anchor="middle">{_esc(label)}</text>')
  parts.append(f'<text x="{left + plot_w / 2}" y="{height - 6}" text-anchor="middle">'
               f'{_esc(unit)}</text>')
  for value, label in markers:
    if low <= value <= high:
      x = x_of(value)
      near_right = x > left + plot_w * 0.75  # write the label on the side with room
      anchor, dx = ('end', -3) if near_right else ('start', 3)
      parts.append(f'<line class="marker" x1="{x:.1f}" y1="{top}" x2="{x:.1f}" '
                   f'y2="{top + plot_h}" stroke="#c00" stroke-dasharray="4 3"/>'
                   f'<text x="{x + dx:.1f}" y="{top + 10}" fill="#c00" '
                   f'text-anchor="{anchor}">{_esc(label)}</text>')
  parts.append('</svg>')
  return '\n'.join(parts)


def bar_svg(*, plot_id: str, title: str, labels: Sequence[str],
            values: Sequence[Sequence[float]], series: Sequence[Series],
            value_format: str = '{:g}') -> str:
  """Horizontal stacked bars: row ``r`` stacks ``values[r][s]`` of each series ``s``."""
  row_h, top, label_w, right = 20, 30, 190, 70
  height = top + row_h * max(len(labels), 1) + 12
  parts = _open(plot_id, title, height) + (_legend(series, y=16) if len(series) > 1 else [])
  peak = max((sum(row) for row in values), default=0)
  if peak <= 0:
    return _empty(parts, height)
  plot_w = _WIDTH - label_w - right
  for r, (label, row) in enumerate(zip(labels, values, strict=True)):
    y = top + r * row_h
    shown = label if len(label) <= 28 else label[:27] + '\u2026'
    parts.append(f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end">'
                 f'<title>{_esc(label)}</title>{_esc(shown)}</text>')
    x = float(label_w)
    for (name, colour), value in zip(series, row, strict=True):
      if value <= 0:
        continue
      w = value / peak * plot_w
      parts.append(f'<rect class="bar" data-series="{_esc(name)}" x="{x:.1f}" y="{y + 3}" '
                   f'width="{max(w, 1):.1f}" height="{row_h - 6}" fill="{_esc(colour)}">'
                   f'<title>{_esc(label)}, {_esc(name)}: {_esc(value_format.format(value))}'
                   '</title></rect>')
      x += w
    parts.append(f'<text x="{x + 4:.1f}" y="{y + 14}">'
                 f'{_esc(value_format.format(sum(row)))}</text>')
  parts.append('</svg>')
  return '\n'.join(parts)
