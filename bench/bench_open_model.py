"""The open workload model: does an open run send what it promises, and report what is true?

Three parts, each on two pinned cores (target on core 0, Locust on core 1), loopback only:

1. **The generator's own maximum** on one core: nginx answering at once (as in
   ``bench_throughput.py``), one open run of the framework whose rate rises in steps
   (``--arrival-stages``, uniform arrivals, ``--step`` seconds each). A step is *held* when
   the requests answered in it, its first second left out, came within 1 % of its rate
   (falling behind, and drops, which come after a second of lag, both show there); the
   maximum is the highest step held. Not "the last step before the first that was not":
   on a shared machine a stall of 20 ms in a window fails a step the generator then makes
   up, and a higher step held shows that it could. Uniform arrivals: a Poisson count varies
   by 1/sqrt(n) by itself (about 1 % over a few seconds), which would hide a 1 % shortfall.
2. **The generator below its maximum**, against nginx again: open runs at 50 % and 80 % of
   the maximum, uniform arrivals, judged on the achieved rate (within 1 % of the target),
   and one at 50 % with Poisson arrivals (the default, bursts and all), judged on the
   schedule lag p99 (under 5 ms). The achieved rate is the arrivals sent (``run.workload``
   ``sent``) over the window they were counted in (below).
3. **A server with a capacity**: ``delay_server.py --capacity 4 --delay-ms 20`` holds at most
   4 requests at once, 20 ms each, and queues the others in arrival order: 200 requests a
   second at most. Open runs (Poisson, ``--max-users 100``) at 50, 80, 100 and 150 % of that
   capacity, each with target against achieved rate, schedule lag, drops, the intended-start
   p99 and the service p99 from ``summary.json``, and the truth (below); and a **closed** run
   of the same mean load at each: ``--closed-users`` users whose think time is chosen so that
   they offer the target rate while the server answers in its 20 ms (think = users / rate -
   20 ms). As the server saturates, the closed users wait longer and send less: their
   offered load falls below the target, where the open run keeps arriving, and queues.

**The truth** for an open run's intended-start latency is, per request, the moment the
server's answer went out minus the moment the request was due. Both are read on
CLOCK_MONOTONIC, one clock for every process of the machine:

- *when it was due*: the schedule's due time of the arrival, as the dispatcher handed it to
  a user. This file, loaded into the Locust process as one more locustfile, wraps
  ``ArrivalDispatcher.take`` and notes each arrival's due time with the trace id of the
  request sent for it (``TRACE_CONTEXT=true``). It is not taken from the reported time, so
  a schedule lag left out of the reported latency (or counted twice) shows as an error;
- *when the answer went out*: ``delay_server.py``'s own record (``--requests-file``), joined by
  the trace id of the request's ``traceparent``.

So the truth is what the server held the request, its queue included (its own record, from
the kernel's receive stamp to the send), plus the time from the due time to the request's
arrival at the server: the schedule lag (waiting for a free user), building and sending the
request, loopback. What is left out is the way back (the answer's packets, Locust waking up
and reading it): the load generator's own error, which is what is judged, within 3 ms at p99
below saturation (50 and 80 %); ``bench_accuracy.py`` measures the same on closed runs. The
service time's truth is the server's held time alone (its queue included).

**Windows.** As in ``bench_accuracy.py``, the start is left out: ``--settle`` seconds after
every user is ready, Locust's statistics are reset as the web UI's Reset Stats does
(``summary.json`` and its ``run.workload`` counts follow; the probe forgets too), and the
window runs from that reset to the test's stop. ``run.workload`` ``achieved_rps`` divides by
the time since the schedule started, before the reset, so the achieved rate here is ``sent``
over the window instead. A closed run's offered load is the requests answered in the window
over the window.

**Disturbances.** Every run prints its steal time (``common.py``) and the share of the
Locust core that other processes took (``others``: ``taskset`` keeps ours on a core, not
theirs off it; on a machine shared with other work they take turns on it, and the generator
is then late through no fault of its own). A judged run of part 2 or 3 with over
``--max-steal`` percent steal on either core, or others over ``--max-others`` percent, is
taken again, at most ``--attempts`` runs in all, and the calmest counts; the report says how
many judged runs were kept disturbed all the same. Figures are medians over ``--rounds``
rounds; within a round the open and closed runs alternate, and which goes first alternates
between rounds.

    python bench/bench_open_model.py [--rounds 2] [--window 8] [--quick]
    python bench/bench_open_model.py --generator-max 1800   # skip part 1
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import json
import math
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from common import (
    FRAMEWORK_LOCUSTFILE,
    CoreSamples,
    LocustProcess,
    LocustResult,
    cleanup,
    core_samples,
    cpus,
    delay_server_process,
    finish_locust,
    median,
    nginx,
    print_machine,
    start_locust,
    stop,
)

TARGET_RATE_ERROR = 0.01  #: achieved within 1 % of the target, up to 80 % of the maximum
TARGET_LAG_P99_MS = 5.0  #: schedule lag p99 at half the maximum (Poisson arrivals)
TARGET_TRUTH_P99_MS = 3.0  #: intended-start p99 minus the truth's, below saturation
RATE_FRACTIONS = (0.5, 0.8)  #: of the generator's maximum, judged on the achieved rate
LAG_FRACTION = 0.5  #: of the generator's maximum, judged on the schedule lag
LEVELS = (0.5, 0.8, 1.0, 1.5)  #: of the server's capacity
JUDGED_LEVELS = (0.5, 0.8)  #: below saturation: the intended-start p99 is judged
SERVER_SLOTS = 4  #: requests the delay server holds at once
HOLD_MS = 20.0  #: what it holds each
MAX_USERS = 100  #: users serving an open run's arrivals (LOCUST_MAX_USERS' default)
CLOSED_USERS = 40
MAX_STEAL = 0.02  #: a judged run with more steal time on a core is taken again
MAX_OTHERS = 0.05  #: or with other processes taking more of the Locust core
ATTEMPTS = 2
#: the ladder's first stage (req/s, s), not judged: connections opened, first requests
LADDER_WARM = (200.0, 3.0)
STEP_SETTLE_S = 1.0  #: left out at the start of each ladder step
PROBE_FILE_ENV = "BENCH_OPEN_PROBE_FILE"
UNIFORM, POISSON = "uniform", "poisson"


# --- the probe, in the Locust process ---------------------------------------------------------
def install_probe(out: str) -> None:
    """Note, per answered request of an open run, its trace id, its due time (from the
    dispatcher, not from the reported time) and its reported time; forget them at a
    statistics reset as ``summary.json`` does; write them to ``out`` at the stop."""
    from gevent import getcurrent
    from locust import events

    from panacea_locust.open_model.dispatcher import ArrivalDispatcher

    due_of: dict[Any, float] = {}  # the user's greenlet -> the due time of its arrival
    rows: list[tuple[str, float, float]] = []  # trace id, due (s), reported (ms)
    take = ArrivalDispatcher.take

    def take_noting_due(self: ArrivalDispatcher) -> float:
        due = take(self)
        due_of[getcurrent()] = due
        return due

    def on_request(
        response_time: float,
        context: Mapping[str, Any] | None = None,
        exception: BaseException | None = None,
        **_: Any,
    ) -> None:
        due = due_of.pop(getcurrent(), None)
        trace = (context or {}).get("trace_id")
        if due is not None and trace and exception is None:
            rows.append((str(trace), due, float(response_time)))

    def on_stop(**_: Any) -> None:
        Path(out).write_text(json.dumps(rows))

    ArrivalDispatcher.take = take_noting_due  # type: ignore[method-assign]
    events.request.add_listener(on_request)
    events.reset_stats.add_listener(rows.clear)
    events.test_stop.add_listener(on_stop)


# --- small pieces -----------------------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (the framework's definition); nan for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(1, int(q / 100 * len(ordered) + 0.5)) - 1]


def ladder_rates(start: float, ratio: float, top: float) -> list[float]:
    """``start``, ``start * ratio``, ... up to ``top``, rounded to whole requests a second."""
    if start <= 0 or ratio <= 1:
        raise ValueError("the ladder needs a start above 0 and a ratio above 1")
    rates, rate = [], start
    while rate <= top * (1 + 1e-9):
        rates.append(float(round(rate)))
        rate *= ratio
    return rates


def think_time_s(users: int, rate: float, hold_s: float) -> float:
    """The think time at which ``users`` closed users offer ``rate`` requests a second while
    each answer takes ``hold_s`` (Little's law: rate = users / (think + answer))."""
    think = users / rate - hold_s
    if think < 0:
        raise ValueError(f"{users} closed users cannot offer {rate:g} req/s: raise --closed-users")
    return think


def read_server_requests(path: Path) -> dict[str, tuple[float, float, float]]:
    """``delay_server.py --requests-file``: trace id -> (answered at in s, held ms, queued ms)."""
    out: dict[str, tuple[float, float, float]] = {}
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        answered_us, held_us, queued_us, trace = line.split()
        if trace != "-":
            out[trace] = (int(answered_us) / 1e6, int(held_us) / 1000, int(queued_us) / 1000)
    return out


@dataclass
class Truth:
    """Per request joined by trace id: what was reported and what was true (ms)."""

    reported_ms: list[float] = field(default_factory=list)  #: from the due time, as reported
    intended_ms: list[float] = field(default_factory=list)  #: answer out - due (the truth)
    held_ms: list[float] = field(default_factory=list)  #: the server's own hold, its queue in
    queued_ms: list[float] = field(default_factory=list)  #: of which waiting for a slot

    @property
    def errors_ms(self) -> list[float]:
        return [r - t for r, t in zip(self.reported_ms, self.intended_ms, strict=True)]


def join_truth(
    rows: Sequence[Sequence[Any]], server: Mapping[str, tuple[float, float, float]]
) -> Truth:
    """The probe's rows (trace id, due s, reported ms) joined to the server's records."""
    truth = Truth()
    for trace, due, reported in rows:
        record = server.get(trace)
        if record is None:  # not answered by the server (failed, or cut off at the stop)
            continue
        answered, held, queued = record
        truth.reported_ms.append(float(reported))
        truth.intended_ms.append((answered - float(due)) * 1000)
        truth.held_ms.append(held)
        truth.queued_ms.append(queued)
    return truth


def _finish(lp: LocustProcess) -> tuple[LocustResult, CoreSamples]:
    """Wait for the run to end (stopped, whatever happens), sampling the Locust core."""
    try:
        with core_samples(lp.proc.pid) as core:
            result = finish_locust(lp)
    finally:
        stop(lp.proc)
    return result, core


def _others(result: LocustResult, core: CoreSamples, cpu: int | None) -> float:
    """The share of the Locust core other processes took in the window."""
    return core.others(cpu, result.reset_at or 0.0, result.stopping_at or 0.0)


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) else math.nan


