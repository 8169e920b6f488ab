"""The SLO rules as an aligned terminal table, under one verdict line."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from panacea_locust.verdict.thresholds import format_value


def _verdict_line(block: Mapping[str, Any]) -> str:
    rules: Sequence[Mapping[str, Any]] = block.get("rules") or []
    failed = sum(1 for r in rules if not r.get("passed"))
    if block.get("aborted"):
        return (
            f"FAILED (stopped early: {block['aborted']}; {failed} of {len(rules)} rules "
            f"failed at the end)"
        )
    if not rules:
        return "no thresholds configured"
    if failed:
        return f"FAILED ({failed} of {len(rules)} rules failed)"
    return f"PASSED (all {len(rules)} rules passed)"


def _rows(block: Mapping[str, Any]) -> list[tuple[str, str, str, str, str]]:
    rows = []
    for r in block.get("rules") or []:
        metric = str(r.get("metric", ""))
        comparator = ">=" if metric == "min_rps" else "<="
        observed = r.get("observed")
        rows.append(
            (
                str(r.get("scope", "")),
                metric,
                f"{comparator} {format_value(metric, r.get('limit'))}",
                format_value(metric, observed) if observed is not None else "n/a (no requests)",
                "pass" if r.get("passed") else "FAIL",
            )
        )
    return rows


def render_thresholds_text(block: Mapping[str, Any]) -> str:
    """Plain aligned table for the terminal (no colours: it also lands in CI logs)."""
    header = ("scope", "rule", "limit", "observed", "result")
    rows = _rows(block)
    lines = [f"Thresholds: {_verdict_line(block)}"]
    if rows:
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            lines.append(
                "  "
                + "  ".join(
                    cell.ljust(w) if i < 2 or i == 4 else cell.rjust(w)
                    for i, (cell, w) in enumerate(zip(row, widths, strict=True))
                ).rstrip()
            )
    return "\n".join(lines)
