"""The durable result of a run: ``results/<UTC time>_<label>/summary.json`` and ``summary.md``.

Pure logic: the Locust glue hands in plain counts and histograms; this module shapes them
into the results contract and makes the run's folder without ever reusing an earlier one.
``report.summary`` renders and writes the files.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from panacea_locust.verdict.histogram import HistogramSet, LatencyHistogram
from panacea_locust.verdict.traces import SlowestRequests

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
    failed: HistogramSet | None = None,
    slowest: SlowestRequests | None = None,
) -> dict[str, Any]:
    """The results contract's ``summary.json``: ``run``, ``total`` and ``endpoints``.

    ``histograms`` holds one histogram per request name and one under ``"total"``: the
    requests that got an answer, which the percentiles describe; ``failed`` the same for
    failed requests, whose times are shown apart (``failed_ms``): a refused connection is
    fast, and must not make a broken endpoint look quick.
    Endpoints are listed in ``endpoint_order`` first (the contract's), then any others;
    each names its slowest traced requests (``slowest``, empty without ``--trace-context``).
    """
    names = [n for n in endpoint_order if n in counts] + sorted(
        n for n in counts if n not in endpoint_order
    )
    endpoints = {}
    for name in names:
        block = metrics(counts[name], histograms.get(name), acceptable.get(name, {}))
        block["failed_ms"] = _failed_times(failed.get(name) if failed else None)
        block["failures_by_reason"] = dict(
            sorted(counts[name].failures_by_reason.items(), key=lambda kv: -kv[1])
        )
        block["slowest"] = slowest.top(name) if slowest else []
        endpoints[name] = block
    all_acceptable: dict[str, int] = {}
    for codes in acceptable.values():
        for code, n in codes.items():
            all_acceptable[code] = all_acceptable.get(code, 0) + n
    total_block = metrics(total, histograms.get(TOTAL), all_acceptable)
    total_block["failed_ms"] = _failed_times(failed.get(TOTAL) if failed else None)
    total_block["failures_by_reason"] = _sum_reasons(counts.values())
    return {"run": run, "total": total_block, "endpoints": endpoints}


#: ``summary.json``'s top-level keys, present in every run whatever started it (docs/verdicts.md)
STABLE_KEYS = ("run", "total", "endpoints", "thresholds", "stages", "capacity", "verdict")


SERVICE_KEYS: tuple[tuple[str, str, float], ...] = (
    ("service_p50_ms", "p50_ms", 50.0), ("service_p95_ms", "p95_ms", 95.0),
    ("service_p99_ms", "p99_ms", 99.0),
)  # fmt: skip


def add_service_times(summary: dict[str, Any], service: HistogramSet | None) -> None:
    """``service_p50_ms``, ``service_p95_ms``, ``service_p99_ms`` in every scope: the answered
    requests' times from their actual send. An open-model run times its requests from their
    due time and keeps these apart (``service``); in a closed run the two are the same."""
    scopes = [("total", summary["total"]), *summary["endpoints"].items()]
    for name, block in scopes:
        hist = service.get(TOTAL if name == "total" else name) if service is not None else None
        for key, closed_key, q in SERVICE_KEYS:
            if service is None:
                block[key] = block.get(closed_key)
            else:
                block[key] = _ms(hist.percentile(q)) if hist is not None and hist.count else None


def _failed_times(histogram: LatencyHistogram | None) -> dict[str, Any] | None:
    """How long the failed requests took (count, p50, p95, max), or None without failures."""
    if histogram is None or not histogram.count:
        return None
    return {
        "count": histogram.count,
        "p50_ms": _ms(histogram.percentile(50.0)),
        "p95_ms": _ms(histogram.percentile(95.0)),
        "max_ms": _ms(histogram.max_ms),
    }


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


def unwritable(path: object, err: OSError, limit: int = 80) -> str:
    """``cannot write results to 'results': Read-only file system``: the folder (at most
    ``limit`` characters of it) and the cause, for a one-line message."""
    text = str(path)
    shown = text if len(text) <= limit else text[: limit - 3] + "..."
    return f"cannot write results to {shown!r}: {err.strerror or err}"


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