def _window_s(result: LocustResult) -> float:
    if result.reset_at is None or result.stopping_at is None:
        raise RuntimeError(f"{result.label}: no steady window (see {result.run_dir})")
    return result.stopping_at - result.reset_at


def _summary(result: LocustResult) -> dict[str, Any]:
    if result.summary is None:
        raise RuntimeError(f"{result.label}: no summary.json (see {result.run_dir})")
    return result.summary


# --- part 1: the generator's maximum ----------------------------------------------------------
@dataclass
class Step:
    target_rps: float
    achieved_rps: float  #: requests answered a second, the step's first second left out
    cpu: float  #: share of its core the Locust process used meanwhile
    others: float = 0.0  #: share of that core other processes took meanwhile

    @property
    def held(self) -> bool:
        return self.achieved_rps >= (1 - TARGET_RATE_ERROR) * self.target_rps


@dataclass
class Ladder:
    steps: list[Step]
    steal: float

    @property
    def max_rps(self) -> float:
        """The highest step held (0: none). A step not held below a higher one that was is a
        stall the generator made up, not its limit."""
        return max((s.target_rps for s in self.steps if s.held), default=0.0)

    @property
    def topped(self) -> bool:
        """The last step held: the maximum is at or above the ladder's top."""
        return bool(self.steps) and self.steps[-1].held


