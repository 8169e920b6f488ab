"""A cap on the requests that cost money: the AI endpoints, at most ``AI_MAX_RPS`` a second.

On a real deployment ``ask-ai`` and ``report_summary`` may call a paid model per request; a
load test must not run up a bill nobody planned. ``AI_MAX_RPS`` caps them over the whole run
(in a distributed run each worker gets a share in proportion to its users); a request over
the cap is not sent but counted as skipped, per endpoint, in ``summary.json``. Pure.
"""

from __future__ import annotations


class RateCap:
    """A token bucket: on average at most ``rate`` a second, in bursts of up to one second's
    worth (at least one request; none at rate 0)."""

    def __init__(self, rate: float, now: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate) if rate > 0 else 0.0
        self.tokens = self.capacity
        self.at = now

    def set_rate(self, rate: float, now: float) -> None:
        """A new share of the run's cap (the master re-split it)."""
        self._refill(now)
        self.rate = rate
        self.capacity = max(1.0, rate) if rate > 0 else 0.0
        self.tokens = min(self.tokens, self.capacity)

    def _refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now

    def allow(self, now: float) -> bool:
        """Take a token if there is one: True means send."""
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False
