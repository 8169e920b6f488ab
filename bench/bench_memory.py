"""Memory of the load generator: one Locust process holding 1,000 and 5,000 framework users.

Users wait 5 to 10 s between requests (HeavyUser and LightUser alike), so the run is about
what each user holds (its pools, random generator, HTTP client and connection, greenlet),
not about traffic; nginx on the other core answers the few requests. The resident set size
(``VmRSS`` of ``/proc/<pid>/status``) is sampled every 0.2 s; the figure is the median of the
samples taken from ``--settle`` seconds after the last user was spawned to the end.

Per user: the RSS divided by the users, and the marginal cost
``(RSS(5,000) - RSS(1,000)) / 4,000``, which leaves out what the process holds anyway
(Python, Locust, gevent, the framework's modules). For reference, bare ``FastHttpUser`` users
(``GET /``, same waits, same count) show what Locust itself holds per user.

    python bench/bench_memory.py [--users 1000 5000] [--settle 5] [--hold 10] [--quick]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from typing import Any

from common import (
    FRAMEWORK_LOCUSTFILE,
    LOCUSTFILES,
    cleanup,
    cpus,
    median,
    nginx,
    print_machine,
    run_locust,
)

TARGET_MB_AT_5000 = 250.0
SLOW_WAITS = {
    f"{kind}_WAIT_{end}": value
    for kind in ("HEAVY", "LIGHT", "STANDARD")
    for end, value in (("MIN", "5"), ("MAX", "10"))
}


@dataclass
class MemoryPoint:
    users: int
    rss_kb: float
    spawned: int  #: users Locust reported as spawned
    samples: int

    @property
    def rss_mb(self) -> float:
        return self.rss_kb / 1024

    @property
    def per_user_kb(self) -> float:
        return self.rss_kb / self.users


@dataclass
class Memory:
    points: list[MemoryPoint] = field(default_factory=list)
    bare: MemoryPoint | None = None  #: bare FastHttpUser, same users and waits: Locust's floor

    def at(self, users: int) -> MemoryPoint | None:
        return next((p for p in self.points if p.users == users), None)

    @property
    def marginal_kb(self) -> float:
        """Extra RSS per extra user between the smallest and the largest run."""
        if len(self.points) < 2:
            return 0.0
        lo, hi = min(self.points, key=lambda p: p.users), max(self.points, key=lambda p: p.users)
        return (hi.rss_kb - lo.rss_kb) / (hi.users - lo.users)

    def as_dict(self) -> dict[str, Any]:
        return {
            "points": [
                {
                    "users": p.users,
                    "rss_mb": round(p.rss_mb, 1),
                    "per_user_kb": round(p.per_user_kb, 1),
                }
                for p in self.points
            ],
            "marginal_kb_per_user": round(self.marginal_kb, 1),
            "bare_fasthttp": None
            if self.bare is None
            else {"users": self.bare.users, "rss_mb": round(self.bare.rss_mb, 1)},
            "target_mb_at_5000": TARGET_MB_AT_5000,
        }


def measure(
    url: str, users: int, settle: float, hold: float, cpu: int | None, bare: bool = False
) -> MemoryPoint:
    rate = max(100.0, users / 5)  # every user spawned within about 5 s
    seconds = users / rate + 2.0 + settle + hold
    env = {
        **SLOW_WAITS,
        "LOCUST_MAX_USERS": str(users),
        "USER_POOL_SIZE": str(users),
        "BENCH_WAIT_MIN": "5",
        "BENCH_WAIT_MAX": "10",
    }
    result = run_locust(
        LOCUSTFILES / "bare_fasthttp.py" if bare else FRAMEWORK_LOCUSTFILE,
        url,
        users=users,
        seconds=seconds,
        env=env,
        cpu=cpu,
        label=f"memory-{'bare-' if bare else ''}{users}",
        spawn_rate=rate,
        warmup=0.0,
        sample_rss=True,
    )
    if result.spawned_at is None:
        raise RuntimeError(f"{users} users were never all spawned (see {result.run_dir})")
    steady = [kb for t, kb in result.rss_samples_kb if t >= result.spawned_at + settle]
    if not steady:
        raise RuntimeError(f"no RSS sample after the users settled ({users} users)")
    if result.failures:
        raise RuntimeError(f"{result.failures} requests failed (see {result.run_dir})")
    if bare:
        spawned = users  # no summary.json: Locust reported spawning complete
    else:
        spawned = sum((result.summary or {}).get("run", {}).get("users", {}).values())
    cleanup(result)  # kept when something went wrong, for its locust.log
    return MemoryPoint(users, median(steady), int(spawned), len(steady))


def run(
    users: tuple[int, ...] = (1000, 5000),
    settle: float = 5.0,
    hold: float = 10.0,
    quiet: bool = False,
    bare: bool = True,
) -> Memory:
    """The framework at each user count, then bare FastHttpUser at the largest (if ``bare``)."""
    target_cpu, locust_cpu = cpus()
    out = Memory()

    def show(what: str, point: MemoryPoint) -> None:
        if not quiet:
            print(
                f"{what:<18} {point.users:6d} users: RSS {point.rss_mb:6.1f} MB, "
                f"{point.per_user_kb:5.1f} kB per user ({point.spawned} spawned, median of "
                f"{point.samples} samples)"
            )

    with nginx(cpu=target_cpu) as url:
        for n in users:
            point = measure(url, n, settle, hold, locust_cpu)
            out.points.append(point)
            show("framework", point)
        if bare and users:
            out.bare = measure(url, max(users), settle, hold, locust_cpu, bare=True)
            show("bare FastHttpUser", out.bare)
    return out


def report(m: Memory) -> None:
    if len(m.points) > 1:
        print(f"framework marginal cost: {m.marginal_kb:.1f} kB per extra user")
    top = max(m.points, key=lambda p: p.users) if m.points else None
    if m.bare is not None and top is not None and top.users == m.bare.users:
        extra = (top.rss_kb - m.bare.rss_kb) / top.users
        print(
            f"framework over bare FastHttpUser at {top.users} users: "
            f"{top.rss_mb - m.bare.rss_mb:+.1f} MB ({extra:+.1f} kB per user)"
        )
    p = m.at(5000)
    if p is not None:
        met = "meets" if p.rss_mb < TARGET_MB_AT_5000 else "ABOVE"
        print(f"5,000 users: {p.rss_mb:.1f} MB RSS; target under {TARGET_MB_AT_5000:.0f} MB: {met}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, nargs="+", default=[1000, 5000])
    ap.add_argument("--settle", type=float, default=5.0, help="seconds after the last spawn")
    ap.add_argument("--hold", type=float, default=10.0, help="seconds of samples after settling")
    ap.add_argument("--no-bare", action="store_true", help="skip the bare FastHttpUser run")
    ap.add_argument("--quick", action="store_true", help="settle 3 s, hold 4 s")
    opts = ap.parse_args(argv)
    if opts.quick:
        opts.settle, opts.hold = 3.0, 4.0
    print_machine()
    m = run(tuple(opts.users), opts.settle, opts.hold, bare=not opts.no_bare)
    report(m)
    p = m.at(5000)
    return 0 if p is None or p.rss_mb < TARGET_MB_AT_5000 else 1


if __name__ == "__main__":
    sys.exit(main())
