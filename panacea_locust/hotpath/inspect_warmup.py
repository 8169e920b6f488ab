"""Warms :mod:`inspect`'s caches at ``init``: Locust's ``Runner.stop()`` calls ``inspect.stack()``,
which cold stalled the event loop 44 to 70 ms (``bench/bench_accuracy.py``) and so delayed every
request in flight. It can go once Locust's ``stop()`` no longer calls ``inspect.stack()``.
"""

from __future__ import annotations

import inspect
import linecache


def warm_inspect_caches() -> None:
    """One ``inspect.stack()``, as ``Runner.stop()`` will do, while nothing waits on it: it
    fills the module-to-file map and the lines of the sources on the stack."""
    inspect.stack()
    import locust.runners  # the module that calls it: its lines will be on that stack

    linecache.getlines(inspect.getsourcefile(locust.runners) or "")
