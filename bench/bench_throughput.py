"""Throughput of the load generator: the full framework against bare Locust users, one core.

nginx answers a small static JSON (every documented key, so the framework's response check
passes) on one core; Locust runs on the other, headless, 50 users, every wait time 0. Four
Locust processes share that core, strictly one at a time:

- ``framework``: ``panacea_locust/locustfile.py``: HeavyUser and LightUser, all twelve
  endpoints with realistic payloads from per-user pools, JSON bodies, response checks, the
  exact latency histograms;
- ``framework +trace``: the same with ``TRACE_CONTEXT=true`` (a W3C ``traceparent`` on every
  request, the slowest kept by trace id): what tracing costs;
- ``bare FastHttpUser``: ``FastHttpUser`` sending ``GET /`` (the fastest Locust user);
- ``bare HttpUser``: ``HttpUser`` (python-requests) sending ``GET /``.

Why take short turns rather than whole runs: on a shared virtual machine the speed of a core
drifts by 30 % within seconds (other tenants, steal time), so two runs a minute apart do not
compare. Here the processes are paused (``SIGSTOP``) and resumed (``SIGCONT``) in turn,
``--slice`` seconds each, so every kind sees the same conditions, and only one runs at any
moment, so none slows another. Short turns cancel the drift best: with 0.25 s turns the
per-round ratios spread over about 0.07, with 1 s turns over 0.2 (same processes). The order
of the turns is shuffled in every cycle: in a fixed order, three identical framework processes
measured 0.90, 0.95 and 0.94 of bare FastHttpUser, the one always right after it the lowest;
shuffled, two identical processes agree within 0.02. Each process
counts its requests and its own CPU time (``locustfiles/meter.py``); the figure is requests per
CPU-second of the Locust process, that is requests a second on one whole core. A round is
``--round`` seconds of running per kind; the ratio framework / bare FastHttpUser is taken
within each round, and the medians over the rounds are printed.

    python bench/bench_throughput.py [--rounds 5] [--round 6] [--slice 0.25] [--users 50] [--quick]
"""

from __future__ import annotations

import argparse
import math
import random
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import (
    FRAMEWORK_LOCUSTFILE,
    LOCUSTFILES,
    NO_WAIT,
    LocustProcess,
    LocustResult,
    cleanup,
    cpus,
    finish_locust,
    median,
    nginx,
    print_machine,
    start_locust,
    stop,
)

TARGET_RATIO = 0.85
FRAMEWORK, BARE_FAST, BARE_HTTP = "framework", "bare FastHttpUser", "bare HttpUser"
TRACED = "framework +trace"  #: with --trace-context: a traceparent on every request
KINDS: dict[str, tuple[Path, dict[str, str]]] = {
    FRAMEWORK: (FRAMEWORK_LOCUSTFILE, NO_WAIT),
    TRACED: (FRAMEWORK_LOCUSTFILE, {**NO_WAIT, "TRACE_CONTEXT": "true"}),
    BARE_FAST: (LOCUSTFILES / "bare_fasthttp.py", {}),
    BARE_HTTP: (LOCUSTFILES / "bare_httpuser.py", {}),
}


@dataclass
class Window:
    """One kind in one round: requests per CPU-second and CPU share while it ran."""

    requests: int
    failures: int
    cpu_s: float
    running_s: float

    @property
    def per_core(self) -> float:
        return self.requests / self.cpu_s if self.cpu_s > 0 else 0.0

    @property
    def cpu_share(self) -> float:
        return self.cpu_s / self.running_s if self.running_s > 0 else 0.0

    @property
    def rps(self) -> float:
        """Requests a second while the process was running."""
        return self.requests / self.running_s if self.running_s > 0 else 0.0


