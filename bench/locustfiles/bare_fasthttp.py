"""Baseline: the cheapest Locust user there is, ``FastHttpUser`` sending ``GET /``.

No wait by default; ``BENCH_WAIT_MIN``/``BENCH_WAIT_MAX`` (seconds) set one, for the memory run.
"""

import os

from locust import FastHttpUser, between, task


class BareFastHttpUser(FastHttpUser):
    wait_time = between(
        float(os.environ.get("BENCH_WAIT_MIN", "0")), float(os.environ.get("BENCH_WAIT_MAX", "0"))
    )

    @task
    def get_root(self) -> None:
        self.client.get("/")
