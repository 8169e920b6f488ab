"""Accuracy of the reported latency: a target that answers after exactly 50 ms.

The target is ``delay_server.py`` on loopback: keep-alive, a process per connection forked and
warmed before the run, each answer sent 50 ms after the kernel's receive timestamp of the
request. It records, per request, how long it really held it and when it answered. That is
the truth the framework's figures are held against: on a shared virtual machine even a process
that only sleeps wakes up late now and then (by 1 to 6 ms at p99 here), so "50 ms" alone would
charge the server's misses to the load generator. Both differences are printed: reported minus
the truth (the targets), and reported minus 50 ms.

Two load patterns, each run for the framework and for bare ``FastHttpUser`` (same server,
same core), ``--rounds`` times:

- ``paced`` (the targets): ``--users`` users with a think time drawn between ``--wait-min``
  and ``--wait-max`` seconds, as the framework's users have, about 350 requests a second;
- ``closed loop``: 20 users and no think time, each sending its next request as soon as the
  last is answered. Their answers come back in bunches, and a request whose answer waits while
  Locust handles the others of its bunch is reported late by that much: Locust's own
  queueing, shown for comparison, not judged.

The ramp-up is left out, as a user of Locust leaves it out: once every user has been spawned
and is past its first request (Locust spawns a second's users at once, and their first
requests, opening connections together, queue behind each other), Locust's statistics are reset
the way the web UI's Reset Stats button does it (the framework's ``summary.json`` follows), and
the truth is taken over the same window, from that reset to the test's stop. Locust stays well
below the 85 % CPU where its own scheduling inflates latencies; each run prints its CPU share.

Runs the hypervisor disturbed are taken again. On a shared virtual machine the host now and
then runs other tenants on this machine's cores while they have work: *steal time*
(``/proc/stat``). A Locust process that is descheduled for a few ms reports every answer that
arrives meanwhile that much late, and the delay server misses its own deadlines as much:
measured here, runs with under 2 % steal on the two cores gave p99 errors of 1.9 to 3.1 ms,
runs with 5 to 9 % gave 3.7 to 5.5 ms, the same code. So a run whose window had more than
``--max-steal`` percent steal on either core is run again, up to ``--attempts`` times in all,
and the calmest attempt counts; every attempt is printed, and the report says how many of the
kept runs were still disturbed. Framework and bare Locust are held to the same rule; the
closed-loop runs, not judged, are not repeated.

    python bench/bench_accuracy.py [--users 200] [--duration 20] [--rounds 2] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import math
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import (
    FRAMEWORK_LOCUSTFILE,
    LOCUSTFILES,
    cleanup,
    cpus,
    delay_server_process,
    print_machine,
    run_locust,
    stop,
)

TARGET_P50_MS = 1.0
TARGET_P99_MS = 3.0
MAX_STEAL = 0.02  #: a run with more steal time than this on either core is taken again
ATTEMPTS = 3  #: runs at most per measurement
FRAMEWORK, BARE = "framework", "bare FastHttpUser"
PACED, CLOSED = "paced", "closed loop"


@dataclass(frozen=True)
class Pattern:
    name: str
    users: int
    wait_min: float
    wait_max: float
    spawn_rate: float

    @property
    def settle(self) -> float:
        """Seconds after the last spawn until every user is past its first request."""
        return self.wait_max + 1.0

    def env(self, kind: str) -> dict[str, str]:
        """The wait time, set the way each locustfile reads it."""
        low, high = f"{self.wait_min:g}", f"{self.wait_max:g}"
        if kind == BARE:
            return {"BENCH_WAIT_MIN": low, "BENCH_WAIT_MAX": high}
        kinds = ("HEAVY", "LIGHT", "STANDARD")
        env = {f"{k}_WAIT_{e}": v for k in kinds for e, v in (("MIN", low), ("MAX", high))}
        users = str(max(self.users, 100))  # the framework's default cap is 100 users
        return {**env, "LOCUST_MAX_USERS": users, "USER_POOL_SIZE": users}


@contextlib.contextmanager
def delay_server(delay_ms: float, cpu: int | None, connections: int) -> Iterator[DelayServer]:
    """``delay_server.py`` pinned to ``cpu``, with a worker for each of ``connections``;
    stopped (workers too) on exit."""
    with tempfile.TemporaryDirectory(prefix="bench-delay-") as tmp:
        held = Path(tmp) / "held.txt"
        args = ["--delay-ms", f"{delay_ms:g}", "--held-file", str(held)]
        args += ["--workers", str(connections + 4)]
        with delay_server_process(Path(tmp), args, cpu) as (proc, url):
            yield DelayServer(proc, held, url)


@dataclass
class DelayServer:
    proc: subprocess.Popen[str]
    held_file: Path
    url: str = ""

    def held_ms(self, since: float, until: float) -> list[float]:
        """How long the server really held each request it answered between ``since`` and
        ``until`` (``time.monotonic()``), in ms; complete once the server is stopped."""
        if not self.held_file.exists():
            return []
        out = []
        for line in self.held_file.read_text().splitlines():
            held_us, at_us = line.split()
            if since <= int(at_us) / 1e6 <= until:
                out.append(int(held_us) / 1000)
        return out


def _pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (the framework's definition)."""
    ordered = sorted(values)
    rank = max(1, int(q / 100 * len(ordered) + 0.5))
    return ordered[rank - 1]