def steps_from_samples(
    samples: Sequence[Sequence[float]],
    t0: float,
    warm_s: float,
    step_s: float,
    rates: Sequence[float],
    others: Callable[[float, float], float] = lambda _since, _until: 0.0,
) -> list[Step]:
    """Each step's achieved rate and CPU from the meter's samples ((monotonic, CPU s,
    requests, failures) every 0.2 s); the schedule started at ``t0``; ``others(since,
    until)``: the share of the core other processes took."""
    times = [s[0] for s in samples]
    out = []
    for k, rate in enumerate(rates):
        begin = t0 + warm_s + k * step_s
        lo = bisect.bisect_left(times, begin + STEP_SETTLE_S)
        hi = bisect.bisect_right(times, begin + step_s - 0.1) - 1
        if hi <= lo:
            break  # the run ended (or the samples did) before this step
        a, b = samples[lo], samples[hi]
        wall = b[0] - a[0]
        step = Step(rate, (b[2] - a[2]) / wall, (b[1] - a[1]) / wall, others(a[0], b[0]))
        out.append(step)
    return out


def measure_ladder(rates: Sequence[float], step_s: float, cpus_: tuple[int | None, ...]) -> Ladder:
    """One open run against nginx, its rate rising through ``rates``."""
    target_cpu, locust_cpu = cpus_
    warm_rps, warm_s = LADDER_WARM
    stages = f"{warm_rps:g}:{warm_s:g}s" + "".join(f",{r:g}:{step_s:g}s" for r in rates)
    seconds = math.ceil(2 + warm_s + step_s * len(rates) + 5)  # the stages end the run first
    with nginx(cpu=target_cpu) as url:
        lp = start_locust(
            FRAMEWORK_LOCUSTFILE,
            url,
            users=MAX_USERS,
            seconds=seconds,
            cpu=locust_cpu,
            label="open-ladder",
            warmup=0.0,
            samples=True,
            extra=["--arrival-stages", stages, "--arrival-process", UNIFORM],
            env={"LOCUST_MAX_USERS": str(MAX_USERS)},
        )
        result, core = _finish(lp)
    if result.spawned_at is None:
        raise RuntimeError(f"ladder: the users were never all started (see {result.run_dir})")
    steps = steps_from_samples(
        result.samples,
        result.spawned_at,
        warm_s,
        step_s,
        rates,
        lambda since, until: core.others(locust_cpu, since, until),
    )
    steal = result.steal_on(cpus_)
    cleanup(result)
    return Ladder(steps, steal)


# --- part 2: the generator below its maximum --------------------------------------------------
@dataclass
class FastRun:
    """An open run against nginx: the generator alone."""

    process: str
    target_rps: float
    achieved_rps: float  #: sent over the window
    dropped: int
    lag_p50_ms: float
    lag_p99_ms: float
    scheduler_late_p99_ms: float
    cpu: float
    steal: float = 0.0
    others: float = 0.0  #: share of the Locust core other processes took in the window
    attempts: int = 1

    @property
    def rate_error(self) -> float:
        return self.achieved_rps / self.target_rps - 1

    def line(self) -> str:
        return (
            f"target {self.target_rps:7.1f} achieved {self.achieved_rps:7.1f} "
            f"({self.rate_error:+.2%}), dropped {self.dropped}, lag p50 {self.lag_p50_ms:.2f} "
            f"p99 {self.lag_p99_ms:.2f} ms, scheduler late p99 {self.scheduler_late_p99_ms:.2f} "
            f"ms | Locust CPU {self.cpu:.0%}, others {self.others:.0%}, steal {self.steal:.1%}"
        )


def _open_args(rate: float, process: str, users: int = MAX_USERS) -> list[str]:
    return ["--arrival-rate", f"{rate:g}", "--arrival-process", process, "--max-users", str(users)]


def measure_fast(
    rate: float, process: str, settle: float, window: float, cpus_: tuple[int | None, ...]
) -> FastRun:
    target_cpu, locust_cpu = cpus_
    with nginx(cpu=target_cpu) as url:
        lp = start_locust(
            FRAMEWORK_LOCUSTFILE,
            url,
            users=MAX_USERS,
            seconds=math.ceil(1 + settle + window),
            cpu=locust_cpu,
            label="open-fast",
            warmup=1 + settle,
            extra=_open_args(rate, process),
            env={"LOCUST_MAX_USERS": str(MAX_USERS), "BENCH_METER_RESET_AFTER": f"{settle:g}"},
        )
        result, core = _finish(lp)
    w = _summary(result)["run"]["workload"]
    run = FastRun(
        process=process,
        target_rps=rate,
        achieved_rps=w["sent"] / _window_s(result),
        dropped=int(w["dropped"]),
        lag_p50_ms=_number(w.get("lag_p50_ms")),
        lag_p99_ms=_number(w.get("lag_p99_ms")),
        scheduler_late_p99_ms=_number(w.get("scheduler_late_p99_ms")),
        cpu=result.cpu,
        steal=result.steal_on(cpus_),
        others=_others(result, core, locust_cpu),
    )
    cleanup(result)
    return run


