"""The durable result of a run: ``results/<UTC time>_<label>/summary.json`` and ``summary.md``.

Pure logic: the Locust glue hands in plain counts and histograms; this module shapes them
into SPEC's results contract, renders them for people and writes them without ever
overwriting an earlier run.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from panacea_locust.histogram import HistogramSet, LatencyHistogram

#: Percentile keys of the contract and the percentile each stands for.
PERCENTILES: tuple[tuple[str, float], ...] = (
    ("p50_ms", 50.0), ("p90_ms", 90.0), ("p95_ms", 95.0), ("p99_ms", 99.0), ("p999_ms", 99.9),
)  # fmt: skip
TOTAL = "total"


@dataclass
class EndpointCounts:
    """What Locust counted for one request name."""

    requests: int = 0
    failures: int = 0
    rps: float = 0.0
    failures_by_reason: dict[str, int] = field(default_factory=dict)


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def metrics(
    counts: EndpointCounts, histogram: LatencyHistogram | None, acceptable: Mapping[str, int]
) -> dict[str, Any]:
    """The contract's metric block for one scope (an endpoint, or the total)."""
    has = histogram is not None and histogram.count > 0
    block: dict[str, Any] = {
        "requests": counts.requests,
        "failures": counts.failures,
        "failure_ratio": round(counts.failures / counts.requests, 6) if counts.requests else 0.0,
        "acceptable": {code: n for code, n in sorted(acceptable.items())},
        "rps": round(counts.rps, 3),
        "min_ms": _ms(histogram.min_ms) if has and histogram else None,
        "mean_ms": _ms(histogram.mean_ms) if has and histogram else None,
    }
    for key, q in PERCENTILES:
        block[key] = _ms(histogram.percentile(q)) if has and histogram else None
    block["max_ms"] = _ms(histogram.max_ms) if has and histogram else None
    return block


def build_summary(
    run: dict[str, Any],
    counts: Mapping[str, EndpointCounts],
    total: EndpointCounts,
    histograms: HistogramSet | Mapping[str, LatencyHistogram],
    acceptable: Mapping[str, Mapping[str, int]],
    endpoint_order: tuple[str, ...] = (),
) -> dict[str, Any]:
    """SPEC's ``summary.json``: ``run``, ``total`` and ``endpoints`` (thresholds added later).

    ``histograms`` holds one histogram per request name and one under ``"total"``.
    Endpoints are listed in ``endpoint_order`` first (the contract's), then any others.
    """
    names = [n for n in endpoint_order if n in counts] + sorted(
        n for n in counts if n not in endpoint_order
    )
    endpoints = {}
    for name in names:
        block = metrics(counts[name], histograms.get(name), acceptable.get(name, {}))
        block["failures_by_reason"] = dict(
            sorted(counts[name].failures_by_reason.items(), key=lambda kv: -kv[1])
        )
        endpoints[name] = block
    all_acceptable: dict[str, int] = {}
    for codes in acceptable.values():
        for code, n in codes.items():
            all_acceptable[code] = all_acceptable.get(code, 0) + n
    total_block = metrics(total, histograms.get(TOTAL), all_acceptable)
    total_block["failures_by_reason"] = _sum_reasons(counts.values())
    return {"run": run, "total": total_block, "endpoints": endpoints}


