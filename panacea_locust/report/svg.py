"""Inline SVG charts over a run's time: lines, steps and bars, shaded stretches (stages),
limit lines, axes with ticks and labels, and a hover note per interval (an SVG ``<title>``:
no script). Pure: strings in, a string out, every text escaped. ``report.html`` uses it.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

#: (start_s, end_s, value): one interval's value; None where nothing was measured
Point = tuple[float, float, "float | None"]

_Scale = Callable[[float], float]  # a time or a value to its x or y in the chart

LINE, STEP, BAR = "line", "step", "bar"

_AXIS, _GRID, _MUTED, _TEXT = "#718096", "#e2e8f0", "#718096", "#1a202c"
_BAND_FILLS = ("#ebf4ff", "#f7fafc")
_TONES = {"held": "#e6f6ec", "broke": "#fde8e8", "insufficient": "#fdf8dc"}
_CHAR_W = 6.6  # average width of a 12 px sans-serif character, for laying out labels


@dataclass(frozen=True)
class Series:
    """One quantity over time, drawn as a line (at each interval's middle), a step (flat over
    each interval) or bars (one per interval)."""

    label: str
    colour: str
    points: Sequence[Point]
    kind: str = LINE
    dashed: bool = False


@dataclass(frozen=True)
class Band:
    """A stretch of time shaded behind the plot (a stage): its label where it fits, else its
    short label where that fits; the note is its tooltip. ``tone`` tints it: ``held`` green,
    ``broke`` red, ``insufficient`` yellow; otherwise bands alternate two light shades."""

    start_s: float
    end_s: float
    label: str
    short: str
    note: str
    tone: str = ""


@dataclass(frozen=True)
class Limit:
    """A dashed horizontal limit line (an SLO rule) across the chart; ``mark`` (start_s,
    end_s) draws a solid stretch of it over a window, the one that decided a windowed rule,
    with ``mark_note`` as its tooltip."""

    value: float
    label: str
    colour: str
    mark: tuple[float, float] | None = None
    mark_note: str = ""


def clock(seconds: float) -> str:
    """``m:ss``, or ``h:mm:ss`` from an hour on: a time since the run's start."""
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def compact(value: float) -> str:
    """An axis label: ``0``, ``2.5``, ``40``, ``1.2k``, ``3M``."""
    magnitude = abs(value)
    if magnitude >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if magnitude >= 10_000:
        return f"{value / 1000:g}k"
    if magnitude >= 1000 and value % 1000:
        return f"{value / 1000:g}k"
    return f"{value:g}"


def nice_ticks(top: float, count: int = 5) -> list[float]:
    """Ticks from 0 to at least ``top`` on a 1-2-2.5-5 step, about ``count`` of them."""
    if not math.isfinite(top) or top <= 0:
        return [0.0, 1.0]
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    n = math.ceil(top / step - 1e-9)
    return [round(i * step, 10) for i in range(n + 1)]


_TIME_STEPS = (1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400)


