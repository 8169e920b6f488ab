"""A real, throwaway ClickHouse server on loopback for the database tests (a pytest plugin).

Register it once in the top-level conftest: ``pytest_plugins = ["tests.clickhouse_fixture"]``
(or ``["clickhouse_fixture"]`` from ``tests/conftest.py``). It provides:

- ``clickhouse_server`` (session): starts ``clickhouse-server`` on 127.0.0.1 with free ports, a
  temporary data directory and a password-protected user ``panacea_test``; yields a
  :class:`ClickHouseInfo`; stops the server (whole process group) at the end, also when tests
  fail. Without a server binary the tests skip with the reason, unless ``CI=true`` or
  ``PANACEA_REQUIRE_CLICKHOUSE=1``: then they fail, so CI never skips them silently.
- ``clickhouse_db`` (function): a fresh, uniquely named database on that server, dropped after
  the test; yields a :class:`ClickHouseInfo` naming it.

Works with ClickHouse 18.16 (Debian) and later releases (``<yandex>`` root is still read).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest

TEST_USER = "panacea_test"
START_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class ClickHouseInfo:
    """How to reach the test server (loopback only)."""

    host: str
    port: int
    http_port: int
    user: str
    password: str
    database: str

    def env(self) -> dict[str, str]:
        """The CLICKHOUSE_* variables that point the framework at this server."""
        return {
            "CLICKHOUSE_HOST": self.host,
            "CLICKHOUSE_PORT": str(self.port),
            "CLICKHOUSE_DATABASE": self.database,
            "CLICKHOUSE_USER": self.user,
            "CLICKHOUSE_PASSWORD": self.password,
        }

    def overrides(self, **extra: Any) -> dict[str, Any]:
        """Settings overrides (for ``load_settings``) pointing at this server."""
        base: dict[str, Any] = {k: v for k, v in self.env().items()}
        base.update({"USE_DATABASE_DATA": True, "CLICKHOUSE_CONNECT_TIMEOUT": 2,
                     "CLICKHOUSE_QUERY_TIMEOUT": 10})  # fmt: skip
        base.update({k.upper(): v for k, v in extra.items()})
        return base

    def client(self, database: str | None = None) -> Any:
        from clickhouse_driver import Client

        return Client(self.host, port=self.port, user=self.user, password=self.password,
                      database=self.database if database is None else database,
                      connect_timeout=2, send_receive_timeout=20)  # fmt: skip


def find_server_command() -> list[str] | None:
    """The command that runs a ClickHouse server here, or None when none is installed."""
    for candidate in (shutil.which("clickhouse-server"), "/usr/sbin/clickhouse-server",
                      "/usr/bin/clickhouse-server"):  # fmt: skip
        if candidate and os.access(candidate, os.X_OK):
            return [candidate]
    single = shutil.which("clickhouse") or (
        "/usr/bin/clickhouse" if os.access("/usr/bin/clickhouse", os.X_OK) else None
    )
    return [single, "server"] if single else None


def clickhouse_required() -> bool:
    """CI (or an explicit request) must run the database tests, never skip them."""
    return (
        os.environ.get("CI", "").lower() in ("1", "true", "yes")
        or os.environ.get("PANACEA_REQUIRE_CLICKHOUSE", "") == "1"
    )


def free_port() -> int:
    """A loopback port nothing listens on (at this moment)."""
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports (all held open together while choosing)."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


_CONFIG = """<?xml version="1.0"?>
<yandex>
    <logger>
        <level>warning</level>
        <log>{root}/log/server.log</log>
        <errorlog>{root}/log/server.err.log</errorlog>
        <size>10M</size>
        <count>1</count>
        <console>0</console>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>{tcp_port}</tcp_port>
    <http_port>{http_port}</http_port>
    <interserver_http_port>{interserver_port}</interserver_http_port>
    <interserver_http_host>127.0.0.1</interserver_http_host>
    <path>{root}/data/</path>
    <tmp_path>{root}/tmp/</tmp_path>
    <user_files_path>{root}/user_files/</user_files_path>
    <format_schema_path>{root}/format_schemas/</format_schema_path>
    <users_config>{root}/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mark_cache_size>67108864</mark_cache_size>
    <uncompressed_cache_size>67108864</uncompressed_cache_size>
    <max_connections>256</max_connections>
    <max_concurrent_queries>64</max_concurrent_queries>
    <keep_alive_timeout>3</keep_alive_timeout>
    <mlock_executable>false</mlock_executable>
</yandex>
"""

_USERS = """<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <max_memory_usage>2000000000</max_memory_usage>
        </default>
    </profiles>
    <users>
        <default>
            <password>{admin_password}</password>
            <networks><ip>127.0.0.1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
        <{user}>
            <password>{password}</password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </{user}>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
