"""Scale of the master: one real Locust master, many simulated workers, its CPU and memory.

A distributed run has one master, and it works for every worker: a heartbeat a second and,
every 3 s (Locust's ``WORKER_REPORT_INTERVAL``), a report to decode and merge: Locust's
statistics (an entry per endpoint, with its response-time dictionary) and the framework's
``panacea`` part (an HdrHistogram per endpoint, merged into the run's tally and timeline).
That work grows with the workers, and the master is one Python process, one core at most.
This benchmark measures what each report costs it, and so how many workers one master serves.

**The master** is the real one, started as ``panacea-locust run`` starts it (``--headless
--only-summary --csv --html --progress``, the default ``slo.toml``) but with ``--master``,
on 127.0.0.1 and a free port, pinned to one core. Its target is a free loopback port where
nothing listens: no request is ever sent.

**The workers** are simulated by helper processes (this file with ``--fake``, up to
``--per-helper`` workers each, pinned to the other core) that speak Locust's ZeroMQ protocol
with ``locust.rpc``'s ``Message``, one DEALER socket per worker (one connection each, as
real workers have), in ``WorkerRunner``'s sequence: ``client_ready``; ``panacea_ready`` after
the ``ack``; a ``heartbeat`` every second; on ``spawn``, ``spawning``, one
``panacea_index_request`` per user (the framework numbers users globally) and
``spawning_complete``; a ``stats`` report every 3 s, the workers spread evenly over the
cycle; ``client_stopped`` on ``stop``. Before the test a report is the empty one a real
worker sends. During the test it is what a worker with ``--users`` users at ``--rps``
requests a second has after 3 s: that many requests over the twelve endpoints of
``contract.py`` by their weights, log-normal latencies per endpoint (medians 25 ms to 2.5 s),
0.3 % failures and 3 % acceptable 404s, logged into a real ``locust.stats.RequestStats``
(sent as ``serialize_stats()``, ``get_stripped_report()`` and ``serialize_errors()``, as
Locust's worker sends them) and a real ``RunTally`` (``drain()``, as
``PanaceaRun._on_report_to_master`` sends it), with ``panacea_cpu`` and a loop-lag histogram.
Building a report costs more than sending it, so each helper builds a pool of distinct
reports once and its workers take turns through it, restamping per send what changes: the
per-second counts and timestamps (so the master's Locust statistics move on each second as
in a real run) and the worker's data-source key. The helpers' own CPU and lateness are
printed: the fake side must not be what limits the figures. Each fake also notes the longest
its master went without answering a heartbeat: the framework's workers stop after
``MASTER_LOST_S`` (8 s) of that.

**The probe.** This file is also loaded into the master as a second locustfile
(``BENCH_MASTER_PROBE_FILE``). It counts the reports the master handled and times its report
listeners on the main thread's CPU clock: from a listener put first to one put just before
``PanaceaRun._on_worker_report`` (Locust's part: its statistics, the runner's bookkeeping),
and from there to one put last (the framework's: tally, timeline, health). It appends those
counters to the probe file four times a second from a greenlet and, since a saturated master
runs no other greenlet while messages wait, also from the last listener; the benchmark
interpolates them at the window's ends. What the listeners do not account for (ZeroMQ,
msgpack, heartbeats, the CSV writer, the framework's greenlets) is the rest.

**The window.** Once every worker runs its users, ``--warmup`` seconds pass; then the
master's CPU time (``/proc/<pid>/stat``, utime + stime, every thread) and resident set size
(``VmRSS``) are read at both ends of a ``--seconds`` window (a multiple of 3 s: every worker
sends as many reports in it), and its peak RSS (``VmHWM``) at the end. CPU per report is all
of the master's CPU time in the window over the reports it handled in it (heartbeats and the
rest come with the workers too); the *demand* is that cost times the reports sent a second:
the share of a core the master needs to keep up, above 100 % when it cannot. Each point also
prints the hypervisor's steal time over the window (``/proc/stat``) and the share of the
master's core that other processes ran. Then the master is stopped as Ctrl-C does, and the
requests in its ``summary.json`` and the reports with statistics it handled are checked
against those the fakes sent: every report merged. A saturated master (one that could not
keep up) is killed instead: it would first have to work through its backlog.

**Rounds.** A fresh master for every point; ``--rounds`` rounds, the worker counts ascending
in one round and descending in the next; figures are medians over rounds. A straight line
through the median CPU shares of the masters that kept up (through every median demand if
fewer than two did) gives the master's fixed cost, its cost per worker, and the workers it
serves within 25 % and 100 % of a core.

**Target** (issue 15): 100 workers at the default report interval under 25 % of one core.
``--profile FILE`` then runs one more master, at the first ``--workers`` count, under
``cProfile`` (switched on and off by signals around the window; its figures are inflated
by the profiler and not counted) and prints where its time went.

    python bench/bench_master.py [--workers 10,50,100,200] [--seconds 18] [--rounds 2]
    python bench/bench_master.py --quick          # one short round at 10 and 50 workers
    python bench/bench_master.py --workers 20 --rounds 1 --profile /tmp/master.prof
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import pstats
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from common import (
    FRAMEWORK_LOCUSTFILE,
    ROOT,
    clean_env,
    core_samples,
    cpu_seconds,
    cpus,
    free_port,
    median,
    pinned,
    print_machine,
    rss_kb,
    stop,
)

THIS = Path(__file__).resolve()
TARGET_WORKERS = 100
TARGET_CORE_SHARE = 0.25  #: of one core, at TARGET_WORKERS workers
REPORT_INTERVAL_S = 3.0  #: Locust's WORKER_REPORT_INTERVAL (a constant in Locust)
HEARTBEAT_S = 1.0  #: Locust's HEARTBEAT_INTERVAL
MASTER_LOST_S = 8.0  #: event_handlers.MASTER_LOST_S: a worker stops after this much silence
PROBE_FILE_ENV = "BENCH_MASTER_PROBE_FILE"
PROFILE_ENV = "BENCH_MASTER_PROFILE"  #: the master's cProfile output (SIGUSR1 on, SIGUSR2 off)
PROBE_PERIOD_S = 0.25
SATURATED = 0.9  #: a master that used this share of its core, or handled fewer reports than
#: this share of those sent, could not keep up: it is killed, not stopped
POOL = 8  #: distinct reports each helper builds; its workers take turns through them
FAILURE_SHARE = 0.003
ACCEPTABLE_SHARE = 0.03  #: answered 404s (stale test data)
#: median latency (ms) per endpoint key of ``contract.ENDPOINTS``; log-normal, sigma 0.5
MEDIAN_MS: dict[str, float] = {
    "LOGS_ANALYZE": 180.0, "LOGS_INFO": 25.0, "LOGS_SEVERITY_COUNT": 60.0,
    "LOGS_HISTOGRAM": 80.0, "LOGS_HEATMAP": 120.0, "LOGS_SEARCH": 150.0,
    "LOGS_FILTER_OPTIONS": 30.0, "EVENTS": 70.0, "AI_REPORT_SUMMARY": 1500.0,
    "AI_ASK_AI": 2500.0, "REPORTS": 90.0, "BUNDLE_PATHS_BY_CASE": 40.0,
}  # fmt: skip
#: message types of the framework's own protocol (``event_handlers``, ``user_index``)
READY, HELLO, PROOF = "panacea_ready", "panacea_hello", "panacea_proof"
INDEX_REQUEST, INDEX_REPLY = "panacea_index_request", "panacea_index_reply"


# --- the probe, in the master ------------------------------------------------------------------
class MasterProbe:
    """The master's reports and the CPU of their listeners, as rows of the probe file:
    ``[monotonic, reports, Locust's s, framework's s, runner state, workers running, reports
    with statistics]`` (the last: those sent during a test, not the empty ones)."""

    def __init__(self, runner: Any, out: str) -> None:
        self.runner = runner
        self.file = open(out, "a", buffering=1)  # noqa: SIM115 - open for the process's life
        self.reports = self.full = 0
        self.locust_s = self.framework_s = 0.0
        self.started = self.framework_from = 0.0
        self.written = 0.0  #: monotonic time of the last row
        self.clock = time.thread_time  # the listeners run one after the other, on one thread

    def write(self, **_: Any) -> None:
        runner = self.runner
        self.written = time.monotonic()
        row = [self.written, self.reports, self.locust_s, self.framework_s, runner.state,
               len(runner.clients.running), self.full]  # fmt: skip
        self.file.write(json.dumps(row) + "\n")

    def first(self, **_: Any) -> None:
        self.started = self.clock()

    def before_framework(self, **_: Any) -> None:
        self.framework_from = self.clock()

    def last(self, data: Mapping[str, Any], **_: Any) -> None:
        now = self.clock()
        self.reports += 1
        self.full += 1 if data.get("stats") else 0
        self.locust_s += self.framework_from - self.started
        self.framework_s += now - self.framework_from
        if time.monotonic() - self.written >= PROBE_PERIOD_S:
            self.write()  # a busy master runs no other greenlet while messages wait


def install_probe(out: str) -> None:
    """On the master's ``init``: the probe's listeners around the report listeners, a row
    every ``PROBE_PERIOD_S`` and at ``quit``; with ``BENCH_MASTER_PROFILE``, cProfile on
    SIGUSR1 and its figures written on SIGUSR2."""
    import gevent
    from locust import events
    from locust.env import Environment
    from locust.runners import MasterRunner

    from panacea_locust.event_handlers import PanaceaRun

    @events.init.add_listener
    def _on_init(environment: Environment, **_: Any) -> None:
        if not isinstance(environment.runner, MasterRunner):
            return
        probe = MasterProbe(environment.runner, out)
        handlers = environment.events.worker_report._handlers
        framework = handlers.index(PanaceaRun.of(environment)._on_worker_report)
        handlers.insert(framework, probe.before_framework)
        handlers.insert(0, probe.first)
        handlers.append(probe.last)
        environment.events.quit.add_listener(probe.write)

        def rows() -> None:
            while True:
                probe.write()
                gevent.sleep(PROBE_PERIOD_S)

        gevent.spawn(rows)
        profile_out = os.environ.get(PROFILE_ENV)
        if profile_out:
            _profile_on_signals(profile_out)


def _profile_on_signals(out: str) -> None:
    """SIGUSR1: profile from now; SIGUSR2: stop and write the figures to ``out``. Plain
    signal handlers (they run between two bytecodes): a saturated master never gives gevent's
    hub the turn that its signal handlers would wait for."""
    import cProfile

    profiler = cProfile.Profile(time.thread_time)  # CPU, not the wall: greenlets wait

    def dump(*_: Any) -> None:
        profiler.disable()
        profiler.dump_stats(out)

    signal.signal(signal.SIGUSR1, lambda *_: profiler.enable())
    signal.signal(signal.SIGUSR2, dump)


# --- the fake workers, in a helper process -----------------------------------------------------
@dataclass
class Wire:
    """What the fake workers take from Locust, pyzmq and gevent: imported in the helper
    processes only, since importing Locust patches the standard library with gevent's, which
    the benchmark's own process (threads, subprocesses, sleeps) must not have."""

    message: Any  #: locust.rpc.protocol.Message
    zmq: Any  #: zmq.green
    gevent: Any
    version: str  #: Locust's, as ``client_ready`` carries it
    states: Mapping[str, str]  #: "init", "spawning", "running": Locust's state names

    @classmethod
    def load(cls) -> Wire:
        import gevent
        import gevent.event
        import zmq.green as zmq
        from locust import __version__
        from locust.rpc.protocol import Message
        from locust.runners import STATE_INIT, STATE_RUNNING, STATE_SPAWNING

        states = {"init": STATE_INIT, "spawning": STATE_SPAWNING, "running": STATE_RUNNING}
        return cls(Message, zmq, gevent, __version__, states)


