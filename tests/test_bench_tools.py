"""The benchmarks' own instruments (``bench/``): the delay server that is the accuracy truth,
the steal-time arithmetic, and the rule that takes disturbed accuracy runs again."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, clean_env

sys.path.insert(0, str(ROOT / "bench"))

import bench_accuracy  # noqa: E402
from common import LocustResult, _steal_shares  # noqa: E402


def test_delay_server_holds_each_request_and_records_what_it_held(tmp_path: Path) -> None:
    held_file = tmp_path / "held.txt"
    args = ["--delay-ms", "30", "--workers", "2", "--held-file", str(held_file)]
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "delay_server.py"), *args],
        stdout=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("listening on http://127.0.0.1:"), line
        port = int(line.rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        since = time.monotonic()
        elapsed = []
        for _ in range(4):  # one kept-alive connection, as Locust's users use it
            started = time.perf_counter()
            conn.request("POST", "/x", body=b'{"a": 1}', headers={"Content-Type": "a/json"})
            response = conn.getresponse()
            assert response.status == 200 and response.read() == b"{}"
            elapsed.append(time.perf_counter() - started)
        until = time.monotonic()
        conn.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    assert min(elapsed) >= 0.030
    lines = held_file.read_text().split()
    held_us, at_us = [int(x) for x in lines[0::2]], [int(x) for x in lines[1::2]]
    assert len(held_us) == 4  # the workers' own warm-up requests are not recorded
    assert all(30_000 <= us < 30_000 + 20_000 for us in held_us), held_us
    assert all(since <= at / 1e6 <= until for at in at_us)  # the clock Locust can read too


def test_steal_shares_are_per_cpu_shares_of_the_window() -> None:
    tick = os.sysconf("SC_CLK_TCK")
    since = {"wall": 10.0, "steal": [0, 5 * tick]}
    until = {"wall": 12.0, "steal": [tick // 10, 5 * tick + tick // 2]}
    assert _steal_shares(since, until) == pytest.approx([0.05, 0.25])
    assert _steal_shares({"wall": 1.0}, {"wall": 2.0, "steal": [1]}) == []  # not reported


def test_steal_on_looks_at_the_given_cpus_only(tmp_path: Path) -> None:
    r = LocustResult("x", 0, 0, 0.0, 0.0, tmp_path, steal=[0.01, 0.2, 0.03])
    assert r.steal_on((0, 2)) == 0.03
    assert r.steal_on((None, None)) == 0.2  # no pinning: every CPU counts
    assert LocustResult("x", 0, 0, 0.0, 0.0, tmp_path).steal_on((0, 1)) == 0.0


def _run(steal: float, p99: float) -> bench_accuracy.AccuracyRun:
    return bench_accuracy.AccuracyRun(
        "paced", "framework", 100, 50.5, p99, 50.0, 50.0, 0.2, steal=steal
    )


@pytest.mark.parametrize(
    ("steals", "attempts", "kept"),
    [
        ([0.01], 1, 0.01),  # calm at once: one run
        ([0.05, 0.01], 2, 0.01),  # disturbed, then calm
        ([0.05, 0.03, 0.04], 3, 0.03),  # never calm: the calmest of three, still disturbed
    ],
)
def test_disturbed_runs_are_taken_again_and_the_calmest_kept(
    monkeypatch: pytest.MonkeyPatch, steals: list[float], attempts: int, kept: float
) -> None:
    queue = [_run(s, 53.0 + i) for i, s in enumerate(steals)]
    monkeypatch.setattr(bench_accuracy, "measure", lambda *a, **k: queue.pop(0))
    pattern = bench_accuracy.Pattern("paced", 200, 0.2, 0.8, 100)
    r = bench_accuracy.measure_calm(
        pattern, "framework", 10.0, 50.0, (0, 1), max_steal=0.02, attempts=3, quiet=True
    )
    assert (r.attempts, r.steal) == (attempts, kept)
    assert not queue  # no run more than needed
    a = bench_accuracy.Accuracy(50.0, runs=[r])
    assert len(a.disturbed) == (1 if kept > 0.02 else 0)
    assert a.as_dict()["attempts"] == attempts