# --- part 3: a server with a capacity ---------------------------------------------------------
@dataclass
class CapacityServer:
    proc: subprocess.Popen[str]
    requests_file: Path
    url: str = ""


@contextlib.contextmanager
def capacity_server(
    cpu: int | None, slots: int, hold_ms: float, connections: int
) -> Iterator[CapacityServer]:
    """``delay_server.py --capacity slots --delay-ms hold_ms`` pinned to ``cpu``, a worker for
    each of ``connections``; stopped (workers too, their records written) on exit."""
    with tempfile.TemporaryDirectory(prefix="bench-capacity-") as tmp:
        requests = Path(tmp) / "requests.txt"
        args = ["--delay-ms", f"{hold_ms:g}", "--capacity", str(slots)]
        args += ["--held-file", str(Path(tmp) / "held.txt"), "--requests-file", str(requests)]
        args += ["--workers", str(connections + 4)]
        with delay_server_process(Path(tmp), args, cpu) as (proc, url):
            yield CapacityServer(proc, requests, url)


@dataclass
class Server:
    slots: int = SERVER_SLOTS
    hold_ms: float = HOLD_MS

    @property
    def capacity_rps(self) -> float:
        return self.slots / self.hold_ms * 1000


@dataclass
class OpenRun:
    """An open run against the server with a capacity, and its truth."""

    level: float  #: of the server's capacity
    target_rps: float
    achieved_rps: float  #: sent over the window
    sent: int
    dropped: int
    lag_p50_ms: float
    lag_p99_ms: float
    scheduler_late_p99_ms: float
    p99_ms: float  #: intended start, summary.json
    service_p99_ms: float  #: from the actual send, summary.json
    true_p99_ms: float  #: answer out - due (see the docstring)
    true_service_p99_ms: float  #: the server's hold, its queue included
    server_queued_p99_ms: float  #: what the server's queue added
    error_p50_ms: float  #: per request, reported - truth
    error_p99_ms: float
    users_peak: int
    requests: int  #: answered, summary.json
    joined: int  #: of them, joined to the server's records
    cpu: float
    steal: float = 0.0
    others: float = 0.0  #: share of the Locust core other processes took in the window
    attempts: int = 1

    @property
    def dropped_ratio(self) -> float:
        handled = self.sent + self.dropped
        return self.dropped / handled if handled else 0.0

    @property
    def p99_minus_truth(self) -> float:
        return self.p99_ms - self.true_p99_ms

    def line(self) -> str:
        return (
            f"target {self.target_rps:5.0f} achieved {self.achieved_rps:6.1f}, dropped "
            f"{self.dropped_ratio:6.2%}, lag p50/p99 {self.lag_p50_ms:.1f}/{self.lag_p99_ms:.1f} "
            f"| intended p99 {self.p99_ms:.1f} ms, truth {self.true_p99_ms:.1f} "
            f"({self.p99_minus_truth:+.2f}; per request p50 {self.error_p50_ms:+.2f}, p99 "
            f"{self.error_p99_ms:+.2f}) | service p99 {self.service_p99_ms:.1f}, held "
            f"{self.true_service_p99_ms:.1f} (queue {self.server_queued_p99_ms:.1f}) | "
            f"{self.joined}/{self.requests} joined, {self.users_peak} users | Locust CPU "
            f"{self.cpu:.0%}, others {self.others:.0%}, steal {self.steal:.1%}"
        )


@dataclass
class ClosedRun:
    level: float
    target_rps: float
    users: int
    think_s: float
    achieved_rps: float  #: answered in the window over the window: the load it offered
    p50_ms: float
    p99_ms: float
    cpu: float
    steal: float = 0.0
    others: float = 0.0  #: share of the Locust core other processes took in the window

    @property
    def offered(self) -> float:
        return self.achieved_rps / self.target_rps

    def line(self) -> str:
        return (
            f"target {self.target_rps:5.0f} achieved {self.achieved_rps:6.1f} "
            f"({self.offered:.1%} of it), {self.users} users thinking "
            f"{self.think_s * 1000:.0f} ms | p50 {self.p50_ms:.1f}, p99 {self.p99_ms:.1f} ms | "
            f"Locust CPU {self.cpu:.0%}, others {self.others:.0%}, steal {self.steal:.1%}"
        )


