"""``OpenUser``: a virtual user that sends a request when an arrival is handed to it.

It has the identity, session, headers and data pool of any Panacea user (``PanaceaAPIUser``);
instead of waiting a think time between requests, it waits for the dispatcher's next arrival,
picks an endpoint by the contract's task weights and times the request from its due time.
It is not in the locustfile's namespace (Locust would spawn it in closed runs): an open-model
run puts it in the environment's user classes (``event_handlers.PanaceaRun``).
"""

from __future__ import annotations

import random
from itertools import accumulate

from locust import constant, task

from panacea_locust.base_user import PanaceaAPIUser
from panacea_locust.contract import ENDPOINTS
from panacea_locust.run_context import Arrivals, run_of


class OpenUser(PanaceaAPIUser):
    wait_time = constant(0)  # the arrivals pace it
    _arrivals: Arrivals
    _keys: list[str]
    _cum: list[float]
    _rng: random.Random

    def on_start(self) -> None:
        super().on_start()
        run = run_of(self.environment)
        dispatcher = run.arrivals
        if dispatcher is None:
            raise RuntimeError("OpenUser runs only in an open-model run (--arrival-rate)")
        self._arrivals = dispatcher
        settings = run.context.settings
        weighted = [(e.key, settings.endpoint_weight(e.key)) for e in ENDPOINTS]
        weighted = [(k, w) for k, w in weighted if w > 0]
        self._keys = [k for k, _ in weighted]
        self._cum = list(accumulate(float(w) for _, w in weighted))
        self._rng = self.pool.rng

    @task
    def serve_arrival(self) -> None:
        due = self._arrivals.take()
        try:
            key = self._rng.choices(self._keys, cum_weights=self._cum)[0]
            self.call_endpoint(key, due)
        finally:
            self._arrivals.done()
