"""Hands each arrival of an open-model run to an idle virtual user, on time or dropped.

One per process that generates load. The schedule greenlet sleeps until each arrival is due
and gives it to the user that went idle most recently (a stack: a run that needs few users at
once keeps using the same few identities); when every user is busy the arrival waits in a
backlog, which users drain oldest first as they finish. An arrival that could not leave
within ``MAX_SCHEDULE_LAG_S`` of its due time is dropped and counted, as are those still
waiting when the run stops: nothing due is silently lost.

Times are ``time.perf_counter()`` seconds, the clock Locust times requests with, so a user
can report a request's time from its due time.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from time import perf_counter

import gevent
from gevent.event import AsyncResult
from locust.exception import StopUser

from panacea_locust.open_model.schedule import ArrivalSchedule
from panacea_locust.verdict.tally import RunTally

logger = logging.getLogger("panacea_locust")


class ArrivalDispatcher:
    def __init__(self, tally: RunTally, max_lag_s: float) -> None:
        self.tally = tally  #: counts into ``tally.arrivals`` (drained into worker reports)
        self.max_lag_s = max_lag_s
        self._idle: list[AsyncResult] = []
        self._backlog: deque[float] = deque()
        self._busy = 0
        self._greenlet: gevent.Greenlet | None = None
        self._closed = False  #: the run is stopping: nothing more comes due
        self.on_end: Callable[[], None] | None = None  #: called when the schedule is exhausted

    # --- the schedule ------------------------------------------------------------------------
    def start(self, schedule: ArrivalSchedule, t0: float, from_s: float = 0.0) -> None:
        """Follow ``schedule`` from ``from_s`` seconds after ``t0`` (perf_counter time);
        a running schedule is replaced (a re-split of the rate over the workers)."""
        self.stop_schedule()
        self._closed = False
        self._greenlet = gevent.spawn(self._run, schedule, t0, from_s)

    def stop_schedule(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
            self._greenlet = None

    def _run(self, schedule: ArrivalSchedule, t0: float, from_s: float) -> None:
        for offset in schedule.arrivals(from_s):
            due = t0 + offset
            # sleep until due; when late, still yield once, so that the users get to run:
            # a schedule that fell behind would otherwise hand out arrivals in a tight loop
            gevent.sleep(max(0.0, due - perf_counter()))
            self._arrive(due)
        if self.on_end is not None:
            self.on_end()

    def _arrive(self, due: float) -> None:
        if self._closed:  # the stop was decided: a schedule being killed may still wake once
            return
        counts = self.tally.arrivals
        counts.scheduled += 1
        self._expire()
        if self._idle:
            counts.scheduler_late.record(max(0.0, perf_counter() - due) * 1000.0)
            self._idle.pop().set(due)
        else:
            self._backlog.append(due)

    def _expire(self) -> None:
        """Drop the waiting arrivals that can no longer leave on time (oldest first)."""
        limit = perf_counter() - self.max_lag_s
        backlog = self._backlog
        while backlog and backlog[0] < limit:
            backlog.popleft()
            self.tally.arrivals.dropped += 1

    # --- the users -----------------------------------------------------------------------------
    def take(self) -> float:
        """A user's next arrival (its due time); waits while there is none. The caller was
        busy with its previous arrival, if any, until now."""
        self._expire()
        if self._backlog:
            return self._sent(self._backlog.popleft())
        slot = AsyncResult()
        self._idle.append(slot)
        try:
            due = slot.get()
        except BaseException:  # the user is being stopped while idle
            if slot in self._idle:
                self._idle.remove(slot)
            raise
        return self._sent(due)

    def _sent(self, due: float) -> float:
        counts = self.tally.arrivals
        counts.sent += 1
        counts.lag.record(max(0.0, perf_counter() - due) * 1000.0)
        self._busy += 1
        if self._busy > counts.users_peak:
            counts.users_peak = self._busy
        return due

    def done(self) -> None:
        """A user finished its arrival's request."""
        self._busy -= 1

    def close(self) -> None:
        """The run stops: the schedule ends, arrivals still waiting count as dropped, and the
        idle users stop at once (Locust's stop grace is for requests in flight, and an idle
        user is inside its task, waiting for an arrival that will not come)."""
        self._closed = True
        self.stop_schedule()
        self.tally.arrivals.dropped += len(self._backlog)
        self._backlog.clear()
        idle, self._idle = self._idle, []
        for slot in idle:
            slot.set_exception(StopUser())
