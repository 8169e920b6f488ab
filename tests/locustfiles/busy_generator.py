"""The framework's locustfile plus a request listener that keeps the CPU busy for 2 ms per
request: a load generator saturated by its own work (as heavy task code would), whatever the
target's speed or the host's other load, so the saturation test never depends on the API
being faster than Locust."""

import time

from locust import events

from panacea_locust.locustfile import *  # noqa: F403

BUSY_S = 0.002


@events.request.add_listener
def _busy(**_: object) -> None:
    until = time.perf_counter() + BUSY_S
    while time.perf_counter() < until:
        pass