@dataclass
class AccuracyRun:
    """One run against the delay server: what Locust reported and what really happened."""

    pattern: str
    kind: str
    requests: int
    p50_ms: float  #: as reported: summary.json for the framework, the meter for bare Locust
    p99_ms: float
    true_p50_ms: float  #: what the server really held the requests of the same window
    true_p99_ms: float
    locust_cpu: float
    steal: float = 0.0  #: the larger steal share of the two cores over the window
    attempts: int = 1  #: runs it took (more than one when the hypervisor disturbed a run)


@dataclass
class Accuracy:
    delay_ms: float
    max_steal: float = MAX_STEAL
    runs: list[AccuracyRun] = field(default_factory=list)

    @property
    def disturbed(self) -> list[AccuracyRun]:
        """Runs kept although no attempt had steal under ``max_steal``."""
        return [r for r in self.runs if r.steal > self.max_steal]

    def of(self, pattern: str, kind: str) -> list[AccuracyRun]:
        return [r for r in self.runs if r.pattern == pattern and r.kind == kind]

    def error(self, pattern: str, kind: str, q: int, against: str = "truth") -> float:
        """Median over the runs of reported pQ minus the truth's pQ (or minus the delay)."""
        values = [
            getattr(r, f"p{q}_ms")
            - (getattr(r, f"true_p{q}_ms") if against == "truth" else self.delay_ms)
            for r in self.of(pattern, kind)
        ]
        return statistics.median(values) if values else math.nan

    @property
    def p50_error(self) -> float:
        return self.error(PACED, FRAMEWORK, 50)

    @property
    def p99_error(self) -> float:
        return self.error(PACED, FRAMEWORK, 99)

    @property
    def met(self) -> bool:
        return abs(self.p50_error) <= TARGET_P50_MS and abs(self.p99_error) <= TARGET_P99_MS

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "delay_ms": self.delay_ms,
            "targets_ms": {"p50": TARGET_P50_MS, "p99": TARGET_P99_MS},
            "judged": f"{PACED}, {FRAMEWORK}, reported minus the truth",
            "max_steal": self.max_steal,
            "runs_still_disturbed": len(self.disturbed),
            "attempts": sum(r.attempts for r in self.runs),
        }
        for pattern in (PACED, CLOSED):
            for kind in (FRAMEWORK, BARE):
                runs = self.of(pattern, kind)
                if not runs:
                    continue
                block: dict[str, Any] = {"runs": len(runs)}
                for q in (50, 99):
                    block[f"p{q}_minus_truth_ms"] = round(self.error(pattern, kind, q), 3)
                    block[f"p{q}_minus_delay_ms"] = round(self.error(pattern, kind, q, "delay"), 3)
                    truth = statistics.median(getattr(r, f"true_p{q}_ms") for r in runs)
                    block[f"server_p{q}_minus_delay_ms"] = round(truth - self.delay_ms, 3)
                block["locust_cpu"] = round(statistics.median(r.locust_cpu for r in runs), 3)
                block["steal"] = round(statistics.median(r.steal for r in runs), 4)
                out.setdefault(pattern, {})[kind] = block
        return out


