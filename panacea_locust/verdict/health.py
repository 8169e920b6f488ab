"""Was the load generator itself fit to measure? Its CPU, its event loop, the host's steal.

Every latency in a result is measured by the load generator. Above about 85 % of a core its
own scheduling delays answers (Locust warns at 90 %), and on a shared virtual machine the
hypervisor's *steal time* (the host running someone else while this machine has work) delays
them as well. A late event loop does the same without a busy CPU (a blocking call in a task,
a long garbage collection): each Locust process runs a probe that sleeps a fixed time and
records how late it woke. A result that records all three lets a regression be told from a
busy generator.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from panacea_locust.verdict.histogram import SparseHistogram

#: a Locust process above this share of a core inflates the latencies it reports
CPU_LIMIT_PERCENT = 85.0
#: steal time above this share of the machine's CPU time shows in the tail latencies
STEAL_LIMIT_PERCENT = 2.0
#: the loop-lag probe's sleep, seconds: ten wake-ups a second, next to nothing in CPU
LOOP_LAG_PERIOD_S = 0.1
#: A response is timed when its greenlet runs again, so a loop that wakes its greenlets late
#: adds that lateness to every latency measured meanwhile. At a p99 lag of 20 ms, one request
#: in a hundred is timed 20 ms or more too slow: as much as a whole fast endpoint's p99 (a
#: few ms to tens of ms here), so a tail-latency rule could fail on the generator alone.
#: Below it the lag is within the noise of a loaded machine (a few ms).
LOOP_LAG_LIMIT_MS = 20.0
#: probe wake-ups before the lag's p99 is judged: a p99 of fewer than 100 values is merely
#: their maximum (a single hiccup at start-up); 100 is 10 s of one process
LOOP_LAG_MIN_SAMPLES = 100
#: how a failure reason starts when the request failed in the load generator itself: it could
#: not open a connection for want of descriptors, ports or memory, so the target never saw it
GENERATOR_FAILURE = "load generator: "
#: a user still not sending after this long in its ``on_start`` (waiting for the master's
#: data, its handshake or a user index, each a matter of milliseconds when all is well) is
#: stalled: the run offers less load than planned while it waits
STALLED_START_S = 5.0


@dataclass(frozen=True)
class CpuTimes:
    """The machine's CPU time so far, summed over its CPUs, in clock ticks."""

    total: int
    steal: int


def _cpu_rows(path: str) -> list[tuple[str, CpuTimes]]:
    """``/proc/stat``'s ``cpu`` lines (all CPUs first, then each); empty if unreadable."""
    rows = []
    try:
        with open(path) as f:
            for line in f:
                fields = line.split()
                if not fields or not fields[0].startswith("cpu") or len(fields) < 9:
                    continue
                # user nice system idle iowait irq softirq steal (guest is inside user)
                ticks = [int(v) for v in fields[1:9]]
                rows.append((fields[0], CpuTimes(total=sum(ticks), steal=ticks[7])))
    except (OSError, ValueError):
        return []
    return rows


def read_cpu_times(path: str = "/proc/stat") -> CpuTimes | None:
    """The whole machine's (the ``cpu`` line); ``None`` where there is none (not Linux)."""
    return next((times for name, times in _cpu_rows(path) if name == "cpu"), None)


def steal_ticks_per_cpu(path: str = "/proc/stat") -> list[int]:
    """Each CPU's steal time so far, in ``/proc/stat`` order; empty where not reported."""
    return [times.steal for name, times in _cpu_rows(path) if name != "cpu"]


def steal_percent(before: CpuTimes | None, after: CpuTimes | None) -> float | None:
    """Steal time between two readings, as a percentage of all CPU time between them."""
    if before is None or after is None or after.total <= before.total:
        return None
    return 100.0 * (after.steal - before.steal) / (after.total - before.total)


@dataclass
class CpuMeter:
    """A process's CPU share between one sample and the next, in percent of one core."""

    wall: float = 0.0  #: ``time.monotonic()`` at the last sample
    cpu: float = 0.0  #: ``time.process_time()`` at the last sample

    def sample(self, wall: float, cpu: float, min_window: float = 0.0) -> float | None:
        """The share since the last sample, which this one replaces; ``None`` (and nothing
        replaced) if less than ``min_window`` seconds have passed."""
        if wall - self.wall <= min_window:
            return None
        share = 100.0 * (cpu - self.cpu) / (wall - self.wall)
        self.wall, self.cpu = wall, cpu
        return share


