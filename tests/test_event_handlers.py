"""``PanaceaRun``: one per Locust environment, its listeners on that environment's events and
its state its own, so two environments in one process never share counts, indexes or tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from time import perf_counter
from typing import Any

import gevent
import pytest
from locust.env import Environment
from locust.event import Events

from panacea_locust.base_user import PanaceaAPIUser
from panacea_locust.event_handlers import RUN_DIR_ENV, PanaceaRun
from panacea_locust.open_model.dispatcher import ArrivalDispatcher
from panacea_locust.open_model.schedule import ArrivalSchedule, RateStage
from panacea_locust.verdict.tally import RunTally

NAME = "/api/v1/logs/info"


def _request(run: PanaceaRun, response_time: float = 5.0) -> None:
    """What Locust's clients fire after each request."""
    run.environment.events.request.fire(
        request_type="GET", name=NAME, response_time=response_time, response_length=2,
        response=None, context={}, exception=None, start_time=0.0, url=NAME,
    )  # fmt: skip


def _count(run: PanaceaRun) -> int:
    hist = run.context.tally.histograms.get(NAME)
    return hist.count if hist else 0


def test_a_request_is_counted_only_by_its_own_run(new_run: Callable[..., PanaceaRun]) -> None:
    a, b = new_run(), new_run()
    assert a.context is not b.context and a.allocator is not b.allocator
    _request(a)
    _request(a)
    _request(b)
    assert (_count(a), _count(b)) == (2, 1)
    # Locust's own statistics, fed by each runner's listener, agree
    assert (a.environment.stats.total.num_requests, b.environment.stats.total.num_requests) == (
        2,
        1,
    )


def test_a_new_test_on_one_run_leaves_the_other_alone(new_run: Callable[..., PanaceaRun]) -> None:
    a, b = new_run(), new_run()
    a.environment.events.test_start.fire(environment=a.environment)
    b.environment.events.test_start.fire(environment=b.environment)
    b_started = b.state.started_at
    _request(a)
    _request(b)
    b.context.tally.user_started("LightUser", False)
    a.environment.events.test_start.fire(environment=a.environment)  # the web UI's next test
    assert (a.tests_started, b.tests_started) == (2, 1)
    assert _count(a) == 0  # a new test is a new run
    assert _count(b) == 1 and b.context.tally.users_by_type["LightUser"] == 1
    assert b.state.started_at == b_started and not b.state.written
    a.environment.events.reset_stats.fire()  # the web UI's Reset Stats, on one run only
    assert _count(b) == 1


def test_users_reach_their_own_run_through_their_environment(
    new_run: Callable[..., PanaceaRun],
) -> None:
    class User(PanaceaAPIUser):
        host = "http://127.0.0.1:9"  # no request is sent

    a, b = new_run(user_classes=[User]), new_run(user_classes=[User])
    users = [User(a.environment), User(a.environment), User(b.environment)]
    for user in users:
        user.on_start()
    assert [u.index for u in users] == [0, 1, 0]  # each run numbers its own users
    assert users[0].run_context is a.context and users[2].run_context is b.context
    assert a.context.tally.users_by_type["User"] == 2
    assert b.context.tally.users_by_type["User"] == 1


def test_a_run_is_found_on_its_environment_and_only_there(
    new_run: Callable[..., PanaceaRun],
) -> None:
    run = new_run()
    assert PanaceaRun.of(run.environment) is run
    with pytest.raises(LookupError, match="no PanaceaRun"):
        PanaceaRun.of(Environment(events=Events()))
    with pytest.raises(RuntimeError, match="already has a PanaceaRun"):
        PanaceaRun(run.environment)


def test_results_are_written_after_the_runners_own_quitting_listener(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Locust fires ``quitting`` in reverse; a master's runner (created before ``init``) sends
    its workers ``quit`` and waits for their last reports there, so we must write after it."""
    run_dir = tmp_path / "run"
    monkeypatch.setenv(RUN_DIR_ENV, str(run_dir))
    seen: list[bool] = []

    def runners_own(**_: Any) -> None:
        seen.append((run_dir / "summary.json").exists())

    env = Environment(events=Events())
    env.events.quitting.add_listener(runners_own)  # as a runner does when created
    env.create_local_runner()
    run = PanaceaRun(env)  # at init
    env.events.test_start.fire(environment=env)
    _request(run, 7.0)
    env.events.quitting.fire(environment=env, reverse=True)  # as Locust's shutdown does
    assert seen == [False]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["endpoints"][NAME]["requests"] == 1
    assert summary["total"]["requests"] == 1
    assert env.runner is not None
    env.runner.quit()


def test_an_open_runs_rates_after_a_reset_cover_what_was_counted(
    new_run: Callable[..., PanaceaRun],
) -> None:
    """Found by bench_open_model: after Reset Stats, achieved_rps divided the arrivals sent
    since the reset by the time since the schedule began (207 instead of about 300)."""
    import time

    from panacea_locust.open_model.schedule import open_plan_of

    run = new_run()
    run.open_plan = open_plan_of(300, "", "uniform", 10, 100)
    run._schedule_started = run._arrivals_counted_since = time.monotonic() - 10.0
    run._on_reset_stats()  # 10 s in: the counts start again
    arrivals = run.context.tally.arrivals
    arrivals.scheduled = arrivals.sent = 600
    run._schedule_ended = run._arrivals_counted_since + 2.0  # stopped 2 s after the reset
    workload = run.workload()
    assert workload["achieved_rps"] == pytest.approx(300, rel=0.01)
    assert workload["target_rps"] == pytest.approx(300, rel=0.01)


def test_nothing_comes_due_once_the_dispatcher_is_closed() -> None:
    """Found by bench_open_model: a schedule told to stop could still wake once and queue an
    arrival, which the stop then counted as dropped."""
    tally = RunTally()
    dispatcher = ArrivalDispatcher(tally, max_lag_s=1.0)
    schedule = ArrivalSchedule([RateStage(2000, 2000, 10)], "uniform")
    dispatcher.start(schedule, perf_counter())
    gevent.sleep(0.05)
    dispatcher.close()
    handled = (tally.arrivals.scheduled, tally.arrivals.dropped)
    assert handled[0] > 0 and handled[0] == handled[1]  # no user: every arrival dropped
    dispatcher._arrive(perf_counter())  # a schedule that wakes after the stop
    gevent.sleep(0.05)
    assert (tally.arrivals.scheduled, tally.arrivals.dropped) == handled
