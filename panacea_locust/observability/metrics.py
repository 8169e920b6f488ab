"""A run's figures as Prometheus metric families: what ``/metrics`` serves (docs/observability.md).

Pure: the Locust glue (``observability/prometheus.py``) copies the live state into a
:class:`RunSnapshot` at scrape time, and :func:`families` shapes it, so the conversions are
unit tested without Locust or gevent. Nothing is counted twice: the counters are Locust's
statistics and the run's tally, read as they stand, which is why a master (fed by its workers'
reports) and a local process serve the same metrics.

Latency buckets come from the tally's exact histograms (3 significant digits,
``verdict/histogram.py``), not from a second count per request: a request counts under a
bound ``le`` when its recorded time is at most ``le`` whatever its last 0.1 %, the same
reading the verdict gives a ``pXX_ms`` rule, so a bucket at an SLO limit agrees with the rule.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import accumulate

from hdrh.histogram import HdrHistogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

from panacea_locust.verdict.histogram import (
    HIGHEST_US,
    LOWEST_US,
    SIGNIFICANT_DIGITS,
    HistogramSet,
    LatencyHistogram,
    SparseHistogram,
)
from panacea_locust.verdict.thresholds import FAIL, PASS

#: ``panacea_request_duration_seconds`` bounds: 1 ms to 60 s in 1-2.5-5 steps, plus the
#: latency limits of the shipped ``slo.toml`` (1, 1.5, 2, 5, 8, 10 s), where a bucket then
#: answers "which share met the limit" exactly
DURATION_BUCKETS_S: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 1.5, 2.0, 2.5, 5.0, 8.0, 10.0, 20.0, 30.0, 60.0,
)  # fmt: skip

#: ``outcome`` label values of ``panacea_requests_total``: every request is exactly one
OUTCOMES: tuple[str, ...] = ("success", "failure", "acceptable")

#: a histogram of the same layout as the tally's, only to ask its bucket boundaries
_LAYOUT = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


@lru_cache(maxsize=8)
def _bucket_limits(bounds_s: tuple[float, ...]) -> tuple[int, ...]:
    """For each bound, the highest bucket index whose values are all at most the bound."""
    if list(bounds_s) != sorted(set(bounds_s)) or (bounds_s and bounds_s[0] <= 0):
        raise ValueError(f"bucket bounds must be positive and ascending, got {bounds_s}")
    limits = []
    for bound_s in bounds_s:
        bound_us = min(int(round(bound_s * 1_000_000)), HIGHEST_US)
        index = _LAYOUT.get_counts_array_index(bound_us)
        whole = _LAYOUT.get_highest_equivalent_value(bound_us) <= bound_us
        limits.append(index if whole else index - 1)
    return tuple(limits)


def cumulative_buckets(
    hist: LatencyHistogram | SparseHistogram, bounds_s: Sequence[float] = DURATION_BUCKETS_S
) -> list[int]:
    """How many of ``hist``'s values are at most each bound (seconds, ascending), then all of
    them (the ``+Inf`` bucket). A value counts under a bound only when the whole 3-digit
    bucket it was recorded in lies at or below it.

    A ``LatencyHistogram`` is summed slice by slice over its dense counts (about 0.15 ms for
    a histogram of 10 000 spread-out values, against 2.7 ms through ``SparseHistogram.of``):
    a scrape runs on Locust's event loop, and every millisecond it takes is added to the
    latencies measured meanwhile."""
    limits = _bucket_limits(tuple(bounds_s))
    if isinstance(hist, LatencyHistogram):
        return [*hist.counts_up_to(limits), hist.count]
    slots = [0] * (len(limits) + 1)
    for index, n in hist.counts.items():
        slots[bisect_left(limits, index)] += n  # the first bound the bucket lies under
    return list(accumulate(slots))


@dataclass
class RunSnapshot:
    """What ``/metrics`` shows, copied from a run at one moment (plain data, no Locust)."""

    #: request names always listed, with zeros before their first request (the contract's)
    endpoints: Sequence[str] = ()
    #: Locust's requests and failures by request name (all methods together)
    requests: Mapping[str, int] = field(default_factory=dict)
    failures: Mapping[str, int] = field(default_factory=dict)
    #: the tally's acceptable answers (Locust counts them as successes): name -> code -> n
    acceptable: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    #: Locust's failures by (request name, cleaned reason)
    failure_reasons: Mapping[tuple[str, str], int] = field(default_factory=dict)
    #: the tally's response times of answered requests (what latency rules judge)
    answered: HistogramSet = field(default_factory=HistogramSet)
    #: users running now, by user class
    users: Mapping[str, int] = field(default_factory=dict)
    #: the ``thresholds.rules`` of a summary of the run so far
    rules: Sequence[Mapping[str, object]] = ()
    #: CPU share of each load-generating process, percent of one core
    cpu_percent: Mapping[str, float] = field(default_factory=dict)
    #: ``panacea_run_info``'s labels
    info: Mapping[str, str] = field(default_factory=dict)
    #: requests resent after the target closed a kept-alive connection under them
    stale_resends: int = 0
    #: users that waited ``STALLED_START_S`` or more to start sending
    stalled_starts: int = 0


def _names(snapshot: RunSnapshot) -> list[str]:
    """The contract's names first, in order, then any other name seen (sorted)."""
    seen = set(snapshot.requests) | set(snapshot.answered.names())
    return list(snapshot.endpoints) + sorted(seen - set(snapshot.endpoints))


