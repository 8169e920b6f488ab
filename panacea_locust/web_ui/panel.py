"""What the web UI's Panacea tab shows and what its start form accepts. Pure: no Locust,
no Flask, so it is tested directly; ``app.py`` feeds it a snapshot of the run.

The tab is one of Locust's extended tables: rows of plain text in four columns (a cell
cannot hold a link, so report rows show the address, and the links themselves are in the
Download Data tab).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from panacea_locust.verdict.thresholds import format_value

TAB_KEY = "panacea"
#: the tab's columns: Locust's extended table ``structure``
COLUMNS = (("name", "What"), ("value", "Now"), ("limit", "Limit"), ("status", "Status"))
#: a run's files the web UI serves (from its own folder only)
REPORT_FILES = ("summary.html", "summary.md", "summary.json", "junit.xml",
                "compare.html", "compare.md", "compare.json")  # fmt: skip
#: the ``--baseline`` choice that compares with nothing
NO_BASELINE = "none"
#: how many earlier runs the form offers as a baseline (newest first)
BASELINE_CHOICES = 30
LABEL_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def list_runs(root: Path) -> list[str]:
    """Run folders (those with a ``summary.json``) directly under ``root``, newest first."""
    try:
        found = [p.name for p in root.iterdir() if (p / "summary.json").is_file()]
    except OSError:
        return []
    return sorted(found, reverse=True)


def baseline_choices(root: Path) -> list[str]:
    return [NO_BASELINE, *list_runs(root)[:BASELINE_CHOICES]]


def safe_report(root: Path, run_id: str, name: str) -> Path | None:
    """The file ``name`` of run ``run_id`` under ``root``, or None: only a known report
    name, only a folder directly under ``root``, nothing else of the file system."""
    if name not in REPORT_FILES or "/" in run_id or run_id in ("", ".", ".."):
        return None
    folder = root / run_id
    try:
        if folder.resolve().parent != root.resolve():
            return None
    except OSError:
        return None
    path = folder / name
    return path if path.is_file() else None


# --- the start form ----------------------------------------------------------------------
def form_error(form: Mapping[str, str], scenarios: Sequence[str], max_users: int) -> str | None:
    """The first thing wrong with a start form's Panacea fields (one line), else None.
    The SLO file itself is read by the caller (it needs the endpoint names)."""
    scenario = form.get("scenario", "").strip()
    if scenario and scenario not in scenarios:
        return f"Scenario {scenario!r} is not one of {', '.join(scenarios)}"
    label = form.get("label", "").strip()
    if label and not LABEL_RE.fullmatch(label):
        return "Label: use 1 to 64 letters, digits, '.', '_' or '-'"
    version = form.get("target_version", "")
    if len(version) > 200 or any(not c.isprintable() for c in version):
        return "Target version: printable characters only, at most 200"
    weight = form.get("analytics_user_weight", "").strip()
    if weight:
        try:
            if int(weight) < -1:
                raise ValueError
        except ValueError:
            return (
                "Analytics user weight must be a whole number >= 0 (or -1: keep), "
                f"got {weight[:20]!r}"
            )
    rate = form.get("arrival_rate", "").strip()
    if rate:
        try:
            value = float(rate)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value <= 0:
            return f"Arrival rate must be a number of requests a second above 0, got {rate[:20]!r}"
    users = form.get("user_count", "").strip()
    if users:
        try:
            count = int(users)
        except ValueError:
            return f"Number of users must be a whole number, got {users[:20]!r}"
        if count > max_users:
            return f"{count} users is above LOCUST_MAX_USERS ({max_users})"
    return None


# --- the tab -------------------------------------------------------------------------------
def _row(name: str, value: Any = "", limit: str = "", status: str = "") -> dict[str, str]:
    return {"name": name, "value": "" if value is None else str(value), "limit": limit,
            "status": status}  # fmt: skip


def _rule_rows(thresholds: Mapping[str, Any], countdowns: Mapping[str, float]) -> list[dict]:
    rows = []
    for rule in thresholds.get("rules") or []:
        metric = str(rule.get("metric"))
        name = f"rule: {rule.get('scope')} {metric}"
        value = format_value(metric, rule.get("observed"))
        window = rule.get("window")
        if isinstance(window, Mapping):
            value += f" (window {window.get('start_s', 0):.0f}-{window.get('end_s', 0):.0f} s)"
        comparator = ">=" if metric == "min_rps" else "<="
        limit = f"{comparator} {format_value(metric, rule.get('limit'))}"
        status = str(rule.get("status") or "")
        left = countdowns.get(f"{rule.get('scope')} {metric}")
        if left is not None:
            status += f", aborts the run in {left:.0f} s"
        rows.append(_row(name, value, limit, status))
    return rows


def panel_rows(live: Mapping[str, Any]) -> list[dict[str, str]]:
    """The tab's rows for one snapshot of the run (see ``PanaceaWebUI.snapshot``)."""
    rows = [_row("run", live.get("state", ""), "", live.get("run_id") or "")]
    verdict = live.get("verdict")
    if isinstance(verdict, Mapping):
        reasons = "; ".join(str(r) for r in verdict.get("reasons") or [])
        rows.append(_row("verdict", reasons, "", str(verdict.get("outcome"))))
    slo = live.get("slo_file")
    rows.append(_row("SLO file", slo or "none (no rules: no pass or fail)", "",
                     live.get("slo_note", "")))  # fmt: skip
    thresholds = live.get("thresholds") or {}
    rows += _rule_rows(thresholds, live.get("countdowns") or {})
    for name, count in sorted((live.get("users") or {}).items()):
        rows.append(_row(f"users: {name}", count))
    source = live.get("data_source") or {}
    loaded = source.get("loaded") or {}
    rows.append(_row("data source", source.get("mode", "generated"), "",
                     ", ".join(f"{k} {v}" for k, v in loaded.items())))  # fmt: skip
    for kind, why in sorted((source.get("fallbacks") or {}).items()):
        rows.append(_row(f"data fallback: {kind}", why))
    health = live.get("load_generator") or {}
    cpu = health.get("cpu_percent_max")
    rows.append(_row("load generator: CPU max", "n/a" if cpu is None else f"{cpu:.0f} %",
                     "<= 85 %", "warning" if health.get("cpu_warning") else ""))  # fmt: skip
    for worker, share in sorted((live.get("worker_cpu") or {}).items()):
        rows.append(_row(f"load generator: CPU of worker {worker}", f"{share:.0f} %"))
    steal = health.get("steal_percent")
    rows.append(_row("load generator: steal", "n/a" if steal is None else f"{steal:.1f} %"))
    lag = health.get("loop_lag_p99_ms")
    rows.append(_row("load generator: loop lag p99", format_value("lag_ms", lag)))
    for i, warning in enumerate(health.get("warnings") or [], 1):
        rows.append(_row(f"load generator: warning {i}", warning, "", "warning"))
    workload = live.get("workload") or {}
    if workload.get("model") == "open":
        rows += [
            _row("open model: target rate", f"{workload.get('target_rps', 0):.1f}/s"),
            _row("open model: achieved rate", f"{workload.get('achieved_rps', 0):.1f}/s"),
            _row("open model: dropped", f"{workload.get('dropped', 0)} "
                 f"({100 * float(workload.get('dropped_ratio') or 0):.2f} %)"),
            _row("open model: schedule lag p99", format_value("lag_ms",
                                                               workload.get("lag_p99_ms"))),
        ]  # fmt: skip
    resent = (live.get("connections") or {}).get("stale_resends")
    if resent:
        rows.append(_row("connections: requests resent", resent, "",
                         "the target closed kept-alive connections under them"))  # fmt: skip
    for name, address in live.get("reports") or []:
        rows.append(_row(f"report: {name}", address))
    compare = live.get("compare")
    if isinstance(compare, Mapping):
        name = f"compare with {compare.get('baseline')}"
        rows.append(_row(name, compare.get("result", ""), "", str(compare.get("status", ""))))
    return rows
