"""Fewer, shorter garbage collections in a load-generating process: a full collection walked
every module and user and stalled the loop (see ``bench/``, README Performance) while requests
were in flight. It can go once CPython's collector no longer walks long-lived objects each time.
"""

from __future__ import annotations

import gc
from typing import Any

from locust.env import Environment

#: (young, middle, old) thresholds; CPython's default is (700, 10, 10). Young collections
#: become ~14 times rarer; most young objects are freed by reference counting long before.
GC_THRESHOLD = (10_000, 10, 10)


def freeze_survivors(reclaim: bool = False) -> None:
    """Collect, then freeze what is still alive; ``reclaim`` first unfreezes everything, so
    that objects frozen earlier and dead since (stopped users) are collected too."""
    if reclaim:
        gc.unfreeze()
        gc.collect()
    else:
        gc.collect(1)  # the young generations: cheap; older garbage is rare and small
    gc.freeze()


class GcTuning:
    """Raises the collector's threshold and keeps what is alive after set-up and after each
    spawn out of full collections (``gc.freeze()``), unfreezing when users stopped (a
    ramp-down, a shape's next step) or the test ended, so stopped users are not kept.

    The first unfreeze gives up the copy-on-write sharing Locust's own ``gc.freeze()`` before
    forking ``--processes`` workers aims at: the price of not leaking.
    """

    def __init__(self) -> None:
        self.users_frozen = 0  #: user count at the last freeze

    @classmethod
    def install(cls, environment: Environment) -> GcTuning:
        """Tune the process now and follow ``environment``'s spawns and stops."""
        tuning = cls()
        gc.set_threshold(*GC_THRESHOLD)
        freeze_survivors()
        environment.events.spawning_complete.add_listener(tuning.on_spawning_complete)
        environment.events.test_stop.add_listener(tuning.on_test_stop)
        return tuning

    def on_spawning_complete(self, user_count: int = 0, **_: Any) -> None:
        freeze_survivors(reclaim=user_count < self.users_frozen)
        self.users_frozen = user_count

    def on_test_stop(self, **_: Any) -> None:
        gc.unfreeze()
        self.users_frozen = 0
