"""The per-process state a run shares between its users: settings, data, payloads, counters.

Locust runs one environment per process, so one context per process is enough; it is built
by the ``init`` event and read by every user. No Locust import here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from panacea_locust.config import Settings, get_settings
from panacea_locust.payload_generator import PayloadGenerator, PoolData
from panacea_locust.verdict.tally import RunTally


@dataclass
class RunContext:
    settings: Settings
    pool_data: PoolData = field(default_factory=PoolData)
    tally: RunTally = field(default_factory=RunTally)
    payloads: PayloadGenerator = field(init=False)
    options: Any = None  #: Locust's parsed options, once known

    def __post_init__(self) -> None:
        self.payloads = PayloadGenerator(self.settings)


_context: RunContext | None = None


def get_context() -> RunContext:
    """This process's context; built with the environment's settings on first use."""
    global _context
    if _context is None:
        _context = RunContext(get_settings())
    return _context
