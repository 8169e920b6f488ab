"""The fault server, started for a test and stopped (hung connections closed) after it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from panacea_locust.base_user import PanaceaAPIUser
from panacea_locust.config import load_settings
from panacea_locust.event_handlers import PanaceaRun

from .fault_server import FaultServer

TIMEOUT = 1.0  #: REQUEST_TIMEOUT of the in-process users
MakeUser = Callable[..., PanaceaAPIUser]


@pytest.fixture
def fault_server() -> Iterator[FaultServer]:
    server = FaultServer(lifetime=90.0).start()
    try:
        yield server
    finally:
        server.stop()
    assert server.leftover_threads == 0, "a fault server handler outlived stop()"


@pytest.fixture
def user_for(fault_server: FaultServer, new_run: Callable[..., PanaceaRun]) -> MakeUser:
    """``user_for(mode, SETTING=value, ...)``: a started user whose every request meets
    ``mode``, on its own run, with ``REQUEST_TIMEOUT`` of ``TIMEOUT`` unless given."""

    def make(mode: str, **settings: Any) -> PanaceaAPIUser:
        class User(PanaceaAPIUser):
            host = fault_server.url_for(mode)

        run = new_run(user_classes=[User])
        # the run's settings; the HTTP client's own socket timeouts stay at the process's
        # (30 s by default), so a request that ends in about TIMEOUT met the request deadline
        run.context.settings = load_settings({"REQUEST_TIMEOUT": TIMEOUT, **settings})
        user = User(run.environment)
        user.on_start()
        return user

    return make
