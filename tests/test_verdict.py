"""The one verdict (verdict.decision): never more optimistic than its evidence."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from panacea_locust.report.summary import render_markdown, verdict_line
from panacea_locust.verdict.decision import (
    EXIT_FAILED,
    EXIT_INCONCLUSIVE,
    EXIT_PASSED,
    FAILED,
    INCONCLUSIVE,
    INTERRUPTED,
    PASSED,
    UNJUDGED,
    decide,
)
from panacea_locust.verdict.health import generator_failure_warning
from panacea_locust.verdict.thresholds import load_slo, mark_aborted

SEARCH = "/api/v1/logs/search"
BUSY = "a Locust process reached 97 % CPU (over 85 %): ..."


def scope(requests: int = 1000, failures: int = 0, p95: float = 50.0) -> dict[str, Any]:
    return {
        "requests": requests,
        "failures": failures,
        "failure_ratio": failures / requests if requests else 0.0,
        "acceptable": {},
        "rps": 10.0,
        "p50_ms": p95 / 2,
        "p90_ms": p95,
        "p95_ms": p95,
        "p99_ms": p95 * 2,
        "p999_ms": p95 * 2,
        "max_ms": p95 * 3,
        "min_ms": 1.0,
        "mean_ms": p95 / 2,
    }


def judged(
    tmp_path: Path,
    slo_text: str,
    total: dict[str, Any],
    endpoints: dict[str, Any] | None = None,
    warnings: list[str] | None = None,
    aborted: str | None = None,
) -> dict[str, Any]:
    path = tmp_path / "slo.toml"
    path.write_text(slo_text, encoding="utf-8")
    slo = load_slo(path, [SEARCH])
    run: dict[str, Any] = {"id": "r", "load_generator": {"warnings": warnings or []}}
    summary = {"run": run, "total": total, "endpoints": endpoints or {}}
    block = slo.evaluate(summary)
    summary["thresholds"] = mark_aborted(block, aborted) if aborted else block
    return summary


def test_every_rule_passing_with_evidence_passes(tmp_path: Path) -> None:
    s = judged(tmp_path, "[total]\np95_ms = 100\nmax_failure_ratio = 0.01", scope())
    v = decide(s)
    assert (v.outcome, v.exit_code) == (PASSED, EXIT_PASSED)
    assert verdict_line(s) == "VERDICT: PASS (2 rules)"


def test_a_run_where_every_request_failed_never_passes(tmp_path: Path) -> None:
    # refused connections are fast: a p95-only SLO would pass them
    s = judged(tmp_path, "[total]\np95_ms = 100", scope(requests=600, failures=600, p95=1.0))
    v = decide(s)
    assert (v.outcome, v.exit_code) == (FAILED, EXIT_FAILED)
    assert "no request got an answer: 600 of 600 failed" in v.line


def test_an_aborted_run_fails_even_when_its_rules_pass_at_the_end(tmp_path: Path) -> None:
    s = judged(tmp_path, "[total]\np95_ms = 100\nabort = true", scope(), aborted="SLO abort: x")
    v = decide(s)
    assert v.outcome == FAILED and v.exit_code == EXIT_FAILED
    assert "PASS" not in v.line and "stopped early: SLO abort: x" in v.line


@pytest.mark.parametrize(("signal", "code"), [("SIGINT", 130), ("SIGTERM", 143)])
def test_an_interrupted_run_is_interrupted_whatever_its_rules_said(
    tmp_path: Path, signal: str, code: int
) -> None:
    """A partial run proves nothing either way: its rules are shown as they stood."""
    passing = judged(tmp_path, "[total]\np95_ms = 100", scope())
    passing["run"]["interrupted"] = {"signal": signal, "at_s": 6.2}
    v = decide(passing)
    assert (v.outcome, v.exit_code) == (INTERRUPTED, code)
    assert v.line == (
        f"VERDICT: INTERRUPTED (stopped by {signal} after 6.2 s; "
        "the rules as they stood: PASS (1 rules))"
    )
    failing = judged(tmp_path, "[total]\np95_ms = 10", scope(p95=50.0))
    failing["run"]["interrupted"] = {"signal": signal, "at_s": 1}
    assert "as they stood: FAIL (1 of 1 rules broken" in decide(failing).line
    assert decide(failing).exit_code == code
    # without thresholds an interrupted run still exits as interrupted
    bare = {"run": {"interrupted": {"signal": signal, "at_s": 3}}, "total": scope()}
    assert decide(bare).exit_code == code and "no thresholds configured" in decide(bare).line
    assert decide({**bare, "run": {"interrupted": None}}).outcome == UNJUDGED


def test_a_latency_failure_on_an_unfit_generator_is_inconclusive(tmp_path: Path) -> None:
    s = judged(tmp_path, "[total]\np95_ms = 10", scope(p95=50.0), warnings=[BUSY])
    v = decide(s)
    assert (v.outcome, v.exit_code) == (INCONCLUSIVE, EXIT_INCONCLUSIVE)
    assert "total p95_ms 50.0 ms > 10.0 ms" in v.line and "unfit" in v.line
    # the same failure on a fit generator is a failure
    assert decide(judged(tmp_path, "[total]\np95_ms = 10", scope(p95=50.0))).outcome == FAILED


def test_errors_fail_whatever_the_generator(tmp_path: Path) -> None:
    s = judged(tmp_path, "[total]\nmax_failure_ratio = 0.01", scope(failures=100), warnings=[BUSY])
    assert decide(s).outcome == FAILED


def test_a_pass_on_an_unfit_generator_stays_a_pass(tmp_path: Path) -> None:
    s = judged(tmp_path, "[total]\np95_ms = 100", scope(), warnings=[BUSY])
    assert decide(s).outcome == PASSED


def test_too_few_samples_is_inconclusive_not_fail(tmp_path: Path) -> None:
    slo = f'[total]\np95_ms = 100\n[endpoints."{SEARCH}"]\np99_ms = 1'
    # 40 search requests: a p99 over them is their maximum; 5 beyond p99 needs 500
    s = judged(tmp_path, slo, scope(), {SEARCH: scope(requests=40, p95=900.0)})
    v = decide(s)
    assert (v.outcome, v.exit_code) == (INCONCLUSIVE, EXIT_INCONCLUSIVE)
    assert f"{SEARCH} p99_ms (40 of 500 requests)" in v.line
    # an endpoint nobody called is no evidence either way
    s = judged(tmp_path, slo, scope())
    assert decide(s).outcome == INCONCLUSIVE and "(0 of 500 requests)" in decide(s).line


def test_require_samples_judges_what_there_is_and_fails_without_it(tmp_path: Path) -> None:
    slo = f'[endpoints."{SEARCH}"]\np99_ms = 1000\nrequire_samples = true'
    # 40 requests: judged on them as they are (p99 100 ms <= 1000)
    assert decide(judged(tmp_path, slo, scope(), {SEARCH: scope(requests=40)})).outcome == PASSED
    s = judged(tmp_path, slo, scope(), {SEARCH: scope(requests=40, p95=900.0)})
    assert decide(s).outcome == FAILED  # p99 1800 ms
    s = judged(tmp_path, slo, scope())  # no search request at all
    assert decide(s).outcome == FAILED
    assert f"{SEARCH} p99_ms had no requests" in decide(s).line


def test_ratio_rules_fail_only_on_a_clear_breach(tmp_path: Path) -> None:
    slo = "[total]\nmax_acceptable_4xx_ratio = 0.2"

    def with_4xx(n: int, k: int) -> dict[str, Any]:
        total = scope(requests=n)
        total["acceptable"] = {"404": k}
        return total

    # 2 of 8 (25 %) could be chance from a 10 % API: no evidence either way
    assert decide(judged(tmp_path, slo, with_4xx(8, 2))).outcome == INCONCLUSIVE
    # 50 of 150 (33 %) is a breach; 15 of 150 (10 %) is a pass
    assert decide(judged(tmp_path, slo, with_4xx(150, 50))).outcome == FAILED
    assert decide(judged(tmp_path, slo, with_4xx(150, 15))).outcome == PASSED
    # a zero limit: any event breaks it
    zero = "[total]\nmax_acceptable_4xx_ratio = 0"
    assert decide(judged(tmp_path, zero, with_4xx(1000, 1))).outcome == FAILED


def test_min_tail_samples_is_settable(tmp_path: Path) -> None:
    slo = f'[endpoints."{SEARCH}"]\np99_ms = 1000\nmin_tail_samples = 0'
    s = judged(tmp_path, slo, scope(), {SEARCH: scope(requests=40)})
    assert decide(s).outcome == PASSED


def test_nothing_sent_is_inconclusive_and_no_rules_is_unjudged(tmp_path: Path) -> None:
    s = judged(tmp_path, "[total]\nmax_failure_ratio = 0.01", scope(requests=0))
    assert decide(s).outcome == INCONCLUSIVE
    v = decide({"run": {}, "total": scope(), "endpoints": {}})
    assert (v.outcome, v.exit_code) == (UNJUDGED, None)


@pytest.mark.parametrize(
    "failures,p95,warned,aborted,requests",
    list(itertools.product((0, 30, 1000), (5.0, 500.0), (False, True), (False, True), (40, 1000))),
)
def test_no_output_says_pass_for_a_run_that_exits_non_zero(
    tmp_path: Path, failures: int, p95: float, warned: bool, aborted: bool, requests: int
) -> None:
    failures = min(failures, requests)
    s = judged(
        tmp_path,
        "[total]\np95_ms = 100\nmax_failure_ratio = 0.01",
        scope(requests=requests, failures=failures, p95=p95),
        warnings=[BUSY] if warned else None,
        aborted="SLO abort: x" if aborted else None,
    )
    v = decide(s)
    md = render_markdown(s)
    assert f"**{v.line}**" in md  # summary.md quotes the same line
    says_pass = "VERDICT: PASS" in v.line
    assert says_pass == (v.exit_code == EXIT_PASSED)


EMFILE = "load generator: too many open files (EMFILE)"


def own_failures(requests: int, mine: int, target: int = 0) -> dict[str, Any]:
    """A total in which ``mine`` requests failed in the load generator itself and ``target``
    were failed by the target."""
    total = scope(requests=requests, failures=mine + target)
    total["failures_by_reason"] = {EMFILE: mine, **({"HTTP 500": target} if target else {})}
    return total


def test_requests_that_failed_in_the_generator_never_make_a_pass(tmp_path: Path) -> None:
    """They never reached the target: its failure ratio is judged without them, and the run is
    no PASS (the load applied was less than planned), nor a FAIL of the target."""
    slo = "[total]\nmax_failure_ratio = 0.01\np95_ms = 100"
    s = judged(tmp_path, slo, own_failures(1000, 300))
    ratio = next(r for r in s["thresholds"]["rules"] if r["metric"] == "max_failure_ratio")
    assert (ratio["observed"], ratio["samples"], ratio["status"]) == (0.0, 700, "pass")
    v = decide(s)
    assert (v.outcome, v.exit_code) == (INCONCLUSIVE, EXIT_INCONCLUSIVE)
    assert "300 of 1000 requests failed in the load generator itself" in v.line
    # the target's own failures still fail it: 100 of the 700 that reached it
    broken = decide(judged(tmp_path, slo, own_failures(1000, 300, target=100)))
    assert broken.outcome == FAILED and "max_failure_ratio 0.1429 > 0.0100" in broken.line
    # none left the generator: nothing is known of the target
    stuck = decide(judged(tmp_path, slo, own_failures(500, 500)))
    assert stuck.outcome == INCONCLUSIVE
    assert "no request left the load generator: all 500 failed in it" in stuck.line
    # all that left it failed: the target answered none
    dead = decide(judged(tmp_path, slo, own_failures(500, 200, target=300)))
    assert dead.outcome == FAILED and "no request got an answer" in dead.line


def test_a_windowed_failure_ratio_judges_the_target_too(tmp_path: Path) -> None:
    """A window's failure ratio leaves out the load generator's own failures, as the whole
    run's does: the target's failures in it fail the run, generator warning or not."""
    slo = "[total]\nmax_failure_ratio = 0.01\nwindow_s = 5"
    total = own_failures(1000, 300, target=100)
    warning = generator_failure_warning(total)
    assert warning is not None
    s = judged(tmp_path, slo, total, warnings=[warning])
    (rule,) = s["thresholds"]["rules"]
    assert rule["window"] is not None and rule["status"] == "fail", rule
    v = decide(s)
    assert (v.outcome, v.exit_code) == (FAILED, EXIT_FAILED), v.line
    assert "max_failure_ratio 0.1429 > 0.0100" in v.line
    # without the target's failures it is the generator's shortfall: INCONCLUSIVE, no PASS
    calm = own_failures(1000, 300)
    v = decide(judged(tmp_path, slo, calm, warnings=[generator_failure_warning(calm) or ""]))
    assert (v.outcome, v.exit_code) == (INCONCLUSIVE, EXIT_INCONCLUSIVE), v.line


def test_a_run_that_lost_a_worker_with_users_is_never_a_pass(tmp_path: Path) -> None:
    """From a lost worker on, the run applied less load than planned: its rules passing
    prove nothing of the planned load (INCONCLUSIVE, naming the worker); its rules failing
    still fail, and a worker lost with no user changes nothing."""
    slo = "[total]\np95_ms = 100\nmax_failure_ratio = 0.01"
    lost = {"id": "w-1", "at_s": 12.0, "users": 5}
    s = judged(tmp_path, slo, scope(), warnings=["worker w-1 was lost ..."])
    s["run"]["workers"] = {"expected": 2, "joined": [], "lost": [lost]}
    v = decide(s)
    assert (v.outcome, v.exit_code) == (INCONCLUSIVE, EXIT_INCONCLUSIVE), v.line
    assert "worker w-1 was lost 12 s into the run with 5 users" in v.line
    assert "the load applied was less than planned" in v.line
    s["run"]["workers"]["lost"] = [{**lost, "users": 0}]
    assert decide(s).outcome == PASSED
    s["run"]["workers"] = None  # a run without workers
    assert decide(s).outcome == PASSED
    broken = judged(tmp_path, slo, scope(requests=1000, failures=100), warnings=["lost"])
    broken["run"]["workers"] = {"expected": 2, "joined": [], "lost": [lost]}
    assert decide(broken).outcome == FAILED


def test_users_that_waited_too_long_to_start_make_no_pass(tmp_path: Path) -> None:
    """Users Locust counted that sent nothing for seconds (waiting for the master's data,
    say): the run applied less load than planned, so passing rules make no PASS."""
    slo = "[total]\np95_ms = 100\nmax_failure_ratio = 0.01"
    s = judged(tmp_path, slo, scope())
    s["run"]["workload"] = {"model": "closed", "users": 10, "stalled_starts": 5}
    v = decide(s)
    assert (v.outcome, v.exit_code) == (INCONCLUSIVE, EXIT_INCONCLUSIVE), v.line
    assert "5 users waited 5 s or more to start sending" in v.line
    s["run"]["workload"]["stalled_starts"] = 0
    assert decide(s).outcome == PASSED
    broken = judged(tmp_path, slo, scope(requests=1000, failures=100))
    broken["run"]["workload"] = {"model": "closed", "users": 10, "stalled_starts": 5}
    assert decide(broken).outcome == FAILED
