"""``panacea-locust compare BASELINE_DIR CURRENT_DIR``: two runs side by side, regressions flagged.

A regression is, per endpoint and in total:
- p95 or p99 grew by more than the tolerance (relative, default 10 %) AND by more than the
  noise floor (absolute, default 5 ms): fast endpoints jitter by a few ms, which is no news;
  A percentile is judged only where both runs put at least ``--min-tail-samples`` (default 5)
  requests beyond it (p95 needs 100 requests, p99 500): a p99 of 40 samples is their
  maximum, and a maximum is noise, not a regression;
- or the failure ratio grew by more than ``FAILURE_RATIO_EPSILON`` (0.001 = 0.1 percentage
  point, absolute): any real new failure mode shows up, rounding noise does not.
p50 and RPS are shown for context but never flagged (RPS depends on the user count).
Endpoints present in only one run are listed as added or removed, never flagged.

Exit codes: 0 no regression, 1 regressions flagged, 2 bad input (one line on stderr).
Writes ``compare.md`` and ``compare.html`` (self-contained, inline SVG charts) into ``--out``
(default: CURRENT_DIR).
"""

from __future__ import annotations

import argparse
import html
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from panacea_locust.results import load_generator_warnings

EXIT_OK = 0
EXIT_REGRESSION = 1
EXIT_BAD_INPUT = 2

TOTAL_SCOPE = "total"
METRICS: tuple[str, ...] = ("p50_ms", "p95_ms", "p99_ms", "rps", "failure_ratio")
GUARDED_LATENCIES: tuple[str, ...] = ("p95_ms", "p99_ms")
CHART_METRICS: tuple[str, ...] = ("p50_ms", "p95_ms", "p99_ms")
DEFAULT_TOLERANCE = 0.10
DEFAULT_NOISE_FLOOR_MS = 5.0
DEFAULT_MIN_TAIL_SAMPLES = 5
_QUANTILE = {"p95_ms": 0.95, "p99_ms": 0.99}
FAILURE_RATIO_EPSILON = 0.001

_LABELS = {
    "p50_ms": "p50",
    "p95_ms": "p95",
    "p99_ms": "p99",
    "rps": "RPS",
    "failure_ratio": "failures",
}


class CompareInputError(ValueError):
    """Unusable input (missing folder or summary.json, bad JSON, bad option); one line."""


@dataclass(frozen=True)
class MetricDelta:
    metric: str
    base: float | None
    cur: float | None

    @property
    def delta(self) -> float | None:
        if self.base is None or self.cur is None:
            return None
        return self.cur - self.base

    @property
    def delta_pct(self) -> float | None:
        """Relative change in percent; None when the baseline is 0 or missing."""
        if self.delta is None or not self.base:
            return None
        return self.delta / self.base * 100.0


@dataclass
class ScopeComparison:
    """One endpoint (or ``total``): ``status`` is "compared", "added" or "removed"."""

    scope: str
    status: str
    metrics: dict[str, MetricDelta]
    regressions: list[str] = field(default_factory=list)

    @property
    def regressed(self) -> bool:
        return bool(self.regressions)

    def regressed_metrics(self) -> set[str]:
        return {reason.split(" ", 1)[0] for reason in self.regressions}


@dataclass
class Comparison:
    baseline: str
    current: str
    tolerance: float
    noise_floor_ms: float
    scopes: list[ScopeComparison]
    #: why either run's latencies may be doubtful (its load generator's warnings)
    notes: list[str] = field(default_factory=list)

    @property
    def flagged(self) -> bool:
        return any(scope.regressed for scope in self.scopes)

    @property
    def regressions(self) -> list[tuple[str, str]]:
        """(scope, reason) for every flagged metric."""
        return [(s.scope, reason) for s in self.scopes for reason in s.regressions]

    def to_dict(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline,
            "current": self.current,
            "tolerance": self.tolerance,
            "noise_floor_ms": self.noise_floor_ms,
            "flagged": self.flagged,
            "notes": self.notes,
            "scopes": [
                {
                    "scope": s.scope,
                    "status": s.status,
                    "regressions": s.regressions,
                    "metrics": {
                        m: {
                            "baseline": d.base,
                            "current": d.cur,
                            "delta": d.delta,
                            "delta_pct": d.delta_pct,
                        }
                        for m, d in s.metrics.items()
                    },
                }
                for s in self.scopes
            ],
        }


