"""Our per-request counts are reset whenever Locust resets its statistics, so summary.json's
percentiles and Locust's request counts always cover the same requests."""

from __future__ import annotations

import pytest
from locust.env import Environment
from locust.event import Events

from panacea_locust import event_handlers
from panacea_locust.run_context import get_context


@pytest.fixture
def tally_with_requests() -> None:
    tally = get_context().tally
    tally.reset()
    tally.histograms.record("/api/v1/logs/info", 12.0)
    tally.acceptable_response("/api/v1/logs/info", 404)
    tally.user_started("LightUser", False)


def _counted() -> int:
    tally = get_context().tally
    hist = tally.histograms.get("/api/v1/logs/info")
    return (hist.count if hist else 0) + sum(sum(c.values()) for c in tally.acceptable.values())


@pytest.mark.usefixtures("tally_with_requests")
@pytest.mark.parametrize("reset_stats", [True, False])
def test_reset_stats_option_resets_when_spawning_completes(reset_stats: bool) -> None:
    env = Environment(events=Events(), reset_stats=reset_stats)
    env.create_local_runner()  # Locust's own listener, which resets its statistics
    event_handlers.follow_locust_resets(env)
    env.stats.log_request("GET", "/api/v1/logs/info", 12.0, 10)
    env.events.spawning_complete.fire(user_count=3)
    assert _counted() == (0 if reset_stats else 2)
    assert env.stats.total.num_requests == (0 if reset_stats else 1)  # the same as Locust
    assert get_context().tally.users_by_type["LightUser"] == 1  # who ran is not a statistic


@pytest.mark.usefixtures("tally_with_requests")
def test_web_ui_reset_button_resets() -> None:
    from locust import events

    assert _counted() == 2
    events.reset_stats.fire()  # what the web UI's /stats/reset fires
    assert _counted() == 0
    get_context().tally.histograms.record("/api/v1/logs/info", 3.0)
    assert _counted() == 1  # and counting goes on
