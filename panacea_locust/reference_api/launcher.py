"""Run the reference API as a subprocess on loopback: for tests and as the embedded target.

Stdlib only (urllib, subprocess, threading), so it is cheap to import from the load side.

    with ReferenceAPIProcess(["--latency", "off"]) as api:
        ...  # send requests to api.url
        assert api.stats()["total"] == n
"""

from __future__ import annotations

import atexit
import ctypes
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

_PR_SET_PDEATHSIG = 1  #: prctl(2)


def parent_death_hook() -> Callable[[], None] | None:
    """A ``preexec_fn`` (built in the parent) after which Linux sends the child SIGTERM when
    its parent dies, so a killed ``panacea-locust run`` leaves no Locust running; None where
    there is no such thing (the parent's own handlers still stop the child on a clean exit).

    ``prctl`` is looked up here, in the parent: between ``fork`` and ``exec`` the child may
    only make plain system calls (looking up a library there runs subprocesses, which can
    deadlock on a lock another thread of the parent held when it forked).
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return hook


def _shutdown_grace(args: Sequence[str]) -> float:
    """The ``--shutdown-grace`` among the server's options (3 s, its default, if absent)."""
    for i, arg in enumerate(args):
        value = arg.partition("=")[2] if arg.startswith("--shutdown-grace=") else None
        if arg == "--shutdown-grace" and i + 1 < len(args):
            value = args[i + 1]
        if value is not None and value.isdigit():
            return float(value)
    return 3.0


_URL_RE = re.compile(r"listening on (http://\S+?):(\d+)\b")
#: never through a proxy: the server is on loopback and traffic must stay there
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def contract_headers(
    user_id: str = "user_1", session_id: str | None = None, token: str | None = None
) -> dict[str, str]:
    """The headers the contract requires on every request, for ``user_id``."""
    sid = session_id or hashlib.md5(user_id.encode()).hexdigest()  # noqa: S324 (an id, not a hash)
    return {
        "X-Session-Id": sid,
        "Authorization": f"Bearer {token or f'mock-token-{user_id}'}",
        "Content-Type": "application/json",
        "User-Agent": f"PanaceaLocust/1.0 User-{user_id}",
    }


class ReferenceAPIError(RuntimeError):
    """The server did not start, or an introspection call failed."""


class ReferenceAPIProcess:
    """The reference API server in a child process, stopped on exit (context manager).

    ``port=0`` (default) lets the server pick a free port and reports it back, so parallel
    test runs never collide. ``args`` are extra command-line options (``--latency off``, ...);
    ``max_concurrency`` adds ``--max-concurrency N``. ``preexec_fn`` runs in the child before
    the server starts (a test lowering its ``RLIMIT_NOFILE``, say).
    """

    def __init__(
        self,
        args: Sequence[str] = (),
        *,
        port: int = 0,
        startup_timeout: float = 20.0,
        env: Mapping[str, str] | None = None,
        max_concurrency: int | None = None,
        preexec_fn: Callable[[], None] | None = None,
    ) -> None:
        self.args = list(args)
        if max_concurrency is not None:
            self.args += ["--max-concurrency", str(max_concurrency)]
        self.preexec_fn = preexec_fn
        self.port = port
        self.startup_timeout = startup_timeout
        self.env = dict(env) if env is not None else None
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[str] | None = None
        self._output: deque[str] = deque(maxlen=200)
        self._ready = threading.Event()
        self._reader: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> str:
        """Start the server and wait until it answers; returns its base URL."""
        if self.proc is not None:
            return self.url
        cmd = [
            sys.executable,
            "-m",
            "panacea_locust.reference_api",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--exit-with-parent",
            *self.args,
        ]
        env = dict(os.environ)
        env.update(self.env or {})
        env["PYTHONUNBUFFERED"] = "1"
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            preexec_fn=self.preexec_fn,  # the server stops with us itself (--exit-with-parent)
        )
        atexit.register(self.stop)
        self._reader = threading.Thread(target=self._read, name="reference-api-output", daemon=True)
        self._reader.start()
        deadline = time.monotonic() + self.startup_timeout
        try:
            while not self._ready.wait(0.05):
                if self.proc.poll() is not None:
                    self._fail(f"exited with code {self.proc.returncode} before serving")
                if time.monotonic() > deadline:
                    self._fail(f"did not report its URL within {self.startup_timeout:.0f} s")
            while True:
                try:
                    self._call("GET", "/__health", timeout=2.0)
                    break
                except (OSError, ReferenceAPIError):
                    if self.proc.poll() is not None:
                        self._fail(f"exited with code {self.proc.returncode} before serving")
                    if time.monotonic() > deadline:
                        self._fail(f"did not answer within {self.startup_timeout:.0f} s")
                    time.sleep(0.05)
        except BaseException:
            self.stop()
            raise
        return self.url

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self._output.append(line.rstrip("\n"))
            if not self._ready.is_set():
                m = _URL_RE.search(line)
                if m:
                    self.port = int(m.group(2))
                    self.url = f"{m.group(1)}:{self.port}"
                    self._ready.set()

    @property
    def output(self) -> list[str]:
        """The server's last lines of output (at most 200), oldest first."""
        return list(self._output)

    def _fail(self, what: str) -> None:
        tail = "\n".join(self.output[-20:]) or "(no output)"
        raise ReferenceAPIError(f"reference API {what}; last output:\n{tail}")

    def stop(self) -> None:
        """Terminate the server: SIGTERM, then SIGKILL once its drain time (``--shutdown-grace``,
        3 s by default) and 2 s more are over, 5 s at least. Safe to call twice."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        atexit.unregister(self.stop)
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(max(5.0, _shutdown_grace(self.args) + 2.0))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5.0)
        if self._reader is not None:
            self._reader.join(2.0)
        if proc.stdout is not None:
            proc.stdout.close()

    def __enter__(self) -> ReferenceAPIProcess:
        self.start()
        return self

    def __exit__(
        self,
        _exc_type: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- introspection ------------------------------------------------------------------------

    def _call(self, method: str, path: str, body: Any = None, timeout: float = 10.0) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with _OPENER.open(req, timeout=timeout) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")
            raise ReferenceAPIError(f"{method} {path}: HTTP {exc.code}: {detail}") from None

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
    ) -> tuple[int, Any]:
        """Send one request (``body`` as JSON, or raw ``bytes``); returns (status, parsed JSON
        body or None). Contract headers are not added: pass ``contract_headers()``."""
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.url + path, data=data, method=method, headers=dict(headers or {})
        )
        try:
            with _OPENER.open(req, timeout=timeout) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode("utf-8", "replace")

    def stats(self) -> dict[str, Any]:
        """``GET /__stats``."""
        result: dict[str, Any] = self._call("GET", "/__stats")
        return result

    def reset_stats(self) -> None:
        """``POST /__stats/reset``."""
        self._call("POST", "/__stats/reset")

    def configure(self, **changes: Any) -> dict[str, Any]:
        """``POST /__config`` with these keys (latency, latency_scale, error_rate, slow_rate,
        slow_ms, endpoints); returns the new configuration."""
        result: dict[str, Any] = self._call("POST", "/__config", changes)
        return result

    def config(self) -> dict[str, Any]:
        """``GET /__config``."""
        result: dict[str, Any] = self._call("GET", "/__config")
        return result