# --- the comparison (pure) -----------------------------------------------------------------


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _has_requests(stats: Any) -> bool:
    return isinstance(stats, Mapping) and (_number(stats.get("requests")) or 0) > 0


def _failure_ratio(stats: Mapping[str, Any]) -> float | None:
    ratio = _number(stats.get("failure_ratio"))
    if ratio is None:
        failures, requests = _number(stats.get("failures")), _number(stats.get("requests"))
        if failures is not None and requests:
            ratio = failures / requests
    return ratio


def _metric(stats: Mapping[str, Any] | None, metric: str) -> float | None:
    if not _has_requests(stats):
        return None
    assert stats is not None
    return _failure_ratio(stats) if metric == "failure_ratio" else _number(stats.get(metric))


def enough_tail(requests: float | None, metric: str, min_tail_samples: int) -> bool:
    """Whether ``requests`` put at least ``min_tail_samples`` beyond ``metric``'s percentile."""
    if requests is None:
        return False
    return requests * (1.0 - _QUANTILE[metric]) + 1e-9 >= min_tail_samples


def _regressions(
    metrics: Mapping[str, MetricDelta],
    tolerance: float,
    noise_floor_ms: float,
    requests: tuple[float | None, float | None] = (None, None),
    min_tail_samples: int = 0,
) -> list[str]:
    reasons = []
    for name in GUARDED_LATENCIES:
        d = metrics[name]
        if d.base is None or d.cur is None or d.delta is None:
            continue
        if min_tail_samples and not all(enough_tail(n, name, min_tail_samples) for n in requests):
            continue
        if d.cur > d.base * (1.0 + tolerance) and d.delta > noise_floor_ms:
            pct = f"{d.delta_pct:+.1f}%, " if d.delta_pct is not None else ""
            reasons.append(f"{name} {d.base:.1f} -> {d.cur:.1f} ms ({pct}{d.delta:+.1f} ms)")
    fr = metrics["failure_ratio"]
    if fr.delta is not None and fr.delta > FAILURE_RATIO_EPSILON:
        assert fr.base is not None and fr.cur is not None
        reasons.append(
            f"failure_ratio {fr.base:.2%} -> {fr.cur:.2%} ({fr.delta * 100:+.2f} points)"
        )
    return reasons


def compare_summaries(
    base: Mapping[str, Any],
    cur: Mapping[str, Any],
    tolerance: float,
    noise_floor_ms: float,
    min_tail_samples: int = DEFAULT_MIN_TAIL_SAMPLES,
) -> Comparison:
    """Compare two results-contract summaries; ``tolerance`` is a fraction (0.10 = 10 %).

    ``min_tail_samples`` = 0 judges every percentile whatever the sample count.
    """
    for which, summary in (("baseline", base), ("current", cur)):
        if not isinstance(summary.get("total"), Mapping):
            raise CompareInputError(f"the {which} summary has no 'total' section")
        if not isinstance(summary.get("endpoints") or {}, Mapping):
            raise CompareInputError(f"the {which} summary's 'endpoints' is not an object")
    base_eps = base.get("endpoints") or {}
    cur_eps = cur.get("endpoints") or {}
    names = sorted(
        n
        for n in {*base_eps, *cur_eps}
        if _has_requests(base_eps.get(n)) or _has_requests(cur_eps.get(n))
    )
    scopes = []
    for name in [TOTAL_SCOPE, *names]:
        b = base["total"] if name == TOTAL_SCOPE else base_eps.get(name)
        c = cur["total"] if name == TOTAL_SCOPE else cur_eps.get(name)
        metrics = {m: MetricDelta(m, _metric(b, m), _metric(c, m)) for m in METRICS}
        if name == TOTAL_SCOPE or (_has_requests(b) and _has_requests(c)):
            status = "compared"
            counts = (_number((b or {}).get("requests")), _number((c or {}).get("requests")))
            reasons = _regressions(metrics, tolerance, noise_floor_ms, counts, min_tail_samples)
        else:
            status, reasons = ("removed" if _has_requests(b) else "added"), []
        scopes.append(ScopeComparison(name, status, metrics, reasons))
    return Comparison(
        baseline=_run_title(base),
        current=_run_title(cur),
        tolerance=tolerance,
        noise_floor_ms=noise_floor_ms,
        scopes=scopes,
        notes=[
            f"{which}: load generator: {w}"
            for which, summary in (("baseline", base), ("current", cur))
            for w in load_generator_warnings(summary)
        ],
    )