def measure_open(
    level: float,
    server_: Server,
    settle: float,
    window: float,
    cpus_: tuple[int | None, ...],
) -> OpenRun:
    server_cpu, locust_cpu = cpus_
    rate = level * server_.capacity_rps
    with capacity_server(server_cpu, server_.slots, server_.hold_ms, MAX_USERS) as server:
        probe_file = Path(tempfile.mkstemp(prefix="bench-open-probe-", suffix=".json")[1])
        try:
            lp = start_locust(
                FRAMEWORK_LOCUSTFILE,
                server.url,
                users=MAX_USERS,
                seconds=math.ceil(1 + settle + window),
                cpu=locust_cpu,
                label="open-capacity",
                warmup=1 + settle,
                extra=_open_args(rate, POISSON),
                env={
                    "LOCUST_MAX_USERS": str(MAX_USERS),
                    "BENCH_METER_RESET_AFTER": f"{settle:g}",
                    "BENCH_METER_LATENCY": "1",
                    "TRACE_CONTEXT": "true",
                    PROBE_FILE_ENV: str(probe_file),
                },
                also=[Path(__file__).resolve()],
            )
            result, core = _finish(lp)
            stop(server.proc)  # its workers write their records as they exit
            rows = json.loads(probe_file.read_text()) if probe_file.stat().st_size else []
        finally:
            probe_file.unlink(missing_ok=True)
        truth = join_truth(rows, read_server_requests(server.requests_file))
    summary = _summary(result)
    w, total = summary["run"]["workload"], summary["total"]
    if not truth.intended_ms:
        raise RuntimeError(f"open {level:.0%}: no request joined (see {result.run_dir})")
    errors = truth.errors_ms
    run = OpenRun(
        level=level,
        target_rps=rate,
        achieved_rps=w["sent"] / _window_s(result),
        sent=int(w["sent"]),
        dropped=int(w["dropped"]),
        lag_p50_ms=_number(w.get("lag_p50_ms")),
        lag_p99_ms=_number(w.get("lag_p99_ms")),
        scheduler_late_p99_ms=_number(w.get("scheduler_late_p99_ms")),
        p99_ms=_number(total.get("p99_ms")),
        service_p99_ms=_number(total.get("service_p99_ms")),
        true_p99_ms=percentile(truth.intended_ms, 99),
        true_service_p99_ms=percentile(truth.held_ms, 99),
        server_queued_p99_ms=percentile(truth.queued_ms, 99),
        error_p50_ms=percentile(errors, 50),
        error_p99_ms=percentile(errors, 99),
        users_peak=int(w.get("users_peak") or 0),
        requests=int(total.get("requests") or 0),
        joined=len(truth.intended_ms),
        cpu=result.cpu,
        steal=result.steal_on(cpus_),
        others=_others(result, core, locust_cpu),
    )
    cleanup(result)
    return run


def measure_closed(
    level: float,
    server_: Server,
    users: int,
    settle: float,
    window: float,
    cpus_: tuple[int | None, ...],
) -> ClosedRun:
    server_cpu, locust_cpu = cpus_
    rate = level * server_.capacity_rps
    think = think_time_s(users, rate, server_.hold_ms / 1000)
    kinds = ("HEAVY", "LIGHT", "STANDARD")
    waits = {f"{k}_WAIT_{end}": f"{think:.6f}" for k in kinds for end in ("MIN", "MAX")}
    with capacity_server(server_cpu, server_.slots, server_.hold_ms, users) as server:
        lp = start_locust(
            FRAMEWORK_LOCUSTFILE,
            server.url,
            users=users,
            seconds=math.ceil(1 + think + settle + window),  # -t takes whole seconds
            cpu=locust_cpu,
            label="closed-capacity",
            warmup=1 + think + settle,
            env={
                **waits,
                "LOCUST_MAX_USERS": str(max(users, MAX_USERS)),
                "BENCH_METER_RESET_AFTER": f"{think + settle:g}",
                "BENCH_METER_LATENCY": "1",
            },
        )
        result, core = _finish(lp)
    total = _summary(result)["total"]
    answered = (result.latency or {}).get("count", 0)
    run = ClosedRun(
        level=level,
        target_rps=rate,
        users=users,
        think_s=think,
        achieved_rps=answered / _window_s(result),
        p50_ms=_number(total.get("p50_ms")),
        p99_ms=_number(total.get("p99_ms")),
        cpu=result.cpu,
        steal=result.steal_on(cpus_),
        others=_others(result, core, locust_cpu),
    )
    cleanup(result)
    return run


Calm = TypeVar("Calm", FastRun, OpenRun)


def calm(measure: Callable[[], Calm], s: Settings, say: Callable[[str], None]) -> Calm:
    """``measure()``, again while the hypervisor took more than ``s.max_steal`` of a core or
    other processes more than ``s.max_others`` of the Locust core, at most ``s.attempts``
    runs in all; the calmest (least of both together) counts."""
    tried: list[Calm] = []
    while True:
        run = measure()
        tried.append(run)
        if run.steal <= s.max_steal and run.others <= s.max_others:
            break
        if len(tried) >= s.attempts:
            break
        say(
            f"  disturbed: {run.steal:.1%} steal on a core (limit {s.max_steal:.0%}), other "
            f"processes {run.others:.1%} of the Locust core (limit {s.max_others:.0%}): again"
        )
    best = min(tried, key=lambda r: r.steal + r.others)
    best.attempts = len(tried)
    return best


# --- the whole ----------------------------------------------------------------------------
FAST_PLAN = [(UNIFORM, f) for f in RATE_FRACTIONS] + [(POISSON, LAG_FRACTION)]


@dataclass(frozen=True)
class Target:
    figure: str
    value: str
    target: str
    met: bool


@dataclass
class Settings:
    rounds: int = 2
    window: float = 8.0  #: seconds measured per run of parts 2 and 3
    settle: float = 2.0  #: seconds from the users' start to the reset
    step: float = 2.5  #: seconds per ladder step
    ladder: tuple[float, float, float] = (400.0, 1.1, 3000.0)  #: start, ratio, top
    generator_max: float | None = None
    closed_users: int = CLOSED_USERS
    max_steal: float = MAX_STEAL
    max_others: float = MAX_OTHERS
    attempts: int = ATTEMPTS
    parts: tuple[int, ...] = (1, 2, 3)


