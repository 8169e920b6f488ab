"""Our per-request counts are reset whenever Locust resets its statistics, so summary.json's
percentiles and Locust's request counts always cover the same requests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from panacea_locust.event_handlers import PanaceaRun

NAME = "/api/v1/logs/info"


def _with_requests(new_run: Callable[..., PanaceaRun], **environment: object) -> PanaceaRun:
    run = new_run(**environment)
    tally = run.context.tally
    tally.histograms.record(NAME, 12.0)
    tally.acceptable_response(NAME, 404)
    tally.user_started("LightUser", False)
    run.environment.stats.log_request("GET", NAME, 12.0, 10)
    return run


def _counted(run: PanaceaRun) -> int:
    tally = run.context.tally
    hist = tally.histograms.get(NAME)
    return (hist.count if hist else 0) + sum(sum(c.values()) for c in tally.acceptable.values())


@pytest.mark.parametrize("reset_stats", [True, False])
def test_reset_stats_option_resets_when_spawning_completes(
    new_run: Callable[..., PanaceaRun], reset_stats: bool
) -> None:
    run = _with_requests(new_run, reset_stats=reset_stats)
    run.environment.events.spawning_complete.fire(user_count=3)
    assert _counted(run) == (0 if reset_stats else 2)
    # the same as Locust's own listener, which resets its statistics
    assert run.environment.stats.total.num_requests == (0 if reset_stats else 1)
    assert run.context.tally.users_by_type["LightUser"] == 1  # who ran is not a statistic


def test_web_ui_reset_button_resets(new_run: Callable[..., PanaceaRun]) -> None:
    run = _with_requests(new_run)
    assert _counted(run) == 2
    run.environment.events.reset_stats.fire()  # what the web UI's /stats/reset fires
    assert _counted(run) == 0
    run.context.tally.histograms.record(NAME, 3.0)
    assert _counted(run) == 1  # and counting goes on