@dataclass
class Report:
    """A worker's report after 3 s of its users' requests (built once, sent many times)."""

    requests: int
    stats: list[dict[str, Any]]
    stats_total: dict[str, Any]
    errors: dict[str, dict[str, Any]]
    panacea: dict[str, Any]
    cpu: float  #: ``panacea_cpu``: the worker's share of its core, percent
    loop_lag: str | None

    def stamped(self, now: float, source: Mapping[str, Any]) -> dict[str, Any]:
        """The report as sent at ``now`` (wall clock) by the worker of ``source``."""
        return {
            "stats": [_stamped(entry, now) for entry in self.stats],
            "stats_total": _stamped(self.stats_total, now),
            "errors": {k: {**e, "first_seen": now - 2, "last_seen": now}
                       for k, e in self.errors.items()},
            "panacea": {**self.panacea, "data_sources": dict(source)},
            "panacea_cpu": self.cpu,
            "panacea_loop_lag": self.loop_lag,
        }  # fmt: skip


def _stamped(entry: Mapping[str, Any], now: float) -> dict[str, Any]:
    """A Locust statistics entry whose requests were made over the three seconds to ``now``."""
    second = int(now)
    out = dict(entry)
    out["num_reqs_per_sec"] = _per_second(int(entry["num_requests"]), second)
    out["num_fail_per_sec"] = _per_second(int(entry["num_failures"]), second)
    out["start_time"] = now - REPORT_INTERVAL_S
    out["last_request_timestamp"] = now if entry["num_requests"] else None
    return out


