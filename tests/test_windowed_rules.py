"""Rules with ``window_s``: judged over every window of the run's timeline (the worst judged
window decides, and is named), on the same evidence as whole-run rules; the abort tracker
judges the most recent window; the verdict, the terminal table and summary.md show it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest

from panacea_locust.report.summary import render_markdown
from panacea_locust.report.thresholds import render_thresholds_text
from panacea_locust.verdict.decision import EXIT_FAILED, EXIT_INCONCLUSIVE, decide
from panacea_locust.verdict.histogram import TOTAL
from panacea_locust.verdict.thresholds import (
    FAIL,
    INSUFFICIENT,
    PASS,
    AbortTracker,
    Window,
    parse_slo,
)
from panacea_locust.verdict.timeline import Timeline

SEARCH, INFO = "/api/v1/logs/search", "/api/v1/logs/info"
KNOWN = (SEARCH, INFO)


def _second(second: int, collapse_at: int, per_second: int) -> list[tuple[str, float]]:
    """One second of requests: a fast API (5 ms) that becomes slow (400 ms) at
    ``collapse_at``; answers slow down too, so a slow second carries a quarter of them."""
    slow = second >= collapse_at
    count = per_second // 4 if slow else per_second
    return [(SEARCH if i % 2 else INFO, 400.0 + i if slow else 5.0 + i / 10) for i in range(count)]


def _collapsing_run(seconds: int = 30, collapse_at: int = 25, per_second: int = 80) -> Timeline:
    tl = Timeline(5.0)
    for second in range(seconds):
        for name, ms in _second(second, collapse_at, per_second):
            tl.at(second + 0.5).record(name, ms)
        tl.note_users(second + 0.5, 10)
    return tl


def _summary(tl: Timeline, end_s: float) -> dict[str, Any]:
    """The whole run as ``summary.json`` has it (the timeline's one all-covering window)."""
    (whole,) = tl.windows(end_s + 1e6, end_s)
    return {"run": {"id": "r", "duration_s": end_s}, **whole.stats}


def _windows(tl: Timeline, end_s: float) -> Callable[[float], Sequence[Window]]:
    return lambda window_s: tl.windows(window_s, end_s)


def _slo(text: str) -> Any:
    import tomllib

    return parse_slo(tomllib.loads(text), KNOWN)


def test_a_late_collapse_fails_a_windowed_rule_and_names_its_window() -> None:
    tl = _collapsing_run()
    slo = _slo("[total]\np95_ms = 100\nwindow_s = 5\n")
    whole = _slo("[total]\np95_ms = 100\n")
    summary = _summary(tl, 30.0)
    block = slo.evaluate(summary, _windows(tl, 30.0))
    (rule,) = block["rules"]
    assert rule["status"] == FAIL and block["passed"] is False
    assert rule["window"] == {"start_s": 25.0, "end_s": 30.0}
    assert rule["observed"] == pytest.approx(418.0, rel=1e-3)  # rank 95 of 400..419 x 5
    assert rule["samples"] == 100 and rule["needed"] == 100
    assert set(rule) == {
        "scope", "metric", "limit", "observed", "samples", "needed", "status", "passed", "window",
    }  # fmt: skip
    # the same limit over the whole run: 100 slow requests in 2100 do not move its p95
    (plain,) = whole.evaluate(summary)["rules"]
    assert plain["status"] == PASS and "window" not in plain


def test_the_worst_judged_window_decides_and_thin_windows_are_not_evidence() -> None:
    tl = _collapsing_run()
    tl.at(31.0).record(SEARCH, 9000.0)  # one very slow request alone at the end: no evidence
    slo = _slo("[total]\np95_ms = 100\nwindow_s = 5\n")
    (rule,) = slo.evaluate(_summary(tl, 32.0), _windows(tl, 32.0))["rules"]
    assert rule["window"] == {"start_s": 25.0, "end_s": 30.0}  # not 30-32 (1 request)
    assert rule["observed"] < 9000


def test_a_window_length_is_rounded_up_to_whole_intervals() -> None:
    tl = _collapsing_run()
    slo = _slo("[total]\np50_ms = 100\nwindow_s = 7\n")  # two 5 s intervals
    (rule,) = slo.evaluate(_summary(tl, 30.0), _windows(tl, 30.0))["rules"]
    assert rule["window"] == {"start_s": 20.0, "end_s": 30.0}
    assert rule["status"] == PASS  # 200 fast and 50 slow: the median is fast


def test_no_window_with_enough_evidence_is_insufficient() -> None:
    tl = _collapsing_run(per_second=4)  # 20 requests per 5 s: a p99 needs 500
    slo = _slo("[total]\np99_ms = 100\nwindow_s = 5\n")
    summary = _summary(tl, 30.0)
    summary["thresholds"] = block = slo.evaluate(summary, _windows(tl, 30.0))
    (rule,) = block["rules"]
    assert rule["status"] == INSUFFICIENT and rule["passed"] is None
    assert rule["samples"] == 20 and rule["window"]["start_s"] == 0.0  # the busiest window
    verdict = decide(summary)
    assert verdict.exit_code == EXIT_INCONCLUSIVE and "20 of 500 requests" in verdict.line


def test_require_samples_judges_windows_on_what_they_hold() -> None:
    tl = _collapsing_run(per_second=4)
    slo = _slo("[total]\np99_ms = 100\nwindow_s = 5\nrequire_samples = true\n")
    (rule,) = slo.evaluate(_summary(tl, 30.0), _windows(tl, 30.0))["rules"]
    assert rule["status"] == FAIL and rule["window"] == {"start_s": 25.0, "end_s": 30.0}


def test_ratio_rules_are_judged_per_window_on_their_interval() -> None:
    tl = _collapsing_run(seconds=20, collapse_at=99)
    for second in range(10, 15):  # a burst of errors in one 5 s stretch
        tl.at(second + 0.5).failures[SEARCH] += 20
    slo = _slo(f'[endpoints."{SEARCH}"]\nmax_failure_ratio = 0.05\nwindow_s = 5\n')
    (rule,) = slo.evaluate(_summary(tl, 20.0), _windows(tl, 20.0))["rules"]
    assert rule["status"] == FAIL and rule["window"] == {"start_s": 10.0, "end_s": 15.0}
    assert rule["observed"] == round(100 / 300, 6)  # 200 answered, 100 failed


def test_a_windowed_minimum_takes_the_slowest_window() -> None:
    tl = _collapsing_run()
    slo = _slo("[total]\nmin_rps = 50\nwindow_s = 5\n")
    (rule,) = slo.evaluate(_summary(tl, 30.0), _windows(tl, 30.0))["rules"]
    assert rule["status"] == FAIL and rule["observed"] == 20.0
    assert rule["window"] == {"start_s": 25.0, "end_s": 30.0}


def test_an_empty_run_has_no_window_and_no_evidence() -> None:
    slo = _slo("[total]\np95_ms = 100\nwindow_s = 5\n")
    (rule,) = slo.evaluate({"run": {}}, lambda _w: [])["rules"]
    assert rule["status"] == INSUFFICIENT and rule["window"] is None and rule["samples"] == 0


def test_without_a_timeline_the_whole_run_is_the_one_window() -> None:
    tl = _collapsing_run()
    slo = _slo("[total]\np95_ms = 100\nwindow_s = 5\n")
    (rule,) = slo.evaluate(_summary(tl, 30.0))["rules"]
    assert rule["status"] == PASS and rule["window"] == {"start_s": 0.0, "end_s": 30.0}


def test_a_failed_windowed_rule_fails_the_verdict_and_shows_its_window() -> None:
    tl = _collapsing_run()
    slo = _slo(f'[total]\np95_ms = 100\nwindow_s = 5\n[endpoints."{INFO}"]\np50_ms = 100\n')
    summary = _summary(tl, 30.0)
    summary["run"].update(label="collapse", users={}, load_generator=None)
    summary["endpoints"] = {  # the keys summary.md shows beside the rules' ones
        name: {**block, "p999_ms": None, "failures_by_reason": {}}
        for name, block in summary["endpoints"].items()
    }
    summary["total"] = {**summary["total"], "p999_ms": None}
    summary["thresholds"] = slo.evaluate(summary, _windows(tl, 30.0))
    verdict = decide(summary)
    assert verdict.exit_code == EXIT_FAILED and "total p95_ms" in verdict.line
    text = render_thresholds_text(summary["thresholds"])
    header = text.splitlines()[1]
    assert "worst window" in header
    assert "25-30 s" in text and "whole run" in text
    markdown = render_markdown(summary)
    assert "| scope | metric | limit | observed | worst window | result |" in markdown
    assert "| 25-30 s | **FAIL** |" in markdown and "| whole run | pass |" in markdown
    plain = _slo("[total]\np95_ms = 100\n").evaluate(summary)
    assert "window" not in render_thresholds_text(plain)


# --- the abort tracker watches the most recent window --------------------------------------------


def test_a_windowed_abort_rule_stops_within_seconds_of_a_collapse() -> None:
    """Second by second as the abort monitor sees it: fast for 25 s, then slow. The 5 s rule
    stops the run within seconds; the same limit over the whole run never does here."""
    windowed = AbortTracker(
        _slo("[total]\np95_ms = 100\nabort = true\nabort_grace_s = 1\nwindow_s = 5\n")
    )
    whole_run = AbortTracker(_slo("[total]\np95_ms = 100\nabort = true\nabort_grace_s = 1\n"))
    live = Timeline(5.0)
    stopped_at = None
    for now in range(1, 31):  # by 30 s, 100 slow requests in 2100: the whole run's p95 holds
        for name, ms in _second(now - 1, collapse_at=25, per_second=80):
            live.at(now - 0.5).record(name, ms)
        snapshot = _summary(live, float(now))

        def recent(window_s: float, now: float = float(now)) -> list[Window]:
            return [live.recent(window_s, now, [TOTAL])]

        assert whole_run.update(float(now), snapshot) is None
        reason = windowed.update(float(now), snapshot, recent)
        if reason and stopped_at is None:
            stopped_at = now
            assert "total p95_ms" in reason and f"over 20-{now} s" in reason
    assert stopped_at is not None and 25 < stopped_at <= 32, stopped_at


EMFILE = "load generator: too many open files (EMFILE)"


def test_a_window_judges_the_target_on_the_requests_that_left_the_load_generator() -> None:
    """Requests that failed in the load generator itself never reached the target: a
    windowed failure ratio leaves them out of both the ratio and its samples, as the
    whole-run rule does; a target's own failures in the same window still count."""
    tl = _collapsing_run(seconds=20, collapse_at=99)
    for second in range(10, 15):  # the generator ran out of descriptors for 5 s
        for _ in range(20):
            tl.at(second + 0.5).fail(SEARCH, EMFILE)
    slo = _slo(f'[endpoints."{SEARCH}"]\nmax_failure_ratio = 0.05\nwindow_s = 5\n')
    (rule,) = slo.evaluate(_summary(tl, 20.0), _windows(tl, 20.0))["rules"]
    assert rule["status"] == PASS, rule
    window = tl.windows(5.0, 20.0)[2].stats["endpoints"][SEARCH]
    assert window["failures"] == 100 and window["failures_by_reason"] == {EMFILE: 100}
    for second in range(10, 15):  # and now the target fails some as well
        for _ in range(4):
            tl.at(second + 0.5).fail(SEARCH, "HTTP 503")
    (rule,) = slo.evaluate(_summary(tl, 20.0), _windows(tl, 20.0))["rules"]
    assert rule["status"] == FAIL and rule["window"] == {"start_s": 10.0, "end_s": 15.0}
    assert rule["observed"] == round(20 / 220, 6)  # 200 answered, 20 failed in the target


def test_the_generators_own_failures_never_abort_a_run() -> None:
    """An abort rule judges the most recent window: failures of the load generator itself
    (out of descriptors) are named there and do not stop the run as the target's failing
    would (an abort is a FAIL); the target's own failures at the same rate do."""
    slo = _slo("[total]\nmax_failure_ratio = 0.05\nabort = true\nabort_grace_s = 1\nwindow_s = 5\n")
    for reason, stops in ((EMFILE, False), ("HTTP 503", True)):
        tracker, live, stopped = AbortTracker(slo), Timeline(5.0), None
        for now in range(1, 21):
            for name, ms in _second(now - 1, collapse_at=99, per_second=80):
                live.at(now - 0.5).record(name, ms)
            if now > 10:
                for _ in range(20):
                    live.at(now - 0.5).fail(INFO, reason)

            def recent(
                window_s: float, now: float = float(now), live: Timeline = live
            ) -> list[Window]:
                return [live.recent(window_s, now, [TOTAL])]

            stopped = stopped or tracker.update(float(now), _summary(live, float(now)), recent)
        window = live.recent(5.0, 20.0, [TOTAL]).stats["total"]
        assert window["failures_by_reason"] == {reason: 100}, window
        assert bool(stopped) == stops, (reason, stopped)