def families(snapshot: RunSnapshot) -> list[Metric]:
    """The metric families of ``snapshot``, every family present even when it has no series
    (so a scrape always names every metric; docs/observability.md lists them)."""
    names = _names(snapshot)
    requests = CounterMetricFamily(
        "panacea_requests_total",
        "Requests by endpoint and outcome: success, failure, or acceptable "
        "(an ACCEPTABLE_STATUS_CODES answer, which Locust counts as a success).",
        labels=["endpoint", "outcome"],
    )
    durations = HistogramMetricFamily(
        "panacea_request_duration_seconds",
        "Response times of the requests that got an answer (success or acceptable), "
        "from the run's 3-significant-digit histograms.",
        labels=["endpoint"],
    )
    bounds = [floatToGoString(b) for b in DURATION_BUCKETS_S] + ["+Inf"]
    for name in names:
        total = snapshot.requests.get(name, 0)
        failed = snapshot.failures.get(name, 0)
        acceptable = sum(snapshot.acceptable.get(name, {}).values())
        success = max(total - failed - acceptable, 0)
        for outcome, value in zip(OUTCOMES, (success, failed, acceptable), strict=True):
            requests.add_metric([name, outcome], value)
        hist = snapshot.answered.get(name)
        counts = cumulative_buckets(hist) if hist is not None else [0] * len(bounds)
        seconds = hist.mean_ms * hist.count / 1000.0 if hist is not None else 0.0
        durations.add_metric([name], list(zip(bounds, counts, strict=True)), seconds)
    failures = CounterMetricFamily(
        "panacea_failures_total",
        "Failed requests by endpoint and reason (Locust's error list, reasons as in "
        "summary.json's failures_by_reason).",
        labels=["endpoint", "reason"],
    )
    for (name, reason), value in sorted(snapshot.failure_reasons.items()):
        failures.add_metric([name, reason], value)
    users = GaugeMetricFamily("panacea_users", "Users running now, by user type.",
                              labels=["user_type"])  # fmt: skip
    for user_type, value in sorted(snapshot.users.items()):
        users.add_metric([user_type], value)
    rules = GaugeMetricFamily(
        "panacea_slo_rule_passing",
        "1 while an SLO rule passes on the run so far, 0 while it fails; a rule without "
        "enough samples yet (insufficient) has no series.",
        labels=["scope", "metric"],
    )
    for rule in snapshot.rules:
        status = rule.get("status")
        if status in (PASS, FAIL):
            rules.add_metric([str(rule.get("scope")), str(rule.get("metric"))],
                             1.0 if status == PASS else 0.0)  # fmt: skip
    cpu = GaugeMetricFamily(
        "panacea_load_generator_cpu_percent",
        "CPU share of each load-generating Locust process, percent of one core (above 85 "
        "the latencies include the generator's own delays).",
        labels=["process"],
    )
    for process, percent in sorted(snapshot.cpu_percent.items()):
        if math.isfinite(percent):
            cpu.add_metric([process], percent)
    info = InfoMetricFamily("panacea_run", "The run: its label, target host and version.",
                            labels=[])  # fmt: skip
    info.add_metric([], {k: str(v) for k, v in snapshot.info.items()})
    resent = CounterMetricFamily(
        "panacea_stale_resends",
        "Requests resent on a new connection because the target closed a kept-alive "
        "connection under them (its keep-alive timeout); each is one request in the others.",
        value=snapshot.stale_resends,
    )
    stalled = CounterMetricFamily(
        "panacea_stalled_starts",
        "Users that waited 5 s or more to start sending (the master's data, its handshake or a "
        "user index was late): counted as running while they sent nothing.",
        value=snapshot.stalled_starts,
    )
    return [requests, failures, durations, users, rules, cpu, info, resent, stalled]
