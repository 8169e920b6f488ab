"""Trace context: a valid, unique W3C ``traceparent`` on every request, and each endpoint's
slowest requests named by trace id in ``summary.json``, merged exactly across processes."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, clean_env, run_dirs

from panacea_locust.verdict.traces import KEPT, SlowestRequests, new_traceparent

from .fault_server import FaultServer

TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-01")


def test_a_traceparent_is_valid_w3c_and_fresh_each_time() -> None:
    seen = set()
    for _ in range(10_000):
        header, trace = new_traceparent()
        match = TRACEPARENT.fullmatch(header)
        assert match and match.group(1) == trace
        assert trace != "0" * 32 and match.group(2) != "0" * 16
        seen.add(trace)
    assert len(seen) == 10_000


def test_the_slowest_are_kept_per_endpoint_and_merge_exactly() -> None:
    rng = random.Random(7)
    items = [(f"/e{rng.randrange(3)}", rng.uniform(1, 900), f"{i:032x}") for i in range(2_000)]
    whole, parts = SlowestRequests(), [SlowestRequests() for _ in range(4)]
    for i, (name, ms, trace) in enumerate(items):
        whole.note(name, ms, trace, 1_700_000_000.0 + i, 200)
        parts[i % 4].note(name, ms, trace, 1_700_000_000.0 + i, 200)
    merged = SlowestRequests()
    for part in parts:
        merged.merge_payload(part.drain_payload())
        assert part.to_payload() == {}  # drained
    for name in ("/e0", "/e1", "/e2"):
        expected = sorted((ms for n, ms, _ in items if n == name), reverse=True)[:KEPT]
        top = merged.top(name)
        assert [s["ms"] for s in top] == [round(ms, 3) for ms in expected]
        assert top == whole.top(name)
        assert top[0]["at"].endswith("Z") and top[0]["status"] == 200


@pytest.mark.e2e
def test_every_request_carries_a_unique_traceparent_and_the_summary_names_the_slowest(
    tmp_path: Path,
) -> None:
    """A real Locust run with ``--trace-context`` against a server that records the header."""
    with FaultServer() as server:
        proc = subprocess.run(
            [sys.executable, "-m", "locust", "-f", str(ROOT / "locustfile.py"), "--headless",
             "--host", server.url_for("ok"), "-u", "3", "-r", "3", "-t", "3s",
             "--trace-context"],
            cwd=tmp_path, env=clean_env(HEAVY_WAIT_MIN="0", HEAVY_WAIT_MAX="0.1",
                                        LIGHT_WAIT_MIN="0", LIGHT_WAIT_MAX="0.1"),
            capture_output=True, text=True, timeout=90,
        )  # fmt: skip
        sent = list(server.traceparents)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((run_dirs(tmp_path / "results")[0] / "summary.json").read_text())
    assert len(sent) == summary["total"]["requests"] > 10
    traces = []
    for header in sent:
        assert header is not None, "a request without traceparent"
        match = TRACEPARENT.fullmatch(header)
        assert match, header
        traces.append(match.group(1))
    assert len(set(traces)) == len(traces), "a trace id was reused"
    for name, block in summary["endpoints"].items():
        slowest = block["slowest"]
        assert 1 <= len(slowest) <= min(KEPT, block["requests"]), name
        assert [s["ms"] for s in slowest] == sorted((s["ms"] for s in slowest), reverse=True)
        assert {s["trace_id"] for s in slowest} <= set(traces)
        assert slowest[0]["ms"] == pytest.approx(block["max_ms"], rel=0.01)
        assert all(s["status"] == 200 for s in slowest)
    assert "## Slowest requests" in (run_dirs(tmp_path / "results")[0] / "summary.md").read_text()


@pytest.mark.e2e
def test_without_trace_context_no_header_is_sent(tmp_path: Path) -> None:
    with FaultServer() as server:
        proc = subprocess.run(
            [sys.executable, "-m", "locust", "-f", str(ROOT / "locustfile.py"), "--headless",
             "--host", server.url_for("ok"), "-u", "1", "-r", "1", "-t", "2s"],
            cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        sent = list(server.traceparents)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sent and set(sent) == {None}
    summary = json.loads((run_dirs(tmp_path / "results")[0] / "summary.json").read_text())
    assert all(block["slowest"] == [] for block in summary["endpoints"].values())
