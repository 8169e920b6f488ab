"""The SLO rules as an aligned terminal table (the verdict itself is ``verdict.decision``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from panacea_locust.verdict.thresholds import evidence, format_value


def rule_result(rule: Mapping[str, Any]) -> str:
    """``pass``, ``FAIL``, or ``insufficient (12 of 100 requests)`` for one rule's result."""
    status = rule.get("status") or ("pass" if rule.get("passed") else "fail")
    if status == "insufficient":
        return f"insufficient ({evidence(rule)})"
    return "pass" if status == "pass" else "FAIL"


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
                rule_result(r),
            )
        )
    return rows


def render_thresholds_text(block: Mapping[str, Any]) -> str:
    """Plain aligned table for the terminal (no colours: it also lands in CI logs)."""
    header = ("scope", "rule", "limit", "observed", "result")
    rows = _rows(block)
    lines = ["Thresholds:" if rows else "Thresholds: no rules"]
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
