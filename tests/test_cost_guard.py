"""AI_MAX_RPS: the AI endpoints (which may cost money per call) capped over the whole run;
requests over the cap are counted as skipped, never sent."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import clean_env, run_panacea

from panacea_locust.contract import COSTLY_KEYS, ENDPOINTS_BY_KEY
from panacea_locust.cost_guard import RateCap
from panacea_locust.reference_api.launcher import ReferenceAPIProcess

AI_PATHS = {ENDPOINTS_BY_KEY[k].path for k in COSTLY_KEYS}
#: AI endpoints heavily weighted, short waits: far more AI requests than the cap allows
AI_HEAVY = {"AI_ASK_AI_WEIGHT": "20", "AI_REPORT_SUMMARY_WEIGHT": "20", "HEAVY_WAIT_MIN": "0",
            "HEAVY_WAIT_MAX": "0.05", "LIGHT_WAIT_MIN": "0", "LIGHT_WAIT_MAX": "0.05"}  # fmt: skip


def test_the_cap_allows_its_rate_on_average_and_a_second_of_burst() -> None:
    cap = RateCap(2.0, now=0.0)
    allowed = sum(cap.allow(t / 100) for t in range(1000))  # 100 tries a second for 10 s
    assert 20 <= allowed <= 22  # 2 a second, plus the bucket's 2 at the start
    cap.set_rate(0.0, now=10.0)
    assert not any(cap.allow(10.0 + t / 10) for t in range(1, 50))
    slow = RateCap(0.5, now=0.0)  # below one a second: one at a time
    assert sum(slow.allow(t / 10) for t in range(100)) == 5  # at 0, then about every 2 s


def _ai_sent(api: ReferenceAPIProcess) -> int:
    return sum(e["count"] for path, e in api.stats()["endpoints"].items() if path in AI_PATHS)


@pytest.mark.e2e
@pytest.mark.parametrize("processes", [None, 2])
def test_ai_requests_over_the_cap_are_skipped_and_counted(
    api: ReferenceAPIProcess, tmp_path: Path, processes: int | None
) -> None:
    args = ["--host", api.url, "-u", "6", "-r", "6", "-t", "5s", "--no-slo"]
    args += ["--processes", str(processes)] if processes else []
    run = run_panacea(args, cwd=tmp_path, env=clean_env(AI_MAX_RPS="2", **AI_HEAVY))
    assert run.returncode in (0, 1), run.stderr[-3000:]  # 1: a request failed (not judged)
    summary = run.summary()
    guard = summary["run"]["cost_guard"]
    sent = _ai_sent(api)
    seconds = summary["run"]["duration_s"]
    # at most 2 a second over the run, plus each process's one-second burst
    assert 0 < sent <= 2 * seconds + 2 * (processes or 1), (sent, seconds)
    assert guard["ai_max_rps"] == 2 and guard["skipped_total"] > sent, guard
    assert set(guard["skipped"]) <= AI_PATHS
    counted = sum(b["requests"] for name, b in summary["endpoints"].items() if name in AI_PATHS)
    assert counted == sent  # a skipped request is not a request


@pytest.mark.e2e
def test_without_a_cap_nothing_is_skipped(api: ReferenceAPIProcess, tmp_path: Path) -> None:
    run = run_panacea(["--host", api.url, "-u", "3", "-r", "3", "-t", "3s", "--no-slo"],
                      cwd=tmp_path, env=clean_env(**AI_HEAVY))  # fmt: skip
    assert run.returncode in (0, 1), run.stderr[-3000:]  # 1: a request failed (not judged)
    assert run.summary()["run"]["cost_guard"] is None
    assert _ai_sent(api) > 2 * 3 + 2
