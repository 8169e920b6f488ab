"""Whole runs against a misbehaving target: every request the target saw is counted, and no
run whose requests hung, or that was interrupted, or whose results could not be written,
ends in PASS or exit 0.

Each test runs a real ``locust -f locustfile.py`` (or ``panacea-locust run``) process against
the fault server on loopback and checks the counts in ``summary.json`` against what the
server saw, the verdict and the exit code.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import clean_env, run_dirs

from .fault_server import FaultServer

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = ROOT / "locustfile.py"
FAST = {"HEAVY_WAIT_MIN": "0", "HEAVY_WAIT_MAX": "0.1", "LIGHT_WAIT_MIN": "0",
        "LIGHT_WAIT_MAX": "0.1"}  # fmt: skip
#: the finding's SLO: a generous p99 and 1 % failures
STRICT_SLO = "[total]\np99_ms = 1000\nmax_failure_ratio = 0.01\n"


def locust(host: str, cwd: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", host,
           *args]  # fmt: skip
    return subprocess.Popen(
        cmd, cwd=cwd, env=clean_env(**FAST, **env), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def finish(proc: subprocess.Popen[str], timeout: float = 90) -> str:
    """Wait for the run's end (bounded; killed past it); its standard error."""
    try:
        return proc.communicate(timeout=timeout)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def summary_of(cwd: Path, stderr: str) -> tuple[Path, dict[str, Any]]:
    dirs = run_dirs(cwd / "results")
    assert dirs, stderr[-3000:]
    return dirs[-1], json.loads((dirs[-1] / "summary.json").read_text())


def reasons(summary: dict[str, Any]) -> Counter[str]:
    out: Counter[str] = Counter()
    for block in summary["endpoints"].values():
        out.update(block["failures_by_reason"])
    return out


def slo_file(tmp_path: Path, text: str = STRICT_SLO) -> Path:
    path = tmp_path / "slo.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("mode", ["hang-every-n", "hang"])
def test_requests_in_flight_at_the_end_are_counted_as_unfinished(tmp_path: Path, mode: str) -> None:
    """The finding: a target hanging every 5th request got 32, the summary counted 26 with no
    failure and the verdict passed; a target that never answers gave 0 requests and exit 0
    (REQUEST_TIMEOUT 30 s, longer than the run)."""
    with FaultServer(hang_every=5) as server:
        proc = locust(server.url_for(mode), tmp_path, "-u", "4", "-r", "4", "-t", "4s",
                      f"--slo-file={slo_file(tmp_path)}", STOP_GRACE_S="1")  # fmt: skip
        err = finish(proc)
        seen = server.counts(mode).started
    _, summary = summary_of(tmp_path, err)
    total = summary["total"]
    assert total["requests"] == seen, (total, seen)  # every request the target saw
    unfinished = reasons(summary)["unfinished at stop"]
    assert unfinished == total["failures_by_reason"]["unfinished at stop"] >= 1
    assert unfinished <= 4  # at most one per user
    assert summary["verdict"]["outcome"] != "PASS"
    assert proc.returncode not in (0, None), err[-2000:]


@pytest.mark.parametrize("grace", ["10", "0"])
def test_slow_answers_in_flight_at_the_end_finish_within_the_grace(
    tmp_path: Path, grace: str
) -> None:
    """0.6 s answers: with the default grace every request in flight at the end is answered
    and counted as it came (no failure: a healthy API is not failed by its own stop); with no
    grace (STOP_GRACE_S=0, Locust's immediate kill) they count as ``unfinished at stop``."""
    with FaultServer(slow_seconds=0.6) as server:
        proc = locust(server.url_for("slow"), tmp_path, "-u", "3", "-r", "3", "-t", "3s",
                      STOP_GRACE_S=grace)  # fmt: skip
        err = finish(proc)
        seen = server.counts("slow").started
    _, summary = summary_of(tmp_path, err)
    total = summary["total"]
    assert total["requests"] == seen, (total, seen)
    if grace == "0":
        assert 1 <= total["failures"] == total["failures_by_reason"]["unfinished at stop"] <= 3
        assert total["failed_ms"]["max_ms"] < 600  # cut off before their answer came
    else:
        assert total["failures"] == 0, total["failures_by_reason"]
        assert total["max_ms"] >= 600