def time_ticks(duration_s: float, most: int = 8) -> list[float]:
    """Round times (seconds) from 0 to ``duration_s``, at most ``most`` + 1 of them."""
    if duration_s <= 0:
        return [0.0]
    step = next((s for s in _TIME_STEPS if duration_s / s <= most), _TIME_STEPS[-1])
    return [float(i * step) for i in range(int(duration_s // step) + 1)]


def _num(value: float) -> str:
    return f"{value:.1f}"


def _shown(value: float, unit: str) -> str:
    if value >= 100 or value == int(value):
        text = f"{value:,.0f}"
    elif value >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".rstrip()


def time_chart(
    title: str,
    unit: str,
    series: Sequence[Series],
    *,
    duration_s: float,
    bands: Sequence[Band] = (),
    limits: Sequence[Limit] = (),
    width: int = 640,
    height: int = 250,
) -> str:
    """A chart of ``series`` over the run's first ``duration_s`` seconds: y from 0, ticks and
    grid lines on both axes, a legend, ``bands`` shaded behind, ``limits`` as dashed lines
    (a limit far above the data is named in the legend instead of flattening the chart)."""
    e = html.escape
    left, right, top, bottom = 52, 14, 30, 38
    plot_w, plot_h = width - left - right, height - top - bottom
    duration_s = max(duration_s, 1e-9)
    values = [v for s in series for _, _, v in s.points if v is not None]
    data_top = max(values, default=0.0)
    shown_limits = [x for x in limits if data_top == 0 or x.value <= data_top * 4]
    hidden_limits = [x for x in limits if x not in shown_limits]
    ticks = nice_ticks(max([data_top, *(x.value for x in shown_limits)]) * 1.05)
    y_top = ticks[-1]

    def x_of(t: float) -> float:
        return left + min(max(t, 0.0), duration_s) / duration_s * plot_w

    def y_of(v: float) -> float:
        return top + plot_h - v / y_top * plot_h

    out = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{e(title)}" font-family="inherit" font-size="12">',
        f"<title>{e(title)}</title>",
    ]
    # stages behind everything, alternate ones shaded
    for i, band in enumerate(bands):
        x0, x1 = x_of(band.start_s), x_of(band.end_s)
        fill = _TONES.get(band.tone, _BAND_FILLS[i % 2])
        out.append(
            f'<rect class="band" x="{_num(x0)}" y="{top}" width="{_num(max(x1 - x0, 0.5))}" '
            f'height="{plot_h}" fill="{fill}"><title>{e(band.note)}</title></rect>'
        )
        if i:
            out.append(
                f'<line x1="{_num(x0)}" y1="{top}" x2="{_num(x0)}" y2="{top + plot_h}" '
                f'stroke="#cbd5e0"/>'
            )
        label = next(
            (x for x in (band.label, band.short) if x1 - x0 >= len(x) * _CHAR_W * 0.92 + 6), ""
        )
        if label:
            out.append(
                f'<text x="{_num((x0 + x1) / 2)}" y="{top + 12}" font-size="11" '
                f'text-anchor="middle" fill="{_MUTED}">{e(label)}</text>'
            )
    # y grid and labels
    for tick in ticks:
        y = y_of(tick)
        out.append(
            f'<line x1="{left}" y1="{_num(y)}" x2="{width - right}" y2="{_num(y)}" '
            f'stroke="{_GRID}"/>'
        )
        out.append(
            f'<text x="{left - 6}" y="{_num(y + 4)}" text-anchor="end" fill="{_MUTED}">'
            f"{e(compact(tick))}</text>"
        )
    out.append(
        f'<text x="12" y="{_num(top + plot_h / 2)}" text-anchor="middle" fill="{_MUTED}" '
        f'transform="rotate(-90 12 {_num(top + plot_h / 2)})">{e(unit)}</text>'
    )
    # x axis, ticks and labels
    base = top + plot_h
    for tick in time_ticks(duration_s):
        x = x_of(tick)
        out.append(
            f'<line x1="{_num(x)}" y1="{base}" x2="{_num(x)}" y2="{base + 4}" stroke="{_AXIS}"/>'
        )
        out.append(
            f'<text x="{_num(x)}" y="{base + 16}" text-anchor="middle" fill="{_MUTED}">'
            f"{e(clock(tick))}</text>"
        )
    out.append(
        f'<line x1="{left}" y1="{base}" x2="{width - right}" y2="{base}" stroke="{_AXIS}"/>'
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{base}" stroke="{_AXIS}"/>'
    )
    out.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 4}" text-anchor="middle" '
        f'fill="{_MUTED}">time since start (m:ss)</text>'
    )
    # the data
    bar_series = [s for s in series if s.kind == BAR]
    for s in series:
        if s.kind == BAR:
            out += _bars(s, bar_series.index(s), len(bar_series), x_of, y_of)
        else:
            out += _lines(s, x_of, y_of)
    for limit in shown_limits:
        x0, x1, ly = x_of(0.0), x_of(duration_s), y_of(limit.value)
        out.append(
            f'<line class="limit" x1="{_num(x0)}" y1="{_num(ly)}" x2="{_num(x1)}" y2="{_num(ly)}" '
            f'stroke="{limit.colour}" stroke-width="1.5" stroke-dasharray="6 4">'
            f"<title>{e(limit.label)}</title></line>"
        )
        if limit.mark is not None:
            m0, m1 = x_of(limit.mark[0]), x_of(limit.mark[1])
            out.append(
                f'<line class="window" x1="{_num(m0)}" y1="{_num(ly)}" '
                f'x2="{_num(max(m1, m0 + 2))}" y2="{_num(ly)}" stroke="{limit.colour}" '
                f'stroke-width="4" stroke-linecap="round">'
                f"<title>{e(limit.mark_note)}</title></line>"
            )
        out.append(
            f'<text x="{_num(x1 - 4)}" y="{_num(ly - 5)}" text-anchor="end" '
            f'font-size="11" fill="{limit.colour}" stroke="#fff" stroke-width="3" '
            f'paint-order="stroke">{e(limit.label)}</text>'
        )
    if not values:
        out.append(
            f'<text x="{left + plot_w / 2:.1f}" y="{top + plot_h / 2:.1f}" '
            f'text-anchor="middle" fill="{_MUTED}">no data</text>'
        )
    out += _hover(series, unit, x_of, top, plot_h)
    out += _legend(series, hidden_limits, width - right, top)
    out.append("</svg>")
    return "".join(out)


