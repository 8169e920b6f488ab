"""Throughput of the reference Panacea API on one core, latency model off.

Starts the server (``--latency off --prewarm``) pinned to one CPU, builds a mixed stream of
requests to all twelve endpoints (the contract's task weights; bodies, filters and ids drawn by
the load side's own ``PayloadGenerator`` from 200 users' pools with the default settings, so
about 5% of ids are unknown; about 2% contract violations), and drives it from another CPU
with keep-alive connections: ``wrk`` with a Lua script when installed, else a small asyncio
client. Runs several rounds and prints the median requests per second against the 5,000 target.

    python bench/bench_reference_api.py [--rounds 5] [--duration 5] [--client auto|wrk|python]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from panacea_locust import __version__
from panacea_locust.config import Settings
from panacea_locust.contract import ENDPOINTS
from panacea_locust.payload_generator import PayloadGenerator, UserPool
from panacea_locust.reference_api.launcher import ReferenceAPIProcess

TARGET_RPS = 5000.0


@dataclass
class Req:
    method: str
    path: str
    headers: dict[str, str]
    body: str | None


def build_requests(n: int, seed: int, users: int = 200) -> list[Req]:
    """``n`` requests in the contract's weights, each built by the load side's payload builder
    for one of ``users`` users (pools from the default settings and ``seed``: the ids, cases,
    paths and filters a load test sends), plus about 2% contract violations."""
    # the defaults, whatever the shell's variables say: the mix must not drift between hosts
    settings = Settings.model_construct(loadtest_seed=seed)
    generator = PayloadGenerator(settings)
    pools = [UserPool.build(g, settings) for g in range(users)]
    rng = random.Random(seed)
    weights = [e.weight for e in ENDPOINTS]
    out: list[Req] = []
    for _ in range(n):
        pool = rng.choice(pools)
        headers = {
            "Authorization": f"Bearer mock-token-{pool.user_id}",
            "X-Session-Id": pool.session_id,
            "User-Agent": f"PanaceaLocust/{__version__} User-{pool.user_id}",
            "Content-Type": "application/json",
        }
        ep = rng.choices(ENDPOINTS, weights)[0]
        spec = generator.build(ep.key, pool)
        body = None
        if spec.json is not None:
            b = dict(spec.json)
            if rng.random() < 0.01:
                b["unexpected"] = True
            body = json.dumps(b)
        broken = rng.random()
        if broken < 0.005:
            del headers["Authorization"]
        elif broken < 0.01:
            headers["X-Session-Id"] = "not-a-session"
        out.append(Req(spec.method, spec.url, headers, body))
    return out


# -- clients ----------------------------------------------------------------------------------


def _lua_str(s: str) -> str:
    return "[==[" + s + "]==]"


def write_lua(reqs: list[Req], path: Path) -> None:
    lines = ["local raw = {"]
    for r in reqs:
        hdrs = ", ".join(f"[ {_lua_str(k)} ] = {_lua_str(v)}" for k, v in r.headers.items())
        body = _lua_str(r.body) if r.body is not None else "nil"
        lines.append(f"  {{{_lua_str(r.method)}, {_lua_str(r.path)}, {{{hdrs}}}, {body}}},")
    lines.append("}")
    lines.append("""
