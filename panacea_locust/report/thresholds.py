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


def _seconds(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return "?"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def window_text(rule: Mapping[str, Any]) -> str:
    """Where a windowed rule was judged: ``25-30 s`` (its worst window, or when no window had
    the evidence, the one with the most requests); ``whole run`` for any other rule."""
    if "window" not in rule:
        return "whole run"
    window = rule["window"]
    if not isinstance(window, Mapping):
        return "no window"
    return f"{_seconds(window.get('start_s'))}-{_seconds(window.get('end_s'))} s"


def has_windows(block: Mapping[str, Any]) -> bool:
    """Whether any rule of the block was judged over windows (``window_s``)."""
    return any(isinstance(r, Mapping) and "window" in r for r in block.get("rules") or [])


def _rows(block: Mapping[str, Any]) -> list[tuple[str, ...]]:
    windowed = has_windows(block)
    rows: list[tuple[str, ...]] = []
    for r in block.get("rules") or []:
        metric = str(r.get("metric", ""))
        comparator = ">=" if metric == "min_rps" else "<="
        observed = r.get("observed")
        row = (
            str(r.get("scope", "")),
            metric,
            f"{comparator} {format_value(metric, r.get('limit'))}",
            format_value(metric, observed) if observed is not None else "n/a (no requests)",
            rule_result(r),
        )
        rows.append((*row[:4], window_text(r), row[4]) if windowed else row)
    return rows


def render_thresholds_text(block: Mapping[str, Any]) -> str:
    """Plain aligned table for the terminal (no colours: it also lands in CI logs). With
    windowed rules, a ``worst window`` column says when each was judged."""
    header: tuple[str, ...] = ("scope", "rule", "limit", "observed", "result")
    if has_windows(block):
        header = ("scope", "rule", "limit", "observed", "worst window", "result")
    left = {0, 1, len(header) - 1}
    rows = _rows(block)
    lines = ["Thresholds:" if rows else "Thresholds: no rules"]
    if rows:
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            lines.append(
                "  "
                + "  ".join(
                    cell.ljust(w) if i in left else cell.rjust(w)
                    for i, (cell, w) in enumerate(zip(row, widths, strict=True))
                ).rstrip()
            )
    return "\n".join(lines)
