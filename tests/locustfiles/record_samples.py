"""The framework's locustfile plus a listener that writes every response time to a file.

Used to check the framework's percentiles against exact ones computed from every sample;
each process (master, workers) appends to its own file in ``$SAMPLES_DIR``.
"""

import os

from locust import events

from panacea_locust.locustfile import *  # noqa: F403

_out = None


@events.request.add_listener
def _record(response_time: float, **_: object) -> None:
    global _out
    if _out is None:
        _out = open(os.path.join(os.environ["SAMPLES_DIR"], f"{os.getpid()}.txt"), "a")  # noqa: SIM115
    _out.write(f"{response_time!r}\n")


@events.quitting.add_listener
def _close(**_: object) -> None:
    if _out is not None:
        _out.flush()
