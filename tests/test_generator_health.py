"""The load generator's own health in a result: its CPU and the host's steal time."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from panacea_locust.event_handlers import PanaceaRun
from panacea_locust.report.compare import render_text
from panacea_locust.report.summary import generator_warnings, render_markdown
from panacea_locust.verdict.compare import compare_summaries
from panacea_locust.verdict.health import (
    CpuMeter,
    CpuTimes,
    GeneratorHealth,
    read_cpu_times,
    steal_percent,
    steal_ticks_per_cpu,
)

STAT = "cpu  100 5 50 800 10 0 5 30 0 0\ncpu0 50 2 25 400 5 0 2 15 0 0\nintr 1 2 3\n"


def test_cpu_times_come_from_the_first_line_of_proc_stat(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    stat.write_text(STAT)
    assert read_cpu_times(str(stat)) == CpuTimes(total=1000, steal=30)
    assert steal_ticks_per_cpu(str(stat)) == [15]  # each CPU's line, the total left out
    stat.write_text("intr 1 2 3\n")
    assert read_cpu_times(str(stat)) is None  # no cpu line: not Linux's format
    assert read_cpu_times(str(tmp_path / "missing")) is None


def test_real_proc_stat_is_read_where_there_is_one() -> None:
    if not Path("/proc/stat").exists():
        pytest.skip("no /proc/stat on this system")
    times = read_cpu_times()
    assert times is not None and times.total > 0 and 0 <= times.steal <= times.total


def test_steal_percent_is_the_stolen_share_of_all_cpu_time_between_readings() -> None:
    assert steal_percent(CpuTimes(1000, 30), CpuTimes(3000, 80)) == pytest.approx(2.5)
    assert steal_percent(CpuTimes(1000, 30), CpuTimes(1000, 30)) is None  # no time passed
    assert steal_percent(None, CpuTimes(1000, 30)) is None


@pytest.mark.parametrize(
    ("cpu", "flag", "steal", "expected"),
    [
        (60.0, False, 0.5, []),
        (85.0, False, 2.0, []),  # the limits themselves are fine
        (86.0, False, None, ["86 % CPU"]),
        (None, True, None, ["above 90 % CPU"]),  # Locust's own flag, no sample of ours
        (40.0, False, 2.6, ["2.6 % of this machine's CPU time"]),
        (97.0, True, 7.0, ["97 % CPU", "7.0 %"]),
    ],
)
def test_warnings_name_the_reason_and_the_figure(
    cpu: float | None, flag: bool, steal: float | None, expected: list[str]
) -> None:
    health = GeneratorHealth(cpu_warning=flag, steal_percent=steal)
    health.note_cpu(cpu)
    warnings = health.warnings()
    assert len(warnings) == len(expected)
    for warning, text in zip(warnings, expected, strict=True):
        assert text in warning
    assert health.as_dict()["warnings"] == warnings


def test_the_highest_cpu_sample_is_kept_and_workers_counted() -> None:
    health = GeneratorHealth()
    for percent, worker in ((30.0, "w1"), (91.5, "w2"), (50.0, "w1"), (None, "w3")):
        health.note_cpu(percent, worker)
    assert health.as_dict()["cpu_percent_max"] == 91.5
    assert health.as_dict()["workers_sampled"] == 2  # w3 sent no figure


def _summary(warnings: list[str], cpu: float | None = 42.0) -> dict:
    block = {"requests": 100, "failures": 0, "failure_ratio": 0.0, "rps": 10.0}
    block |= {"p50_ms": 10.0, "p90_ms": 12.0, "p95_ms": 13.0, "p99_ms": 15.0, "max_ms": 20.0}
    block |= {"min_ms": 1.0, "p999_ms": 19.0, "acceptable": {}, "failures_by_reason": {}}
    health = {"cpu_percent_max": cpu, "steal_percent": 0.4, "warnings": warnings}
    return {
        "run": {"id": "r", "label": "x", "load_generator": health},
        "total": block,
        "endpoints": {"/api/v1/logs/info": block},
    }


def test_summary_md_and_the_report_show_the_generator_and_its_warnings() -> None:
    calm = _summary([])
    assert generator_warnings(calm) == []
    md = render_markdown(calm)
    assert "- Load generator: CPU up to 42 %, steal time 0.4 %" in md
    assert "WARNING" not in md
    busy = _summary(["a Locust process reached 97 % CPU (over 85 %): ..."])
    assert generator_warnings(busy) == [
        "WARNING (load generator): a Locust process reached 97 % CPU (over 85 %): ..."
    ]
    assert "> WARNING (load generator): a Locust process reached 97 %" in render_markdown(busy)
    assert "CPU not sampled" in render_markdown(_summary([], cpu=None))


def test_summary_md_shows_the_event_loop_lag() -> None:
    summary = _summary([])
    assert "event-loop lag" not in render_markdown(summary)  # results from before the probe
    summary["run"]["load_generator"]["loop_lag_p99_ms"] = 3.25
    assert "- Load generator: CPU up to 42 %, steal time 0.4 %, event-loop lag p99 3.2 ms" in (
        render_markdown(summary)
    )


def test_compare_notes_a_run_whose_generator_was_not_fit() -> None:
    calm, busy = _summary([]), _summary(["the hypervisor took 6.0 % of ..."])
    comparison = compare_summaries(calm, busy, tolerance=0.1, noise_floor_ms=5.0)
    assert comparison.notes == ["current: load generator: the hypervisor took 6.0 % of ..."]
    assert "note, current: load generator: the hypervisor took 6.0 %" in render_text(comparison)
    assert comparison.to_dict()["notes"] == comparison.notes
    assert compare_summaries(calm, calm, 0.1, 5.0).notes == []
    del calm["run"]["load_generator"]  # results written before this field existed
    assert compare_summaries(calm, calm, 0.1, 5.0).notes == []


def test_cpu_meter_gives_the_share_between_samples() -> None:
    meter = CpuMeter(wall=100.0, cpu=10.0)
    assert meter.sample(105.0, 14.5) == pytest.approx(90.0)
    assert meter.sample(105.5, 14.6, min_window=1.0) is None  # too short: kept for later
    assert meter.sample(110.0, 15.0) == pytest.approx(10.0)  # from 105 s, not 105.5 s


@pytest.fixture
def running_test(new_run: Callable[..., PanaceaRun]) -> PanaceaRun:
    """A run on a local runner, its state as at the start of a test."""
    run = new_run()
    run.state.written = False
    run.cpu_meter.sample(time.monotonic(), time.process_time())
    return run


def _busy(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_the_local_process_samples_its_own_cpu_share(running_test: PanaceaRun) -> None:
    run = running_test
    _busy(0.3)  # a window of pure work
    run.note_cpu_sample()
    busy = run.state.health.cpu_percent_max
    assert busy is not None and busy > 50
    time.sleep(0.3)  # a window of rest: the highest sample stays
    run.note_cpu_sample()
    assert run.state.health.cpu_percent_max == busy


def test_workers_send_their_cpu_share_with_their_reports(running_test: PanaceaRun) -> None:
    on = running_test.environment.events
    data: dict = {}
    _busy(0.6)
    on.report_to_master.fire(client_id="w1", data=data)  # on a worker
    assert data["panacea_cpu"] > 50
    on.worker_report.fire(client_id="w1", data=data)  # on the master
    on.worker_report.fire(client_id="w2", data={"panacea_cpu": 12.0})
    health = running_test.state.health
    assert (health.cpu_percent_max, len(health.workers_sampled)) == (data["panacea_cpu"], 2)


def test_locusts_own_cpu_warning_reaches_the_result(running_test: PanaceaRun) -> None:
    run = running_test
    assert run.environment.runner is not None
    assert run.load_generator_health().cpu_warning is False
    run.environment.runner.cpu_warning_emitted = True  # Locust's flag: a sample went above 90 %
    health = run.load_generator_health()
    assert health.cpu_warning is True
    assert "CPU (over 85 %)" in health.warnings()[0]