@dataclass
class OpenModel:
    server: Server
    settings: Settings
    ladders: list[Ladder] = field(default_factory=list)
    fast: list[FastRun] = field(default_factory=list)
    open_runs: list[OpenRun] = field(default_factory=list)
    closed_runs: list[ClosedRun] = field(default_factory=list)

    @property
    def generator_max_rps(self) -> float:
        given = self.settings.generator_max
        return given if given is not None else median([lad.max_rps for lad in self.ladders])

    def fast_of(self, process: str, fraction: float) -> list[FastRun]:
        rate = fraction * self.generator_max_rps
        return [r for r in self.fast if r.process == process and math.isclose(r.target_rps, rate)]

    def open_at(self, level: float) -> list[OpenRun]:
        return [r for r in self.open_runs if r.level == level]

    def closed_at(self, level: float) -> list[ClosedRun]:
        return [r for r in self.closed_runs if r.level == level]

    def rate_error(self, fraction: float) -> float:
        """Median achieved/target - 1 of the uniform runs at ``fraction`` of the maximum."""
        return median([r.rate_error for r in self.fast_of(UNIFORM, fraction)])

    @property
    def rate_met(self) -> bool:
        runs = [self.fast_of(UNIFORM, f) for f in RATE_FRACTIONS]
        if not all(runs):
            return False
        return all(abs(self.rate_error(f)) <= TARGET_RATE_ERROR for f in RATE_FRACTIONS)

    @property
    def lag_p99_ms(self) -> float:
        return median([r.lag_p99_ms for r in self.fast_of(POISSON, LAG_FRACTION)])

    @property
    def lag_met(self) -> bool:
        return bool(self.fast_of(POISSON, LAG_FRACTION)) and self.lag_p99_ms < TARGET_LAG_P99_MS

    def truth_error(self, level: float) -> float:
        return median([r.p99_minus_truth for r in self.open_at(level)])

    def targets(self) -> list[Target]:
        """The targets of the parts that ran, each with its figure."""
        out = []
        if any(self.fast_of(UNIFORM, f) for f in RATE_FRACTIONS):
            worst = max(abs(self.rate_error(f)) for f in RATE_FRACTIONS if self.fast_of(UNIFORM, f))
            out.append(Target(
                f"achieved rate vs target, up to {max(RATE_FRACTIONS):.0%} of the maximum",
                f"{worst:.2%} off", f"within {TARGET_RATE_ERROR:.0%}", self.rate_met,
            ))  # fmt: skip
        if self.fast_of(POISSON, LAG_FRACTION):
            out.append(Target(
                f"schedule lag p99 at {LAG_FRACTION:.0%} of the maximum (Poisson)",
                f"{self.lag_p99_ms:.2f} ms", f"< {TARGET_LAG_P99_MS:g} ms", self.lag_met,
            ))  # fmt: skip
        for level in JUDGED_LEVELS:
            if self.open_at(level):
                error = self.truth_error(level)
                out.append(Target(
                    f"intended-start p99 - truth at {level:.0%} of capacity",
                    f"{error:+.2f} ms", f"within {TARGET_TRUTH_P99_MS:g} ms",
                    abs(error) <= TARGET_TRUTH_P99_MS,
                ))  # fmt: skip
        return out

    @property
    def met(self) -> bool:
        """Every target of the parts that ran met."""
        return all(t.met for t in self.targets())

    @property
    def disturbed(self) -> int:
        """Judged runs kept although disturbed (see ``calm``)."""
        judged: list[FastRun | OpenRun] = [*self.fast]
        judged += [r for r in self.open_runs if r.level in JUDGED_LEVELS]
        s = self.settings
        return sum(1 for r in judged if r.steal > s.max_steal or r.others > s.max_others)

    def as_dict(self) -> dict[str, Any]:
        """Every figure (medians over the rounds), for ``run_all.py --json``."""
        srv = self.server
        out: dict[str, Any] = {
            "server": {
                "slots": srv.slots,
                "hold_ms": srv.hold_ms,
                "capacity_rps": srv.capacity_rps,
            },
            "generator_max_rps": self.generator_max_rps,
            "ladders": [
                {
                    "max_rps": lad.max_rps,
                    "topped": lad.topped,
                    "steal": round(lad.steal, 4),
                    "steps": [asdict(s) for s in lad.steps],
                }
                for lad in self.ladders
            ],  # fmt: skip
            "targets": [asdict(t) for t in self.targets()],
            "judged_runs_kept_disturbed": self.disturbed,
            "generator": {},
            "levels": {},
        }
        for process, fraction in FAST_PLAN:
            if runs := self.fast_of(process, fraction):
                out["generator"][f"{process} {fraction:.0%}"] = _medians(runs, FAST_KEYS)
        for level in LEVELS:
            block: dict[str, dict[str, float]] = {}
            if opened := self.open_at(level):
                block["open"] = _medians(opened, OPEN_KEYS)
            if closed := self.closed_at(level):
                block["closed"] = _medians(closed, CLOSED_KEYS)
            if block:
                out["levels"][f"{level:.0%}"] = block
        return out


FAST_KEYS = ("target_rps", "achieved_rps", "rate_error", "dropped", "lag_p50_ms", "lag_p99_ms",
             "scheduler_late_p99_ms", "cpu", "others", "steal")  # fmt: skip
OPEN_KEYS = ("target_rps", "achieved_rps", "dropped_ratio", "lag_p50_ms", "lag_p99_ms",
             "scheduler_late_p99_ms", "p99_ms", "true_p99_ms", "p99_minus_truth",
             "service_p99_ms", "true_service_p99_ms", "server_queued_p99_ms", "error_p50_ms",
             "error_p99_ms", "users_peak", "cpu", "others", "steal")  # fmt: skip
CLOSED_KEYS = ("target_rps", "think_s", "achieved_rps", "offered", "p50_ms", "p99_ms", "cpu",
               "others", "steal")  # fmt: skip


def _medians(runs: Sequence[Any], keys: Sequence[str]) -> dict[str, float]:
    return {k: round(median([float(getattr(r, k)) for r in runs]), 4) for k in keys}