"""


class ClickHouseTestServer:
    """One clickhouse-server process with its own config and data under a temp directory."""

    def __init__(self, command: list[str], *, password: str | None = None) -> None:
        self.command = command
        self.root = Path(tempfile.mkdtemp(prefix="panacea-clickhouse-"))
        # a quote and a backslash in the password: credentials must survive any quoting
        self.password = password or f"pw'{uuid.uuid4().hex[:12]}\\x"
        self.process: subprocess.Popen[bytes] | None = None
        self.info: ClickHouseInfo | None = None

    def start(self, attempts: int = 3) -> ClickHouseInfo:
        """Start the server and wait until it answers; retries on fresh ports (a port chosen
        free may be taken by another process before the server binds it)."""
        for attempt in range(1, attempts + 1):
            try:
                return self._start_once()
            except RuntimeError:
                tail = self.log_tail()
                self.stop()
                if attempt == attempts:
                    raise
                self.root = Path(tempfile.mkdtemp(prefix="panacea-clickhouse-"))
                print(f"clickhouse-server start {attempt} failed, retrying:\n{tail}")
        raise AssertionError("unreachable")

    def _start_once(self) -> ClickHouseInfo:
        tcp_port, http_port, interserver_port = free_ports(3)
        for sub in ("data", "tmp", "user_files", "format_schemas", "log"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        config = self.root / "config.xml"
        config.write_text(
            _CONFIG.format(
                root=self.root,
                tcp_port=tcp_port,
                http_port=http_port,
                interserver_port=interserver_port,
            )
        )
        (self.root / "users.xml").write_text(_USERS.format(
            user=TEST_USER, password=escape(self.password),
            admin_password=uuid.uuid4().hex,  # nobody uses 'default': it is locked away
        ))  # fmt: skip
        out = (self.root / "log" / "stdout.log").open("wb")
        self.process = subprocess.Popen(
            [*self.command, f"--config-file={config}"],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.root,
            start_new_session=True,  # its own process group: stop() kills all of it
        )
        out.close()
        atexit.register(self.stop)  # also if pytest is interrupted before the finaliser
        self.info = ClickHouseInfo("127.0.0.1", tcp_port, http_port, TEST_USER, self.password,
                                   "default")  # fmt: skip
        self._wait_ready()
        return self.info

    def _wait_ready(self) -> None:
        assert self.process is not None and self.info is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        last: Exception | None = None
        # the driver logs a traceback per refused connect: expected while the server starts
        logging.getLogger("clickhouse_driver.connection").setLevel(logging.CRITICAL)
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"clickhouse-server exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                self.info.client().execute("SELECT 1")
                return
            except Exception as exc:  # not listening yet
                last = exc
                time.sleep(0.1)
        raise RuntimeError(f"clickhouse-server not ready in {START_TIMEOUT_S}s: {last}")

    def log_tail(self, lines: int = 20) -> str:
        text = []
        for name in ("stdout.log", "server.err.log"):
            path = self.root / "log" / name
            if path.exists():
                text += path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(text)

    def stop(self) -> None:
        """Stop the whole process group (TERM, then KILL) and remove the data directory."""
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        if proc is not None:
            atexit.unregister(self.stop)
        shutil.rmtree(self.root, ignore_errors=True)


def start_server_or_skip() -> ClickHouseTestServer:
    """A started server; skips (or fails, in CI) with the reason when none is installed."""
    command = find_server_command()
    if command is None:
        reason = ("clickhouse-server is not installed (scripts/install-clickhouse.sh installs it "
                  "as root): database tests skipped")  # fmt: skip
        if clickhouse_required():
            pytest.fail(f"{reason}, but CI=true or PANACEA_REQUIRE_CLICKHOUSE=1 requires them")
        pytest.skip(reason)
    server = ClickHouseTestServer(command)
    server.start()
    return server


@pytest.fixture(scope="session")
def clickhouse_server() -> Iterator[ClickHouseInfo]:
    """A real ClickHouse on loopback for the whole session (user panacea_test, a password)."""
    server = start_server_or_skip()
    assert server.info is not None
    try:
        yield server.info
    finally:
        server.stop()


@pytest.fixture()
def clickhouse_db(clickhouse_server: ClickHouseInfo) -> Iterator[ClickHouseInfo]:
    """A fresh database (not created yet: ``db init`` creates it), dropped after the test."""
    info = replace(clickhouse_server, database=f"panacea_t{uuid.uuid4().hex[:10]}")
    try:
        yield info
    finally:
        with contextlib.suppress(Exception):
            clickhouse_server.client().execute(f"DROP DATABASE IF EXISTS `{info.database}`")