def _run_title(summary: Mapping[str, Any]) -> str:
    run = summary.get("run") if isinstance(summary.get("run"), Mapping) else {}
    assert isinstance(run, Mapping)
    parts = [str(run[k]) for k in ("id", "label") if run.get(k)]
    if run.get("started_at"):
        parts.append(f"started {run['started_at']}")
    return ", ".join(dict.fromkeys(parts)) or "unnamed run"


# --- formatting ----------------------------------------------------------------------------


def _fmt(metric: str, value: float | None) -> str:
    if value is None:
        return "-"
    if metric == "failure_ratio":
        return f"{value:.2%}"
    if metric == "rps":
        return f"{value:.2f}"
    return f"{value:.1f}"


def _fmt_delta(d: MetricDelta) -> str:
    if d.delta is None:
        return "-"
    if d.metric == "failure_ratio":
        return f"{d.delta * 100:+.2f} pt"
    if d.delta_pct is None:
        return f"{d.delta:+.1f}"
    return f"{d.delta_pct:+.1f}%"


def _result(scope: ScopeComparison) -> str:
    if scope.status != "compared":
        return scope.status
    return "REGRESSION" if scope.regressed else "ok"


def _header(comparison: Comparison) -> list[str]:
    return [
        f"baseline: {comparison.baseline}",
        f"current:  {comparison.current}",
        f"regression: p95/p99 growth > {comparison.tolerance:.0%} and > "
        f"{comparison.noise_floor_ms:g} ms, or failure ratio growth > "
        f"{FAILURE_RATIO_EPSILON * 100:g} points",
        *(f"note, {n}" for n in comparison.notes),
    ]


def _verdict(comparison: Comparison) -> str:
    n = len(comparison.regressions)
    return f"REGRESSION: {n} flagged" if n else "no regression"


