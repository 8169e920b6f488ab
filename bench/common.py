"""Shared pieces of the load-generator benchmarks: an nginx target, headless Locust runs, CPU.

Everything runs on 127.0.0.1 only. nginx (Debian's ``/usr/sbin/nginx``) is started as a
foreground child with a throw-away configuration, pinned to one core; Locust runs pinned to
the other, so each side has one core and the figures are "per core". Requests per second are
read from Locust's ``--csv`` statistics (not ``--json``: in Locust 2.47 it resets the
statistics it prints), and each run also reports how busy the Locust process was, since a
load generator below 100 % of its core was not the bottleneck.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from panacea_locust.config import environment_without_settings

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
LOCUSTFILES = BENCH_DIR / "locustfiles"
FRAMEWORK_LOCUSTFILE = ROOT / "panacea_locust" / "locustfile.py"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

#: One body that satisfies every endpoint's response check: all documented keys at once.
STATIC_BODY: dict[str, Any] = {
    "bundle_id": 900,
    "status": "completed",
    "sfdc_case_no": "012340900",
    "total_lines": 1200,
    "counts": {"fatal": 1, "error": 12, "warn": 40, "info": 900, "debug": 247},
    "interval": "5m",
    "buckets": [],
    "rows": [],
    "columns": [],
    "values": [],
    "total": 0,
    "page_no": 1,
    "page_size": 20,
    "results": [],
    "components": ["stargate"],
    "log_levels": ["error"],
    "cvm_ips": ["10.0.0.1"],
    "events": [],
    "summary": "ok",
    "answer": "ok",
    "reports": [],
    "paths": [],
}

#: Every wait time 0: a user sends its next request as soon as the last one is answered.
NO_WAIT = {
    f"{kind}_WAIT_{end}": "0" for kind in ("HEAVY", "LIGHT", "STANDARD") for end in ("MIN", "MAX")
}


def clean_env(**overrides: str) -> dict[str, str]:
    """This process's environment without our settings, plus ``overrides``."""
    env = environment_without_settings(os.environ)
    env.update(overrides)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def cpus() -> tuple[int | None, int | None]:
    """(target core, load generator core): 0 and 1 on a machine with two or more cores."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return (0, 1) if n > 1 else (None, None)


def pinned(cmd: Sequence[str], cpu: int | None) -> list[str]:
    if cpu is not None and shutil.which("taskset"):
        return ["taskset", "-c", str(cpu), *cmd]
    return list(cmd)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kb(pid: int) -> int:
    """Resident set size of a process, from ``/proc/<pid>/status`` (VmRSS, in kB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def wait_for_port(
    port: int, timeout: float = 10.0, proc: subprocess.Popen[Any] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"server exited with code {proc.returncode}") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listening on 127.0.0.1:{port}") from None
            time.sleep(0.05)


def stop(proc: subprocess.Popen[Any] | None) -> None:
    """SIGTERM, then SIGKILL after 5 s: never leave a child behind (a paused one too)."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGCONT)  # a stopped process would not act on SIGTERM
    proc.terminate()
    try:
        proc.wait(5.0)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5.0)


NGINX_CONF = """\
worker_processes 1;
daemon off;
master_process off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
worker_rlimit_nofile 19000;
events {{ worker_connections 16000; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            default_type application/json;
            return 200 '{body}';
        }}
    }}
}}
"""


@contextlib.contextmanager
def nginx(cpu: int | None = None, body: Mapping[str, Any] = STATIC_BODY) -> Iterator[str]:
    """nginx answering ``body`` (JSON) with 200 to any method and path; yields its base URL.

    One process (``master_process off``, one worker's work) pinned to ``cpu``, on a free
    loopback port, configuration and logs in a temporary folder removed afterwards.
    """
    if not Path(NGINX).exists():
        raise RuntimeError("nginx not found (Debian: apt-get install nginx-light)")
    text = json.dumps(dict(body), separators=(",", ":"))
    if "'" in text:
        raise ValueError("the static body must not contain a single quote")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-nginx-") as tmp:
        conf = Path(tmp) / "nginx.conf"
        conf.write_text(NGINX_CONF.format(tmp=tmp, port=port, body=text))
        cmd = pinned([NGINX, "-p", tmp, "-e", f"{tmp}/error.log", "-c", str(conf)], cpu)
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            wait_for_port(port, proc=proc)
            yield f"http://127.0.0.1:{port}"
        finally:
            stop(proc)


@dataclass
class LocustResult:
    """One headless Locust run: steady-state speed, CPU use, and what the run wrote."""

    label: str
    requests: int  #: every request of the run (Locust's CSV)
    failures: int
    rps: float  #: requests per second in the steady window (after the warm-up, to the stop)
    cpu: float  #: share of one core the Locust process used in that window
    run_dir: Path
    summary: dict[str, Any] | None = None  #: the framework's summary.json, when written
    spawned_at: float | None = None  #: time.monotonic() when every user had been spawned
    rss_samples_kb: list[tuple[float, int]] = field(default_factory=list)  #: (monotonic, kB)
    #: (monotonic, CPU s, requests, failures) every 0.2 s while running (``samples=True``)
    samples: list[tuple[float, ...]] = field(default_factory=list)
    #: steady-window latency (``BENCH_METER_LATENCY=1``): count, p50_ms, p99_ms, mean_ms
    latency: dict[str, float] | None = None
    stopping_at: float | None = None  #: time.monotonic() when the test began to stop
    reset_at: float | None = None  #: time.monotonic() of the meter's statistics reset
    #: per CPU, the share of the latency window (reset, or start, to stopping) that the
    #: hypervisor gave to something else: steal time; empty where the kernel has none
    steal: list[float] = field(default_factory=list)

    def steal_on(self, cpus: Sequence[int | None]) -> float:
        """The largest steal share over ``cpus`` (every CPU for ``None``); 0 if unknown."""
        wanted = [c for c in cpus if c is not None and c < len(self.steal)]
        shares = [self.steal[c] for c in wanted] if wanted else self.steal
        return max(shares, default=0.0)


@dataclass
class LocustProcess:
    """A headless Locust run in progress (``start_locust``); ``finish_locust`` reads it."""

    label: str
    proc: subprocess.Popen[bytes]
    run_dir: Path
    meter: Path

    def signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signum)


@contextlib.contextmanager
def delay_server_process(
    folder: Path, args: Sequence[str], cpu: int | None
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``delay_server.py`` with ``args``, answering ``STATIC_BODY`` (written into ``folder``),
    pinned to ``cpu``: yields the process and its URL once it listens; stopped (its workers
    too, their records written) on exit."""
    body = folder / "body.json"
    body.write_text(json.dumps(STATIC_BODY, separators=(",", ":")))
    script = str(BENCH_DIR / "delay_server.py")
    cmd = pinned([sys.executable, script, *args, "--body", str(body)], cpu)
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True, env=clean_env()
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("listening on "):
            raise RuntimeError(f"delay server did not start: {line!r}")
        yield proc, line.split()[-1]
    finally:
        stop(proc)


def start_locust(
    locustfile: Path,
    host: str,
    *,
    users: int,
    seconds: float,
    env: Mapping[str, str] | None = None,
    cpu: int | None = None,
    label: str = "run",
    spawn_rate: float | None = None,
    warmup: float = 1.0,
    samples: bool = False,
    extra: Sequence[str] = (),
    also: Sequence[Path] = (),
) -> LocustProcess:
    """Start ``locust -f locustfile,meter.py --headless`` pinned to ``cpu``; returns at once.
    ``also``: more locustfiles loaded with them (probes of a benchmark's own)."""
    tmp = Path(tempfile.mkdtemp(prefix=f"bench-{label}-"))
    rate = spawn_rate if spawn_rate is not None else users
    files = f"{locustfile},{LOCUSTFILES / 'meter.py'}"
    files += "".join(f",{f}" for f in also)
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        files,
        "--headless",
        "--only-summary",
        "-u",
        str(users),
        "-r",
        f"{rate:g}",
        "-t",
        f"{seconds:g}s",
        "--host",
        host,
        "--csv",
        str(tmp / "locust"),
        "--stop-timeout",
        "2",
        "--loglevel",
        "WARNING",
        *extra,
    ]
    meter = tmp / "meter.json"
    run_env = clean_env(
        RESULTS_DIR=str(tmp / "results"),
        PANACEA_RUN_DIR=str(tmp / "run"),
        BENCH_METER_FILE=str(meter),
        BENCH_METER_WARMUP=f"{warmup:g}",
        BENCH_METER_SAMPLES="1" if samples else "0",
        **dict(env or {}),
    )
    with (tmp / "locust.log").open("w") as log:
        proc = subprocess.Popen(
            pinned(cmd, cpu),
            env=run_env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=tmp,
        )
    return LocustProcess(label, proc, tmp, meter)