def measure(
    pattern: Pattern, kind: str, duration: float, delay_ms: float, cpus_: tuple[int | None, ...]
) -> AccuracyRun:
    """One run of ``kind`` with ``pattern`` against a fresh delay server."""
    server_cpu, locust_cpu = cpus_
    framework = kind == FRAMEWORK
    with delay_server(delay_ms, server_cpu, pattern.users) as server:
        result = run_locust(
            FRAMEWORK_LOCUSTFILE if framework else LOCUSTFILES / "bare_fasthttp.py",
            server.url,
            users=pattern.users,
            seconds=duration,
            env={
                **pattern.env(kind),
                "BENCH_METER_LATENCY": "1",
                "BENCH_METER_RESET_AFTER": f"{pattern.settle:g}",
            },
            cpu=locust_cpu,
            label=f"accuracy-{kind.split()[0]}",
            spawn_rate=pattern.spawn_rate,
        )
        stop(server.proc)  # its workers write what they held as they exit
        if result.reset_at is None or result.stopping_at is None:
            raise RuntimeError(f"{kind}: no steady state reached (see {result.run_dir})")
        truth = server.held_ms(result.reset_at, result.stopping_at)
    steal = result.steal_on(cpus_)
    if result.failures:
        raise RuntimeError(f"{kind}: {result.failures} requests failed (see {result.run_dir})")
    steady = result.latency or {}
    if not truth or not steady:
        raise RuntimeError(f"{kind}: no latency recorded (see {result.run_dir})")
    if framework:
        if result.summary is None:
            raise RuntimeError(f"the framework wrote no summary.json (see {result.run_dir})")
        total = result.summary["total"]
        requests, p50, p99 = int(total["requests"]), total["p50_ms"], total["p99_ms"]
    else:
        requests, p50, p99 = int(steady["count"]), steady["p50_ms"], steady["p99_ms"]
    cleanup(result)
    return AccuracyRun(
        pattern=pattern.name,
        kind=kind,
        requests=requests,
        p50_ms=float(p50),
        p99_ms=float(p99),
        true_p50_ms=_pct(truth, 50),
        true_p99_ms=_pct(truth, 99),
        locust_cpu=result.cpu,
        steal=steal,
    )


def measure_calm(
    pattern: Pattern,
    kind: str,
    duration: float,
    delay_ms: float,
    cpus_: tuple[int | None, ...],
    max_steal: float = MAX_STEAL,
    attempts: int = ATTEMPTS,
    quiet: bool = False,
) -> AccuracyRun:
    """``measure``, again while the hypervisor took more than ``max_steal`` of either core, at
    most ``attempts`` runs in all; the calmest run counts."""
    tried: list[AccuracyRun] = []
    while True:
        r = measure(pattern, kind, duration, delay_ms, cpus_)
        tried.append(r)
        if r.steal <= max_steal or len(tried) >= attempts:
            break
        if not quiet:
            print(
                f"  {pattern.name} {kind}: {r.steal:.1%} steal time on a core (over "
                f"{max_steal:.0%}; p99 - truth {r.p99_ms - r.true_p99_ms:+.3f} ms): again"
            )
    best = min(tried, key=lambda t: t.steal)
    best.attempts = len(tried)
    return best


def run(
    users: int = 200,
    duration: float = 20.0,
    delay_ms: float = 50.0,
    rounds: int = 2,
    wait: tuple[float, float] = (0.2, 0.8),
    bare: bool = True,
    closed_loop: bool = True,
    quiet: bool = False,
    max_steal: float = MAX_STEAL,
    attempts: int = ATTEMPTS,
) -> Accuracy:
    """``rounds`` rounds; in each, the framework then bare Locust, paced then closed loop."""
    server_cpu, locust_cpu = cpus()
    patterns = [Pattern(PACED, users, wait[0], wait[1], spawn_rate=max(1.0, users / 2))]
    if closed_loop:
        patterns.append(Pattern(CLOSED, 20, 0.0, 0.0, spawn_rate=20))
    kinds = [FRAMEWORK, BARE] if bare else [FRAMEWORK]
    if not quiet:
        print(
            f"target: delay server ({delay_ms:g} ms) on cpu {server_cpu}; Locust on cpu "
            f"{locust_cpu}, {duration:g} s per run, {rounds} rounds; paced: {users} users "
            f"waiting {wait[0]:g} to {wait[1]:g} s; closed loop: 20 users, no wait; a run with "
            f"over {max_steal:.0%} steal time on a core is taken again (at most {attempts} runs)"
        )
    out = Accuracy(delay_ms, max_steal)
    for i in range(rounds):
        for pattern in patterns:
            for kind in kinds:
                r = measure_calm(
                    pattern,
                    kind,
                    duration,
                    delay_ms,
                    (server_cpu, locust_cpu),
                    max_steal,
                    attempts if pattern.name == PACED else 1,  # closed loop: not judged
                    quiet,
                )
                out.runs.append(r)
                if not quiet:
                    print(
                        f"round {i + 1} {pattern.name:<11} {kind:<17} p50 {r.p50_ms:7.3f} p99 "
                        f"{r.p99_ms:7.3f} ms | truth p50 {r.true_p50_ms:7.3f} p99 "
                        f"{r.true_p99_ms:7.3f} | reported - truth p50 "
                        f"{r.p50_ms - r.true_p50_ms:+.3f} p99 {r.p99_ms - r.true_p99_ms:+.3f} | "
                        f"{r.requests} requests, Locust CPU {r.locust_cpu:.0%}, steal "
                        f"{r.steal:.1%}"
                    )
    return out