@dataclass
class GeneratorHealth:
    """What a run's ``summary.json`` says about the load generator (``run.load_generator``)."""

    #: highest CPU share sampled of a Locust process (the local one, or any worker), percent
    cpu_percent_max: float | None = None
    #: Locust's own flag: a process went above its 90 % warning threshold
    cpu_warning: bool = False
    #: this machine's steal time over the run, percent of its CPU time
    steal_percent: float | None = None
    workers_sampled: set[str] = field(default_factory=set)
    #: how late the loop-lag probes woke (ms), every Locust process that generates load
    loop_lag: SparseHistogram = field(default_factory=SparseHistogram)

    def note_cpu(self, percent: float | None, worker: str | None = None) -> None:
        if percent is None or percent < 0:
            return
        if self.cpu_percent_max is None or percent > self.cpu_percent_max:
            self.cpu_percent_max = float(percent)
        if worker is not None:
            self.workers_sampled.add(worker)

    def note_loop_lag(self, lag: SparseHistogram) -> None:
        """Add a process's probe wake-ups (a local run's, or a worker's report)."""
        self.loop_lag.merge(lag)

    @property
    def loop_lag_p99_ms(self) -> float | None:
        return round(self.loop_lag.percentile(99.0), 3) if self.loop_lag.count else None

    def warnings(self) -> list[str]:
        """One line per reason to doubt the latencies; empty when the generator was fit."""
        out = []
        cpu = self.cpu_percent_max
        if self.cpu_warning or cpu is not None and cpu > CPU_LIMIT_PERCENT:
            seen = f"{cpu:.0f} %" if cpu is not None else "above 90 %"
            out.append(
                f"a Locust process reached {seen} CPU (over {CPU_LIMIT_PERCENT:.0f} %): its "
                "latencies include its own queueing; add processes or workers"
            )
        steal = self.steal_percent
        if steal is not None and steal > STEAL_LIMIT_PERCENT:
            out.append(
                f"the hypervisor took {steal:.1f} % of this machine's CPU time (steal, over "
                f"{STEAL_LIMIT_PERCENT:.0f} %): tail latencies include it; use a quieter host"
            )
        lag = self.loop_lag_p99_ms
        enough = self.loop_lag.count >= LOOP_LAG_MIN_SAMPLES
        if lag is not None and enough and lag > LOOP_LAG_LIMIT_MS:
            out.append(
                f"a Locust process's event loop woke {lag:.0f} ms late at p99 (over "
                f"{LOOP_LAG_LIMIT_MS:.0f} ms): latencies include that wait; look for "
                "blocking calls in tasks, or add processes or workers"
            )
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "cpu_percent_max": None
            if self.cpu_percent_max is None
            else round(self.cpu_percent_max, 1),
            "cpu_warning": self.cpu_warning,
            "steal_percent": None if self.steal_percent is None else round(self.steal_percent, 2),
            "workers_sampled": len(self.workers_sampled),
            "loop_lag_p99_ms": self.loop_lag_p99_ms,
            "loop_lag_max_ms": round(self.loop_lag.max_ms, 3) if self.loop_lag.count else None,
            "loop_lag_samples": self.loop_lag.count,
            "warnings": self.warnings(),
        }


def load_generator_warnings(summary: Mapping[str, Any]) -> list[str]:
    """``run.load_generator.warnings``: reasons to doubt the run's latencies; tolerant of
    summaries written before the field existed, or by hand."""
    run = summary.get("run")
    health = run.get("load_generator") if isinstance(run, Mapping) else None
    warnings = health.get("warnings") if isinstance(health, Mapping) else None
    return [w for w in warnings or [] if isinstance(w, str)]


def _generator_reasons(block: Mapping[str, Any]) -> dict[str, int]:
    """The ``GENERATOR_FAILURE`` reasons of one scope's ``failures_by_reason``, with counts."""
    reasons = block.get("failures_by_reason")
    if not isinstance(reasons, Mapping):
        return {}
    return {
        reason: n for reason, n in reasons.items()
        if isinstance(reason, str) and reason.startswith(GENERATOR_FAILURE)
        and isinstance(n, int) and not isinstance(n, bool)
    }  # fmt: skip


def generator_failures(block: Mapping[str, Any]) -> int:
    """Failures of one scope (``summary.json``'s total or an endpoint) that happened in the
    load generator itself (``GENERATOR_FAILURE`` reasons)."""
    return sum(_generator_reasons(block).values())


def stalled_starts_text(stalled: int) -> str:
    """``5 users waited 5 s or more to start sending``: the warning's and the verdict's words."""
    return f"{stalled} users waited {STALLED_START_S:g} s or more to start sending"


def lost_worker_text(worker_id: object, at_s: object, users: object) -> str:
    """``worker w-1 was lost 12 s into the run with 5 users``: the warning's and the verdict's
    words (``at_s`` left out when it is no number)."""
    when = f" {at_s:.0f} s into the run" if isinstance(at_s, (int, float)) else ""
    return f"worker {worker_id} was lost{when} with {users} users"


def stalled_start_warning(stalled: int) -> str | None:
    """The load-generator warning for users that waited too long to start, if any."""
    if stalled <= 0:
        return None
    return (
        f"{stalled_starts_text(stalled)} (the master's data, its handshake or a user index was "
        "late): the run offered less load than planned"
    )


def generator_failure_warning(total: Mapping[str, Any]) -> str | None:
    """The load-generator warning for requests that failed in the generator itself, if any."""
    mine = _generator_reasons(total)
    if not mine:
        return None
    why = ", ".join(r.removeprefix(GENERATOR_FAILURE) for r in sorted(mine))
    return (
        f"{sum(mine.values())} requests failed in the load generator itself ({why}), never "
        "reaching the target: raise its open-file limit (ulimit -n) or spread the users over "
        "more processes"
    )