def run(s: Settings, server: Server | None = None, quiet: bool = False) -> OpenModel:
    """Parts 1 to 3 (see the docstring); every process started is stopped on return."""
    say: Callable[[str], None] = (lambda _m: None) if quiet else print
    cpus_ = cpus()
    out = OpenModel(server or Server(), s)
    say(
        f"target on cpu {cpus_[0]}, Locust on cpu {cpus_[1]}; {s.rounds} round(s); windows of "
        f"{s.window:g} s after {s.settle:g} s; a judged run with over {s.max_steal:.0%} steal "
        f"on a core or other processes taking over {s.max_others:.0%} of the Locust core is "
        f"taken again (at most {s.attempts} runs)"
    )
    if 1 in s.parts and s.generator_max is None:
        _part_1(out, cpus_, say)
    if 2 in s.parts and out.generator_max_rps > 0:
        _part_2(out, cpus_, say)
    if 3 in s.parts:
        _part_3(out, cpus_, say)
    return out


def _part_1(out: OpenModel, cpus_: tuple[int | None, ...], say: Callable[[str], None]) -> None:
    s = out.settings
    rates = ladder_rates(*s.ladder)
    say(
        f"\n-- 1. the generator's maximum: nginx, uniform arrivals rising {rates[0]:g} to "
        f"{rates[-1]:g} req/s, x{s.ladder[1]:g} every {s.step:g} s --"
    )
    for i in range(s.rounds):
        ladder = measure_ladder(rates, s.step, cpus_)
        out.ladders.append(ladder)
        cells = " ".join(
            f"{st.target_rps:g}:{st.achieved_rps / st.target_rps:.3f}" + ("" if st.held else "!")
            for st in ladder.steps
        )
        more = " (the last step held: the maximum is above it)" if ladder.topped else ""
        say(
            f"round {i + 1}: maximum {ladder.max_rps:g} req/s{more}; steal {ladder.steal:.1%}; "
            f"achieved/target per step (! not held): {cells}"
        )
        above = [st for st in ladder.steps if st.target_rps > ladder.max_rps]
        at = [st for st in ladder.steps if st.target_rps == ladder.max_rps]
        if at and above:
            nxt = above[0]
            note = "" if nxt.cpu >= 0.9 else " (under 90 %: not its own CPU that held it)"
            say(
                f"  Locust CPU at the maximum {at[0].cpu:.0%} (others {at[0].others:.0%}), at "
                f"the next step {nxt.cpu:.0%} (others {nxt.others:.0%}){note}"
            )


def _part_2(out: OpenModel, cpus_: tuple[int | None, ...], say: Callable[[str], None]) -> None:
    s, top = out.settings, out.generator_max_rps
    shares = ", ".join(f"{f:.0%}" for f in RATE_FRACTIONS)
    say(f"\n-- 2. the generator at {shares} of its maximum ({top:g} req/s), nginx --")
    for i in range(s.rounds):
        for process, fraction in FAST_PLAN if i % 2 == 0 else FAST_PLAN[::-1]:
            measure = partial(measure_fast, fraction * top, process, s.settle, s.window, cpus_)
            r = calm(measure, s, say)
            out.fast.append(r)
            say(f"round {i + 1} {process:<7} {fraction:>4.0%}: {r.line()}")


def _part_3(out: OpenModel, cpus_: tuple[int | None, ...], say: Callable[[str], None]) -> None:
    s, srv = out.settings, out.server
    say(
        f"\n-- 3. a server with a capacity: {srv.slots} requests at once, {srv.hold_ms:g} ms "
        f"each ({srv.capacity_rps:g} req/s); open runs of up to {MAX_USERS} users, closed "
        f"runs of {s.closed_users} users --"
    )
    for i in range(s.rounds):
        for level in LEVELS:
            for model in ("open", "closed") if i % 2 == 0 else ("closed", "open"):
                if model == "open":
                    measure = partial(measure_open, level, srv, s.settle, s.window, cpus_)
                    o = calm(measure, s, say) if level in JUDGED_LEVELS else measure()
                    out.open_runs.append(o)
                    say(f"round {i + 1} open   {level:>4.0%}: {o.line()}")
                else:
                    c = measure_closed(level, srv, s.closed_users, s.settle, s.window, cpus_)
                    out.closed_runs.append(c)
                    say(f"round {i + 1} closed {level:>4.0%}: {c.line()}")


