"""The open model's pure parts: the arrival schedule, the plan, the counts and the rules."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from panacea_locust.open_model.schedule import (
    ArrivalSchedule,
    RateStage,
    ScheduleError,
    constant_rate,
    expected_arrivals,
    open_plan_of,
    parse_arrival_stages,
    plan,
    split_shares,
)
from panacea_locust.verdict.decision import decide
from panacea_locust.verdict.thresholds import SLOError, load_slo
from panacea_locust.verdict.workload import (
    ArrivalCounts,
    generator_lag_warning,
    workload_record,
)


def test_poisson_arrivals_come_at_the_rate_within_poisson_noise() -> None:
    for seed in range(5):
        times = list(ArrivalSchedule([RateStage(40, 40, 500)], seed=seed).arrivals())
        expected = 40 * 500
        assert abs(len(times) - expected) < 4 * math.sqrt(expected)
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        mean = sum(gaps) / len(gaps)
        cv = math.sqrt(sum((g - mean) ** 2 for g in gaps) / len(gaps)) / mean
        assert 0.95 < cv < 1.05  # exponential gaps: as variable as their mean


def test_uniform_arrivals_are_evenly_spaced_and_exact() -> None:
    times = list(ArrivalSchedule([RateStage(10, 10, 3)], "uniform").arrivals())
    assert len(times) == 30
    assert all(abs(b - a - 0.1) < 1e-9 for a, b in zip(times, times[1:], strict=False))


def test_a_ramp_follows_its_integrated_rate() -> None:
    stages = parse_arrival_stages("0..100:10s,100:5s")
    assert expected_arrivals(stages, 10) == pytest.approx(500)
    assert expected_arrivals(stages, 15) == pytest.approx(1000)
    times = list(ArrivalSchedule(stages, "uniform").arrivals())
    assert len(times) == 1000
    # the n-th arrival of a ramp from 0: n = 5 t^2, t = sqrt(n / 5)
    assert times[124] == pytest.approx(math.sqrt(125 / 5))


def test_shares_of_a_poisson_process_add_up_to_the_rate() -> None:
    stages = [RateStage(30, 30, 400)]
    counts = [
        len(list(ArrivalSchedule(stages, share=1 / 3, phase=i / 3, seed=i).arrivals()))
        for i in range(3)
    ]
    assert abs(sum(counts) - 12_000) < 4 * math.sqrt(12_000)
    assert all(abs(c - 4000) < 4 * math.sqrt(4000) for c in counts)
    uniform = sorted(
        t for i in range(3)
        for t in ArrivalSchedule(stages, "uniform", share=1 / 3, phase=i / 3).arrivals()
    )  # fmt: skip
    assert len(uniform) == 12_000
    assert max(b - a for a, b in zip(uniform, uniform[1:], strict=False)) < 1 / 30 + 1e-6


def test_a_restarted_schedule_continues_from_where_it_was() -> None:
    times = list(ArrivalSchedule([RateStage(20, 20, 10)], "uniform").arrivals(from_s=4.0))
    assert times[0] >= 4.0 and len(times) == 120


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "must be a comma-separated list"),
        ("10", "stage 1 '10' is not RATE:DURATION"),
        ("10:0s", "must last more than 0 seconds"),
        ("0:10s", "sends nothing"),
        ("9999999:1m", "up to 1,000,000"),
        ("10..x:1m", "is not RATE:DURATION"),
    ],
)
def test_bad_stages_give_one_line(spec: str, message: str) -> None:
    with pytest.raises(ScheduleError) as info:
        parse_arrival_stages(spec)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_the_plan_checks_rate_users_and_the_stages_plan() -> None:
    assert open_plan_of(None, "", "poisson", None, 100) is None
    p = open_plan_of(40, "", "poisson", None, 100)
    assert p is not None and p.max_users == 100 and p.unbounded
    with pytest.raises(ScheduleError, match="not both"):
        open_plan_of(40, "10:1m", "poisson", None, 100)
    with pytest.raises(ScheduleError, match="above LOCUST_MAX_USERS"):
        open_plan_of(40, "", "poisson", 500, 100)
    with pytest.raises(ScheduleError, match="above 0"):
        open_plan_of(-1, "", "poisson", None, 100)
    with pytest.raises(ScheduleError):
        constant_rate(math.inf)
    stages = parse_arrival_stages("10:30s,10..50:20s")
    assert plan(stages) == [
        {"index": 1, "start_s": 0.0, "end_s": 30.0, "target_rps": 10.0},
        {"index": 2, "start_s": 30.0, "end_s": 50.0, "target_rps": 30.0},
    ]


def test_arrival_counts_merge_across_processes_exactly() -> None:
    rng = random.Random(1)
    master, whole, peaks = ArrivalCounts(), ArrivalCounts(), {}
    for worker in ("w1", "w2"):
        part = ArrivalCounts(scheduled=100, sent=90, dropped=10, users_peak=7)
        for _ in range(90):
            ms = rng.uniform(0, 50)
            part.lag.record(ms)
            whole.lag.record(ms)
        master.merge(part.drain(), peaks, worker)
        assert part.scheduled == 0 and part.lag.count == 0  # drained
    assert (master.scheduled, master.sent, master.dropped) == (200, 180, 20)
    assert master.users_peak == 14
    assert master.lag.percentile(99) == whole.lag.percentile(99)
    record = workload_record(master, "poisson", 40.0, 5.0, 50)
    assert record["dropped_ratio"] == pytest.approx(20 / 200)
    assert record["achieved_rps"] == 36.0 and record["model"] == "open"


def test_a_late_scheduler_is_a_load_generator_warning() -> None:
    assert generator_lag_warning({"scheduler_late_p99_ms": 3.0}) is None
    assert "arrival scheduler" in (generator_lag_warning({"scheduler_late_p99_ms": 45.0}) or "")


def _open_summary(dropped: int, sent: int, lag_p99: float) -> dict:
    workload = {"model": "open", "scheduled": sent + dropped, "sent": sent, "dropped": dropped,
                "dropped_ratio": dropped / (sent + dropped), "lag_p99_ms": lag_p99}  # fmt: skip
    total = {"requests": sent, "failures": 0, "failure_ratio": 0.0, "acceptable": {}}
    return {"run": {"workload": workload, "load_generator": {"warnings": []}},
            "total": total, "endpoints": {}}  # fmt: skip


def test_the_open_model_rules_judge_drops_and_lag(tmp_path: Path) -> None:
    path = tmp_path / "slo.toml"
    path.write_text("[total]\nmax_dropped_ratio = 0.01\nlag_p99_ms = 50\n")
    slo = load_slo(path, [])
    bad = _open_summary(dropped=300, sent=2000, lag_p99=400.0)
    bad["thresholds"] = slo.evaluate(bad)
    verdict = decide(bad)
    assert verdict.outcome == "FAIL" and verdict.exit_code == 3
    assert "max_dropped_ratio" in verdict.line and "lag_p99_ms 400.0 ms > 50.0 ms" in verdict.line
    good = _open_summary(dropped=0, sent=2000, lag_p99=2.0)
    good["thresholds"] = slo.evaluate(good)
    assert decide(good).outcome == "PASS"
    closed = {"run": {"workload": {"model": "closed", "users": 5}}, "total": {"requests": 900},
              "endpoints": {}}  # fmt: skip
    assert {r["status"] for r in slo.evaluate(closed)["rules"]} == {"insufficient"}


def test_open_model_rules_belong_in_total(tmp_path: Path) -> None:
    path = tmp_path / "slo.toml"
    path.write_text('[endpoints."/api/v1/logs/search"]\nmax_dropped_ratio = 0.01\n')
    with pytest.raises(SLOError, match="belongs in \\[total\\]"):
        load_slo(path, ["/api/v1/logs/search"])


def test_the_rate_is_split_by_the_users_each_worker_runs() -> None:
    assert split_shares({"a": 10, "b": 10}) == {"a": 0.5, "b": 0.5}
    assert split_shares({"a": 15, "b": 5}) == {"a": 0.75, "b": 0.25}
    assert split_shares({"a": 20, "b": 0}) == {"a": 1.0, "b": 0.0}  # a worker just joined
    assert split_shares({"a": 0}) == {}
