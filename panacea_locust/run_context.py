"""What one run's users share: settings, pool data, the payload builder and the run's tally.

One per Locust environment: ``PanaceaRun`` (``event_handlers``) builds it at ``init`` and a
user reaches it through ``PanaceaRun.of(self.environment).context``. No Locust import here, so
the pure modules and their tests can use it without an environment.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from panacea_locust.config import Settings
from panacea_locust.payload_generator import PayloadGenerator, PoolData
from panacea_locust.verdict.tally import RunTally


@dataclass
class RunContext:
    settings: Settings
    pool_data: PoolData = field(default_factory=PoolData)
    tally: RunTally = field(default_factory=RunTally)
    payloads: PayloadGenerator = field(init=False)

    def __post_init__(self) -> None:
        self.payloads = PayloadGenerator(self.settings)
