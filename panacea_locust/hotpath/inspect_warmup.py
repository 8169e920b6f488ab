"""Warm :mod:`inspect`'s caches at start-up, so that stopping a test does not stall the loop.

Locust's ``Runner.stop()`` logs who called it with ``inspect.stack()`` before it stops a
single user. Cold, that call maps every loaded module to its file and reads each source file
on the stack: measured with ``bench/bench_accuracy.py``, 44 to 70 ms during which the event
loop runs nothing, while every request in flight has its answer waiting in the socket. Those
requests are then recorded 30 to 70 ms too slow, in Locust's statistics and ours: with 20
users, 1 % of a short run's requests, enough to move its p99 by 20 ms.

Calling ``inspect.stack()`` once at ``init``, when no user runs, fills the same caches (the
module-to-file map and the lines of Locust's and gevent's sources), and the call in ``stop()``
then takes under 1 ms.

Importing this module registers the listener (``event_handlers`` imports it).
"""

from __future__ import annotations

import inspect
import linecache
from typing import Any

from locust import events


def warm_inspect_caches() -> None:
    """One ``inspect.stack()``, as ``Runner.stop()`` will do, while nothing waits on it."""
    inspect.stack()
    import locust.runners  # the module that calls it: its lines will be on that stack

    linecache.getlines(inspect.getsourcefile(locust.runners) or "")


@events.init.add_listener
def _on_init(**_: Any) -> None:
    warm_inspect_caches()
