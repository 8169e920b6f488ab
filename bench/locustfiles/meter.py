"""Added to every benchmark run (``-f <locustfile>,meter.py``): what the Locust process did.

- ``start``: ``BENCH_METER_WARMUP`` seconds into the test (users spawned, connections open),
  the wall clock (``time.monotonic``, comparable across processes), this process's CPU time
  and Locust's request and failure counts; ``stop``: the same when the test stops;
- ``spawned``: when every user had been spawned;
- ``samples`` (with ``BENCH_METER_SAMPLES=1``): the same counters every 0.2 s while the
  process runs, for runs that are paused and resumed (``bench_throughput.py``);
- ``reset`` (with ``BENCH_METER_RESET_AFTER=S``): S seconds after every user was spawned,
  Locust's statistics are reset as the web UI's Reset Stats button does (so the framework's
  summary.json restarts too), and the wall clock is noted;
- ``latency`` (with ``BENCH_METER_LATENCY=1``): p50 and p99 of the response times from
  ``start`` (or from ``reset``) to the moment the test begins to stop, with the framework's
  exact histogram, for any locustfile (bare ones have no summary.json) and without the
  ramp-up and shutdown;
- ``stopping``: the wall clock when the test began to stop.

Every mark also holds ``steal``: each CPU's steal time so far (``/proc/stat``, in clock ticks),
the time the hypervisor ran something else while this machine's CPU had work: a run whose
window saw much of it measured the host, not Locust.

Written to ``BENCH_METER_FILE`` as JSON when the test stops. Requests per CPU-second of the
Locust process is the load generator's speed on one core, whatever else shares the core.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import gevent
from locust import events

from panacea_locust.verdict.health import steal_ticks_per_cpu

_marks: dict[str, Any] = {}
_latency: Any = None  # a LatencyHistogram while the steady window is open
_samples: list[tuple[float, float, int, int]] = []  # (monotonic, cpu, requests, failures)


def _counters(environment: Any) -> tuple[float, float, int, int]:
    stats = environment.stats.total
    return time.monotonic(), time.process_time(), stats.num_requests, stats.num_failures


def _mark(environment: Any, name: str) -> None:
    wall, cpu, requests, failures = _counters(environment)
    _marks[name] = {
        "wall": wall,
        "cpu": cpu,
        "requests": requests,
        "failures": failures,
        "steal": steal_ticks_per_cpu(),
    }
    if name == "start" and "BENCH_METER_RESET_AFTER" not in os.environ:
        _open_latency_window()


def _open_latency_window() -> None:
    global _latency
    if os.environ.get("BENCH_METER_LATENCY") == "1" and _latency is None:
        from panacea_locust.verdict.histogram import LatencyHistogram

        _latency = LatencyHistogram()


@events.request.add_listener
def _on_request(response_time: float, **_: Any) -> None:
    if _latency is not None:
        _latency.record(response_time)


@events.test_stopping.add_listener
def _on_stopping(**_: Any) -> None:
    global _latency
    _marks["stopping"] = {"wall": time.monotonic(), "steal": steal_ticks_per_cpu()}
    if _latency is not None:
        _marks["latency"] = {
            "count": _latency.count,
            "p50_ms": _latency.percentile(50),
            "p99_ms": _latency.percentile(99),
            "mean_ms": _latency.mean_ms,
        }
        _latency = None


def _sampler(environment: Any) -> None:
    while True:
        _samples.append(_counters(environment))
        gevent.sleep(0.2)


@events.test_start.add_listener
def _on_start(environment: Any, **_: Any) -> None:
    warmup = float(os.environ.get("BENCH_METER_WARMUP", "1"))
    gevent.spawn_later(warmup, _mark, environment, "start")
    if os.environ.get("BENCH_METER_SAMPLES") == "1":
        gevent.spawn(_sampler, environment)


_environment: Any = None


@events.init.add_listener
def _on_init(environment: Any, **_: Any) -> None:
    global _environment
    _environment = environment


@events.spawning_complete.add_listener
def _on_spawned(user_count: int, **_: Any) -> None:
    if "spawned" in _marks:
        return
    _marks["spawned"] = {"wall": time.monotonic(), "users": float(user_count)}
    settle = os.environ.get("BENCH_METER_RESET_AFTER")
    if settle is not None:
        gevent.spawn_later(float(settle), _reset_stats, _environment)


def _reset_stats(environment: Any) -> None:
    """What the web UI's Reset Stats does (``locust/web.py``), then open the latency window."""
    environment.events.reset_stats.fire()
    if environment.runner is not None:
        environment.runner.stats.reset_all()
        environment.runner.exceptions = {}
    _marks["reset"] = {"wall": time.monotonic(), "steal": steal_ticks_per_cpu()}
    _open_latency_window()


@events.test_stop.add_listener
def _on_stop(environment: Any, **_: Any) -> None:
    _mark(environment, "stop")
    _marks["samples"] = _samples
    out = os.environ.get("BENCH_METER_FILE")
    if out:
        with open(out, "w") as f:
            json.dump(_marks, f)