def finish_locust(lp: LocustProcess, rss: list[tuple[float, int]] | None = None) -> LocustResult:
    """Wait for the run to end (stopping it if need be) and read what it measured."""
    try:
        lp.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pass
    finally:
        stop(lp.proc)
    tmp, meter, label = lp.run_dir, lp.meter, lp.label
    # 1: failures, 3: SLO; 143: stopped by the benchmark's SIGTERM (an interrupted run)
    if lp.proc.returncode not in (0, 1, 3, 143) or not meter.exists():
        tail = (tmp / "locust.log").read_text()[-3000:]
        raise RuntimeError(f"locust ({label}) exited with {lp.proc.returncode}:\n{tail}")
    marks = json.loads(meter.read_text())
    first, last = marks.get("start", marks["stop"]), marks["stop"]
    wall = last["wall"] - first["wall"]
    steady_cpu = last["cpu"] - first["cpu"]
    total = _aggregated_row(tmp / "locust_stats.csv")
    summary_file = tmp / "run" / "summary.json"
    return LocustResult(
        label=label,
        requests=int(total["Request Count"]),
        failures=int(total["Failure Count"]),
        rps=(last["requests"] - first["requests"]) / wall if wall > 0 else 0.0,
        cpu=steady_cpu / wall if wall > 0 else 0.0,
        run_dir=tmp,
        summary=json.loads(summary_file.read_text()) if summary_file.exists() else None,
        spawned_at=marks.get("spawned", {}).get("wall"),
        rss_samples_kb=rss or [],
        samples=[tuple(x) for x in marks.get("samples", [])],
        latency=marks.get("latency"),
        stopping_at=marks.get("stopping", {}).get("wall"),
        reset_at=marks.get("reset", {}).get("wall"),
        steal=_steal_shares(marks.get("reset", first), marks.get("stopping", last)),
    )


