"""The stages of a shaped run and its capacity, as Markdown for ``summary.md``.

Renders what ``verdict/stages.py`` decided (``summary.json`` ``stages`` and ``capacity``);
judges nothing itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from panacea_locust.report.format import number as _fmt
from panacea_locust.verdict.stages import BROKE, HELD, load_text

_COLUMNS = (
    ("requests", "reqs"), ("failures", "fails"), ("rps", "rps"), ("p50_ms", "p50"),
    ("p95_ms", "p95"), ("p99_ms", "p99"), ("max_ms", "max"),
)  # fmt: skip


def _seconds(value: Any) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) else "?"


def _slo_cell(slo: Mapping[str, Any]) -> str:
    status = slo.get("status")
    if status == HELD:
        return "held"
    if status == BROKE:
        return "**broke**: " + ", ".join(slo.get("broken") or [])
    unjudged = ", ".join(slo.get("unjudged") or [])
    return "not judged" + (f": {unjudged}" if unjudged else "")


def render_stages_md(summary: Mapping[str, Any]) -> list[str]:
    """``summary.md`` lines for ``stages`` and ``capacity``: a ``## Stages`` table (one row per
    stage, times in ms, the SLO column when the run had one) and the capacity sentence; []
    for a run without stages."""
    stages = summary.get("stages") or []
    if not stages:
        return []
    judged = any(isinstance(stage.get("slo"), Mapping) for stage in stages)
    header = ["stage", "seconds", "load", *(title for _, title in _COLUMNS)]
    header += ["SLO"] if judged else []
    out = ["", "## Stages (times in ms)", ""]
    out.append("| " + " | ".join(header) + " |")
    out.append("|" + "---|" * len(header))
    for stage in stages:
        total = stage.get("total") or {}
        cells = [
            str(stage.get("index", "")),
            f"{_seconds(stage.get('start_s'))}–{_seconds(stage.get('end_s'))}",
            load_text(stage),
            *(_fmt(total.get(key)) for key, _ in _COLUMNS),
        ]
        if judged:
            slo = stage.get("slo")
            cells.append(_slo_cell(slo) if isinstance(slo, Mapping) else "-")
        out.append("| " + " | ".join(cells) + " |")
    capacity = summary.get("capacity")
    if isinstance(capacity, Mapping) and capacity.get("text"):
        out += ["", f"**Capacity**: {capacity['text']}"]
    return out


__all__ = ["render_stages_md"]
