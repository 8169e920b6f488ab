"""Stages of a shaped run (verdict/stages.py, report/stages.py): exact per-stage merges of the
timeline's intervals, each stage judged by the SLO's evidence rules, and the capacity named."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from panacea_locust.report.stages import render_stages_md
from panacea_locust.verdict.histogram import HistogramSet, LatencyHistogram
from panacea_locust.verdict.stages import (
    Interval,
    ShapeError,
    Span,
    build_stages,
    capacity,
    parse_stages,
)
from panacea_locust.verdict.thresholds import parse_slo

SEARCH = "/api/v1/logs/search"
ASK = "/api/v1/ai/ask-ai"
ENDPOINTS = (SEARCH, ASK)
INTERVAL_S = 5.0


def step_plan(users: Sequence[int], stage_s: float = 30.0) -> list[dict[str, Any]]:
    """What ``shapes.describe_stages`` gives for a step shape (the keys stages.py reads)."""
    return [
        {"index": i, "start_s": (i - 1) * stage_s, "end_s": i * stage_s, "users": u}
        for i, u in enumerate(users, 1)
    ]


def interval(
    start: float,
    values: dict[str, list[float]],
    failures: dict[str, int] | None = None,
    acceptable: dict[str, dict[str, int]] | None = None,
    length: float = INTERVAL_S,
) -> Span:
    answered = HistogramSet()
    for name, times in values.items():
        for ms in times:
            answered.record(name, ms)
    return start, start + length, Interval(answered, failures or {}, acceptable or {})


def rising_run(
    tails: Sequence[float], per_interval: int = 40, stage_s: float = 30.0, start_s: float = 0.0
) -> list[Span]:
    """A step run: each stage ``stage_s`` long in 5 s intervals; per interval, ``per_interval``
    requests split over two endpoints, 90 % fast (20-40 ms) and 10 % at the stage's tail
    latency, so each stage's p95 is exactly its tail."""
    intervals = []
    t = start_s
    for tail in tails:
        for _ in range(int(stage_s / INTERVAL_S)):
            fast = [20.0 + (i % 21) for i in range(per_interval * 9 // 10)]
            slow = [float(tail)] * (per_interval - len(fast))
            times = fast + slow
            intervals.append(interval(t, {SEARCH: times[0::2], ASK: times[1::2]}))
            t += INTERVAL_S
    return intervals


def slo(data: dict[str, Any]):
    return parse_slo(data, ENDPOINTS)


# --- measuring -------------------------------------------------------------------------------


def test_a_stage_is_the_exact_merge_of_its_intervals_not_an_average() -> None:
    # one interval of 100 fast requests, one of 100 slow ones: the stage's p95 is a slow
    # request (the 190th of 200), which averaging the intervals' p95 would never give
    fast = [float(10 + i % 7) for i in range(100)]
    slow = [float(500 + i) for i in range(100)]
    plan = step_plan([10], stage_s=10.0)
    got = build_stages(plan, [interval(0, {SEARCH: fast}), interval(5, {SEARCH: slow})])
    direct = LatencyHistogram()
    for ms in fast + slow:
        direct.record(ms)
    total = got[0]["total"]
    assert total["p95_ms"] == round(direct.percentile(95), 3)
    assert 589 <= total["p95_ms"] < 590  # the 190th value, 589 ms, at 3 significant digits
    assert total["p50_ms"] == round(direct.percentile(50), 3)
    assert total["max_ms"] == 599.0
    assert total["requests"] == 200 and total["failures"] == 0
    assert total["rps"] == 20.0  # 200 requests over the 10 s the intervals cover


def test_stage_record_shape() -> None:
    got = build_stages(step_plan([5, 10]), rising_run([100, 200]))
    assert [s["index"] for s in got] == [1, 2]
    first = got[0]
    assert set(first) == {"index", "start_s", "end_s", "users", "total"}  # no SLO: no "slo"
    assert (first["start_s"], first["end_s"], first["users"]) == (0.0, 30.0, 5)
    assert set(first["total"]) == {
        "requests", "failures", "failure_ratio", "failures_by_reason", "rps",
        "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms",
    }  # fmt: skip
    assert [s["total"]["p95_ms"] for s in got] == [100.0, 200.0]
    assert [s["total"]["requests"] for s in got] == [240, 240]
    json.dumps(got)  # summary.json material


def test_intervals_go_to_the_stage_their_middle_falls_in() -> None:
    plan = step_plan([1, 2, 3], stage_s=10.0)
    intervals = [
        interval(0, {SEARCH: [1.0]}),
        interval(5, {SEARCH: [2.0]}, length=4.0),  # 5..9: middle 7, stage 1
        interval(9, {SEARCH: [3.0]}, length=4.0),  # 9..13: middle 11, stage 2
        interval(13, {SEARCH: [4.0]}, length=7.0),  # 13..20: middle 16.5, stage 2
        interval(30, {SEARCH: [99.0]}),  # after the last stage (shutdown): no stage
    ]
    got = build_stages(plan, intervals)
    # stage 3 was never reached: not listed
    assert [(s["index"], s["total"]["requests"], s["total"]["max_ms"]) for s in got] == [
        (1, 2, 2.0),
        (2, 2, 4.0),
    ]
    assert got[0]["total"]["rps"] == round(2 / 9, 3)


def test_failures_and_acceptable_4xx_count_as_requests() -> None:
    plan = step_plan([3], stage_s=5.0)
    got = build_stages(
        plan,
        [
            interval(
                0,
                {SEARCH: [10.0] * 8, ASK: [50.0] * 2},
                failures={ASK: 2, "/api/v1/events": 1},
                acceptable={SEARCH: {"404": 3}},
            )
        ],
    )
    total = got[0]["total"]
    assert (total["requests"], total["failures"]) == (13, 3)
    assert total["failure_ratio"] == round(3 / 13, 6)
    assert total["max_ms"] == 50.0  # failed requests' times are not in the percentiles


def test_a_total_entry_of_the_histograms_is_not_counted_twice() -> None:
    hist = LatencyHistogram()
    hist.record(5.0)
    both = {SEARCH: hist, "total": hist}
    got = build_stages(step_plan([1], 5.0), [(0.0, 5.0, Interval(both))])
    assert got[0]["total"]["requests"] == 1


def test_arrival_rate_stages_carry_their_target_rate() -> None:
    plan = [{"index": 1, "start_s": 0.0, "end_s": 5.0, "target_rps": 20.0}]
    got = build_stages(plan, [interval(0, {SEARCH: [1.0]})])
    assert got[0]["target_rps"] == 20.0 and "users" not in got[0]


def test_the_timelines_spans_feed_the_stages_as_they_are() -> None:
    """``Timeline.spans`` (sparse histograms, Counters) gives what plain dense histograms of
    the same requests give: the lead's call ``build_stages(plan, timeline.spans(end_s))``."""
    from panacea_locust.verdict.timeline import Timeline

    timeline = Timeline(INTERVAL_S)
    plain = []
    for start in (0.0, 5.0, 10.0, 15.0):
        spot = timeline.at(start)
        values: dict[str, list[float]] = {}
        for k in range(30):
            name, ms = (SEARCH if k % 3 else ASK), float(5 + (start * 7 + k * 13) % 600)
            values.setdefault(name, []).append(ms)
            spot.record(name, ms)
        spot.failures[ASK] += 2
        spot.acceptable[SEARCH]["404"] += 3
        plain.append(interval(start, values, {ASK: 2}, {SEARCH: {"404": 3}}))
    plan = step_plan([2, 4], stage_s=10.0)
    rules = slo({"total": {"p50_ms": 5000, "max_acceptable_4xx_ratio": 0.5}})
    from_timeline = build_stages(plan, timeline.spans(20.0), rules, ENDPOINTS)
    assert from_timeline == build_stages(plan, plain, rules, ENDPOINTS)
    assert [s["total"]["requests"] for s in from_timeline] == [64, 64]
    assert [s["slo"]["status"] for s in from_timeline] == ["held", "held"]


# --- judging and capacity --------------------------------------------------------------------

P95_800 = {"total": {"p95_ms": 800}}


def test_capacity_of_a_step_run_where_p95_rises_with_users() -> None:
    stages = build_stages(
        step_plan([20, 40, 60, 80]), rising_run([300, 612, 812, 1500]), slo(P95_800)
    )
    assert [s["slo"]["status"] for s in stages] == ["held", "held", "broke", "broke"]
    assert stages[2]["slo"]["broken"] == ["p95 was 812 ms > 800"]
    got = capacity(stages)
    assert got == {
        "held": {"index": 2, "users": 40},
        "broke": {"index": 3, "users": 60, "rules": ["p95 was 812 ms > 800"]},
        "unjudged": [],
        "text": "held 40 users; at 60 users p95 was 812 ms > 800",
    }


def test_a_stage_without_evidence_neither_holds_nor_breaks() -> None:
    # stage 1 is short: 60 requests, too few for a p95 (100 needed), even though its p95
    # (900 ms) is above the limit
    intervals = rising_run([900], stage_s=10.0, per_interval=30)
    intervals += rising_run([300, 900], start_s=10.0)
    plan = [{"index": 1, "start_s": 0.0, "end_s": 10.0, "users": 5}]
    plan += [
        {"index": 2, "start_s": 10.0, "end_s": 40.0, "users": 10},
        {"index": 3, "start_s": 40.0, "end_s": 70.0, "users": 20},
    ]
    stages = build_stages(plan, intervals, slo(P95_800))
    assert stages[0]["slo"] == {
        "status": "insufficient",
        "broken": [],
        "unjudged": ["p95 (60 of 100 requests)"],
    }
    got = capacity(stages)
    assert got is not None
    assert got["held"] == {"index": 2, "users": 10}
    assert got["broke"] == {"index": 3, "users": 20, "rules": ["p95 was 900 ms > 800"]}
    assert got["unjudged"] == [{"index": 1, "users": 5}]
    assert got["text"] == (
        "held 10 users; at 20 users p95 was 900 ms > 800; "
        "too little evidence to judge stage 1 (5 users)"
    )


def test_a_stage_holds_only_when_every_rule_passed() -> None:
    # the p95 passes, the p99 lacks evidence (500 needed): the stage does not hold
    rules = slo({"total": {"p95_ms": 800, "p99_ms": 900}})
    stages = build_stages(step_plan([10]), rising_run([300]), rules)
    assert stages[0]["slo"]["status"] == "insufficient"
    assert stages[0]["slo"]["unjudged"] == ["p99 (240 of 500 requests)"]
    got = capacity(stages)
    assert got is not None and got["held"] is None and got["broke"] is None
    assert got["text"] == (
        "no stage had the evidence to hold or break the rules; "
        "too little evidence to judge stage 1 (10 users)"
    )


def test_endpoint_and_ratio_rules_name_what_broke() -> None:
    rules = slo(
        {
            "total": {"max_failure_ratio": 0.01},
            "endpoints": {ASK: {"p95_ms": 500}, SEARCH: {"p95_ms": 5000}},
        }
    )
    # 360 requests a stage: enough for a clean stage to prove a 1 % failure ratio
    intervals = rising_run([300, 700], per_interval=60)
    # the second stage also fails a quarter of its requests
    intervals = [
        (start, end, counts if start < 30 else Interval(counts.answered, {ASK: 20}))
        for start, end, counts in intervals
    ]
    stages = build_stages(step_plan([5, 50]), intervals, rules)
    assert stages[0]["slo"]["status"] == "held"
    assert stages[1]["slo"]["broken"] == [
        "failure ratio was 25 % > 1 %",
        f"{ASK} p95 was 700 ms > 500",
    ]
    got = capacity(stages)
    assert got is not None
    assert got["text"] == (
        f"held 5 users; at 50 users failure ratio was 25 % > 1 %, {ASK} p95 was 700 ms > 500"
    )


def test_min_rps_is_not_judged_per_stage_and_require_samples_does_not_apply() -> None:
    # a step starts low by design: 8 req/s is below min_rps 100, but that is the whole run's
    # rule; require_samples would judge a stage on 240 requests' p99: not per stage
    rules = slo({"total": {"min_rps": 100, "p95_ms": 800, "p99_ms": 900, "require_samples": True}})
    stages = build_stages(step_plan([10]), rising_run([300]), rules)
    assert stages[0]["total"]["rps"] == 8.0
    assert stages[0]["slo"]["status"] == "insufficient"
    assert stages[0]["slo"]["broken"] == []
    assert stages[0]["slo"]["unjudged"] == ["p99 (240 of 500 requests)"]
    only_rps = build_stages(step_plan([10]), rising_run([300]), slo({"total": {"min_rps": 100}}))
    assert only_rps[0]["slo"] == {"status": "insufficient", "broken": [], "unjudged": []}
    assert capacity(only_rps) == {
        "held": None,
        "broke": None,
        "unjudged": [{"index": 1, "users": 10}],
        "text": "no rule of the SLO is judged per stage (min_rps judges the whole run)",
    }


def test_spike_capacity() -> None:
    plan = [
        {"index": 1, "start_s": 0.0, "end_s": 30.0, "users": 5},
        {"index": 2, "start_s": 30.0, "end_s": 60.0, "users": 50},
        {"index": 3, "start_s": 60.0, "end_s": 90.0, "users": 5},
    ]
    broke = capacity(build_stages(plan, rising_run([200, 1200, 250]), slo(P95_800)))
    assert broke is not None
    assert broke["text"] == "held 5 users; at 50 users p95 was 1200 ms > 800"
    assert broke["held"] == {"index": 1, "users": 5}  # held before the first break
    held = capacity(build_stages(plan, rising_run([200, 700, 250]), slo(P95_800)))
    assert held is not None
    # nothing broke: the highest load that held, not the last stage
    assert held["held"] == {"index": 2, "users": 50} and held["broke"] is None
    assert held["text"] == "held 50 users, no stage broke the rules"


def test_first_stage_breaks() -> None:
    got = capacity(build_stages(step_plan([1, 2]), rising_run([900, 950]), slo(P95_800)))
    assert got is not None and got["held"] is None
    assert got["text"] == "no stage held; at 1 user p95 was 900 ms > 800"


def test_no_slo_no_capacity() -> None:
    assert capacity(build_stages(step_plan([5]), rising_run([100]))) is None
    assert capacity([]) is None


def test_stage_list_syntax_errors_name_their_source() -> None:
    with pytest.raises(ShapeError) as err:
        parse_stages("30s:5,10:30s", source="--stages")
    assert str(err.value) == (
        "--stages: stage 1 '30s:5' is not USERS[@RATE]:DURATION (e.g. 50@5:2m, durations "
        "like 90s, 5m, 1h); users come first: 5:30s"
    )
    with pytest.raises(ShapeError, match=r"^LOAD_SHAPE_STAGES: stage 2 'x'"):
        parse_stages("1:1s,x")


# --- Markdown --------------------------------------------------------------------------------


def test_markdown_of_stages_and_capacity() -> None:
    stages = build_stages(step_plan([20, 40, 60]), rising_run([300, 612, 812]), slo(P95_800))
    summary = {"stages": stages, "capacity": capacity(stages)}
    lines = render_stages_md(summary)
    assert lines[:5] == [
        "",
        "## Stages (times in ms)",
        "",
        "| stage | seconds | load | reqs | fails | rps | p50 | p95 | p99 | max | SLO |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    assert lines[5].startswith("| 1 | 0–30 | 20 users | 240 | 0 | 8.00 | ")
    assert lines[5].endswith(" | 300.0 | held |")
    assert lines[7].endswith("| **broke**: p95 was 812 ms > 800 |")
    assert lines[-1] == "**Capacity**: held 40 users; at 60 users p95 was 812 ms > 800"


def test_markdown_without_slo_or_stages() -> None:
    stages = build_stages(step_plan([5]), rising_run([100]))
    lines = render_stages_md({"stages": stages, "capacity": None})
    assert lines[3] == "| stage | seconds | load | reqs | fails | rps | p50 | p95 | p99 | max |"
    assert not any("Capacity" in line for line in lines)
    assert render_stages_md({"stages": []}) == []
    assert render_stages_md({}) == []
    insufficient = build_stages(step_plan([5], 10.0), rising_run([100], stage_s=10.0), slo(P95_800))
    assert render_stages_md({"stages": insufficient})[-1].endswith(
        "| not judged: p95 (80 of 100 requests) |"
    )


# --- layers ----------------------------------------------------------------------------------


def test_stages_and_the_run_command_load_neither_locust_nor_gevent() -> None:
    """Pure like the rest of verdict/ and report/; and ``panacea-locust run`` checks
    ``--stages`` without loading Locust (which would patch the standard library of the
    process that starts and signals the locust child)."""
    from test_layers import modules_after_importing, of_packages

    names = (
        "panacea_locust.verdict.stages",
        "panacea_locust.report.stages",
        "panacea_locust.cli.run",
    )
    loaded = modules_after_importing(*names)
    assert set(names) <= set(loaded)
    assert of_packages(loaded, "locust", "gevent") == []
    # the check can fail: shapes.py is Locust glue
    assert "locust" in of_packages(modules_after_importing("panacea_locust.shapes"), "locust")


def test_a_stage_judges_the_target_on_the_requests_that_left_the_load_generator() -> None:
    """A stage whose failures all happened in the load generator (out of descriptors) is
    not read as a target breaking its failure ratio; its failures keep their reasons."""
    emfile = "load generator: too many open files (EMFILE)"
    rules = slo({"total": {"max_failure_ratio": 0.01}})
    intervals = rising_run([300, 300], per_interval=60)
    intervals = [
        (start, end, counts if start < 30 else
         Interval(counts.answered, {ASK: 20}, reasons={ASK: {emfile: 20}}))
        for start, end, counts in intervals
    ]  # fmt: skip
    stages = build_stages(step_plan([5, 50]), intervals, rules)
    assert stages[1]["slo"]["status"] == "held", stages[1]["slo"]
    assert stages[1]["total"]["failures"] == 120
    assert stages[1]["total"]["failures_by_reason"] == {emfile: 120}
    # the same failures from the target break the stage
    intervals = [
        (start, end, Interval(c.answered, c.failures, reasons={ASK: {"HTTP 503": 20}}))
        if start >= 30 else (start, end, c)
        for start, end, c in intervals
    ]  # fmt: skip
    stages = build_stages(step_plan([5, 50]), intervals, rules)
    assert stages[1]["slo"]["broken"] == ["failure ratio was 25 % > 1 %"]