local reqs = {}
local idx = 0
init = function(args)
  for i, r in ipairs(raw) do reqs[i] = wrk.format(r[1], r[2], r[3], r[4]) end
  idx = math.random(#reqs)
end
request = function()
  idx = idx % #reqs + 1
  return reqs[idx]
end
""")
    path.write_text("\n".join(lines))


def _pin(cmd: list[str], cpu: int | None) -> list[str]:
    if cpu is not None and shutil.which("taskset"):
        return ["taskset", "-c", str(cpu), *cmd]
    return cmd


def run_wrk(url: str, script: Path, seconds: float, conns: int, cpu: int | None) -> float:
    cmd = _pin(["wrk", "-t1", f"-c{conns}", f"-d{seconds:g}s", "-s", str(script), url], cpu)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    return float(m.group(1))


def _raw_requests(reqs: list[Req], host: str) -> list[bytes]:
    out = []
    for r in reqs:
        body = (r.body or "").encode()
        head = [f"{r.method} {r.path} HTTP/1.1", f"Host: {host}"]
        head += [f"{k}: {v}" for k, v in r.headers.items()]
        if r.body is not None:
            head.append(f"Content-Length: {len(body)}")
        out.append(("\r\n".join(head) + "\r\n\r\n").encode() + body)
    return out


async def _python_client(host: str, port: int, raw: list[bytes], seconds: float, conns: int) -> int:
    done = 0
    stop_at = time.perf_counter() + seconds

    async def one(offset: int) -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection(host, port)
        i = offset
        try:
            while time.perf_counter() < stop_at:
                writer.write(raw[i % len(raw)])
                i += 1
                head = await reader.readuntil(b"\r\n\r\n")
                m = re.search(rb"(?i)content-length:\s*(\d+)", head)
                await reader.readexactly(int(m.group(1)) if m else 0)
                done += 1
        finally:
            writer.close()

    await asyncio.gather(*(one(k * 997) for k in range(conns)))
    return done


def run_python(url: str, raw: list[bytes], seconds: float, conns: int, cpu: int | None) -> float:
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})
    host, port = url.removeprefix("http://").split(":")
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    t0 = time.perf_counter()
    n = asyncio.run(_python_client(host, int(port), raw, seconds, conns))
    return n / (time.perf_counter() - t0)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (all threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pin_process(pid: int, cpu: int) -> None:
    """Pin every thread of ``pid`` to ``cpu``."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        os.sched_setaffinity(int(tid), {cpu})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per round")
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--requests", type=int, default=4000, help="distinct requests in the mix")
    ap.add_argument("--client", choices=("auto", "wrk", "python"), default="auto")
    ap.add_argument("--server-cpu", type=int, default=0)
    ap.add_argument("--client-cpu", type=int, default=1)
    ap.add_argument("--fast-path", choices=("on", "off"), default="on")
    ap.add_argument("--seed", type=int, default=1)
    opts = ap.parse_args()

    client = opts.client
    if client == "auto":
        client = "wrk" if shutil.which("wrk") else "python"
    reqs = build_requests(opts.requests, opts.seed)
    ncpu = os.cpu_count() or 1
    server_cpu = opts.server_cpu if ncpu > 1 else None
    client_cpu = opts.client_cpu if ncpu > 1 else None
    with (
        tempfile.TemporaryDirectory() as tmp,
        ReferenceAPIProcess(
            [
                "--latency",
                "off",
                "--prewarm",
                "--fast-path",
                opts.fast_path,
                "--log-level",
                "warning",
            ],
            startup_timeout=60,
        ) as api,
    ):
        if server_cpu is not None:
            pin_process(api.proc.pid if api.proc else 0, server_cpu)
        script = Path(tmp) / "mix.lua"
        raw = _raw_requests(reqs, api.url.removeprefix("http://"))
        if client == "wrk":
            write_lua(reqs, script)

        def go(seconds: float) -> float:
            if client == "wrk":
                return run_wrk(api.url, script, seconds, opts.connections, client_cpu)
            return run_python(api.url, raw, seconds, opts.connections, client_cpu)

        print(
            f"server {api.url} on cpu {server_cpu}, client {client} on cpu {client_cpu}, "
            f"{opts.connections} connections, {len(reqs)} distinct requests, "
            f"load average {os.getloadavg()[0]:.2f}"
        )
        pid = api.proc.pid if api.proc else 0
        go(opts.warmup)
        results, per_cpu = [], []
        for i in range(opts.rounds):
            api.reset_stats()
            cpu0 = cpu_seconds(pid)
            rps = go(opts.duration)
            cpu = cpu_seconds(pid) - cpu0
            st = api.stats()
            results.append(rps)
            per_cpu.append(st["total"] / cpu if cpu > 0 else 0.0)
            print(
                f"round {i + 1}: {rps:8.0f} req/s  ({per_cpu[-1]:6.0f} per server CPU-second, "
                f"server CPU {cpu / opts.duration:4.0%})  statuses {st['by_status']}  "
                f"endpoints {len(st['endpoints'])}  sessions {st['distinct_sessions']}"
            )
    med = statistics.median(results)
    med_cpu = statistics.median(per_cpu)
    print(
        f"median {med:.0f} req/s over {len(results)} rounds of {opts.duration:g} s "
        f"(server: {med_cpu:.0f} requests per CPU-second); target {TARGET_RPS:.0f}; "
        f"ratio {med / TARGET_RPS:.2f} ({'MEETS' if med >= TARGET_RPS else 'BELOW'} target)"
    )
    if med < TARGET_RPS <= med_cpu:
        print(
            "note: the server's core was not all ours (see server CPU above): other processes "
            "shared it; the per-CPU-second figure is the capacity of one free core"
        )
    return 0 if med >= TARGET_RPS else 1


if __name__ == "__main__":
    sys.exit(main())
