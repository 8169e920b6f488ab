"""What an open-model run counts of its arrivals, and its ``run.workload`` record.

Every process that generates arrivals keeps an :class:`ArrivalCounts`: how many were due, sent
and dropped, the schedule lag (actual send minus due time) in an exact histogram, how late the
scheduler itself woke while users were free, and its peak of busy users. Workers ship them to
the master with each report (``drain``/``merge``), so the master's counts are the run's.
Pure: no Locust, no gevent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from panacea_locust.verdict.histogram import LatencyHistogram

#: scheduler lateness (ms, p99) above which the lag is the load generator's own: the same
#: limit as the event loop's (``verdict.health.LOOP_LAG_LIMIT_MS``), for the same reason
SCHEDULER_LATE_LIMIT_MS = 20.0


@dataclass
class ArrivalCounts:
    scheduled: int = 0  #: arrivals that came due
    sent: int = 0  #: arrivals a user took and sent
    dropped: int = 0  #: arrivals that could not leave within MAX_SCHEDULE_LAG_S (or at all)
    users_peak: int = 0  #: most users busy at once (the sum of the processes' peaks)
    #: actual send minus due time, ms, of every arrival sent
    lag: LatencyHistogram = field(default_factory=LatencyHistogram)
    #: how late the scheduler handed an arrival to a user that was free (ms): the generator's
    #: own lateness, not a shortage of users
    scheduler_late: LatencyHistogram = field(default_factory=LatencyHistogram)

    def drain(self) -> dict[str, Any]:
        """Counts since the last drain, msgpack-safe; the counters reset (the peak too)."""
        payload = {
            "scheduled": self.scheduled, "sent": self.sent, "dropped": self.dropped,
            "users_peak": self.users_peak,
            "lag": self.lag.to_payload() if self.lag.count else None,
            "scheduler_late": (
                self.scheduler_late.to_payload() if self.scheduler_late.count else None
            ),
        }  # fmt: skip
        self.__init__()  # type: ignore[misc]
        return payload

    def merge(self, payload: Mapping[str, Any], peaks: dict[str, int], source: str) -> None:
        """Add a process's ``drain()``; ``peaks`` holds each process's highest peak, whose
        sum is the run's ``users_peak``."""
        self.scheduled += int(payload.get("scheduled") or 0)
        self.sent += int(payload.get("sent") or 0)
        self.dropped += int(payload.get("dropped") or 0)
        peaks[source] = max(peaks.get(source, 0), int(payload.get("users_peak") or 0))
        self.users_peak = sum(peaks.values())
        for key in ("lag", "scheduler_late"):
            data = payload.get(key)
            if data:
                getattr(self, key).merge(LatencyHistogram.from_payload(data))

    @property
    def has_arrivals(self) -> bool:
        return self.scheduled > 0 or self.sent > 0 or self.dropped > 0


def _ms(hist: LatencyHistogram, q: float) -> float | None:
    return round(hist.percentile(q), 3) if hist.count else None


def workload_record(
    counts: ArrivalCounts,
    process: str,
    target_rps: float,
    duration_s: float,
    max_users: int,
) -> dict[str, Any]:
    """``summary.json`` ``run.workload`` of an open-model run."""
    handled = counts.sent + counts.dropped
    return {
        "model": "open",
        "arrival_process": process,
        "target_rps": round(target_rps, 3),
        "achieved_rps": round(counts.sent / duration_s, 3) if duration_s > 0 else 0.0,
        "scheduled": counts.scheduled,
        "sent": counts.sent,
        "dropped": counts.dropped,
        "dropped_ratio": round(counts.dropped / handled, 6) if handled else 0.0,
        "lag_p50_ms": _ms(counts.lag, 50.0),
        "lag_p99_ms": _ms(counts.lag, 99.0),
        "lag_max_ms": round(counts.lag.max_ms, 3) if counts.lag.count else None,
        "scheduler_late_p99_ms": _ms(counts.scheduler_late, 99.0),
        "users_peak": counts.users_peak,
        "max_users": max_users,
    }


def generator_lag_warning(workload: Mapping[str, Any]) -> str | None:
    """A load-generator warning when the scheduler itself was late while users were free:
    the lag (and the intended-start latencies) then include the generator's own delay."""
    late = workload.get("scheduler_late_p99_ms")
    if isinstance(late, (int, float)) and late > SCHEDULER_LATE_LIMIT_MS:
        return (
            f"the arrival scheduler handed out arrivals {late:.0f} ms late at p99 while users "
            f"were free (over {SCHEDULER_LATE_LIMIT_MS:g} ms): the schedule lag and the "
            "intended-start latencies include the load generator's own delay; add processes"
        )
    return None
