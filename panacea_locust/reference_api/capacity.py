"""The server's limits per request (:class:`Limits`) and its capacity (``--max-concurrency``,
:class:`Gate`): at most N requests are worked on at once, the
others wait in arrival order, so a load test sees a real saturation knee (latency growing with
the queue) instead of a server that scales for ever. It also measures what ``/__stats`` reports
under ``concurrency``: requests in flight and their peak, the queue and its waits.

A request holds its slot from the moment its body has been read until its answer is sent,
latency included. A client that leaves while queued gives its place up (``abandoned``).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]

DEFAULT_MAX_BODY_BYTES = 1 << 20  #: 1 MiB: a contract body is a few hundred bytes


@dataclass(frozen=True)
class Limits:
    """What one request may cost: its body's size, and how many are worked on at once."""

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_concurrency: int | None = None  #: None: no limit


#: queue waits are kept in buckets 2 % wide (a histogram: memory does not grow with requests)
_GROWTH = math.log(1.02)


class WaitHistogram:
    """Queue waits in milliseconds: exact count and maximum, percentiles within 2 %."""

    def __init__(self) -> None:
        self.zero = 0  #: requests that found a free slot at once
        self.buckets: dict[int, int] = {}  #: bucket -> count; bucket k covers 1.02**k us
        self.count = 0
        self.max_ms = 0.0

    def add(self, ms: float) -> None:
        self.count += 1
        self.max_ms = max(self.max_ms, ms)
        us = ms * 1000.0
        if us < 1.0:
            self.zero += 1
            return
        k = int(math.log(us) / _GROWTH)
        self.buckets[k] = self.buckets.get(k, 0) + 1

    def percentile(self, q: float) -> float:
        """The wait ``q`` (0..1) of the requests did not exceed (a bucket's upper edge)."""
        total = self.count
        if total == 0:
            return 0.0
        rank = max(1, math.ceil(q * total))
        seen = self.zero
        if seen >= rank:
            return 0.0
        for k in sorted(self.buckets):
            seen += self.buckets[k]
            if seen >= rank:
                return min(self.max_ms, math.exp((k + 1) * _GROWTH) / 1000.0)
        return self.max_ms  # pragma: no cover - ranks never exceed the count

    def describe(self) -> dict[str, float | int]:
        return {
            "count": self.count,
            "p50": round(self.percentile(0.50), 3),
            "p99": round(self.percentile(0.99), 3),
            "max": round(self.max_ms, 3),
        }


class Gate:
    """At most ``limit`` requests inside at once (None: no limit); the rest wait first in,
    first out. A freed slot goes straight to the longest waiter, so nobody can overtake."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.in_flight = 0
        self._queue: deque[asyncio.Future[None]] = deque()
        self.reset()

    def reset(self) -> None:
        """Start the peaks and waits again (``POST /__stats/reset``); requests inside stay."""
        self.max_in_flight = self.in_flight
        self.max_queued = len(self._queue)
        self.abandoned = 0
        self.waits = WaitHistogram()

    def enter_now(self) -> bool:
        """Take a slot if one is free and nobody waits (the common, cheap case)."""
        if self.limit is not None and (self.in_flight >= self.limit or self._queue):
            return False
        self.in_flight += 1
        if self.in_flight > self.max_in_flight:
            self.max_in_flight = self.in_flight
        self.waits.zero += 1
        self.waits.count += 1
        return True

    async def enter_queued(self, receive: Receive) -> bool:
        """Wait for a slot in arrival order; False if the client left first (its place is
        given up). ``receive`` is the request's ASGI receive, its body already read."""
        loop = asyncio.get_running_loop()
        slot: asyncio.Future[None] = loop.create_future()
        self._queue.append(slot)
        self.max_queued = max(self.max_queued, len(self._queue))
        t0 = time.perf_counter()
        gone = loop.create_task(_until_disconnect(receive))
        try:
            await asyncio.wait((slot, gone), return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # shutting down
            self._withdraw(slot)
            raise
        finally:
            gone.cancel()
        if gone.done() and not gone.cancelled():
            self._withdraw(slot)
            self.abandoned += 1
            return False
        self.waits.add((time.perf_counter() - t0) * 1000.0)
        return True

    def _withdraw(self, slot: asyncio.Future[None]) -> None:
        if slot.done() and not slot.cancelled():
            self.leave()  # it was handed a slot meanwhile: pass it on
        else:
            slot.cancel()
            if slot in self._queue:
                self._queue.remove(slot)

    def leave(self) -> None:
        """Give the slot to the longest waiter, or free it."""
        while self._queue:
            slot = self._queue.popleft()
            if not slot.done():
                slot.set_result(None)
                return
        self.in_flight -= 1

    def describe(self) -> dict[str, Any]:
        """The ``concurrency`` object of ``/__stats``."""
        return {
            "max_concurrency": self.limit,
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "queued": len(self._queue),
            "max_queued": self.max_queued,
            "abandoned": self.abandoned,
            "queue_wait_ms": self.waits.describe(),
        }


async def _until_disconnect(receive: Receive) -> None:
    """Returns when the client has gone (its body is read, so only that can come)."""
    while (await receive())["type"] != "http.disconnect":
        pass
