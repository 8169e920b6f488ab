"""What one run's users share, and how a user finds its run.

``RunContext``: settings, pool data, the payload builder and the run's tally. ``UsersRun``:
what a user needs of its run (``event_handlers.PanaceaRun`` is one), found from the user's
Locust environment by ``run_of``. Named here, so that the users do not import the listeners
that create the run, and the listeners can put the open-model user in a run without a loop of
imports. No Locust import here, so the pure modules and their tests can use it without an
environment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, cast

from panacea_locust.config import Settings
from panacea_locust.payload_generator import PayloadGenerator, PoolData
from panacea_locust.verdict.tally import RunTally

if TYPE_CHECKING:
    from panacea_locust.cost_guard import RateCap
    from panacea_locust.user_index import IndexAllocator

#: where a Locust environment keeps its run (``bind``, ``run_of``)
_ATTRIBUTE = "panacea_run"


@dataclass
class RunContext:
    settings: Settings
    pool_data: PoolData = field(default_factory=PoolData)
    tally: RunTally = field(default_factory=RunTally)
    payloads: PayloadGenerator = field(init=False)

    def __post_init__(self) -> None:
        self.payloads = PayloadGenerator(self.settings)


class Arrivals(Protocol):
    """An open-model run's arrivals, as a user takes them (``open_model.dispatcher``)."""

    def take(self) -> float:
        """Wait for the next arrival; its due time (``perf_counter`` seconds)."""
        ...

    def done(self) -> None:
        """The arrival taken last has had its request."""
        ...


class UsersRun(Protocol):
    """What a virtual user needs of its run."""

    context: RunContext
    allocator: IndexAllocator  #: global user indices (identities, data windows)
    trace_context: bool  #: send a ``traceparent`` with every request
    cost_cap: RateCap | None  #: AI_MAX_RPS in this process, if set

    @property
    def arrivals(self) -> Arrivals | None:
        """Open model: what hands arrivals to idle users (None in a closed run)."""
        ...

    def may_run_users(self) -> bool:
        """Wait until users may run here (secret proved, data arrived); False: never."""
        ...


def bind(environment: object, run: UsersRun) -> None:
    """Make ``run`` the run of ``environment`` (once: ``RuntimeError`` if it has one)."""
    if bound(environment) is not None:
        raise RuntimeError("this environment already has a PanaceaRun")
    setattr(environment, _ATTRIBUTE, run)


def bound(environment: object) -> object | None:
    """Whatever run ``environment`` has (None: none yet)."""
    return getattr(environment, _ATTRIBUTE, None)


def run_of(environment: object) -> UsersRun:
    """The run of ``environment``: how users and tasks reach their settings and counters."""
    run = bound(environment)
    if run is None:
        raise LookupError(
            "no PanaceaRun on this Locust environment: import panacea_locust.event_handlers "
            "before Locust fires init, or create PanaceaRun(environment)"
        )
    return cast(UsersRun, run)  # only bind() sets it