@dataclass
class Throughput:
    """Per kind, one ``Window`` per round."""

    rounds: dict[str, list[Window]] = field(default_factory=dict)

    def per_core(self, kind: str) -> list[float]:
        return [w.per_core for w in self.rounds.get(kind, [])]

    def median_per_core(self, kind: str) -> float:
        return median(self.per_core(kind))

    def median_cpu(self, kind: str) -> float:
        return median([w.cpu_share for w in self.rounds.get(kind, [])])

    def ratios(self, kind: str = FRAMEWORK, base: str = BARE_FAST) -> list[float]:
        """``kind`` / ``base`` per round (the same seconds of the same core)."""
        pairs = zip(self.per_core(kind), self.per_core(base), strict=False)
        return [a / b for a, b in pairs if b > 0]

    @property
    def ratio(self) -> float:
        return median(self.ratios())

    def as_dict(self) -> dict[str, Any]:
        return {
            "kinds": {
                kind: {
                    "median_rps_per_core": round(self.median_per_core(kind)),
                    "median_cpu_share": round(self.median_cpu(kind), 3),
                    "rps_per_core": [round(x) for x in self.per_core(kind)],
                }
                for kind in self.rounds
            },
            "ratio": round(self.ratio, 3),
            "ratios": [round(x, 3) for x in self.ratios()],
            "target_ratio": TARGET_RATIO,
        }


def _window(
    samples: list[tuple[float, ...]], slices: list[tuple[float, float]], t0: float, t1: float
) -> Window:
    """Counters of one process between wall-clock times ``t0`` and ``t1``."""
    inside = [s for s in samples if t0 <= s[0] <= t1]
    if len(inside) < 2:
        raise RuntimeError("too few meter samples in a round: use a longer --round")
    (a_t, a_cpu, a_req, a_fail), (b_t, b_cpu, b_req, b_fail) = inside[0], inside[-1]
    running = sum(max(0.0, min(e, b_t) - max(s, a_t)) for s, e in slices)
    return Window(int(b_req - a_req), int(b_fail - a_fail), b_cpu - a_cpu, running)


def run(
    rounds: int = 5,
    round_s: float = 6.0,
    slice_s: float = 0.25,
    users: int = 50,
    warmup_s: float = 5.0,
    quiet: bool = False,
    kinds: dict[str, tuple[Path, dict[str, str]]] | None = None,
) -> Throughput:
    """Run the kinds in turns on one core; every process is stopped on return."""
    kinds = kinds or KINDS
    say = (lambda *_a, **_k: None) if quiet else print
    target_cpu, locust_cpu = cpus()
    cycles_warm = math.ceil(warmup_s / slice_s)
    cycles_round = math.ceil(round_s / slice_s)
    procs: dict[str, LocustProcess] = {}
    shuffle = random.Random(0).shuffle
    slices: dict[str, list[tuple[float, float]]] = {k: [] for k in kinds}
    bounds: list[tuple[float, float]] = []  # each round's wall-clock span
    results: dict[str, LocustResult] = {}
    with nginx(cpu=target_cpu) as url:
        say(
            f"target: nginx {url} on cpu {target_cpu}; Locust on cpu {locust_cpu}, {users} "
            f"users, waits 0; {len(kinds)} processes in turns of {slice_s:g} s; {rounds} "
            f"rounds of {round_s:g} s each"
        )
        try:
            for kind, (locustfile, env) in kinds.items():
                lp = start_locust(
                    locustfile,
                    url,
                    users=users,
                    seconds=3600,
                    env=env,
                    cpu=locust_cpu,
                    label=kind.replace(" ", "-"),
                    warmup=0.0,
                    samples=True,
                )
                lp.signal(signal.SIGSTOP)
                procs[kind] = lp
            for cycle in range(cycles_warm + rounds * cycles_round):
                if cycle >= cycles_warm and (cycle - cycles_warm) % cycles_round == 0:
                    bounds.append((time.monotonic(), 0.0))
                order = list(procs.items())
                shuffle(order)  # no kind always follows the same one (see the docstring)
                for kind, lp in order:
                    if lp.proc.poll() is not None:
                        raise RuntimeError(f"{kind} exited early (see {lp.run_dir}/locust.log)")
                    t0 = time.monotonic()
                    lp.signal(signal.SIGCONT)
                    time.sleep(slice_s)
                    lp.signal(signal.SIGSTOP)
                    slices[kind].append((t0, time.monotonic()))
                if bounds and (cycle - cycles_warm + 1) % cycles_round == 0:
                    bounds[-1] = (bounds[-1][0], time.monotonic())
            for kind, lp in procs.items():  # one at a time: SIGTERM makes Locust stop the test
                lp.signal(signal.SIGCONT)
                lp.signal(signal.SIGTERM)
                results[kind] = finish_locust(lp)
        finally:
            for lp in procs.values():
                stop(lp.proc)
    out = Throughput(rounds={k: [] for k in kinds})
    for kind, result in results.items():
        for i, (t0, t1) in enumerate(bounds):
            w = _window(result.samples, slices[kind], t0, t1)
            if w.failures:
                raise RuntimeError(f"{kind}: {w.failures} requests failed (see {result.run_dir})")
            if result.spawned_at is None or result.spawned_at > t0:
                raise RuntimeError(f"{kind}: users not all spawned before round {i + 1}")
            out.rounds[kind].append(w)
        cleanup(result)
    for i in range(len(bounds)):
        line = "  ".join(
            f"{kind} {out.rounds[kind][i].per_core:6.0f} ({out.rounds[kind][i].cpu_share:4.0%})"
            for kind in kinds
        )
        say(f"round {i + 1}: req/s per core (CPU while running): {line}")
    return out