def _steal_shares(since: Mapping[str, Any], until: Mapping[str, Any]) -> list[float]:
    """Per CPU, steal time between two meter marks as a share of the wall time between them."""
    wall = until["wall"] - since["wall"]
    before, after = since.get("steal") or [], until.get("steal") or []
    if wall <= 0 or len(before) != len(after):
        return []
    tick = os.sysconf("SC_CLK_TCK")
    return [(b - a) / tick / wall for a, b in zip(before, after, strict=True)]


def run_locust(
    locustfile: Path,
    host: str,
    *,
    users: int,
    seconds: float,
    env: Mapping[str, str] | None = None,
    cpu: int | None = None,
    label: str = "run",
    spawn_rate: float | None = None,
    warmup: float = 1.0,
    sample_rss: bool = False,
    extra: Sequence[str] = (),
) -> LocustResult:
    """Run ``locust -f locustfile --headless`` with the meter; raises if Locust failed.

    The steady window starts ``warmup`` seconds after the test starts (users spawned,
    connections open) and ends when the test stops; ``locustfiles/meter.py`` notes the
    request count and the process's CPU time at both ends.
    """
    lp = start_locust(
        locustfile,
        host,
        users=users,
        seconds=seconds,
        env=env,
        cpu=cpu,
        label=label,
        spawn_rate=spawn_rate,
        warmup=warmup,
        extra=extra,
    )
    rss: list[tuple[float, int]] = []
    try:
        while lp.proc.poll() is None:
            if sample_rss:
                with contextlib.suppress(OSError, ValueError, RuntimeError):
                    rss.append((time.monotonic(), rss_kb(lp.proc.pid)))
            time.sleep(0.2)
    finally:
        stop(lp.proc)
    return finish_locust(lp, rss)


