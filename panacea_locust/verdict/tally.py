"""What a process counts beside Locust's own statistics, in a form workers can ship to the master.

Locust aggregates requests, failures and response times itself; it knows nothing of user
types spawned, acceptable 4xx by code, where session ids came from, or exact latency
histograms. Each process keeps a :class:`RunTally`; workers send ``drain()`` with every
``report_to_master`` and the master ``merge()``s them, so the master's tally is the run's.
``merge`` hands back what a report added (:class:`Delta`), for the master's timeline.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from panacea_locust.verdict.histogram import HistogramSet, SparseHistogram, decode_payload
from panacea_locust.verdict.timeline import Timeline
from panacea_locust.verdict.traces import SlowestRequests
from panacea_locust.verdict.workload import ArrivalCounts


@dataclass
class Delta:
    """What one worker report added: answered and failed times, acceptable 4xx by code."""

    answered: Mapping[str, SparseHistogram] = field(default_factory=dict)
    failed: Mapping[str, SparseHistogram] = field(default_factory=dict)
    acceptable: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    #: the failures' reasons by request name (what tells the load generator's own apart)
    reasons: Mapping[str, Mapping[str, int]] = field(default_factory=dict)


class RunTally:
    """Counters of one process (or, on the master, of the whole run)."""

    def __init__(self, sparse: bool = False) -> None:
        #: a worker's tally: its histograms only carry each report interval to the master,
        #: so they are kept sparse (``HistogramSet``), cheap to encode at every report
        self.sparse = sparse
        self.users_by_type: Counter[str] = Counter()
        self.acceptable: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.sessions: Counter[str] = Counter()  # "database" / "generated"
        #: response times of requests that got an answer (success or acceptable 4xx): what
        #: latency rules judge; a refused connection is fast, and is no answer
        self.histograms = HistogramSet(sparse)
        #: response times of failed requests, shown apart in summary.json
        self.failed = HistogramSet(sparse)
        #: a worker's failures' reasons by request name since its last report, for the
        #: master's timeline (summary.json's come from Locust's own errors table)
        self.failure_reasons: defaultdict[str, Counter[str]] = defaultdict(Counter)
        #: the slowest traced requests per endpoint (``--trace-context``)
        self.slowest = SlowestRequests()
        #: open model: answered requests' times from their actual send (the histograms above
        #: time them from their due time), and the arrivals' counts
        self.service = HistogramSet(sparse)
        self.arrivals = ArrivalCounts()
        self._arrival_peaks: dict[str, int] = {}  # process -> its highest busy-users peak
        #: AI requests not sent because of AI_MAX_RPS, per request name
        self.costly_skipped: Counter[str] = Counter()
        #: requests resent because the target closed a kept-alive connection under them
        self.stale_resends = 0
        #: users that waited ``STALLED_START_S`` or more in their ``on_start`` (or were
        #: stopped still waiting): users Locust counts that did not send meanwhile
        self.stalled_starts = 0
        self.data_sources: dict[str, dict[str, Any]] = {}  # process id -> PoolData.describe()
        #: a local process's timeline: its acceptable responses count in the current interval
        #: too (the request listener records the times); None on workers and masters
        self.timeline: Timeline | None = None

    def user_started(self, user_type: str, session_from_database: bool) -> None:
        self.users_by_type[user_type] += 1
        self.sessions["database" if session_from_database else "generated"] += 1

    def record_failure(self, name: str, ms: float, reason: str) -> None:
        """A failed request on a worker: its time, and its reason for the master's timeline."""
        self.failed.record(name, ms)
        self.failure_reasons[name][reason] += 1

    def acceptable_response(self, name: str, status: int) -> None:
        self.acceptable[name][str(status)] += 1
        if self.timeline is not None:
            self.timeline.current.acceptable[name][str(status)] += 1

    def drain(self) -> dict[str, Any]:
        """Everything counted since the last drain, as msgpack-safe data; the counters reset."""
        report = {
            "users_by_type": dict(self.users_by_type),
            "acceptable": {name: dict(codes) for name, codes in self.acceptable.items()},
            "sessions": dict(self.sessions),
            "histograms": self.histograms.drain_payload(),
            "failed": self.failed.drain_payload(),
            "failure_reasons": {name: dict(why) for name, why in self.failure_reasons.items()},
            "slowest": self.slowest.drain_payload(),
            "service": self.service.drain_payload(),
            "arrivals": self.arrivals.drain() if self.arrivals.has_arrivals else None,
            "costly_skipped": dict(self.costly_skipped),
            "stale_resends": self.stale_resends,
            "stalled_starts": self.stalled_starts,
            "data_sources": dict(self.data_sources),
        }
        self.users_by_type.clear()
        self.acceptable.clear()
        self.failure_reasons.clear()
        self.sessions.clear()
        self.costly_skipped.clear()
        self.stale_resends = 0
        self.stalled_starts = 0
        return report

    def merge(self, report: dict[str, Any], source: str = "") -> Delta:
        """Add a worker's ``drain()`` (``source``: the worker); returns what it added (its
        histograms decoded once). ``ValueError`` on a malformed histogram payload, before
        anything is added."""
        delta = Delta(
            answered=decode_payload(report.get("histograms") or {}),
            failed=decode_payload(report.get("failed") or {}),
            acceptable=report.get("acceptable") or {},
            reasons=report.get("failure_reasons") or {},
        )
        self.users_by_type.update(report.get("users_by_type", {}))
        for name, codes in delta.acceptable.items():
            self.acceptable[name].update(codes)
        self.sessions.update(report.get("sessions", {}))
        self.histograms.merge_sparse(delta.answered)
        self.failed.merge_sparse(delta.failed)
        self.slowest.merge_payload(report.get("slowest") or {})
        self.service.merge_payload(report.get("service") or {})
        self.costly_skipped.update(report.get("costly_skipped") or {})
        self.stale_resends += int(report.get("stale_resends") or 0)
        self.stalled_starts += int(report.get("stalled_starts") or 0)
        if report.get("arrivals"):
            self.arrivals.merge(report["arrivals"], self._arrival_peaks, source)
        self.data_sources.update(report.get("data_sources", {}))
        return delta

    def reset_requests(self) -> None:
        """Forget what was counted per request, when Locust resets its statistics (the web
        UI's Reset Stats, ``--reset-stats`` once spawning completes): ``summary.json``'s
        percentiles then cover the same requests as Locust's counts."""
        self.histograms = HistogramSet(self.sparse)
        self.failed = HistogramSet(self.sparse)
        self.failure_reasons.clear()
        self.slowest = SlowestRequests()
        self.service = HistogramSet(self.sparse)
        self.arrivals = ArrivalCounts()
        self._arrival_peaks.clear()
        self.costly_skipped.clear()
        self.stale_resends = 0
        self.acceptable.clear()

    def reset(self) -> None:
        """Forget everything (a new test started from the web UI); the timeline, if any,
        stays attached (its owner restarts it)."""
        timeline = self.timeline
        self.__init__(self.sparse)  # type: ignore[misc]
        self.timeline = timeline

    def data_source(self) -> dict[str, Any]:
        """One ``run.data_source`` for the run: the processes' descriptions, merged."""
        described = list(self.data_sources.values())
        if not described:
            return {"mode": "generated", "loaded": {}, "generated": [], "fallbacks": {}}
        merged = dict(described[0])
        if any(d != described[0] for d in described[1:]):
            merged["per_process"] = dict(self.data_sources)
        merged["sessions"] = {"from_database": self.sessions.get("database", 0),
                              "generated": self.sessions.get("generated", 0)}  # fmt: skip
        return merged
