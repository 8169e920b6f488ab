"""Shared fixtures: a real reference API on loopback, and a way to run real Locust processes."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from panacea_locust.config import environment_without_settings
from panacea_locust.reference_api.launcher import ReferenceAPIProcess

if TYPE_CHECKING:  # imported in the fixture: Locust patches the stdlib when imported
    from panacea_locust.event_handlers import PanaceaRun

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
pytest_plugins = ["clickhouse_fixture"]
CHROMIUM = Path("/usr/bin/chromium")
# read at import: the suite's autouse fixture clears PANACEA_* variables before each test
REQUIRE_BROWSER = os.environ.get("PANACEA_REQUIRE_BROWSER", "") == "1" or os.environ.get(
    "CI", ""
).lower() in ("1", "true", "yes")


def clean_env(**overrides: str) -> dict[str, str]:
    env = environment_without_settings(os.environ)
    env.update(overrides)
    return env


@contextlib.contextmanager
def http_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A threaded ``http.server`` on a free loopback port, for functional tests (not timing:
    it keeps Nagle's algorithm on); yields its base URL and shuts it down afterwards."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    kept = environment_without_settings(os.environ)
    for key in list(os.environ):
        if key not in kept and key not in (
            "PANACEA_REQUIRE_CLICKHOUSE",
            "PANACEA_REQUIRE_PROMETHEUS",
        ):
            monkeypatch.delenv(key)


@pytest.fixture
def new_run() -> Iterator[Callable[..., PanaceaRun]]:
    """Builds a ``PanaceaRun`` as Locust's ``init`` does, on a fresh ``Environment`` with its
    own ``Events`` and a local runner (keyword arguments go to ``Environment``); each run's
    greenlets and runner are stopped afterwards."""
    from locust.env import Environment
    from locust.event import Events

    from panacea_locust.event_handlers import PanaceaRun

    runs: list[PanaceaRun] = []

    def make(**environment: Any) -> PanaceaRun:
        env = Environment(events=Events(), **environment)
        env.create_local_runner()  # before the run, as in Locust: it installs on the runner
        runs.append(PanaceaRun(env))
        return runs[-1]

    yield make
    for run in runs:
        for greenlet in run.state.greenlets:
            greenlet.kill(block=False)
        if run.environment.runner is not None:
            run.environment.runner.quit()


@pytest.fixture(scope="session")
def reference_api() -> Iterator[ReferenceAPIProcess]:
    """One reference API for the session (latency scaled down to keep tests quick)."""
    with ReferenceAPIProcess(["--latency-scale", "0.1", "--prewarm"]) as api:
        yield api


@pytest.fixture
def api(reference_api: ReferenceAPIProcess) -> ReferenceAPIProcess:
    """The session's reference API with its statistics cleared and default behaviour."""
    reference_api.configure(latency="on", latency_scale=0.1, error_rate=0.0, slow_rate=0.0)
    reference_api.reset_stats()
    return reference_api


@dataclass
class LocustRun:
    returncode: int
    stdout: str
    stderr: str
    run_dir: Path | None

    def summary(self) -> dict:
        assert self.run_dir is not None, self.stderr[-3000:]
        return json.loads((self.run_dir / "summary.json").read_text())


def run_dirs(results: Path) -> list[Path]:
    return sorted(p for p in results.iterdir() if p.is_dir()) if results.exists() else []


def run_panacea(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> LocustRun:
    """``panacea-locust run ...`` in ``cwd``; returns its output and the new results folder."""
    before = set(run_dirs(cwd / "results"))
    proc = subprocess.run(
        [sys.executable, "-m", "panacea_locust.cli", "run", *args],
        cwd=cwd,
        env=env or clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    new = [p for p in run_dirs(cwd / "results") if p not in before]
    return LocustRun(proc.returncode, proc.stdout, proc.stderr, new[-1] if new else None)


def need_browser(reason: str) -> None:
    """Skip a browser test for ``reason``, or fail it where the browser is required (CI)."""
    if REQUIRE_BROWSER:
        pytest.fail(f"{reason}, but CI=true or PANACEA_REQUIRE_BROWSER=1 requires the browser")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright (which never downloads a browser
    here: it is pointed at the system one)."""
    if not CHROMIUM.exists():
        need_browser(f"{CHROMIUM} is missing (make browser, as root, installs it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        need_browser("playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield chromium
        finally:
            chromium.close()