def render_text(comparison: Comparison) -> str:
    """Terminal report, about 90 columns: per scope a title line, the baseline row and the
    current row with each change; flagged cells end in '!'."""
    head = ["", *(_LABELS[m] + (" ms" if m.endswith("_ms") else "") for m in METRICS)]
    blocks: list[tuple[str, list[list[str]]]] = []
    for s in comparison.scopes:
        flagged = s.regressed_metrics()
        base_row = ["  baseline", *(_fmt(m, s.metrics[m].base) + "  " for m in METRICS)]
        cur_row = ["  current"]
        for m in METRICS:
            d = s.metrics[m]
            cell = _fmt(m, d.cur) + (f" ({_fmt_delta(d)})" if d.delta is not None else "")
            cur_row.append(cell + (" !" if m in flagged else "  "))
        blocks.append((f"{s.scope}  [{_result(s)}]", [base_row, cur_row]))
    rows = [head] + [row for _, pair in blocks for row in pair]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]

    def line(row: list[str]) -> str:
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        return "  ".join(cells).rstrip()

    lines = _header(comparison) + ["", line(head)]
    for title, pair in blocks:
        lines += [title, *(line(row) for row in pair)]
    lines.append("")
    for scope, reason in comparison.regressions:
        lines.append(f"  ! {scope}: {reason}")
    lines.append(f"Verdict: {_verdict(comparison)}")
    return "\n".join(lines)


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def render_md(comparison: Comparison) -> str:
    """compare.md: verdict, regressions, a summary per scope, then every metric side by side."""
    lines = ["# Run comparison", ""]
    lines += [f"- {_md(line)}" for line in _header(comparison)]
    lines += ["", f"**Verdict: {_verdict(comparison)}**", ""]
    if comparison.regressions:
        lines += ["## Regressions", ""]
        lines += [f"- `{_md(scope)}`: {_md(reason)}" for scope, reason in comparison.regressions]
        lines.append("")
    lines += [
        "## Summary",
        "",
        "| Scope | p95 change | p99 change | failure ratio change | Result |",
        "| --- | --- | --- | --- | --- |",
    ]
    for s in comparison.scopes:
        cells = [_fmt_delta(s.metrics[m]) for m in ("p95_ms", "p99_ms", "failure_ratio")]
        result = f"**{_result(s)}**" if s.regressed else _result(s)
        lines.append(f"| `{_md(s.scope)}` | " + " | ".join(cells) + f" | {result} |")
    lines += [
        "",
        "## Side by side",
        "",
        "| Scope | Metric | Baseline | Current | Change | Flag |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for s in comparison.scopes:
        flagged = s.regressed_metrics()
        for i, m in enumerate(METRICS):
            d = s.metrics[m]
            scope = f"`{_md(s.scope)}`" + (f" ({s.status})" if s.status != "compared" else "")
            unit = " ms" if m.endswith("_ms") else ""
            lines.append(
                f"| {scope if i == 0 else ''} | {_LABELS[m]}{unit} | "
                f"{_fmt(m, d.base)} | {_fmt(m, d.cur)} | {_fmt_delta(d)} | "
                f"{'**regression**' if m in flagged else ''} |"
            )
    lines.append("")
    return "\n".join(lines)


# --- HTML with inline SVG charts -----------------------------------------------------------

_BASE_COLOUR = "#9aa5b1"
_CUR_COLOUR = "#2b6cb0"
_BAD_COLOUR = "#c53030"

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#1a202c}
h1{margin-bottom:4px} .meta{color:#4a5568;margin:2px 0}
.verdict{font-size:1.2em;font-weight:bold;padding:8px 12px;border-radius:6px;display:inline-block}
.ok{background:#c6f6d5;color:#22543d} .bad{background:#fed7d7;color:#822727}
table{border-collapse:collapse;margin:12px 0}
th,td{padding:4px 10px;border-bottom:1px solid #e2e8f0}
th{text-align:left;background:#f7fafc} td.num{text-align:right;font-variant-numeric:tabular-nums}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(380px,1fr));gap:16px}
.card{border:1px solid #e2e8f0;border-radius:8px;padding:10px 12px}
.card.regressed{border-color:#c53030;box-shadow:0 0 0 1px #c53030}
.card h3{margin:0 0 6px 0;font-size:0.95em;word-break:break-all}
.small{font-size:0.85em;color:#4a5568} .tag{font-weight:bold;color:#c53030}
.legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}
"""


def _svg_chart(scope: ScopeComparison) -> str:
    """Grouped bars, baseline vs current, for p50/p95/p99 (current in red when flagged)."""
    width, height, left, right, top, bottom = 360, 190, 10, 10, 22, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [
        v
        for m in CHART_METRICS
        for v in (scope.metrics[m].base, scope.metrics[m].cur)
        if v is not None
    ]
    top_value = max(values, default=0.0) or 1.0
    flagged = scope.regressed_metrics()
    group_w = plot_w / len(CHART_METRICS)
    bar_w = min(48.0, group_w / 3)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{html.escape(scope.scope)} latency, baseline vs current">'
    ]
    base_y = top + plot_h
    parts.append(
        f'<line x1="{left}" y1="{base_y}" x2="{width - right}" y2="{base_y}" stroke="#718096"/>'
    )
    for i, m in enumerate(CHART_METRICS):
        d = scope.metrics[m]
        x0 = left + i * group_w + (group_w - 2 * bar_w - 4) / 2
        bars = (
            (d.base, _BASE_COLOUR, "baseline"),
            (d.cur, _BAD_COLOUR if m in flagged else _CUR_COLOUR, "current"),
        )
        for j, (value, colour, who) in enumerate(bars):
            x = x0 + j * (bar_w + 4)
            if value is None:
                parts.append(
                    f'<text x="{x + bar_w / 2:.1f}" y="{base_y - 4}" font-size="11" '
                    f'text-anchor="middle" fill="#718096">n/a</text>'
                )
                continue
            h = max(value / top_value * plot_h, 1.0)
            parts.append(
                f'<rect x="{x:.1f}" y="{base_y - h:.1f}" width="{bar_w:.1f}" '
                f'height="{h:.1f}" fill="{colour}"><title>{who} {_LABELS[m]}: '
                f"{value:.1f} ms</title></rect>"
            )
            shown = f"{value:.0f}" if value >= 100 else f"{value:.1f}"
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{base_y - h - 4:.1f}" '
                f'font-size="11" text-anchor="middle">{shown}</text>'
            )
        label = _LABELS[m] + (f" {_fmt_delta(d)}" if d.delta is not None else "")
        weight = ' font-weight="bold" fill="#c53030"' if m in flagged else ""
        parts.append(
            f'<text x="{left + (i + 0.5) * group_w:.1f}" y="{height - 9}" '
            f'font-size="12" text-anchor="middle"{weight}>{html.escape(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def render_html(comparison: Comparison) -> str:
    """compare.html: verdict, summary table and one chart per endpoint; no scripts, no network."""
    e = html.escape
    ok = not comparison.flagged
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>panacea-locust run comparison</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Run comparison</h1>",
    ]
    out += [f'<p class="meta">{e(line)}</p>' for line in _header(comparison)]
    out.append(f'<p class="verdict {"ok" if ok else "bad"}">{e(_verdict(comparison))}</p>')
    if comparison.regressions:
        out.append(
            "<ul>"
            + "".join(f"<li><code>{e(s)}</code>: {e(r)}</li>" for s, r in comparison.regressions)
            + "</ul>"
        )
    out.append(
        "<table><tr><th>Scope</th>"
        + "".join(
            f"<th>{e(_LABELS[m])} baseline</th><th>{e(_LABELS[m])} current</th><th>change</th>"
            for m in METRICS
        )
        + "<th>Result</th></tr>"
    )
    for s in comparison.scopes:
        flagged = s.regressed_metrics()
        row = [f"<td><code>{e(s.scope)}</code></td>"]
        for m in METRICS:
            d = s.metrics[m]
            mark = ' class="num tag"' if m in flagged else ' class="num"'
            row.append(
                f'<td class="num">{e(_fmt(m, d.base))}</td><td{mark}>{e(_fmt(m, d.cur))}'
                f"</td><td{mark}>{e(_fmt_delta(d))}</td>"
            )
        result = f'<span class="tag">{e(_result(s))}</span>' if s.regressed else e(_result(s))
        out.append("<tr>" + "".join(row) + f"<td>{result}</td></tr>")
    out.append("</table>")
    out.append(
        f'<p class="legend small">Latency in ms.<span style="background:{_BASE_COLOUR}">'
        f'</span>baseline<span style="background:{_CUR_COLOUR}"></span>current'
        f'<span style="background:{_BAD_COLOUR}"></span>current, regression</p>'
    )
    out.append('<div class="grid">')
    for s in comparison.scopes:
        note = "" if s.status == "compared" else f' <span class="small">({e(s.status)})</span>'
        extra = (
            f"RPS {e(_fmt('rps', s.metrics['rps'].base))} &rarr; "
            f"{e(_fmt('rps', s.metrics['rps'].cur))} &middot; failures "
            f"{e(_fmt('failure_ratio', s.metrics['failure_ratio'].base))} &rarr; "
            f"{e(_fmt('failure_ratio', s.metrics['failure_ratio'].cur))}"
        )
        out.append(
            f'<div class="card{" regressed" if s.regressed else ""}">'
            f"<h3>{e(s.scope)}{note}</h3>{_svg_chart(s)}"
            f'<div class="small">{extra}</div></div>'
        )
    out.append("</div></body></html>")
    return "\n".join(out) + "\n"


# --- command line --------------------------------------------------------------------------


def parse_tolerance(text: str) -> float:
    """'10%' or '10' -> 0.10 (a bare number is in percent too)."""
    raw = text.strip().rstrip("%").strip()
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise CompareInputError(f"--tolerance {text!r} must be a percentage >= 0, e.g. 10%")
    return value / 100.0


def load_summary(run: str | Path, which: str) -> dict[str, Any]:
    """summary.json of a run folder (or the file itself); ``CompareInputError`` if unusable."""
    path = Path(run)
    if not path.exists():
        raise CompareInputError(f"{which} run folder {str(path)!r} does not exist")
    file = path if path.is_file() else path / "summary.json"
    if not file.is_file():
        raise CompareInputError(f"{which} run folder {str(path)!r} has no summary.json")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise CompareInputError(f"cannot read {file}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise CompareInputError(f"{file} is not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("total"), Mapping):
        raise CompareInputError(f"{file} is not a panacea-locust summary (no 'total' section)")
    return data


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="panacea-locust compare",
        description="Compare two runs' summary.json per endpoint and overall; flag regressions.",
        epilog="Exit codes: 0 no regression, 1 regressions flagged, 2 bad input.",
    )
    parser.add_argument("baseline", metavar="BASELINE_DIR", help="run folder of the baseline")
    parser.add_argument("current", metavar="CURRENT_DIR", help="run folder to judge")
    parser.add_argument(
        "--tolerance", default="10%", help="allowed p95/p99 growth, percent (default 10%%)"
    )
    parser.add_argument(
        "--noise-floor-ms",
        type=float,
        default=DEFAULT_NOISE_FLOOR_MS,
        help="p95/p99 growth below this many ms is never flagged (default 5)",
    )
    parser.add_argument(
        "--min-tail-samples",
        type=int,
        default=DEFAULT_MIN_TAIL_SAMPLES,
        help="judge p95/p99 only where both runs have this many requests "
        "beyond it (default 5: p95 needs 100 requests, p99 500; 0 = always)",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        help="where to write compare.md and compare.html (default CURRENT_DIR)",
    )
    return parser


def main(argv: Sequence[str]) -> int:
    try:
        args = _parser().parse_args(list(argv))
    except SystemExit as exc:  # --help (0) or a usage error (2), already printed by argparse
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_BAD_INPUT
    try:
        tolerance = parse_tolerance(args.tolerance)
        if not math.isfinite(args.noise_floor_ms) or args.noise_floor_ms < 0:
            raise CompareInputError(f"--noise-floor-ms {args.noise_floor_ms:g} must be >= 0")
        base = load_summary(args.baseline, "baseline")
        cur = load_summary(args.current, "current")
        if args.min_tail_samples < 0:
            raise CompareInputError(f"--min-tail-samples {args.min_tail_samples} must be >= 0")
        comparison = compare_summaries(
            base, cur, tolerance, args.noise_floor_ms, args.min_tail_samples
        )
        comparison.baseline = f"{args.baseline} ({comparison.baseline})"
        comparison.current = f"{args.current} ({comparison.current})"
        current = Path(args.current)
        out = Path(args.out) if args.out else (current if current.is_dir() else current.parent)
        try:
            out.mkdir(parents=True, exist_ok=True)
            (out / "compare.md").write_text(render_md(comparison), encoding="utf-8")
            (out / "compare.html").write_text(render_html(comparison), encoding="utf-8")
        except OSError as exc:
            raise CompareInputError(
                f"cannot write the report into {str(out)!r}: {exc.strerror or exc}"
            ) from None
    except CompareInputError as exc:
        print(f"panacea-locust compare: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(render_text(comparison))
    print(f"Report: {out / 'compare.md'}, {out / 'compare.html'}")
    return EXIT_REGRESSION if comparison.flagged else EXIT_OK


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
