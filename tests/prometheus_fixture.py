"""A real, throwaway Prometheus server on loopback for the live-metrics tests.

``prometheus_server(root, target)`` starts Debian's ``prometheus`` (installed by
``scripts/install-prometheus.sh``) on 127.0.0.1 and a free port, its data under ``root``,
scraping ``target`` every second; once it has tried its first scrape (Prometheus starts its
scrape loops a few seconds late) it yields a :class:`PrometheusServer` to query and stops
the server (whole process group) afterwards, also when the test fails. Without a binary the
tests skip with the reason, unless ``CI=true`` or ``PANACEA_REQUIRE_PROMETHEUS=1``: then they
fail, so CI never skips them silently.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from clickhouse_fixture import free_port

REQUIRE_ENV = "PANACEA_REQUIRE_PROMETHEUS"
START_TIMEOUT_S = 30.0
JOB = "panacea"

_CONFIG = """global:
  scrape_interval: {interval}
  scrape_timeout: {interval}
  evaluation_interval: {interval}
scrape_configs:
  - job_name: {job}
    static_configs:
      - targets: ["{target}"]
"""


def find_prometheus() -> str | None:
    """The Prometheus server binary, or None when none is installed."""
    for candidate in (shutil.which("prometheus"), "/usr/bin/prometheus"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def prometheus_required() -> bool:
    """CI (or an explicit request) must run the Prometheus tests, never skip them."""
    return (
        os.environ.get("CI", "").lower() in ("1", "true", "yes")
        or os.environ.get(REQUIRE_ENV, "") == "1"
    )


def prometheus_binary() -> str:
    """The binary; skips the test without one, or fails it where it is required."""
    binary = find_prometheus()
    if binary is None:
        reason = "no prometheus binary: run scripts/install-prometheus.sh (make prometheus)"
        if prometheus_required():
            pytest.fail(f"{reason} [{REQUIRE_ENV}=1 or CI=true: required]")
        pytest.skip(reason)
    return binary


@dataclass(frozen=True)
class PrometheusServer:
    """A running test server (loopback only) and its HTTP API."""

    url: str
    log: Path

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """``/api/v1/query`` at this moment (or at the Unix time ``at``): the result
        (``metric`` and ``value``, or ``values`` for a range selector)."""
        params = {"query": expr, **({"time": repr(at)} if at is not None else {})}
        address = f"{self.url}/api/v1/query?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(address, timeout=10) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def values(self, expr: str, by: str) -> dict[str, float]:
        """An instant vector as ``{label value of by: value}``."""
        return {r["metric"].get(by, ""): float(r["value"][1]) for r in self.query(expr)}


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@contextlib.contextmanager
def prometheus_server(
    root: Path, target: str, port: int | None = None, interval_s: int = 1
) -> Iterator[PrometheusServer]:
    """Prometheus on 127.0.0.1 (``port``, else a free one), scraping ``target`` every
    ``interval_s`` seconds."""
    binary = prometheus_binary()
    root.mkdir(parents=True, exist_ok=True)
    config = root / "prometheus.yml"
    config.write_text(_CONFIG.format(interval=f"{interval_s}s", job=JOB, target=target))
    port = port or free_port()
    log = root / "prometheus.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={root / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
    server = PrometheusServer(f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _ready(server.url):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"prometheus did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        # Prometheus applies its targets a few seconds after start (5 s in 2.42): wait for the
        # first scrape, failed or not, so the test's run is scraped from its start
        while not server.query(f'up{{job="{JOB}"}}'):
            if time.monotonic() > deadline:
                raise RuntimeError(f"prometheus never scraped {target}: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield server
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