def _lines(s: Series, x_of: _Scale, y_of: _Scale) -> list[str]:
    """A polyline per unbroken run of values (a missing value breaks the line)."""
    runs: list[list[str]] = [[]]
    for start, end, value in s.points:
        if value is None:
            runs.append([])
            continue
        y = _num(y_of(value))
        if s.kind == STEP:
            runs[-1] += [f"{_num(x_of(start))},{y}", f"{_num(x_of(end))},{y}"]
        else:
            runs[-1].append(f"{_num(x_of((start + end) / 2))},{y}")
    dash = ' stroke-dasharray="5 4"' if s.dashed else ""
    out = []
    for run in runs:
        if len(run) == 1:  # a lone value: a dot, or it would not show
            x, y = run[0].split(",")
            out.append(f'<circle cx="{x}" cy="{y}" r="2.5" fill="{s.colour}"/>')
        elif run:
            out.append(
                f'<polyline class="series" points="{" ".join(run)}" fill="none" '
                f'stroke="{s.colour}" stroke-width="2" stroke-linejoin="round"{dash}/>'
            )
    return out


def _bars(s: Series, slot: int, slots: int, x_of: _Scale, y_of: _Scale) -> list[str]:
    out = []
    for start, end, value in s.points:
        if not value:
            continue
        x0, x1 = x_of(start), x_of(end)
        w = max((x1 - x0) * 0.8 / slots, 1.0)
        x = x0 + (x1 - x0) * 0.1 + slot * w
        y = y_of(value)
        out.append(
            f'<rect class="series" x="{_num(x)}" y="{_num(y)}" width="{_num(w)}" '
            f'height="{_num(max(y_of(0.0) - y, 1.0))}" fill="{s.colour}"/>'
        )
    return out


def _hover(
    series: Sequence[Series], unit: str, x_of: _Scale, top: float, plot_h: float
) -> list[str]:
    """A see-through strip per interval whose tooltip lists every series' value there."""
    notes: dict[tuple[float, float], list[str]] = {}
    for s in series:
        for start, end, value in s.points:
            shown = "–" if value is None else _shown(value, unit)
            notes.setdefault((start, end), []).append(f"{s.label}: {shown}")
    out = []
    for (start, end), lines in notes.items():
        x0, x1 = x_of(start), x_of(end)
        if x1 - x0 <= 0:
            continue
        text = html.escape(f"{clock(start)}–{clock(end)}\n" + "\n".join(lines))
        out.append(
            f'<rect x="{_num(x0)}" y="{top}" width="{_num(x1 - x0)}" height="{plot_h}" '
            f'fill="transparent"><title>{text}</title></rect>'
        )
    return out


def _legend(series: Sequence[Series], hidden: Sequence[Limit], right: float, y: float) -> list[str]:
    """Legend entries right-aligned above the plot: a swatch and the label of each series,
    then any limit too high to draw."""
    items = [(s.label, s.colour, s.kind == BAR, s.dashed) for s in series]
    items += [(f"{x.label} (above the chart)", x.colour, False, True) for x in hidden]
    out, x = [], right
    for label, colour, block, dashed in reversed(items):
        x -= len(label) * _CHAR_W
        out.append(
            f'<text x="{_num(x)}" y="{_num(y - 10)}" fill="{_TEXT}">{html.escape(label)}</text>'
        )
        x -= 20
        if block:
            out.append(
                f'<rect x="{_num(x + 2)}" y="{_num(y - 20)}" width="12" height="12" '
                f'fill="{colour}"/>'
            )
        else:
            dash = ' stroke-dasharray="4 3"' if dashed else ""
            out.append(
                f'<line x1="{_num(x)}" y1="{_num(y - 14)}" x2="{_num(x + 16)}" '
                f'y2="{_num(y - 14)}" stroke="{colour}" stroke-width="2.5"{dash}/>'
            )
        x -= 14
    return out


def sparkline(values: Sequence[float | None], colour: str, label: str) -> str:
    """A small line of ``values`` (gaps where None), 0 at the bottom, for a table cell."""
    width, height, pad = 120, 26, 2
    known = [v for v in values if v is not None]
    if len(values) < 2 or not known:
        return ""
    peak = max(known) or 1.0
    step = (width - 2 * pad) / (len(values) - 1)
    runs: list[list[str]] = [[]]
    for i, v in enumerate(values):
        if v is None:
            runs.append([])
            continue
        runs[-1].append(
            f"{_num(pad + i * step)},{_num(height - pad - v / peak * (height - 2 * pad))}"
        )
    lines = "".join(
        f'<polyline points="{" ".join(r)}" fill="none" stroke="{colour}" stroke-width="1.5"/>'
        for r in runs
        if len(r) > 1
    )
    return (
        f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{html.escape(label)}"><title>{html.escape(label)}</title>'
        f"{lines}</svg>"
    )
