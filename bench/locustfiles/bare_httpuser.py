"""Baseline: Locust's default ``HttpUser`` (python-requests) sending ``GET /``.

No wait by default; ``BENCH_WAIT_MIN``/``BENCH_WAIT_MAX`` (seconds) set one.
"""

import os

from locust import HttpUser, between, task


class BareHttpUser(HttpUser):
    wait_time = between(
        float(os.environ.get("BENCH_WAIT_MIN", "0")), float(os.environ.get("BENCH_WAIT_MAX", "0"))
    )

    @task
    def get_root(self) -> None:
        self.client.get("/")