def _aggregated_row(path: Path) -> dict[str, str]:
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            if row.get("Name") == "Aggregated":
                return row
    raise RuntimeError(f"no Aggregated row in {path}")


def cleanup(result: LocustResult) -> None:
    shutil.rmtree(result.run_dir, ignore_errors=True)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    try:
        import locust

        locust_version = locust.__version__
    except ImportError:  # pragma: no cover
        locust_version = "?"
    return {
        "cpus": str(os.cpu_count()),
        "cpu_model": model,
        "python": sys.version.split()[0],
        "locust": locust_version,
        "load_average": f"{os.getloadavg()[0]:.2f}",
    }


def print_machine() -> None:
    m = machine()
    print(
        f"machine: {m['cpus']} cores ({m['cpu_model']}), Python {m['python']}, "
        f"Locust {m['locust']}, load average {m['load_average']}"
    )


def busy_ticks_per_cpu() -> list[int]:
    """Per CPU, the clock ticks it has run anything so far (user, nice, system, irq, softirq:
    ``/proc/stat``); empty where there is no ``/proc/stat``."""
    out: list[int] = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("cpu") and line[3:4].isdigit():
                f = [int(x) for x in line.split()[1:8]]
                out.append(f[0] + f[1] + f[2] + f[5] + f[6])
    return out


@dataclass
class CoreSamples:
    """(monotonic, busy ticks per CPU, CPU seconds of one process), every few tenths of a second,
    noted by a thread of the benchmark (``core_samples``): how busy the load generator's core
    was, and how much of that was not the load generator. On a shared machine other processes
    take turns on a pinned core (``taskset`` keeps ours on it, not theirs off it), and that
    time, unlike steal time, is not in the meter's figures."""

    rows: list[tuple[float, list[int], float]] = field(default_factory=list)

    def others(self, cpu: int | None, since: float, until: float) -> float:
        """The share of ``cpu`` that processes other than the sampled one ran between two
        monotonic times (from the samples nearest inside them); 0 when unknown."""
        inside = [r for r in self.rows if since <= r[0] <= until]
        if cpu is None or len(inside) < 2 or cpu >= len(inside[0][1]) or cpu >= len(inside[-1][1]):
            return 0.0
        (t0, busy0, own0), (t1, busy1, own1) = inside[0], inside[-1]
        busy = (busy1[cpu] - busy0[cpu]) / os.sysconf("SC_CLK_TCK")
        return max(0.0, (busy - (own1 - own0)) / (t1 - t0)) if t1 > t0 else 0.0


@contextlib.contextmanager
def core_samples(pid: int, every: float = 0.25) -> Iterator[CoreSamples]:
    """``CoreSamples`` of process ``pid`` while inside (the thread stops on the way out)."""
    samples = CoreSamples()
    done = threading.Event()

    def note() -> None:
        while True:
            with contextlib.suppress(OSError, ValueError, IndexError):
                samples.rows.append((time.monotonic(), busy_ticks_per_cpu(), cpu_seconds(pid)))
            if done.wait(every):
                return

    thread = threading.Thread(target=note, name="core-samples", daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        done.set()
        thread.join(2.0)
