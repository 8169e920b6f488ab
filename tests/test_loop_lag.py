"""The loop-lag probe: its arithmetic and warning (pure), the probe on a live event loop, the
lag of workers reaching the master, and a real Locust run whose blocked loop is flagged."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conftest import clean_env, run_panacea

from panacea_locust.report.summary import generator_warnings
from panacea_locust.verdict.decision import EXIT_INCONCLUSIVE, decide
from panacea_locust.verdict.health import (
    LOOP_LAG_LIMIT_MS,
    LOOP_LAG_MIN_SAMPLES,
    GeneratorHealth,
)
from panacea_locust.verdict.histogram import SparseHistogram

if TYPE_CHECKING:
    from panacea_locust.event_handlers import PanaceaRun
    from panacea_locust.reference_api.launcher import ReferenceAPIProcess


def _lag(*values: float) -> SparseHistogram:
    hist = SparseHistogram()
    for v in values:
        hist.record(v)
    return hist


# --- arithmetic and warning ------------------------------------------------------------------


def test_lag_of_several_processes_adds_up_to_one_p99_and_max() -> None:
    health = GeneratorHealth()
    assert health.as_dict()["loop_lag_p99_ms"] is None
    health.note_loop_lag(_lag(*[0.5] * 150))  # a calm worker
    health.note_loop_lag(_lag(*[1.0] * 46, 35.0, 35.0, 35.0, 80.0))  # one with hiccups
    out = health.as_dict()
    assert out["loop_lag_samples"] == 200
    assert out["loop_lag_p99_ms"] == pytest.approx(35.0, rel=1e-3)  # rank 198 of 200
    assert out["loop_lag_max_ms"] == 80.0
    assert out["warnings"] and "event loop woke 35 ms late at p99" in out["warnings"][0]


@pytest.mark.parametrize(
    ("lags", "warned"),
    [
        ([1.0] * 300, False),  # calm
        ([1.0] * 200 + [LOOP_LAG_LIMIT_MS] * 100, False),  # at the limit: fine
        ([1.0] * 200 + [LOOP_LAG_LIMIT_MS + 5] * 100, True),  # a third of wake-ups late
        ([200.0] * (LOOP_LAG_MIN_SAMPLES - 1), False),  # too few wake-ups to speak of a p99
        ([200.0] * LOOP_LAG_MIN_SAMPLES, True),
    ],
)
def test_a_late_loop_is_a_warning_once_its_p99_means_something(
    lags: list[float], warned: bool
) -> None:
    health = GeneratorHealth()
    health.note_loop_lag(_lag(*lags))
    assert bool(health.warnings()) is warned


def test_a_late_loop_makes_latency_failures_inconclusive() -> None:
    health = GeneratorHealth()
    health.note_loop_lag(_lag(*[60.0] * 200))
    summary = {
        "run": {"load_generator": health.as_dict()},
        "total": {"requests": 500, "failures": 0},
        "thresholds": {
            "rules": [
                {"scope": "total", "metric": "p95_ms", "limit": 10.0, "observed": 70.0,
                 "status": "fail", "passed": False},
            ]
        },
    }  # fmt: skip
    verdict = decide(summary)
    assert verdict.exit_code == EXIT_INCONCLUSIVE and "event loop woke 60 ms late" in verdict.line
    assert generator_warnings(summary)[0].startswith("WARNING (load generator): a Locust")


# --- the probe on a live loop ------------------------------------------------------------------


def test_the_probe_records_how_late_a_blocked_loop_woke_it(
    new_run: Callable[..., PanaceaRun],
) -> None:
    import gevent

    run = new_run()
    run.environment.events.test_start.fire(environment=run.environment)
    try:
        gevent.sleep(0.35)  # three calm wake-ups
        calm = run.loop_lag.count
        started = time.perf_counter()
        while time.perf_counter() - started < 0.25:  # a task that blocks the loop 250 ms
            pass
        gevent.sleep(0.25)
        # the probe was due at most 0.1 s into the block: it woke at least 150 ms late
        assert calm >= 2 and run.loop_lag.max_ms >= 140, run.loop_lag.max_ms
        health = run.load_generator_health()  # a local run hands its probe's lag on
        assert health.loop_lag.max_ms >= 140 and run.loop_lag.count == 0
        assert health.as_dict()["loop_lag_max_ms"] >= 140
    finally:
        run.environment.events.test_stop.fire(environment=run.environment)
    assert run._lag_probe is None  # stopped with the test


def test_workers_send_their_lag_with_their_reports(new_run: Callable[..., PanaceaRun]) -> None:
    run = new_run()
    run.state.written = False
    run.loop_lag = _lag(5.0, 45.0)
    on = run.environment.events
    data: dict = {}
    on.report_to_master.fire(client_id="w1", data=data)  # on a worker: drained
    assert data["panacea_loop_lag"] and run.loop_lag.count == 0
    on.report_to_master.fire(client_id="w1", data=(quiet := {}))
    assert quiet["panacea_loop_lag"] is None  # nothing new: nothing sent
    on.worker_report.fire(client_id="w1", data=data)  # on the master
    on.worker_report.fire(client_id="w2", data={"panacea_loop_lag": _lag(70.0).to_payload()})
    lag = run.state.health.loop_lag
    assert (lag.count, lag.max_ms) == (3, 70.0)


# --- a real run ------------------------------------------------------------------------------

_BLOCKING_LOCUSTFILE = '''
"""One user whose task blocks the event loop for 40 ms (a synchronous call in a task)."""
import time

from locust import User, constant, task

import panacea_locust.event_handlers  # noqa: F401  (results, the probe)


class Blocker(User):
    wait_time = constant(0.005)

    @task
    def block(self) -> None:
        started = time.perf_counter()
        while time.perf_counter() - started < 0.04:
            pass
        self.environment.events.request.fire(
            request_type="GET", name="/blocking", response_time=40.0, response_length=0,
            exception=None, context={},
        )
'''


@pytest.mark.e2e
def test_a_blocked_loop_on_workers_is_flagged_in_the_result(
    api: ReferenceAPIProcess, tmp_path: Path
) -> None:
    locustfile = tmp_path / "blocking.py"
    locustfile.write_text(_BLOCKING_LOCUSTFILE)
    run = run_panacea(
        ["--host", api.url, "-u", "2", "-r", "2", "-t", "12s", "--no-slo", "--processes", "2"]
        + ["--locustfile", str(locustfile)],
        cwd=tmp_path,
        env=clean_env(),
    )
    assert run.returncode == 0, run.stderr[-3000:]
    health = run.summary()["run"]["load_generator"]
    assert health["loop_lag_samples"] >= LOOP_LAG_MIN_SAMPLES, health
    assert health["loop_lag_p99_ms"] > LOOP_LAG_LIMIT_MS, health
    assert health["loop_lag_max_ms"] >= health["loop_lag_p99_ms"]
    assert any("event loop woke" in w for w in health["warnings"]), health
    assert "WARNING (load generator): a Locust process's event loop woke" in run.stderr