def report(a: Accuracy) -> None:
    print(f"\nmedians, ms (the truth: what the {a.delay_ms:g} ms server really held):")
    print(
        f"{'':<32} {'p50-truth':>10} {'p99-truth':>10} {'p50-delay':>10} {'p99-delay':>10}"
        f" {'server p99-delay':>17}"
    )
    for pattern in (PACED, CLOSED):
        for kind in (FRAMEWORK, BARE):
            if not a.of(pattern, kind):
                continue
            truth99 = statistics.median(r.true_p99_ms for r in a.of(pattern, kind))
            cells = [a.error(pattern, kind, q) for q in (50, 99)]
            cells += [a.error(pattern, kind, q, "delay") for q in (50, 99)]
            print(
                f"{pattern + ', ' + kind:<32} "
                + " ".join(f"{c:+10.3f}" for c in cells)
                + f" {truth99 - a.delay_ms:+17.3f}"
            )
    retried = sum(r.attempts - 1 for r in a.runs)
    print(
        f"steal time: {retried} run(s) taken again for over {a.max_steal:.0%} on a core; "
        f"{len(a.disturbed)} of {len(a.runs)} kept runs still over it"
    )
    ok50, ok99 = abs(a.p50_error) <= TARGET_P50_MS, abs(a.p99_error) <= TARGET_P99_MS
    print(
        f"targets ({PACED}, {FRAMEWORK}, reported minus the truth): p50 within "
        f"{TARGET_P50_MS:g} ms: {'meets' if ok50 else 'MISSES'}; p99 within "
        f"{TARGET_P99_MS:g} ms: {'meets' if ok99 else 'MISSES'}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=200, help="users of the paced pattern")
    ap.add_argument("--wait-min", type=float, default=0.2, help="think time, seconds")
    ap.add_argument("--wait-max", type=float, default=0.8)
    ap.add_argument("--duration", type=float, default=20.0, help="seconds per run")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--delay-ms", type=float, default=50.0)
    ap.add_argument("--no-bare", action="store_true", help="skip the bare FastHttpUser runs")
    ap.add_argument("--no-closed-loop", action="store_true", help="skip the closed-loop runs")
    ap.add_argument(
        "--max-steal",
        type=float,
        default=MAX_STEAL * 100,
        metavar="PCT",
        help="take a run again when the hypervisor stole more than PCT %% of a core (default 2)",
    )
    ap.add_argument(
        "--attempts", type=int, default=ATTEMPTS, help="runs at most per paced measurement (3)"
    )
    ap.add_argument("--quick", action="store_true", help="one round of 10 s")
    opts = ap.parse_args(argv)
    if opts.quick:
        opts.duration, opts.rounds = 10.0, 1
    print_machine()
    a = run(
        opts.users,
        opts.duration,
        opts.delay_ms,
        opts.rounds,
        (opts.wait_min, opts.wait_max),
        bare=not opts.no_bare,
        closed_loop=not opts.no_closed_loop,
        max_steal=opts.max_steal / 100,
        attempts=max(1, opts.attempts),
    )
    report(a)
    return 0 if a.met else 1


if __name__ == "__main__":
    sys.exit(main())
