"""W3C trace context for the load's requests, and each endpoint's slowest traced requests.

With ``--trace-context`` every request carries a ``traceparent`` header with a fresh trace id
(sampled), so the API's tracing backend shows the load test's requests; ``summary.json`` then
names each endpoint's five slowest requests by trace id, which turns "the p99 was slow" into
"these five traces". Pure: no Locust import; the tally ships the slowest to the master.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

KEPT = 5  #: slowest requests kept per endpoint
_ZERO_TRACE = "0" * 32

#: (ms, trace id, start time in epoch seconds, HTTP status; 0: no answer)
Slow = tuple[float, str, float, int]


def new_traceparent() -> tuple[str, str]:
    """A ``traceparent`` header value (version 00, a random trace id and parent id, sampled)
    and its trace id. An all-zero id is invalid in the W3C format: drawn again."""
    trace = os.urandom(16).hex()
    while trace == _ZERO_TRACE:  # pragma: no cover - one chance in 2^128
        trace = os.urandom(16).hex()
    parent = os.urandom(8).hex()
    if parent == "0" * 16:  # pragma: no cover
        parent = "0" * 15 + "1"
    return f"00-{trace}-{parent}-01", trace


class SlowestRequests:
    """The ``KEPT`` slowest traced requests of each request name: a min-heap per name, so a
    request slower than the fastest kept one costs one heap replace, others one comparison."""

    def __init__(self) -> None:
        self.by_name: dict[str, list[Slow]] = {}

    def note(self, name: str, ms: float, trace_id: str, at: float, status: int) -> None:
        heap = self.by_name.setdefault(name, [])
        item = (ms, trace_id, at, status)
        if len(heap) < KEPT:
            heapq.heappush(heap, item)
        elif ms > heap[0][0]:
            heapq.heapreplace(heap, item)

    def merge_payload(self, payload: Mapping[str, Any]) -> None:
        """Add another process's ``to_payload()`` (a worker's report)."""
        for name, items in payload.items():
            for ms, trace_id, at, status in items:
                self.note(str(name), float(ms), str(trace_id), float(at), int(status))

    def to_payload(self) -> dict[str, list[list[Any]]]:
        """msgpack-safe: lists, strings and numbers."""
        return {name: [list(item) for item in heap] for name, heap in self.by_name.items()}

    def drain_payload(self) -> dict[str, list[list[Any]]]:
        """``to_payload()``, then forget (what a worker sends with each report)."""
        payload = self.to_payload()
        self.by_name.clear()
        return payload

    def top(self, name: str) -> list[dict[str, Any]]:
        """``summary.json``'s ``slowest``: slowest first."""
        return [
            {"trace_id": trace, "ms": round(ms, 3), "at": _iso(at), "status": status}
            for ms, trace, at, status in sorted(self.by_name.get(name, ()), reverse=True)
        ]


def _iso(epoch_s: float) -> str:
    stamp = datetime.fromtimestamp(epoch_s, timezone.utc).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")
