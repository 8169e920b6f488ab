"""All the load generator's benchmarks, one after the other, then one table against the targets.

1. throughput: the framework against bare FastHttpUser and HttpUser on one core
   (``bench_throughput.py``);
2. memory: 1,000 and 5,000 framework users in one process (``bench_memory.py``);
3. accuracy: reported p50 and p99 against what a target that answers after 50 ms really held
   each request (``bench_accuracy.py``);
4. the open model: the generator's one-core maximum at a set arrival rate, its achieved rate
   and schedule lag below it, and a server with a capacity driven at 50 to 150 % of it, open
   and closed, the intended-start p99 against the truth (``bench_open_model.py``);
5. the reference API with its latency model off, on one core (``bench_reference_api.py``,
   run as it is).

Everything runs on 127.0.0.1 and is stopped before the next part starts. The machine is
printed first: the figures mean little without it. ``--quick`` runs short versions; ``--json``
writes every figure to a file. Exit code 0 when every target is met, 1 otherwise.

    python bench/run_all.py [--quick] [--json FILE] [--only throughput,...,master]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bench_accuracy
import bench_master
import bench_memory
import bench_open_model
import bench_throughput
from common import BENCH_DIR, clean_env, machine, median, print_machine

PARTS = ("throughput", "memory", "accuracy", "open", "reference", "master")
REFERENCE_TARGET_RPS = 5000.0


@dataclass
class Row:
    figure: str
    value: str
    target: str
    met: bool | None  # None: not measured


def reference_api(quick: bool) -> dict[str, Any]:
    """Run ``bench_reference_api.py`` (its owner's script, unchanged) and read its figures."""
    args = ["--rounds", "1", "--duration", "3", "--warmup", "1"] if quick else ["--rounds", "3"]
    cmd = [sys.executable, str(BENCH_DIR / "bench_reference_api.py"), *args]
    lines: list[str] = []
    pipe, env = subprocess.PIPE, clean_env()  # unbuffered: its lines show as they come
    with subprocess.Popen(cmd, stdout=pipe, stderr=subprocess.STDOUT, text=True, env=env) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            print(line, end="")
            lines.append(line)
    text = "".join(lines)
    rps = re.search(r"median (\d+) req/s", text)
    per_cpu = re.search(r"server: (\d+) requests per CPU-second", text)
    if rps is None:
        raise RuntimeError(f"bench_reference_api.py exited with {proc.returncode}:\n{text[-2000:]}")
    return {
        "median_rps": float(rps.group(1)),
        "requests_per_cpu_second": float(per_cpu.group(1)) if per_cpu else None,
        "target_rps": REFERENCE_TARGET_RPS,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short versions of every part")
    ap.add_argument("--json", metavar="FILE", help="also write every figure to FILE")
    ap.add_argument("--only", default=",".join(PARTS), help=f"parts to run, of {PARTS}")
    opts = ap.parse_args(argv)
    parts = [p.strip() for p in opts.only.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        ap.error(f"unknown part(s) {sorted(unknown)}; known: {', '.join(PARTS)}")
    q = opts.quick
    print_machine()
    started = time.monotonic()
    figures: dict[str, Any] = {"machine": machine(), "quick": q}
    rows: list[Row] = []

    def add(figure: str, value: str, target: str = "", met: bool | None = None) -> None:
        rows.append(Row(figure, value, target, met))

    if "throughput" in parts:
        print("\n== 1. throughput: framework vs bare Locust users, one core ==")
        t = bench_throughput.run(
            rounds=2 if q else 5, round_s=3.0 if q else 6.0, warmup_s=4.0 if q else 5.0
        )
        bench_throughput.report(t)
        figures["throughput"] = t.as_dict()
        for kind in t.rounds:
            add(f"{kind} req/s per core", f"{t.median_per_core(kind):.0f}")
        goal = bench_throughput.TARGET_RATIO
        add("framework / bare FastHttpUser", f"{t.ratio:.3f}", f">= {goal}", t.ratio >= goal)
        if bench_throughput.TRACED in t.rounds:
            traced = median(t.ratios(bench_throughput.TRACED, bench_throughput.BARE_FAST))
            add("framework with --trace-context / bare FastHttpUser", f"{traced:.3f}",
                f">= {goal}", traced >= goal)  # fmt: skip

    if "memory" in parts:
        print("\n== 2. memory: framework users in one process ==")
        m = bench_memory.run(settle=3.0 if q else 5.0, hold=4.0 if q else 10.0)
        bench_memory.report(m)
        figures["memory"] = m.as_dict()
        limit = bench_memory.TARGET_MB_AT_5000
        for p in m.points:
            value = f"{p.rss_mb:.0f} MB ({p.per_user_kb:.0f} kB/user)"
            if p.users == 5000:
                add(f"RSS with {p.users:,} users", value, f"< {limit:.0f} MB", p.rss_mb < limit)
            else:
                add(f"RSS with {p.users:,} users", value)
        add("framework memory per extra user", f"{m.marginal_kb:.1f} kB")
        if m.bare is not None:
            add(f"bare FastHttpUser RSS, {m.bare.users:,} users", f"{m.bare.rss_mb:.0f} MB")

    if "accuracy" in parts:
        print("\n== 3. accuracy: reported latency against the truth, a 50 ms target ==")
        a = bench_accuracy.run(duration=10.0 if q else 15.0, rounds=1 if q else 3)
        bench_accuracy.report(a)
        figures["accuracy"] = a.as_dict()
        for label, error, goal in (
            ("reported p50 - true p50", a.p50_error, bench_accuracy.TARGET_P50_MS),
            ("reported p99 - true p99", a.p99_error, bench_accuracy.TARGET_P99_MS),
        ):
            add(label, f"{error:+.2f} ms", f"within {goal:g} ms", abs(error) <= goal)
        for q_ in (50, 99):
            nominal = a.error(bench_accuracy.PACED, bench_accuracy.FRAMEWORK, q_, "delay")
            add(f"reported p{q_} - 50 ms", f"{nominal:+.2f} ms")
        retried = sum(r.attempts - 1 for r in a.runs)
        add("accuracy runs taken again (steal)", f"{retried} ({len(a.disturbed)} kept over)")

    if "open" in parts:
        print("\n== 4. the open model: arrival rate, schedule lag, a server with a capacity ==")
        settings = bench_open_model.Settings()
        om = bench_open_model.run(bench_open_model.quick(settings) if q else settings)
        bench_open_model.report(om)
        figures["open_model"] = om.as_dict()
        add("open: generator maximum, one core", f"{om.generator_max_rps:.0f} req/s")
        for goal_ in om.targets():
            add(f"open: {goal_.figure}", goal_.value, goal_.target, goal_.met)
        saturated = max(bench_open_model.LEVELS)
        if om.open_at(saturated) and om.closed_at(saturated):
            drop = median([r.dropped_ratio for r in om.open_at(saturated)])
            offered = median([r.offered for r in om.closed_at(saturated)])
            add(f"open at {saturated:.0%} of capacity: dropped", f"{drop:.1%}")
            add(f"closed at {saturated:.0%} of capacity: load offered", f"{offered:.0%} of target")

    if "master" in parts:
        print("\n== 6. one master, many workers' reports: its CPU and memory ==")
        ms = bench_master.Settings(rounds=1) if q else bench_master.Settings()
        if q:
            ms.workers, ms.seconds, ms.warmup = (10, 100), 6.0, 3.0
        scale = bench_master.run(ms)
        bench_master.report(scale)
        figures["master"] = scale.as_dict()
        if scale.at(bench_master.TARGET_WORKERS):
            share = scale.median(bench_master.TARGET_WORKERS, lambda p: p.share)
            add(f"master: {bench_master.TARGET_WORKERS} workers' reports", f"{share:.1%} of a core",
                f"< {bench_master.TARGET_CORE_SHARE:.0%}", scale.met)  # fmt: skip

    if "reference" in parts:
        print("\n== 5. the reference API, latency off, one core ==")
        ref = reference_api(q)
        figures["reference_api"] = ref
        goal = REFERENCE_TARGET_RPS
        rps = ref["median_rps"]
        add("reference API req/s (one core)", f"{rps:.0f}", f">= {goal:.0f}", rps >= goal)

    print(f"\n== summary ({time.monotonic() - started:.0f} s) ==")
    width = max(len(row.figure) for row in rows) if rows else 10
    print(f"{'figure':<{width}}  {'measured':>22}  {'target':>14}  met")
    for row in rows:
        met = "" if row.met is None else ("yes" if row.met else "NO")
        print(f"{row.figure:<{width}}  {row.value:>22}  {row.target:>14}  {met}")
    figures["targets_met"] = all(row.met for row in rows if row.met is not None)
    if opts.json:
        Path(opts.json).write_text(json.dumps(figures, indent=2) + "\n")
        print(f"figures written to {opts.json}")
    return 0 if figures["targets_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
