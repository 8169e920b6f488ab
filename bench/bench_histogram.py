"""Cost of recording one response time: LatencyHistogram.record vs HdrHistogram.record_value.

``record`` runs once per request in every Locust process, so it must stay well below Locust's
own per-request bookkeeping (several microseconds). Also times the per-interval work of a
worker report (encode, decode, merge) and a percentile query.

Run: /tmp/venv/bin/python bench/bench_histogram.py [--values 200000] [--runs 7]
"""

from __future__ import annotations

import argparse
import contextlib
import random
import statistics
import time
from collections.abc import Callable, Sequence
from itertools import compress
from unittest.mock import patch

from hdrh.histogram import HdrHistogram

from panacea_locust.verdict.histogram import (
    _COUNTS_LEN,
    HIGHEST_US,
    LOWEST_US,
    SIGNIFICANT_DIGITS,
    HistogramSet,
    LatencyHistogram,
)
from panacea_locust.verdict.results import EndpointCounts, build_summary
from panacea_locust.verdict.tally import RunTally


def _per_call_ns(fn: Callable[[float], object], values: Sequence[float], runs: int) -> float:
    """Median over ``runs`` of the mean time per call, loop overhead included."""
    samples = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        for v in values:
            fn(v)
        samples.append((time.perf_counter_ns() - start) / len(values))
    return statistics.median(samples)


def _median_ms(fn: Callable[[], object], runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - start) / 1e6)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    rng = random.Random(42)
    values_ms = [rng.lognormvariate(4.0, 1.0) for _ in range(args.values)]  # median ~55 ms
    values_us = [int(v * 1000) for v in values_ms]

    baseline = _per_call_ns(lambda v: None, values_ms, args.runs)
    ours = LatencyHistogram()
    ours_ns = _per_call_ns(ours.record, values_ms, args.runs)
    hdr = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)
    hdr_ns = _per_call_ns(hdr.record_value, values_us, args.runs)
    hset = HistogramSet()
    names = [f"/api/v1/endpoint/{i % 12}" for i in range(len(values_ms))]
    pairs = iter(range(10**12))

    def set_record(v: float) -> None:
        hset.record(names[next(pairs) % len(names)], v)

    set_ns = _per_call_ns(set_record, values_ms, args.runs)

    print(f"values per run: {len(values_ms)}, runs: {args.runs} (median reported)")
    print(f"empty call (loop overhead)        {baseline:8.0f} ns")
    print(f"LatencyHistogram.record           {ours_ns:8.0f} ns per record")
    print(f"HistogramSet.record (+ wrapper)    {set_ns:8.0f} ns per record")
    print(f"HdrHistogram.record_value (hdrh)  {hdr_ns:8.0f} ns per record")

    payload = ours.to_payload()
    print(
        f"to_payload                        {_median_ms(ours.to_payload, args.runs):8.2f} ms "
        f"({len(payload)} chars)"
    )
    print(
        f"from_payload                      "
        f"{_median_ms(lambda: LatencyHistogram.from_payload(payload), args.runs):8.2f} ms"
    )
    other = LatencyHistogram.from_payload(payload)
    print(
        f"merge                             "
        f"{_median_ms(lambda: other.copy().merge(ours), args.runs):8.2f} ms (incl. copy)"
    )

    def fresh_percentiles() -> None:
        ours._cumulative_at = -1  # force the rebuild that a new record causes
        for q in (50, 90, 95, 99, 99.9):
            ours.percentile(q)

    print(f"5 percentiles after new records   {_median_ms(fresh_percentiles, args.runs):8.2f} ms")
    _worker_report(rng, args.runs)
    _snapshot(rng, args.runs)


def _worker_report(rng: random.Random, runs: int) -> None:
    """A worker's report interval: 3 s at 100 req/s over the 12 endpoints, each request in the
    answered and the service histograms. ``tally.drain()`` runs on the worker's event loop,
    which does nothing else meanwhile. A worker's tally is sparse; against it, in alternating
    rounds, a dense tally whose drain scans every bucket (what it did before)."""
    names = [f"/api/v1/endpoint/{i}" for i in range(12)]

    def interval(sparse: bool) -> RunTally:
        tally = RunTally(sparse=sparse)
        for _ in range(300):
            name, ms = rng.choice(names), rng.lognormvariate(4.0, 1.0)
            tally.histograms.record(name, ms)
            tally.service.record(name, ms)
        return tally

    def full_scan(hist: LatencyHistogram) -> dict[int, int]:
        dense = hist._counts
        return {i: dense[i] for i in compress(range(len(dense)), dense)}

    now: list[float] = []
    before: list[float] = []
    for _ in range(max(runs, 5)):
        for samples, sparse in ((now, True), (before, False)):
            tally = interval(sparse)
            with patch.object(LatencyHistogram, "filled", full_scan):
                start = time.perf_counter_ns()
                tally.drain()
                samples.append((time.perf_counter_ns() - start) / 1e6)
    a, b = statistics.median(now), statistics.median(before)
    print(
        f"worker report (drain, 300 requests) {a:8.2f} ms; dense, every bucket scanned {b:.2f} "
        f"ms ({b / a:.1f}x)"
    )


def _snapshot(rng: random.Random, runs: int) -> None:
    """A snapshot of a running run (``build_summary`` over 12 endpoints), as the abort monitor
    takes each second, the web UI every 2 s and each Prometheus scrape: 20,000 requests so far,
    300 new since the last snapshot, times spread from under 1 ms to 1 s. Against it, in
    alternating rounds, the total merged from the endpoints' dense counts at each snapshot and
    percentiles accumulated over every bucket (what it did before)."""
    names = [f"/api/v1/endpoint/{i}" for i in range(12)]
    counts = {name: EndpointCounts(1700, 0, 10.0) for name in names}
    total_counts = EndpointCounts(20_000, 0, 120.0)

    def merged_total(hs: HistogramSet) -> LatencyHistogram:
        total = LatencyHistogram()
        for name in hs.names():
            total.merge(hs[name])
        return total

    def every_bucket(_hist: LatencyHistogram) -> tuple[int, int]:
        return 0, _COUNTS_LEN - 1

    sets = {}
    for way in ("now", "before"):
        hs = sets[way] = HistogramSet()
        for _ in range(20_000):
            hs.record(rng.choice(names), rng.lognormvariate(3.0, 1.0))
    samples: dict[str, list[float]] = {"now": [], "before": []}
    for _ in range(max(runs, 5)):
        for way in ("now", "before"):
            hs = sets[way]
            for _ in range(300):
                hs.record(rng.choice(names), rng.lognormvariate(3.0, 1.0))
            with contextlib.ExitStack() as patches:
                if way == "before":
                    patches.enter_context(
                        patch.object(HistogramSet, "total", property(merged_total))
                    )
                    patches.enter_context(patch.object(LatencyHistogram, "_range", every_bucket))
                start = time.perf_counter_ns()
                build_summary({}, counts, total_counts, hs, {}, tuple(names), HistogramSet())
                samples[way].append((time.perf_counter_ns() - start) / 1e6)
    a, b = statistics.median(samples["now"]), statistics.median(samples["before"])
    print(
        f"snapshot of a running run           {a:8.2f} ms; total merged and every bucket "
        f"accumulated {b:.2f} ms ({b / a:.1f}x)"
    )


if __name__ == "__main__":
    main()