def _per_second(n: int, second: int) -> dict[int, int]:
    base, extra = divmod(n, 3)
    counts = {second - 2 + i: base + (1 if i < extra else 0) for i in range(3)}
    return {s: c for s, c in counts.items() if c}


def _plain(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A serialized entry with plain dictionaries (Locust's are defaultdicts)."""
    return {k: dict(v) if isinstance(v, dict) else v for k, v in entry.items()}


def build_report(rng: random.Random, rps: float) -> Report:
    """``rps`` x 3 s requests counted by Locust's and the framework's own classes, and
    serialized as a worker serializes them."""
    from locust.stats import RequestStats

    from panacea_locust.contract import ENDPOINTS
    from panacea_locust.verdict.histogram import SparseHistogram
    from panacea_locust.verdict.tally import RunTally

    stats, tally = RequestStats(), RunTally()
    n = max(1, round(rps * REPORT_INTERVAL_S))
    for endpoint in rng.choices(ENDPOINTS, [e.weight for e in ENDPOINTS], k=n):
        name, method = endpoint.path, endpoint.method
        ms = rng.lognormvariate(math.log(MEDIAN_MS[endpoint.key]), 0.5)
        draw = rng.random()
        if draw < FAILURE_SHARE:
            stats.log_request(method, name, ms, 0)  # type: ignore[arg-type]
            stats.log_error(method, name, "CatchResponseError('HTTP 500')")
            tally.failed.record(name, ms)
            continue
        stats.log_request(method, name, ms, rng.randint(300, 30_000))  # type: ignore[arg-type]
        if draw < FAILURE_SHARE + ACCEPTABLE_SHARE:
            tally.acceptable_response(name, 404)
        tally.histograms.record(name, ms)
    lag = SparseHistogram()  # the loop-lag probe wakes every 0.1 s
    for _ in range(round(REPORT_INTERVAL_S / 0.1)):
        lag.record(rng.lognormvariate(math.log(0.4), 0.8))
    return Report(
        requests=n,
        stats=[_plain(e) for e in stats.serialize_stats()],
        stats_total=_plain(stats.total.get_stripped_report()),
        errors={k: dict(e) for k, e in stats.serialize_errors().items()},
        panacea=tally.drain(),
        cpu=round(rng.uniform(25.0, 55.0), 1),
        loop_lag=lag.to_payload(),
    )


def idle_report() -> Report:
    """What a worker reports before its test: no statistics, an empty tally."""
    from locust.stats import RequestStats

    from panacea_locust.verdict.tally import RunTally

    total = _plain(RequestStats().total.get_stripped_report())
    return Report(0, [], total, {}, RunTally().drain(), 2.0, None)


@dataclass
class FleetCounts:
    """What one helper's workers did: its status file."""

    connected: int = 0
    running: int = 0
    full_reports: int = 0  #: reports with statistics (during a test)
    requests: int = 0  #: in the full reports
    heartbeats: int = 0
    index_requests: int = 0
    index_replies: int = 0
    late_ms_max: float = 0.0  #: the latest a report left against its schedule
    silence_s_max: float = 0.0  #: the longest a running worker heard no master heartbeat
    silence_s: float = 0.0  #: the same, or longer if a worker has heard nothing since


@dataclass
class Fleet:
    """What one helper's fake workers share."""

    wire: Wire
    context: Any  #: one ZeroMQ context (a real worker has its own; one I/O thread will do)
    port: int  #: the master's, on 127.0.0.1
    pool: Sequence[Report]  #: reports during the test, taken in turn
    idle: Report  #: the report before the test
    source: Mapping[str, Any]  #: a worker's ``PoolData().describe()`` (generated data)
    epoch: float  #: monotonic time every helper's report schedule starts from
    total: int  #: workers over all helpers: the report cycle is spread over them
    counts: FleetCounts = field(default_factory=FleetCounts)
    workers: list[FakeWorker] = field(default_factory=list)

    def silence_s(self) -> float:
        """The longest a running worker has heard nothing from the master, now or before."""
        now, running = time.monotonic(), self.wire.states["running"]
        heard = [w.heard for w in self.workers if w.state == running and w.heard]
        return max([self.counts.silence_s_max, *(now - h for h in heard)])


class FakeWorker:
    """One simulated worker: the messages ``WorkerRunner`` exchanges with its master, its
    users and requests only figures in its reports."""

    def __init__(self, fleet: Fleet, number: int) -> None:
        self.fleet, self.wire, self.counts, self.number = fleet, fleet.wire, fleet.counts, number
        self.id = f"{socket.gethostname()}_{uuid.uuid4().hex}"  # as WorkerRunner names itself
        zmq = fleet.wire.zmq
        self.socket = fleet.context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.IDENTITY, self.id.encode())
        self.socket.setsockopt(zmq.TCP_KEEPALIVE, 1)
        self.socket.setsockopt(zmq.TCP_KEEPALIVE_IDLE, 30)
        self.socket.connect(f"tcp://127.0.0.1:{fleet.port}")
        self.state = fleet.wire.states["init"]
        self.acked = fleet.wire.gevent.event.Event()
        self.user_classes_count: dict[str, int] = {}
        self.last_spawn = 0.0
        self.users_pending = False  # the first report after a spawn names the users started
        self.source = {f"{os.getpid()}-{number}": dict(fleet.source)}  # the tally's key: a pid
        self.reports = 0
        self.heard = 0.0  #: monotonic time of the master's last heartbeat
        fleet.workers.append(self)

    def send(self, kind: str, data: Any) -> None:
        message = self.wire.message(kind, data, self.id)
        self.socket.send(message.serialize(), self.wire.zmq.NOBLOCK)

    def start(self) -> None:
        self.wire.gevent.spawn(self.receive)
        self.wire.gevent.spawn(self.connect)

    def connect(self) -> None:
        """``client_ready`` until the master's ``ack`` (Locust asks again every 5 s), then the
        framework's ready message; heartbeats and reports from then on."""
        while True:
            self.send("client_ready", self.wire.version)
            if self.acked.wait(5.0):
                break
        self.counts.connected += 1
        self.send(READY, None)
        self.wire.gevent.spawn(self.heartbeats)
        self.wire.gevent.spawn(self.reporter)

    def receive(self) -> None:
        unserialize = self.wire.message.unserialize
        while True:
            self.handle(unserialize(self.socket.recv()))

    def handle(self, msg: Any) -> None:
        states = self.wire.states
        if msg.type == "heartbeat":
            now = time.monotonic()
            if self.heard and self.state == states["running"]:
                self.counts.silence_s_max = max(self.counts.silence_s_max, now - self.heard)
            self.heard = now
        elif msg.type == "ack":
            self.acked.set()
        elif msg.type == "spawn":
            self.spawn(msg.data)
        elif msg.type == INDEX_REPLY:
            self.counts.index_replies += 1
        elif msg.type == HELLO:  # only with PANACEA_RUN_SECRET, which these runs have not
            self.send(PROOF, {"proof": None})
        elif msg.type == "stop":
            if self.state == states["running"]:
                self.counts.running -= 1
            self.state, self.user_classes_count = states["init"], {}
            self.send("client_stopped", None)
        elif msg.type == "quit":
            self.send_report()

    def spawn(self, job: Mapping[str, Any]) -> None:
        """As ``WorkerRunner``: ``spawning``, the users (here: each new user's request for
        its global index), ``spawning_complete``."""
        self.send("spawning", None)
        if job["timestamp"] <= self.last_spawn:
            return
        self.last_spawn = job["timestamp"]
        running = self.wire.states["running"]
        was_running, self.state = self.state == running, self.wire.states["spawning"]
        new = sum(job["user_classes_count"].values()) - sum(self.user_classes_count.values())
        for request in range(max(0, new)):
            self.send(INDEX_REQUEST, {"id": request})
        self.counts.index_requests += max(0, new)
        self.user_classes_count = dict(job["user_classes_count"])
        self.users_pending = True
        users = sum(self.user_classes_count.values())
        self.send("spawning_complete",
                  {"user_classes_count": self.user_classes_count, "user_count": users})  # fmt: skip
        self.counts.running += 0 if was_running else 1
        self.state = running

    def heartbeats(self) -> None:
        start, beat = time.monotonic(), 0
        while True:
            self.send("heartbeat", {"state": self.state, "current_cpu_usage": 40.0,
                                    "current_memory_usage": 180_000_000})  # fmt: skip
            self.counts.heartbeats += 1
            beat += 1
            self.wire.gevent.sleep(max(0.0, start + beat * HEARTBEAT_S - time.monotonic()))

    def reporter(self) -> None:
        """A report every 3 s on a fixed schedule, at this worker's offset into the cycle from
        the common epoch: the workers of every helper spread evenly over the 3 s."""
        fleet = self.fleet
        due = fleet.epoch + REPORT_INTERVAL_S * self.number / fleet.total
        while due < time.monotonic():
            due += REPORT_INTERVAL_S
        while True:
            self.wire.gevent.sleep(max(0.0, due - time.monotonic()))
            late = time.monotonic() - due
            self.counts.late_ms_max = max(self.counts.late_ms_max, late * 1000.0)
            self.send_report()
            due += REPORT_INTERVAL_S

    def send_report(self) -> None:
        running = self.state == self.wire.states["running"]
        pool = self.fleet.pool
        report = pool[(self.number + self.reports) % len(pool)] if running else self.fleet.idle
        data = report.stamped(time.time(), self.source)
        if running and self.users_pending:  # the tally's users_by_type and sessions: once
            self.users_pending = False
            started = {k: v for k, v in self.user_classes_count.items() if v}
            data["panacea"] = {**data["panacea"], "users_by_type": started,
                               "sessions": {"generated": sum(started.values())}}  # fmt: skip
        data["user_classes_count"] = self.user_classes_count
        data["user_count"] = sum(self.user_classes_count.values())
        self.send("stats", data)
        self.reports += 1
        if running:
            self.counts.full_reports += 1
            self.counts.requests += report.requests


def fake_main(port: int, count: int, first: int, total: int, rps: float, epoch: float,
              status: Path) -> int:  # fmt: skip
    """A helper process: ``count`` fake workers (numbers ``first``..) of ``total`` in all;
    the status file rewritten twice a second and when the process is told to stop."""
    wire = Wire.load()
    from panacea_locust.payload_generator import PoolData

    rng = random.Random(first)
    pool = [build_report(rng, rps) for _ in range(POOL)]
    fleet = Fleet(wire, wire.zmq.Context(), port, pool, idle_report(), PoolData().describe(),
                  epoch, total)  # fmt: skip
    for number in range(first, first + count):
        FakeWorker(fleet, number).start()

    def write() -> None:
        fleet.counts.silence_s = fleet.silence_s()
        tmp = status.with_name(status.name + ".tmp")
        tmp.write_text(json.dumps(asdict(fleet.counts)))
        os.replace(tmp, status)

    done = wire.gevent.event.Event()
    wire.gevent.signal_handler(signal.SIGTERM, done.set)
    while not done.wait(0.5):
        write()
    write()
    return 0


# --- the benchmark ---------------------------------------------------------------------------
@dataclass
class Settings:
    workers: tuple[int, ...] = (10, 50, 100, 200)
    seconds: float = 18.0  #: the window, a multiple of 3 s
    warmup: float = 4.5  #: after every worker runs its users (every one has reported)
    rounds: int = 2
    users: int = 50  #: per worker
    rps: float = 100.0  #: per worker
    per_helper: int = 100  #: fake workers per helper process
    keep: bool = False  #: keep every run's folder (the master's log, results, probe)


@dataclass
class Point:
    """One master with ``workers`` fake workers, over one window."""

    workers: int
    round: int
    window_s: float
    cpu_s: float  #: the master's CPU time in the window (/proc: utime + stime)
    reports: float  #: worker reports the master handled in the window (the probe)
    locust_s: float  #: CPU in Locust's report listeners (statistics, runner)
    framework_s: float  #: CPU in the framework's (tally, timeline, health)
    rss_kb: int  #: at the window's end
    hwm_kb: int  #: the master's peak RSS until then
    steal: float  #: steal share of the master's core over the window
    steal_max: float  #: the largest over all cores
    others: float  #: share of the master's core other processes ran
    fake_cpu: float  #: share of a core the helper processes used
    late_ms_max: float  #: the fake side's latest report against its schedule
    silence_s: float  #: the longest a worker heard nothing from the master
    spawn_s: float  #: from the test's start to every worker running
    state: str  #: the master's runner state after the window ("running", or still "spawning")
    sent_requests: int = 0  #: requests in every full report the fakes sent
    merged_requests: int | None = None  #: requests in the master's summary.json
    sent_full: int = 0  #: reports with statistics the fakes sent, the whole run
    handled_full: int = 0  #: ... and the master handled (the probe's last row)
    index_requests: int = 0  #: users' requests for their global index
    index_replies: int = 0  #: ... the master answered

    @property
    def share(self) -> float:
        """The master's CPU as a share of one core."""
        return self.cpu_s / self.window_s

    @property
    def ms_per_report(self) -> float:
        return 1000.0 * self.cpu_s / self.reports if self.reports else math.nan

    @property
    def sent(self) -> float:
        """Reports the workers sent in the window."""
        return self.workers * self.window_s / REPORT_INTERVAL_S

    @property
    def demand(self) -> float:
        """The share of a core the master needs to handle every report as it comes."""
        return self.ms_per_report * self.sent / self.window_s / 1000.0

    @property
    def saturated(self) -> bool:
        return self.share >= SATURATED or self.reports < SATURATED * self.sent

    def per_report_ms(self, cpu_s: float) -> float:
        return 1000.0 * cpu_s / self.reports if self.reports else math.nan


@dataclass
class Scale:
    points: list[Point] = field(default_factory=list)
    profile: str = ""  #: the profiled master's top functions

    def at(self, workers: int) -> list[Point]:
        return [p for p in self.points if p.workers == workers]

    def counts(self) -> list[int]:
        return sorted({p.workers for p in self.points})

    def median(self, workers: int, figure: Callable[[Point], float]) -> float:
        return median([figure(p) for p in self.at(workers)])

    def kept_up(self) -> list[int]:
        """Worker counts whose master kept up in most rounds."""
        return [
            n for n in self.counts() if sum(p.saturated for p in self.at(n)) * 2 < len(self.at(n))
        ]

    def fit(self) -> tuple[float, float] | None:
        """(fixed share, share per worker): the least-squares line through the median CPU
        shares of the masters that kept up (a saturated master handles a backlog, its
        figures per report are another regime), or through all the median demands when
        fewer than two kept up."""
        xs = self.kept_up()
        if len(xs) >= 2:
            slope, intercept = statistics.linear_regression(
                xs, [self.median(x, lambda p: p.share) for x in xs]
            )
            return intercept, slope
        xs = self.counts()
        if len(xs) < 2:
            return None
        ys = [self.median(x, lambda p: p.demand) for x in xs]
        slope, intercept = statistics.linear_regression(xs, ys)
        return intercept, slope

    def workers_at(self, share: float) -> float | None:
        fit = self.fit()
        return None if fit is None or fit[1] <= 0 else (share - fit[0]) / fit[1]

    @property
    def met(self) -> bool | None:
        if not self.at(TARGET_WORKERS):
            return None
        return self.median(TARGET_WORKERS, lambda p: p.share) < TARGET_CORE_SHARE

    def as_dict(self) -> dict[str, Any]:
        fit = self.fit()
        return {
            "points": [{**asdict(p), "share": round(p.share, 4), "demand": round(p.demand, 4),
                        "ms_per_report": round(p.ms_per_report, 3)} for p in self.points],
            "fit": None if fit is None else {"fixed_share": fit[0], "share_per_worker": fit[1]},
            "target": {"workers": TARGET_WORKERS, "share_below": TARGET_CORE_SHARE,
                       "met": self.met},
        }  # fmt: skip


def _status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {key} for pid {pid}")


def _steal_ticks() -> list[int]:
    from panacea_locust.verdict.health import steal_ticks_per_cpu

    return steal_ticks_per_cpu()


def _steal_shares(before: Sequence[int], after: Sequence[int], wall: float) -> list[float]:
    if wall <= 0 or len(before) != len(after):
        return []
    tick = os.sysconf("SC_CLK_TCK")
    return [(b - a) / tick / wall for a, b in zip(before, after, strict=True)]


def _probe_rows(path: Path) -> list[list[Any]]:
    rows = []
    with contextlib.suppress(OSError):
        for text in path.read_text().splitlines():
            with contextlib.suppress(ValueError):
                rows.append(json.loads(text))
    return rows


def _at(rows: Sequence[Sequence[Any]], when: float, column: int) -> float:
    """``column`` of the probe's rows, linearly interpolated at monotonic time ``when``."""
    a = next((r for r in reversed(rows) if r[0] <= when), None)
    b = next((r for r in rows if r[0] >= when), None)
    if a is None or b is None:
        raise RuntimeError("the probe has no rows around the window's edge")
    if b[0] == a[0]:
        return float(a[column])
    return float(a[column] + (b[column] - a[column]) * (when - a[0]) / (b[0] - a[0]))


def _wait(what: str, check: Callable[[], bool], timeout: float, proc: subprocess.Popen[Any],
          log: Path) -> None:  # fmt: skip
    deadline = time.monotonic() + timeout
    while not check():
        if proc.poll() is not None:
            tail = log.read_text()[-3000:]
            raise RuntimeError(f"the master exited with {proc.returncode} ({what}):\n{tail}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out: {what} (see {log})")
        time.sleep(0.1)


@contextlib.contextmanager
def _children() -> Iterator[list[subprocess.Popen[Any]]]:
    """Processes started inside are stopped on the way out, whatever happened."""
    procs: list[subprocess.Popen[Any]] = []
    try:
        yield procs
    finally:
        for proc in reversed(procs):
            stop(proc)


def measure(n: int, s: Settings, round_no: int, profile: Path | None = None) -> Point:
    """A fresh master and ``n`` fake workers; the window's figures (module docstring)."""
    fake_cpu, master_cpu = cpus()
    tmp = Path(tempfile.mkdtemp(prefix=f"bench-master-{n}-"))
    probe, log = tmp / "probe.jsonl", tmp / "master.log"
    port, users = free_port(), n * s.users
    limit = 300 + s.warmup + s.seconds  # should the benchmark die, its master ends anyway
    env = clean_env(
        LOCUST_MAX_USERS=str(users), USER_POOL_SIZE=str(max(1000, users)),
        RESULTS_DIR=str(tmp / "results"), PANACEA_RUN_DIR=str(tmp / "run"),
        **{PROBE_FILE_ENV: str(probe)}, **({PROFILE_ENV: str(profile)} if profile else {}),
    )  # fmt: skip
    cmd = [
        sys.executable, "-m", "locust", "-f", f"{FRAMEWORK_LOCUSTFILE},{THIS}", "--master",
        "--headless", "--only-summary", "--master-bind-host", "127.0.0.1",
        "--master-bind-port", str(port), "--expect-workers", str(n), "-u", str(users),
        "-r", str(users), "-t", f"{limit:.0f}s", "--host", f"http://127.0.0.1:{free_port()}",
        "--csv", str(tmp / "locust"), "--html", str(tmp / "report.html"),
        f"--slo-file={ROOT / 'slo.toml'}", "--progress", "--label", f"master-{n}",
        "--loglevel", "WARNING",
    ]  # fmt: skip
    with _children() as procs, log.open("w") as out:
        null = subprocess.DEVNULL
        master = subprocess.Popen(
            pinned(cmd, master_cpu), cwd=tmp, env=env, stdin=null, stdout=out, stderr=out
        )
        procs.append(master)
        _wait("the master's start", lambda: bool(_probe_rows(probe)), 60, master, log)
        statuses, epoch = [], time.monotonic() + 3.0  # the helpers are set up by then
        for first in range(0, n, s.per_helper):
            count = min(s.per_helper, n - first)
            statuses.append(tmp / f"fake-{first}.json")
            fake = [sys.executable, str(THIS), "--fake", f"{port},{count},{first},{n}",
                    "--rps", f"{s.rps:g}", "--epoch", repr(epoch), "--status",
                    str(statuses[-1])]  # fmt: skip
            procs.append(
                subprocess.Popen(
                    pinned(fake, fake_cpu), env=clean_env(), cwd=tmp, stdin=null, stderr=out
                )
            )
        helpers = procs[1:]

        def state_is(*states: str, running: int | None = None) -> Callable[[], bool]:
            def check() -> bool:
                rows = _probe_rows(probe)
                return bool(rows) and rows[-1][4] in states and running in (None, rows[-1][5])

            return check

        _wait(f"{n} workers connected", state_is("spawning", "running"), 60, master, log)
        spawning = time.monotonic()
        # the workers' spawning_complete, not the runner's state: a saturated master's spawn
        # greenlet may never get the turn to set it (its listener has messages waiting)
        _wait(f"{n} workers running", state_is("spawning", "running", running=n), 60, master, log)
        spawn_s = time.monotonic() - spawning
        time.sleep(s.warmup)
        with core_samples(master.pid) as samples:
            t0, cpu0 = time.monotonic(), cpu_seconds(master.pid)
            steal0, fakes0 = _steal_ticks(), sum(cpu_seconds(h.pid) for h in helpers)
            if profile:
                os.kill(master.pid, signal.SIGUSR1)
            time.sleep(s.seconds)
            if profile:
                os.kill(master.pid, signal.SIGUSR2)
            t1, cpu1, rss1 = time.monotonic(), cpu_seconds(master.pid), rss_kb(master.pid)
            steal1, fakes1 = _steal_ticks(), sum(cpu_seconds(h.pid) for h in helpers)
            hwm = _status_kb(master.pid, "VmHWM")
        fleet = [FleetCounts(**json.loads(p.read_text())) for p in statuses if p.exists()]
        _wait("a probe row after the window", lambda: _probe_rows(probe)[-1][0] > t1, 30,
              master, log)  # fmt: skip
        rows = _probe_rows(probe)
        state = next((r[4] for r in rows if r[0] >= t1), "?")
        wall = t1 - t0
        reports, locust_s, framework_s = (_at(rows, t1, c) - _at(rows, t0, c) for c in (1, 2, 3))
        steal = _steal_shares(steal0, steal1, wall)
        point = Point(
            workers=n, round=round_no, window_s=wall, cpu_s=cpu1 - cpu0, reports=reports,
            locust_s=locust_s, framework_s=framework_s, rss_kb=rss1, hwm_kb=hwm,
            steal=steal[master_cpu] if master_cpu is not None and steal else max(steal, default=0),
            steal_max=max(steal, default=0.0), others=samples.others(master_cpu, t0, t1),
            fake_cpu=(fakes1 - fakes0) / wall,
            late_ms_max=max((f.late_ms_max for f in fleet), default=0.0),
            silence_s=max((f.silence_s for f in fleet), default=0.0), spawn_s=spawn_s,
            state=state,
        )  # fmt: skip
        if not point.saturated:  # as Ctrl-C: the test stops, the results are written
            master.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                master.wait(30)
        for helper in helpers:
            stop(helper)
        fleet = [FleetCounts(**json.loads(p.read_text())) for p in statuses if p.exists()]
    point.sent_requests = sum(f.requests for f in fleet)
    point.sent_full = sum(f.full_reports for f in fleet)
    point.handled_full = _probe_rows(probe)[-1][6]
    point.index_requests = sum(f.index_requests for f in fleet)
    point.index_replies = sum(f.index_replies for f in fleet)
    summary = tmp / "run" / "summary.json"
    if summary.exists():
        point.merged_requests = json.loads(summary.read_text())["total"]["requests"]
    if s.keep or (not point.saturated and point.merged_requests != point.sent_requests):
        print(f"  (run folder kept: {tmp})")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return point


def show(p: Point) -> None:
    rest = p.cpu_s - p.locust_s - p.framework_s
    if p.saturated:
        check = "not checked: saturated, killed"
    elif p.merged_requests is None:
        check = "NO summary.json"
    else:
        same = "all merged" if p.merged_requests == p.sent_requests else "MISSING SOME"
        check = (f"{p.merged_requests:,} in summary.json ({p.handled_full:,} of "
                 f"{p.sent_full:,} reports handled): {same}")  # fmt: skip
    print(
        f"  {p.workers:4d} workers: {p.share:6.1%} of a core (demand {p.demand:.0%}), "
        f"{p.ms_per_report:5.2f} ms per report ({p.per_report_ms(p.locust_s):.2f} Locust, "
        f"{p.per_report_ms(p.framework_s):.2f} framework, {p.per_report_ms(rest):.2f} rest); "
        f"{p.reports:.0f} of {p.sent:.0f} reports handled; RSS {p.rss_kb / 1024:.0f} MiB "
        f"(peak {p.hwm_kb / 1024:.0f}); heartbeat gap up to {p.silence_s:.1f} s; steal "
        f"{p.steal:.1%} (max core {p.steal_max:.1%}), others {p.others:.1%}; fakes "
        f"{p.fake_cpu:.0%} of a core, {p.late_ms_max:.0f} ms late at worst; spawn "
        f"{p.spawn_s:.1f} s ({p.index_replies:,} of {p.index_requests:,} user indexes "
        f"answered); {p.sent_requests:,} requests sent, {check}"
    )
    if p.state != "running":
        print(f"        the master was still {p.state!r}: its spawn greenlet never got the turn")


def run(s: Settings, profile: Path | None = None) -> Scale:
    """Every worker count, ``s.rounds`` rounds, ascending then descending; then the profiled
    master, if asked."""
    out = Scale()
    for r in range(s.rounds):
        order = list(s.workers) if r % 2 == 0 else list(reversed(s.workers))
        print(f"round {r + 1} of {s.rounds} ({', '.join(map(str, order))} workers)")
        for n in order:
            point = measure(n, s, r + 1)
            out.points.append(point)
            show(point)
    if profile is not None:
        n = s.workers[0]
        print(f"profiled master, {n} workers (figures inflated by the profiler, not counted)")
        show(measure(n, s, 0, profile))
        out.profile = _top(profile)
    return out


def _top(path: Path, lines: int = 20) -> str:
    """The functions the profiled master spent most of its own time in."""
    if not path.exists():
        return "(no profile written)"
    text = io.StringIO()
    pstats.Stats(str(path), stream=text).sort_stats("tottime").print_stats(lines)
    return text.getvalue()


def report(m: Scale) -> None:
    if not m.points:
        return
    print("\nmedians over rounds (ms per report: all the master's CPU time over the reports "
          "it handled; demand: what keeping up would take):")  # fmt: skip
    print(f"{'workers':>7}  {'core':>6}  {'demand':>6}  {'ms/report':>9}  {'Locust':>6}  "
          f"{'framework':>9}  {'handled/s':>9}  {'RSS MiB':>7}  {'peak':>5}  {'hb gap s':>8}  "
          f"{'steal':>5}")  # fmt: skip
    for n in m.counts():

        def med(figure: Callable[[Point], float], n: int = n) -> float:
            return m.median(n, figure)

        print(f"{n:7d}  {med(lambda p: p.share):6.1%}  {med(lambda p: p.demand):6.0%}  "
              f"{med(lambda p: p.ms_per_report):9.2f}  "
              f"{med(lambda p: p.per_report_ms(p.locust_s)):6.2f}  "
              f"{med(lambda p: p.per_report_ms(p.framework_s)):9.2f}  "
              f"{med(lambda p: p.reports / p.window_s):9.1f}  "
              f"{med(lambda p: p.rss_kb) / 1024:7.0f}  "
              f"{med(lambda p: p.hwm_kb) / 1024:5.0f}  {med(lambda p: p.silence_s):8.1f}  "
              f"{med(lambda p: p.steal):5.1%}")  # fmt: skip
    fit = m.fit()
    if fit is not None:
        quarter, whole = m.workers_at(TARGET_CORE_SHARE) or 0, m.workers_at(1.0) or 0
        kept = m.kept_up()
        base = f"{', '.join(map(str, kept))} workers" if len(kept) >= 2 else "every count"
        print(f"line through the medians ({base}): {fit[0]:.1%} of a core + {fit[1]:.2%} per "
              f"worker (~{fit[1] * REPORT_INTERVAL_S * 1000:.1f} ms per report): "
              f"{TARGET_CORE_SHARE:.0%} of a core at ~{quarter:.0f} workers, a whole core at "
              f"~{whole:.0f}")  # fmt: skip
    lost = [p for p in m.points if p.silence_s > MASTER_LOST_S]
    if lost:
        print(f"{len(lost)} run(s) where the master went over {MASTER_LOST_S:g} s without a "
              "heartbeat: the framework's workers would have stopped")  # fmt: skip
    missing = [p for p in m.points if not p.saturated and p.merged_requests != p.sent_requests]
    if missing:
        print(f"WARNING: {len(missing)} run(s) whose summary.json lacks requests that were sent")
    busy, late = max(p.fake_cpu for p in m.points), max(p.late_ms_max for p in m.points)
    print(f"fake workers: at most {busy:.0%} of their core, reports at worst {late:.0f} ms late")
    if m.profile:
        print("\nprofiled master, own time by function:\n" + m.profile)
    if m.met is None:
        print(f"{TARGET_WORKERS} workers: not measured (target < {TARGET_CORE_SHARE:.0%})")
    else:
        share = m.median(TARGET_WORKERS, lambda p: p.share)
        demand = m.median(TARGET_WORKERS, lambda p: p.demand)
        print(f"{TARGET_WORKERS} workers: {share:.1%} of a core, {demand:.0%} to keep up "
              f"(target < {TARGET_CORE_SHARE:.0%}): {'met' if m.met else 'NOT MET'}")  # fmt: skip


def _counts(text: str) -> tuple[int, ...]:
    counts = tuple(int(x) for x in text.split(",") if x.strip())
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("worker counts of 1 or more, comma-separated")
    return counts


def main(argv: list[str] | None = None) -> int:
    d = Settings()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=_counts, help=f"default {','.join(map(str, d.workers))}")
    ap.add_argument("--seconds", type=float, default=d.seconds, help="window, rounded to 3 s")
    ap.add_argument("--warmup", type=float, default=d.warmup, help="seconds before the window")
    ap.add_argument("--rounds", type=int, default=d.rounds)
    ap.add_argument("--users", type=int, default=d.users, help="users per worker")
    ap.add_argument("--rps", type=float, default=d.rps, help="requests a second per worker")
    ap.add_argument("--per-helper", type=int, default=d.per_helper, help="fakes per process")
    ap.add_argument("--profile", type=Path, metavar="FILE", help="then a profiled master")
    ap.add_argument("--keep", action="store_true", help="keep every run's folder")
    ap.add_argument("--json", type=Path, metavar="FILE", help="also write the figures here")
    ap.add_argument("--quick", action="store_true", help="one round of 6 s, 10 and 50 workers")
    ap.add_argument("--fake", help=argparse.SUPPRESS)  # a helper: PORT,COUNT,FIRST,TOTAL
    ap.add_argument("--epoch", type=float, default=0.0, help=argparse.SUPPRESS)
    ap.add_argument("--status", type=Path, help=argparse.SUPPRESS)
    opts = ap.parse_args(argv)
    if opts.fake:
        port, count, first, total = (int(x) for x in opts.fake.split(","))
        return fake_main(port, count, first, total, opts.rps, opts.epoch, opts.status)
    s = Settings(
        workers=opts.workers or d.workers, seconds=max(1, round(opts.seconds / 3)) * 3.0,
        warmup=opts.warmup, rounds=max(1, opts.rounds), users=opts.users, rps=opts.rps,
        per_helper=max(1, opts.per_helper), keep=opts.keep,
    )  # fmt: skip
    if opts.quick:
        s.workers, s.seconds, s.warmup, s.rounds = opts.workers or (10, 50), 6.0, 3.0, 1
    print_machine()
    print(f"{', '.join(map(str, s.workers))} workers of {s.users} users at {s.rps:g} req/s "
          f"each; a {s.seconds:g} s window after {s.warmup:g} s; {s.rounds} round(s)")  # fmt: skip
    started = time.monotonic()
    m = run(s, opts.profile)
    report(m)
    print(f"({time.monotonic() - started:.0f} s)")
    if opts.json:
        opts.json.write_text(json.dumps(m.as_dict(), indent=2) + "\n")
    return 0 if m.met is not False else 1


if __name__ == "__main__":
    sys.exit(main())
elif os.environ.get(PROBE_FILE_ENV):  # loaded by Locust into the master as a locustfile
    install_probe(os.environ[PROBE_FILE_ENV])