def report(m: OpenModel) -> None:
    srv = m.server
    gmax = m.generator_max_rps
    print("\nmedians over the rounds")
    if gmax:
        source = "given" if m.settings.generator_max is not None else "measured"
        print(f"generator maximum, one core ({source}): {gmax:g} req/s")
    for process, fraction in FAST_PLAN:
        runs = m.fast_of(process, fraction)
        if runs:
            print(
                f"  {process:<7} at {fraction:.0%} ({runs[0].target_rps:.0f} req/s): achieved "
                f"{median([r.achieved_rps for r in runs]):.1f} "
                f"({median([r.rate_error for r in runs]):+.2%}), lag p50 "
                f"{median([r.lag_p50_ms for r in runs]):.2f} p99 "
                f"{median([r.lag_p99_ms for r in runs]):.2f} ms, scheduler late p99 "
                f"{median([r.scheduler_late_p99_ms for r in runs]):.2f} ms, Locust CPU "
                f"{median([r.cpu for r in runs]):.0%}"
            )
    if m.open_runs or m.closed_runs:
        chance = 1 / math.sqrt(srv.capacity_rps * m.settings.window)
        print(
            f"server: {srv.slots} at once x {srv.hold_ms:g} ms = {srv.capacity_rps:g} req/s. "
            "Times in ms; truth: answer out - due; held: the server's own, its queue in.\n"
            "Open arrivals are Poisson: their achieved/target varies by chance by about "
            f"1/sqrt(arrivals), +-{chance:.1%} at 100 %."
        )
        print(
            f"{'load':>5} {'target':>6} | {'open':>6} {'ratio':>6} {'drop':>6} {'lag50':>6} "
            f"{'lag99':>7} {'p99':>7} {'truth':>7} {'diff':>6} {'svc99':>6} {'held99':>7} | "
            f"{'closed':>6} {'ratio':>6} {'p99':>6}"
        )

        def med(runs: Sequence[Any], key: str) -> float:
            return median([getattr(r, key) for r in runs])

        for level in LEVELS:
            o, c = m.open_at(level), m.closed_at(level)
            target = level * srv.capacity_rps
            row = f"{level:>5.0%} {target:>6.0f} | "
            if o:
                row += (
                    f"{med(o, 'achieved_rps'):>6.1f} {med(o, 'achieved_rps') / target:>6.3f} "
                    f"{med(o, 'dropped_ratio'):>6.1%} {med(o, 'lag_p50_ms'):>6.1f} "
                    f"{med(o, 'lag_p99_ms'):>7.1f} {med(o, 'p99_ms'):>7.1f} "
                    f"{med(o, 'true_p99_ms'):>7.1f} {m.truth_error(level):>+6.2f} "
                    f"{med(o, 'service_p99_ms'):>6.1f} {med(o, 'true_service_p99_ms'):>7.1f} | "
                )
            else:
                row += " " * 79 + "| "
            if c:
                row += f"{med(c, 'achieved_rps'):>6.1f} {med(c, 'offered'):>6.3f} "
                row += f"{med(c, 'p99_ms'):>6.1f}"
            print(row)
    judged: list[FastRun | OpenRun] = [*m.fast, *m.open_runs]
    retried = sum(r.attempts - 1 for r in judged)
    print(
        f"disturbances (steal time, other processes on the Locust core): {retried} run(s) "
        f"taken again; {m.disturbed} judged run(s) kept still disturbed"
    )
    print("targets:")
    for t in m.targets():
        print(f"  {t.figure}: {t.value} (target {t.target}): {'met' if t.met else 'NOT MET'}")


def settings_from(argv: list[str] | None = None) -> tuple[Settings, Server]:
    """The command line as the benchmark's settings and its server (``--quick`` applied)."""
    d = Settings()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=d.rounds)
    ap.add_argument("--window", type=float, default=d.window, help="seconds measured per run")
    ap.add_argument("--settle", type=float, default=d.settle, help="seconds left out first")
    ap.add_argument("--step", type=float, default=d.step, help="seconds per ladder step")
    ladder = ",".join(f"{x:g}" for x in d.ladder)
    ap.add_argument(
        "--ladder",
        default=ladder,
        metavar="START,RATIO,TOP",
        help=f"the ladder's rates: from START, times RATIO, up to TOP (default {ladder})",
    )
    ap.add_argument(
        "--generator-max", type=float, metavar="RPS", help="skip part 1: the maximum is RPS"
    )
    ap.add_argument("--slots", type=int, default=SERVER_SLOTS, help="server: requests at once")
    ap.add_argument("--hold-ms", type=float, default=HOLD_MS, help="server: ms each")
    ap.add_argument("--closed-users", type=int, default=d.closed_users)
    ap.add_argument("--parts", default="1,2,3", help="parts to run (default 1,2,3)")
    ap.add_argument(
        "--max-steal",
        type=float,
        default=d.max_steal * 100,
        metavar="PCT",
        help="take a judged run again when the hypervisor stole more than PCT %% of a core",
    )
    ap.add_argument(
        "--max-others",
        type=float,
        default=d.max_others * 100,
        metavar="PCT",
        help="or when other processes took more than PCT %% of the Locust core",
    )
    ap.add_argument("--attempts", type=int, default=d.attempts, help="runs at most per judged run")
    ap.add_argument("--quick", action="store_true", help="one short round, a coarse ladder")
    opts = ap.parse_args(argv)
    try:
        start, ratio, top = (float(x) for x in opts.ladder.split(","))
        ladder_rates(start, ratio, top)
        parts = tuple(sorted({int(p) for p in opts.parts.split(",") if p.strip()}))
        if not parts or not set(parts) <= {1, 2, 3}:
            raise ValueError("--parts takes 1, 2 and 3")
        if opts.slots < 1 or opts.hold_ms <= 0:
            raise ValueError("the server needs --slots 1 or more and --hold-ms above 0")
    except ValueError as err:
        ap.error(str(err))
    s = Settings(
        rounds=max(1, opts.rounds),
        window=opts.window,
        settle=opts.settle,
        step=opts.step,
        ladder=(start, ratio, top),
        generator_max=opts.generator_max,
        closed_users=opts.closed_users,
        max_steal=opts.max_steal / 100,
        max_others=opts.max_others / 100,
        attempts=max(1, opts.attempts),
        parts=parts,
    )
    return (quick(s) if opts.quick else s), Server(opts.slots, opts.hold_ms)


def quick(s: Settings) -> Settings:
    """``--quick``: one round of short runs and a coarse ladder, no run taken again."""
    s.rounds, s.window, s.settle, s.attempts = 1, 4.0, 2.0, 1
    s.ladder = (400.0, 1.25, 3000.0)
    return s


def main(argv: list[str] | None = None) -> int:
    s, server = settings_from(argv)
    print_machine()
    m = run(s, server)
    report(m)
    return 0 if m.met else 1


if __name__ == "__main__":
    sys.exit(main())
elif os.environ.get(PROBE_FILE_ENV):  # loaded by Locust as a locustfile (measure_open)
    install_probe(os.environ[PROBE_FILE_ENV])
