"""The fault server, started for a test and stopped (hung connections closed) after it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .fault_server import FaultServer


@pytest.fixture
def fault_server() -> Iterator[FaultServer]:
    server = FaultServer(lifetime=90.0).start()
    try:
        yield server
    finally:
        server.stop()
    assert server.leftover_threads == 0, "a fault server handler outlived stop()"
