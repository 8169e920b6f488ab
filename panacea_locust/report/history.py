"""How a history reads: a terminal table and ``history.html``, self-contained (inline CSS and
SVG, no script, nothing from the network; a Content-Security-Policy forbids any load), with one
chart per metric over the runs.

The judging is ``verdict.history``'s; this module only lays it out. The page's layout is the
Jinja2 template ``templates/history.html.j2`` (autoescaped); the charts are drawn here, on a
run axis rather than ``report.svg``'s time axis, with its tick and label helpers. Each label
(scenario) is its own line, so a smoke run is never joined to a load run; a run whose total
regressed on that metric against the previous run of its label is a red dot.
Pure: no Locust, no gevent.
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from markupsafe import Markup

from panacea_locust import __version__
from panacea_locust.report.format import number
from panacea_locust.report.html import template
from panacea_locust.report.svg import compact, nice_ticks
from panacea_locust.verdict.compare import (
    DEFAULT_NOISE_FLOOR_MS,
    DEFAULT_TOLERANCE,
    FAILURE_RATIO_EPSILON,
)
from panacea_locust.verdict.history import METRICS, Entry, History, metric_series

#: metric -> (chart title, unit, factor from the summary's value to the unit)
_CHARTS: dict[str, tuple[str, str, float]] = {
    "rps": ("Throughput", "requests/s", 1.0),
    "p95_ms": ("p95 latency of answered requests", "ms", 1.0),
    "p99_ms": ("p99 latency of answered requests", "ms", 1.0),
    "failure_ratio": ("Failure ratio", "%", 100.0),
}
_PALETTE = ("#2b6cb0", "#6b46c1", "#2f855a", "#c05621", "#4a5568", "#b83280", "#0987a0")
_BAD, _MUTED, _GRID, _AXIS, _TEXT = "#c53030", "#718096", "#e2e8f0", "#718096", "#1a202c"
_CHAR_W = 6.6  # average width of a 12 px sans-serif character, for laying out labels
_VERDICT_CSS = {"PASS": "pass", "FAIL": "fail", "INCONCLUSIVE": "insufficient", "NONE": "none"}
_VERDICT_TEXT = {"NONE": "not judged"}
#: what a regression is, as compare's defaults say it
_RULE = (
    f"p95/p99 up by more than {DEFAULT_TOLERANCE:.0%} and {DEFAULT_NOISE_FLOOR_MS:g} ms, or the "
    f"failure ratio up by more than {FAILURE_RATIO_EPSILON * 100:g} point"
)


# --- figures as people read them ------------------------------------------------------------


def _figure(metric: str, value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2%}" if metric == "failure_ratio" else number(value)


def _verdict(outcome: str) -> str:
    return _VERDICT_TEXT.get(outcome, outcome)


def _dash(value: str | None) -> str:
    return "-" if value is None else value


def _started(entry: Entry) -> str:
    started = entry.run.started
    return "-" if started is None else started.strftime("%Y-%m-%d %H:%M")


def _title(history: History) -> str:
    parts = [f"{len(history.entries)} run{'s' * (len(history.entries) != 1)}"]
    if history.label is not None:
        parts.append(f"label {history.label}")
    if history.last is not None:
        parts.append(f"the last {history.last}")
    return f"History of {history.results_dir} ({', '.join(parts)}; oldest first)"


def _regression_lines(history: History) -> list[str]:
    out = []
    for entry, scope, reason in history.regressions:
        previous = entry.previous.id if entry.previous is not None else "?"
        out.append(f"{entry.run.id} vs {previous}: {scope}: {reason}")
    return out


# --- the terminal -----------------------------------------------------------------------------


_COLUMNS = ("#", "run", "version", "load", "rps", "p95 ms", "p99 ms", "failures", "verdict")


def _row(index: int, entry: Entry) -> list[str]:
    run = entry.run
    return [
        str(index),
        run.id,
        _dash(run.target_version),
        run.load,
        *(_figure(m, run.metric(m)) for m in METRICS),
        _verdict(run.verdict),
        entry.change,
    ]


def render_text(history: History) -> str:
    """One line per run (``#``, id, target version, load, rps, p95, p99, failure ratio,
    verdict, the change against the previous run of its label), then each regression."""
    head = [*_COLUMNS, "vs previous"]
    rows = [head] + [_row(i, e) for i, e in enumerate(history.entries, start=1)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    numeric = {0, 4, 5, 6, 7}
    lines = [_title(history)]
    for row in rows:
        cells = [
            c.rjust(w) if i in numeric else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    lines += [f"  ! {line}" for line in _regression_lines(history)]
    n = len(history.regressions)
    flagged = sum(1 for e in history.entries if e.regressions)
    lines.append(
        f"History: {n} regression{'s' * (n != 1)} flagged in {flagged} run{'s' * (flagged != 1)}"
        if n
        else "History: no regression between consecutive runs"
    )
    return "\n".join(lines)


# --- charts over the runs ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Point:
    slot: int
    value: float | None
    regressed: bool
    note: str


def _num(value: float) -> str:
    return f"{value:.1f}"


def run_chart(
    title: str,
    unit: str,
    series: Mapping[str, Sequence[_Point]],
    slots: int,
    *,
    width: int = 640,
    height: int = 250,
) -> str:
    """A chart of one value per run: runs evenly along x (numbered as the table numbers
    them), one line per series (label), y from 0 with ticks; a regressed run a red dot."""
    e = html.escape
    left, right, top, bottom = 52, 14, 30, 38
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [p.value for points in series.values() for p in points if p.value is not None]
    ticks = nice_ticks(max(values, default=0.0) * 1.05)
    y_top = ticks[-1]
    slot_w = plot_w / max(slots, 1)

    def x_of(slot: int) -> float:
        return left + (slot + 0.5) * slot_w

    def y_of(value: float) -> float:
        return top + plot_h - value / y_top * plot_h

    out = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{e(title)}" font-family="inherit" font-size="12">',
        f"<title>{e(title)}</title>",
    ]
    for tick in ticks:
        y = y_of(tick)
        out.append(
            f'<line x1="{left}" y1="{_num(y)}" x2="{width - right}" y2="{_num(y)}" '
            f'stroke="{_GRID}"/><text x="{left - 6}" y="{_num(y + 4)}" text-anchor="end" '
            f'fill="{_MUTED}">{e(compact(tick))}</text>'
        )
    middle = _num(top + plot_h / 2)
    out.append(
        f'<text x="12" y="{middle}" text-anchor="middle" fill="{_MUTED}" '
        f'transform="rotate(-90 12 {middle})">{e(unit)}</text>'
    )
    base = top + plot_h
    every = max(1, math.ceil(slots * 24 / plot_w))  # a label per 24 px at most
    for slot in range(0, slots, every):
        at = _num(x_of(slot))
        out.append(
            f'<line x1="{at}" y1="{base}" x2="{at}" y2="{base + 4}" stroke="{_AXIS}"/>'
            f'<text x="{at}" y="{base + 16}" text-anchor="middle" fill="{_MUTED}">{slot + 1}</text>'
        )
    out.append(
        f'<line x1="{left}" y1="{base}" x2="{width - right}" y2="{base}" stroke="{_AXIS}"/>'
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{base}" stroke="{_AXIS}"/>'
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 4}" text-anchor="middle" '
        f'fill="{_MUTED}">run (# in the table, oldest first)</text>'
    )
    colours = {name: _PALETTE[i % len(_PALETTE)] for i, name in enumerate(series)}
    for name, points in series.items():
        colour = colours[name]
        runs: list[list[str]] = [[]]
        for p in points:
            if p.value is None:
                runs.append([])
            else:
                runs[-1].append(f"{_num(x_of(p.slot))},{_num(y_of(p.value))}")
        out += [
            f'<polyline class="series" points="{" ".join(run)}" fill="none" '
            f'stroke="{colour}" stroke-width="2" stroke-linejoin="round"/>'
            for run in runs
            if len(run) > 1
        ]
        for p in points:
            if p.value is None:
                continue
            fill, r = (_BAD, 5) if p.regressed else (colour, 3.5)
            css = "point regressed" if p.regressed else "point"
            out.append(
                f'<circle class="{css}" cx="{_num(x_of(p.slot))}" cy="{_num(y_of(p.value))}" '
                f'r="{r}" fill="{fill}"><title>{e(p.note)}</title></circle>'
            )
    if not values:
        out.append(
            f'<text x="{left + plot_w / 2:.1f}" y="{top + plot_h / 2:.1f}" '
            f'text-anchor="middle" fill="{_MUTED}">no data</text>'
        )
    x = float(width - right)
    for name in reversed(list(series)):  # the legend, right-aligned above the plot
        x -= len(name) * _CHAR_W
        out.append(f'<text x="{_num(x)}" y="{top - 10}" fill="{_TEXT}">{e(name)}</text>')
        x -= 20
        out.append(
            f'<line x1="{_num(x)}" y1="{top - 14}" x2="{_num(x + 16)}" y2="{top - 14}" '
            f'stroke="{colours[name]}" stroke-width="2.5"/>'
        )
        x -= 14
    out.append("</svg>")
    return "".join(out)


def _chart(history: History, metric: str) -> dict[str, Any]:
    title, unit, factor = _CHARTS[metric]
    series: dict[str, list[_Point]] = {}
    for slot, (entry, value) in enumerate(metric_series(history, metric)):
        regressed = metric in entry.regressed_metrics
        note = f"#{slot + 1} {entry.run.id}: {_figure(metric, value)}"
        if metric != "failure_ratio" and value is not None:
            note += f" {unit}"
        if regressed:
            previous = entry.previous.id if entry.previous is not None else "?"
            reasons = [r for s, r in entry.regressions if s == "total" and r.startswith(metric)]
            note += f"\nregression vs {previous}: " + "; ".join(reasons)
        shown = None if value is None else value * factor
        series.setdefault(entry.run.label, []).append(_Point(slot, shown, regressed, note))
    svg = run_chart(f"{title} ({unit}) per run", unit, series, len(history.entries))
    return {"title": f"{title} ({unit})", "svg": Markup(svg)}


# --- the page ---------------------------------------------------------------------------------


def _view(history: History) -> dict[str, Any]:
    rows = []
    for index, entry in enumerate(history.entries, start=1):
        run = entry.run
        rows.append(
            {
                "index": index,
                "id": run.id,
                "started": _started(entry),
                "label": run.label,
                "version": _dash(run.target_version),
                "description": _dash(run.description),
                "commit": _dash(run.git_commit[:12] if run.git_commit else None),
                "commit_full": run.git_commit or "",
                "load": run.load,
                "figures": [_figure(m, run.metric(m)) for m in METRICS],
                "verdict": _verdict(run.verdict),
                "verdict_css": _VERDICT_CSS.get(run.verdict, "none"),
                "change": entry.change,
                "change_css": "fail"
                if entry.regressions and not (entry.comparison and entry.comparison.inconclusive)
                else ("insufficient" if entry.regressions else "none"),
                "previous": entry.previous.id if entry.previous is not None else "",
            }
        )
    return {
        "title": _title(history),
        "rows": rows,
        "regressions": _regression_lines(history),
        "rule": _RULE,
        "notes": list(history.notes),
        "charts": [_chart(history, m) for m in METRICS] if history.entries else [],
        "version": __version__,
    }


def render_html(history: History) -> str:
    """``history.html``'s text: the runs' table, the regressions, the notes, the charts."""
    return template("history.html.j2").render(**_view(history))


def write_history_html(path: Path, history: History) -> Path:
    """Write the page atomically (a reader never sees half a file); returns ``path``."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(render_html(history), encoding="utf-8")
    os.replace(tmp, path)
    return path
