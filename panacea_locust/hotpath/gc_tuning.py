"""Garbage-collector settings for a load-generating process: fewer and shorter collections.

CPython's cyclic collector runs a young collection every 700 net allocations of container
objects, and now and then a full one that walks every object of the process: everything
imported (Locust, gevent, Flask, pydantic ...) and every virtual user. Measured with
``bench/`` (README, Performance), collections cost a Locust process about 13 us per request,
and each full collection stopped the event loop for 30 to 45 ms, which then showed up in the
response times of the requests in flight at that moment.

So, in every process:

- the young-generation threshold goes from 700 to 10,000 allocations (``GC_THRESHOLD``):
  young collections become ~14 times rarer; most young objects are freed by reference counting
  long before, so each collection is not dearer;
- once the process is set up, and each time spawning completes, what is alive then (modules,
  users, their pools and connections) is moved out of the collector's sight with
  ``gc.freeze()``; later full collections walk only what was allocated since.

Objects frozen are never collected, so when users were stopped (a ramp-down, a shape's next
step) everything is unfrozen and collected before freezing again: stopped users do not
accumulate. A test's end unfreezes too. The first unfreeze gives up the copy-on-write sharing
that Locust's own ``gc.freeze()`` before forking ``--processes`` workers aims at (about 10 MB
per worker by Locust's estimate), which is the price of not leaking.

Importing this module registers the listeners (``event_handlers`` imports it).
"""

from __future__ import annotations

import gc
from typing import Any

from locust import events

#: (young, middle, old) thresholds; CPython's default is (700, 10, 10)
GC_THRESHOLD = (10_000, 10, 10)

_users_frozen = 0  #: user count at the last freeze


def freeze_survivors(reclaim: bool = False) -> None:
    """Collect, then freeze what is still alive; ``reclaim`` first unfreezes everything, so
    that objects frozen earlier and dead since (stopped users) are collected too."""
    if reclaim:
        gc.unfreeze()
        gc.collect()
    else:
        gc.collect(1)  # the young generations: cheap; older garbage is rare and small
    gc.freeze()


@events.init.add_listener
def _on_init(**_: Any) -> None:
    gc.set_threshold(*GC_THRESHOLD)
    freeze_survivors()


@events.spawning_complete.add_listener
def _on_spawning_complete(user_count: int = 0, **_: Any) -> None:
    global _users_frozen
    freeze_survivors(reclaim=user_count < _users_frozen)
    _users_frozen = user_count


@events.test_stop.add_listener
def _on_test_stop(**_: Any) -> None:
    global _users_frozen
    gc.unfreeze()
    _users_frozen = 0
