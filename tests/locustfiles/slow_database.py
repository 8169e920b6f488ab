"""The framework's locustfile, with a database that answers the master only once its workers
are connected (and have said they are ready): the order a slow ClickHouse makes by chance.

Used to check that a worker that connected while its master was still loading the data gets
that data all the same. The listener below is added before the framework's own, so it holds
the environment when the framework's init loads the data.
"""

import time

import gevent
from locust import events
from locust.env import Environment

import panacea_locust.clickhouse_dao as dao
from panacea_locust.config import Settings
from panacea_locust.payload_generator import PoolData

_environment: list[Environment] = []


@events.init.add_listener
def _hold(environment: Environment, **_: object) -> None:
    _environment.append(environment)


_load = dao.load_pool_data


def _load_after_the_workers(settings: Settings) -> PoolData:
    runner = _environment[0].runner if _environment else None
    expected = getattr(getattr(_environment[0], "parsed_options", None), "expect_workers", 0)
    deadline = time.monotonic() + 60
    while runner is not None and len(getattr(runner, "clients", {})) < expected:
        if time.monotonic() > deadline:
            break
        gevent.sleep(0.1)
    gevent.sleep(1.0)  # the workers' ready messages arrive meanwhile
    return _load(settings)


dao.load_pool_data = _load_after_the_workers

from panacea_locust.locustfile import *  # noqa: E402,F403