def report(t: Throughput) -> None:
    print(f"\n{'medians':<20} {'req/s per core':>15} {'CPU while running':>18}")
    for kind in t.rounds:
        print(f"{kind:<20} {t.median_per_core(kind):15.0f} {t.median_cpu(kind):18.0%}")
    ratios = ", ".join(f"{r:.2f}" for r in t.ratios())
    met = "meets" if t.ratio >= TARGET_RATIO else "BELOW"
    print(
        f"framework / bare FastHttpUser: median {t.ratio:.3f} (rounds: {ratios}); "
        f"target {TARGET_RATIO}: {met}"
    )
    if TRACED in t.rounds:
        traced = median(t.ratios(TRACED, BARE_FAST))
        cost = median(t.ratios(TRACED, FRAMEWORK))
        met = "meets" if traced >= TARGET_RATIO else "BELOW"
        print(
            f"framework with --trace-context / bare FastHttpUser: median {traced:.3f} "
            f"(target {TARGET_RATIO}: {met}); traced / untraced framework: median {cost:.3f}"
        )
    if BARE_HTTP in t.rounds:
        speedup = median(t.ratios(BARE_FAST, BARE_HTTP))
        print(f"bare FastHttpUser / bare HttpUser: median {speedup:.1f}")
    low = [k for k in t.rounds if t.median_cpu(k) < 0.9]
    if low:
        print(
            f"note: below 90% CPU while running: {', '.join(low)}; something other than "
            "Locust's own CPU limited it (the target, or a shared core)"
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--round", type=float, default=6.0, help="seconds of running per kind")
    ap.add_argument("--slice", type=float, default=0.25, help="seconds per turn")
    ap.add_argument("--warmup", type=float, default=5.0, help="seconds of running per kind")
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--quick", action="store_true", help="2 rounds of 3 s")
    ap.add_argument(
        "--framework-from",
        metavar="DIR",
        help="also run the framework from another source tree (a folder holding an earlier "
        "panacea_locust/, e.g. a git worktree), to compare versions in the same rounds",
    )
    opts = ap.parse_args(argv)
    if opts.quick:
        opts.rounds, opts.round, opts.warmup = 2, 3.0, 4.0
    kinds = dict(KINDS)
    if opts.framework_from:
        other = Path(opts.framework_from).resolve()
        kinds[f"framework @{other.name}"] = (
            other / "panacea_locust" / "locustfile.py",
            {**NO_WAIT, "PYTHONPATH": str(other)},
        )
    print_machine()
    t = run(opts.rounds, opts.round, opts.slice, opts.users, opts.warmup, kinds=kinds)
    report(t)
    return 0 if t.ratio >= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
