"""``summary.json`` and ``summary.md`` written, and the terminal's table and verdict line."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from panacea_locust.report.format import number as _fmt
from panacea_locust.report.stages import render_stages_md
from panacea_locust.report.thresholds import has_windows, rule_result, window_text
from panacea_locust.verdict.compare import HISTOGRAMS_FILE
from panacea_locust.verdict.decision import decide
from panacea_locust.verdict.health import load_generator_warnings


def write_results(
    run_dir: Path, summary: dict[str, Any], histograms: Mapping[str, str] | None = None
) -> None:
    """Write ``summary.json``, ``summary.md`` and, when given, ``histograms.json`` (each
    endpoint's whole-run histogram, for ``compare`` to judge a total on another run's mix)."""
    _write_atomic(run_dir / "summary.json", json.dumps(summary, indent=2, default=str) + "\n")
    _write_atomic(run_dir / "summary.md", render_markdown(summary))
    if histograms is not None:
        _write_atomic(run_dir / HISTOGRAMS_FILE, json.dumps(dict(histograms)) + "\n")


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


_COLUMNS = (
    ("requests", "reqs"), ("failures", "fails"), ("rps", "rps"), ("p50_ms", "p50"),
    ("p90_ms", "p90"), ("p95_ms", "p95"), ("p99_ms", "p99"), ("max_ms", "max"),
)  # fmt: skip


def _acceptable(block: Mapping[str, Any]) -> str:
    return " ".join(f"{c}:{n}" for c, n in block.get("acceptable", {}).items()) or "-"


def render_table(summary: Mapping[str, Any]) -> str:
    """A fixed-width table for the terminal (times in ms)."""
    rows = [["endpoint", *(title for _, title in _COLUMNS), "4xx ok"]]
    for name, block in summary["endpoints"].items():
        rows.append([name, *(_fmt(block[k]) for k, _ in _COLUMNS), _acceptable(block)])
    total = summary["total"]
    rows.append(["TOTAL", *(_fmt(total[k]) for k, _ in _COLUMNS), _acceptable(total)])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for i, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells))
        if i == 0 or i == len(rows) - 2:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def verdict_line(summary: Mapping[str, Any]) -> str:
    """``VERDICT: PASS|FAIL|INCONCLUSIVE (...)``: the one verdict (``verdict.decision``)."""
    return decide(summary).line


def generator_warnings(summary: Mapping[str, Any]) -> list[str]:
    """``WARNING (load generator): ...`` lines for the terminal and ``summary.md``."""
    return [f"WARNING (load generator): {w}" for w in load_generator_warnings(summary)]


def workload_line(summary: Mapping[str, Any]) -> str | None:
    """``Workload: open model, ...``: the arrivals of an open-model run (None: closed)."""
    w = (summary.get("run") or {}).get("workload") or {}
    if w.get("model") != "open":
        return None
    lag = (
        f"schedule lag p50 {_fmt(w.get('lag_p50_ms'))}, p99 {_fmt(w.get('lag_p99_ms'))} ms"
        if w.get("lag_p99_ms") is not None
        else "no arrival sent"
    )
    return (
        f"Workload: open model, {w.get('arrival_process')} arrivals, target "
        f"{_fmt(w.get('target_rps'))} req/s, achieved {_fmt(w.get('achieved_rps'))}; "
        f"{w.get('scheduled')} due, {w.get('sent')} sent, {w.get('dropped')} dropped "
        f"({(w.get('dropped_ratio') or 0) * 100:.2f} %); {lag}; up to {w.get('users_peak')} "
        f"of {w.get('max_users')} users busy"
    )


def _generator_line(health: Mapping[str, Any]) -> str:
    cpu, steal = health.get("cpu_percent_max"), health.get("steal_percent")
    lag = health.get("loop_lag_p99_ms")
    cpu_text = f"CPU up to {cpu:.0f} %" if cpu is not None else "CPU not sampled (too short a run)"
    steal_text = f", steal time {steal:.1f} %" if steal is not None else ""
    lag_text = f", event-loop lag p99 {lag:.1f} ms" if isinstance(lag, (int, float)) else ""
    return f"- Load generator: {cpu_text}{steal_text}{lag_text}"


def render_markdown(summary: Mapping[str, Any]) -> str:
    """``summary.md``: the run, the verdict, the endpoint table, failures and the data source."""
    run = summary["run"]
    out = [f"# Load test {run.get('label', '')}", ""]
    out += [
        f"- Run: `{run.get('id')}`",
        f"- Target: {run.get('host')}"
        + (f" (version {run['target_version']})" if run.get("target_version") else ""),
        f"- Started: {run.get('started_at')}; ended: {run.get('ended_at')} "
        f"({_fmt(run.get('duration_s'))} s)",
        "- Users: " + (", ".join(f"{k} {v}" for k, v in run.get("users", {}).items()) or "none"),
        f"- Data source: {run.get('data_source', {}).get('mode', 'generated')}",
    ]
    if run.get("description"):
        out.append(f"- Description: {run['description']}")
    if run.get("git_commit"):
        out.append(f"- Load-test code: `{run['git_commit']}`")
    if run.get("aborted"):
        out.append(f"- Stopped early: {run['aborted']}")
    workload = workload_line(summary)
    if workload:
        out.append(f"- {workload}")
    elif (run.get("workload") or {}).get("model") == "closed":
        out.append(f"- Workload: closed model, {run['workload'].get('users')} users")
    if run.get("load_generator"):
        out.append(_generator_line(run["load_generator"]))
    resent = (run.get("connections") or {}).get("stale_resends")
    if resent:
        out.append(
            f"- Connections: {resent} requests resent after the target closed a kept-alive "
            "connection under them (its keep-alive timeout)"
        )
    out += ["", f"**{verdict_line(summary)}**", ""]
    warnings = generator_warnings(summary)
    if warnings:
        out += [*(f"> {line}" for line in warnings), ""]
    out += ["## Endpoints (times in ms)", ""]
    header = ["endpoint", *(t for _, t in _COLUMNS), "p99.9", "acceptable 4xx"]
    out.append("| " + " | ".join(header) + " |")
    out.append("|" + "---|" * len(header))
    rows = [*summary["endpoints"].items(), ("**total**", summary["total"])]
    for name, block in rows:
        cells = [f"`{name}`" if not name.startswith("*") else name]
        cells += [_fmt(block[k]) for k, _ in _COLUMNS]
        cells += [_fmt(block["p999_ms"]), _acceptable(block)]
        out.append("| " + " | ".join(cells) + " |")
    failures = [
        (name, reason, n)
        for name, block in summary["endpoints"].items()
        for reason, n in block.get("failures_by_reason", {}).items()
    ]
    if failures:
        out += ["", "## Failures", "", "| endpoint | reason | count |", "|---|---|---|"]
        out += [f"| `{name}` | {reason} | {n} |" for name, reason, n in failures]
        timed = summary["total"].get("failed_ms")
        if timed:
            out += [
                "",
                f"The {timed['count']} failed requests took p50 {_fmt(timed['p50_ms'])}, p95 "
                f"{_fmt(timed['p95_ms'])}, max {_fmt(timed['max_ms'])} ms; the percentiles "
                "above describe only the requests that got an answer.",
            ]
    slowest = [
        (name, slow)
        for name, block in summary["endpoints"].items()
        for slow in block.get("slowest") or []
    ]
    if slowest:
        out += ["", "## Slowest requests (trace ids, `--trace-context`)", ""]
        out += ["| endpoint | ms | status | started | trace id |", "|---|---|---|---|---|"]
        out += [
            f"| `{name}` | {_fmt(s['ms'])} | {s['status'] or 'no answer'} | {s['at']} | "
            f"`{s['trace_id']}` |"
            for name, s in slowest
        ]
    thresholds = summary.get("thresholds")
    if thresholds and thresholds.get("rules"):
        windowed = has_windows(thresholds)
        columns = ["scope", "metric", "limit", "observed", *(["worst window"] * windowed)]
        out += ["", "## Thresholds", "", "| " + " | ".join([*columns, "result"]) + " |"]
        out.append("|---" * (len(columns) + 1) + "|")
        for r in thresholds["rules"]:
            result = rule_result(r)
            result = f"**{result}**" if result != "pass" else result
            where = f" {window_text(r)} |" if windowed else ""
            out.append(
                f"| `{r['scope']}` | {r['metric']} | {_fmt(r['limit'])} | "
                f"{_fmt(r['observed'])} |{where} {result} |"
            )
        if windowed:
            out += [
                "",
                "A rule with a window holds over every window of that many seconds (the "
                "timeline's intervals, see timeline.json); the worst judged window is shown.",
            ]
    out += render_stages_md(summary)
    source = run.get("data_source", {})
    if source.get("fallbacks"):
        out += ["", "## Data source fallbacks", ""]
        out += [f"- {kind}: {reason}" for kind, reason in source["fallbacks"].items()]
    return "\n".join(out) + "\n"
