"""How a comparison reads: a terminal table, ``compare.md`` and a self-contained ``compare.html``"""

from __future__ import annotations

import html

from panacea_locust.verdict.compare import (
    CHART_METRICS,
    FAILURE_RATIO_EPSILON,
    METRICS,
    Comparison,
    MetricDelta,
    ScopeComparison,
)

_LABELS = {
    "p50_ms": "p50",
    "p95_ms": "p95",
    "p99_ms": "p99",
    "rps": "RPS",
    "failure_ratio": "failures",
}


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
        text = f"{d.delta * 100:+.2f} pt"
    elif d.delta_pct is None:
        text = f"{d.delta:+.1f}"
    else:
        text = f"{d.delta_pct:+.1f}%"
    return f"{text} (not judged)" if d.unjudged else text


def _unjudged(comparison: Comparison) -> list[str]:
    """``scope p99: not judged: too few samples (...)`` for every value left unjudged."""
    return [
        f"{s.scope} {_LABELS[m]}: {d.unjudged}"
        for s in comparison.scopes
        for m, d in s.metrics.items()
        if d.unjudged
    ]


def _mix_lines(comparison: Comparison) -> list[str]:
    """The total as judged: the current run re-weighted to the baseline's endpoint mix."""
    out = []
    for s in comparison.scopes:
        if s.on_baseline_mix is None:
            continue
        parts = [
            f"{_LABELS[m]} {_fmt(m, d.base)} -> {_fmt(m, d.cur)} ms ({_fmt_delta(d)})"
            for m, d in s.on_baseline_mix.items()
        ]
        out.append(f"{s.scope} on the baseline's endpoint mix: " + ", ".join(parts))
    return out


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
    if comparison.inconclusive:
        return (
            f"INCONCLUSIVE: {n} flagged on latency, measured by a load generator that its own "
            "run distrusts (see the notes)"
        )
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
    lines += [f"  {line}" for line in _mix_lines(comparison)]
    for scope, reason in comparison.regressions:
        lines.append(f"  ! {scope}: {reason}")
    lines += [f"  ? {line}" for line in _unjudged(comparison)]
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
    if _mix_lines(comparison):
        lines += [f"- {_md(line)}" for line in _mix_lines(comparison)] + [""]
    if _unjudged(comparison):
        lines += ["## Not judged", ""]
        lines += [f"- {_md(line)}" for line in _unjudged(comparison)] + [""]
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
                f"{'**regression**' if m in flagged else _md(d.unjudged or '')} |"
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
    out += [f'<p class="meta">{e(line)}</p>' for line in _mix_lines(comparison)]
    if _unjudged(comparison):
        out.append(
            '<h2>Not judged</h2><ul class="small">'
            + "".join(f"<li>{e(line)}</li>" for line in _unjudged(comparison))
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
            if d.unjudged:
                mark = f' class="num small" title="{e(d.unjudged)}"'
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