def _sum_reasons(counts: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in counts:
        for reason, n in c.failures_by_reason.items():
            out[reason] = out.get(reason, 0) + n
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


_LABEL_RE = re.compile(r"[^A-Za-z0-9_.-]+")


def safe_label(label: str) -> str:
    """A label usable in a folder name: ``load test #2`` becomes ``load-test-2``."""
    return _LABEL_RE.sub("-", label).strip("-.") or "run"


def create_run_dir(base: str | os.PathLike[str], label: str, now: datetime) -> Path:
    """Make ``base/<UTC time>_<label>`` (``_2``, ``_3`` ... if taken); never reuse a folder."""
    root = Path(base)
    root.mkdir(parents=True, exist_ok=True)
    stem = f"{now:%Y%m%dT%H%M%SZ}_{safe_label(label)}"
    for attempt in range(1, 10_000):
        candidate = root / (stem if attempt == 1 else f"{stem}_{attempt}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise RuntimeError(f"no free results folder for {stem} under {root}")


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_results(run_dir: Path, summary: dict[str, Any]) -> None:
    """Write ``summary.json`` and ``summary.md`` into an existing run folder."""
    _write_atomic(run_dir / "summary.json", json.dumps(summary, indent=2, default=str) + "\n")
    _write_atomic(run_dir / "summary.md", render_markdown(summary))


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.2f}"
    return str(value)


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
    """``PASS``/``FAIL`` with the count of broken rules, or a note that no SLO applied."""
    block = summary.get("thresholds")
    if not block or not block.get("rules"):
        return "VERDICT: no thresholds configured (set --slo FILE or SLO_FILE)"
    broken = [r for r in block["rules"] if not r["passed"]]
    if not broken:
        return f"VERDICT: PASS ({len(block['rules'])} rules)"
    return f"VERDICT: FAIL ({len(broken)} of {len(block['rules'])} rules broken)"


def load_generator_warnings(summary: Mapping[str, Any]) -> list[str]:
    """``run.load_generator.warnings``: reasons to doubt the run's latencies; tolerant of
    summaries written before the field existed, or by hand."""
    run = summary.get("run")
    health = run.get("load_generator") if isinstance(run, Mapping) else None
    warnings = health.get("warnings") if isinstance(health, Mapping) else None
    return [w for w in warnings or [] if isinstance(w, str)]


def generator_warnings(summary: Mapping[str, Any]) -> list[str]:
    """``WARNING (load generator): ...`` lines for the terminal and ``summary.md``."""
    return [f"WARNING (load generator): {w}" for w in load_generator_warnings(summary)]


def _generator_line(health: Mapping[str, Any]) -> str:
    cpu, steal = health.get("cpu_percent_max"), health.get("steal_percent")
    cpu_text = f"CPU up to {cpu:.0f} %" if cpu is not None else "CPU not sampled (too short a run)"
    steal_text = f", steal time {steal:.1f} %" if steal is not None else ""
    return f"- Load generator: {cpu_text}{steal_text}"


def render_markdown(summary: Mapping[str, Any]) -> str:
    """``summary.md``: the run, the verdict, the endpoint table, failures and the data source."""
    run = summary["run"]
    out = [f"# Load test {run.get('label', '')}", ""]
    out += [
        f"- Run: `{run.get('id')}`",
        f"- Target: {run.get('host')}",
        f"- Started: {run.get('started_at')}; ended: {run.get('ended_at')} "
        f"({_fmt(run.get('duration_s'))} s)",
        "- Users: " + (", ".join(f"{k} {v}" for k, v in run.get("users", {}).items()) or "none"),
        f"- Data source: {run.get('data_source', {}).get('mode', 'generated')}",
    ]
    if run.get("aborted"):
        out.append(f"- Stopped early: {run['aborted']}")
    if run.get("load_generator"):
        out.append(_generator_line(run["load_generator"]))
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
    thresholds = summary.get("thresholds")
    if thresholds and thresholds.get("rules"):
        out += ["", "## Thresholds", "", "| scope | metric | limit | observed | result |"]
        out.append("|---|---|---|---|---|")
        for r in thresholds["rules"]:
            result = "pass" if r["passed"] else "**FAIL**"
            out.append(
                f"| `{r['scope']}` | {r['metric']} | {_fmt(r['limit'])} | "
                f"{_fmt(r['observed'])} | {result} |"
            )
    source = run.get("data_source", {})
    if source.get("fallbacks"):
        out += ["", "## Data source fallbacks", ""]
        out += [f"- {kind}: {reason}" for kind, reason in source["fallbacks"].items()]
    return "\n".join(out) + "\n"
