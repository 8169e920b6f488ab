"""Secrets (``PANACEA_AUTH_TOKEN``, ``CLICKHOUSE_PASSWORD``) reach no output.

The finding: a token with a trailing newline was refused by the HTTP client with an exception
quoting it, and so was written into ``locust_exceptions.csv``, ``report.html`` and 12 console
lines. Two defences: the settings refuse a secret that is not printable ASCII without
whitespace (``test_config.py``, and ``test_a_bad_token_stops_locust_with_one_line_...`` here),
and every secret value is scrubbed from log records and from the failure and exception lists
Locust's CSV files, HTML report, web UI and ``summary.json`` are made of
(``panacea_locust/secrets.py``).

The end-to-end test plants secrets where a real run meets them (a target that echoes the token
into a header the failure reason quotes, a header a library refuses with the value in its
message, a driver error quoting a password) and greps every file of a real ``locust -f ...
--headless --csv ... --html ...`` run, and its output, for them.
"""

from __future__ import annotations

import io
import logging
import secrets
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import pytest
from conftest import ROOT, clean_env, run_dirs
from faults.fault_server import FaultServer
from test_layers import modules_after_importing

from panacea_locust.config import load_settings
from panacea_locust.secrets import MASK, Scrubber, install, install_logging, secret_values

if TYPE_CHECKING:  # the fixture imports Locust when it runs
    from panacea_locust.event_handlers import PanaceaRun


# --- the scrubber ----------------------------------------------------------------------------
def test_every_spelling_of_a_secret_is_masked() -> None:
    secret = "Tok\\'\"<&>/+=" + secrets.token_hex(6)
    scrub = Scrubber([secret]).scrub
    spellings = [
        secret,
        repr(secret)[1:-1],  # as an exception's repr quotes it
        secret.replace("\\", "\\\\").replace('"', '\\"'),  # JSON
        secret.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"),  # HTML
        quote(secret, safe=""),  # a URL
        secret.lower(),  # a host name, lowercased
        secret.upper(),
    ]
    for spelling in spellings:
        text = f"before {spelling} after"
        assert scrub(text) == f"before {MASK} after", spelling
    plain = "nothing to hide here"
    assert scrub(plain) is plain


def test_an_empty_scrubber_changes_nothing() -> None:
    scrubber = Scrubber([""])
    assert scrubber.scrub("x") == "x" and not scrubber.found("x")


def test_the_secrets_are_those_of_the_settings() -> None:
    assert secret_values(load_settings()) == ()
    both = load_settings({"PANACEA_AUTH_TOKEN": "tok-1", "CLICKHOUSE_PASSWORD": "pw-2"})
    assert sorted(secret_values(both)) == ["pw-2", "tok-1"]


def test_the_secrets_module_is_pure() -> None:
    loaded = modules_after_importing("panacea_locust.secrets")
    assert [m for m in loaded if m.split(".")[0] in ("locust", "gevent")] == []


# --- log records -----------------------------------------------------------------------------
@pytest.fixture
def restored_logging() -> Iterator[None]:
    """The process's record factory and root handlers as they were, after the test."""
    factory = logging.getLogRecordFactory()
    root = logging.getLogger()
    handlers = list(root.handlers)
    filters = {handler: list(handler.filters) for handler in handlers}
    try:
        yield
    finally:
        logging.setLogRecordFactory(factory)
        root.handlers[:] = handlers
        for handler, kept in filters.items():
            handler.filters[:] = kept


@pytest.fixture
def scrubbed_logging(restored_logging: None) -> Scrubber:
    return Scrubber(["s3cret-" + secrets.token_hex(6)])


def test_log_records_are_scrubbed_on_any_handler_even_one_added_later(
    scrubbed_logging: Scrubber,
) -> None:
    """Locust configures its logging (new handlers) after the locustfile was imported, where
    ``install_logging`` ran: records are scrubbed where they are made, whatever handler."""
    secret = scrubbed_logging.secrets[0]
    install_logging(scrubbed_logging)
    install_logging(scrubbed_logging)  # idempotent
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)  # added after: no filter of its own
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    logging.getLogger().addHandler(handler)
    log = logging.getLogger("locust.runners")
    log.warning("header %s refused", f"Bearer {secret}")
    log.warning(f"plain {secret!r}")
    try:
        raise ValueError(f"invalid value for header field 'Authorization': 'Bearer {secret}\\n'")
    except ValueError as err:
        log.exception("task failed")
        log.error("%s\n%s", err, traceback.format_exc())
    log.warning("stack", stack_info=True)
    logging.getLogger("panacea_locust").warning("nothing secret %d", 1)
    out = stream.getvalue()
    assert secret not in out
    assert out.count(MASK) >= 5, out
    assert "nothing secret 1" in out and "ValueError" in out


def test_the_filter_on_locusts_handlers_scrubs_records_made_elsewhere(
    scrubbed_logging: Scrubber,
) -> None:
    """A record that bypasses the factory (``makeLogRecord``, as from another process)."""
    secret = scrubbed_logging.secrets[0]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logging.getLogger().addHandler(handler)
    install_logging(scrubbed_logging)
    handler.handle(logging.makeLogRecord({"msg": "got %s", "args": (secret,)}))
    assert secret not in stream.getvalue() and MASK in stream.getvalue()


# --- Locust's failure and exception lists ----------------------------------------------------
def test_locusts_failure_and_exception_lists_are_scrubbed_at_the_source(
    new_run: Callable[..., PanaceaRun], restored_logging: None
) -> None:
    from locust.exception import CatchResponseError

    token = "tok-" + secrets.token_hex(6)
    run = new_run()
    env = run.environment
    scrubber = Scrubber()
    install(env, load_settings({"PANACEA_AUTH_TOKEN": token}), scrubber)
    fire = env.events.request.fire
    leak = CatchResponseError(f"unknown Content-Encoding 'Bearer {token}'")
    for _ in range(2):
        fire(request_type="GET", name="/a", response_time=1, response_length=0, exception=leak)
    fire(request_type="GET", name="/a", response_time=1, response_length=0,
         exception=CatchResponseError("HTTP 503"))  # fmt: skip
    errors = list(env.stats.errors.values())
    assert sorted(e.occurrences for e in errors) == [1, 2]
    assert env.stats.total.num_failures == 3
    for error in errors:
        assert token not in repr(error.error) and token not in error.to_name()
    plain = next(e for e in errors if e.occurrences == 1)
    assert isinstance(plain.error, CatchResponseError)  # untouched: no secret in it
    assert plain.to_name() == "GET /a: HTTP 503"
    assert f"Bearer {MASK}" in next(e for e in errors if e.occurrences == 2).to_name()

    sent: list[str] = []  # what a worker's listener sends its master: str(exception)
    env.events.user_error.add_listener(lambda exception, **_: sent.append(str(exception)))
    try:
        raise ConnectionError(f"clickhouse://default:{token}@127.0.0.1:9000 refused")
    except ConnectionError as err:
        env.events.user_error.fire(user_instance=None, exception=err, tb=err.__traceback__)
    assert sent == [f"clickhouse://default:{MASK}@127.0.0.1:9000 refused"]
    assert env.runner is not None
    env.runner.log_exception("worker-1", f"from a worker: {token}", "  File x\n")  # a master's
    messages = [row["msg"] for row in env.runner.exceptions.values()]
    assert len(messages) == 2 and all(token not in m and MASK in m for m in messages)


def test_without_secrets_nothing_is_wrapped(
    new_run: Callable[..., PanaceaRun], restored_logging: None
) -> None:
    """No cost on a run without secrets: Locust's own methods stay in place."""
    run = new_run()
    env = run.environment
    install(env, load_settings(), Scrubber())
    assert "log_error" not in vars(env.stats)
    assert "fire" not in vars(env.events.user_error)


# --- a real run ------------------------------------------------------------------------------
LEAKY_LOCUSTFILE = '''
"""The project's users, and one whose secrets reach exception messages."""
import os

from locust import constant, task

from panacea_locust.base_user import PanaceaAPIUser
from panacea_locust.locustfile import *  # noqa: F403


class LeakyUser(PanaceaAPIUser):
    weight = 1
    wait_time = constant(0.2)

    def on_start(self):
        super().on_start()
        # a line break past the settings check: the HTTP client refuses the header with a
        # ValueError quoting its value, as with a token read from a file with its newline
        self.client.client.default_headers["Authorization"] += "\\n"

    @task
    def info(self):
        self.call_endpoint("LOGS_INFO")

    @task
    def database(self):
        password = os.environ["CLICKHOUSE_PASSWORD"]  # a driver quoting its DSN
        raise ConnectionError(f"clickhouse://default:{password}@127.0.0.1:9000 refused")
'''


def _files(root: Path) -> list[Path]:
    return [p for p in sorted(root.rglob("*")) if p.is_file()]


@pytest.mark.e2e
@pytest.mark.faults
def test_no_secret_reaches_any_output_of_a_real_run(tmp_path: Path) -> None:
    token_mark, password_mark = secrets.token_hex(8), secrets.token_hex(8)
    # printable ASCII without whitespace, with characters that repr, JSON and HTML escape
    token = f"Tok\\'\"<&>{token_mark}"
    password = f"pw-{password_mark}"
    locustfile = tmp_path / "leaky_locustfile.py"
    locustfile.write_text(LEAKY_LOCUSTFILE)
    out = tmp_path / "out"
    with FaultServer(lifetime=60.0) as server:
        cmd = [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless",
               "--host", server.url_for("echo-secret"), "-u", "2", "-r", "2", "-t", "3s",
               "--csv", str(out / "locust"), "--html", str(out / "report.html"),
               "--results-dir", str(out / "results")]  # fmt: skip
        env = clean_env(PANACEA_AUTH_TOKEN=token, CLICKHOUSE_PASSWORD=password,
                        HEAVY_USER_WEIGHT="1", LIGHT_USER_WEIGHT="0",
                        HEAVY_WAIT_MIN="0.1", HEAVY_WAIT_MAX="0.2")  # fmt: skip
        done = subprocess.run(
            cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=90
        )
        received = list(server.received)
    # the plants were met: the target got the token and echoed it
    assert any(token in r.headers.get("authorization", "") for r in received), done.stderr[-2000:]
    files = [p for p in _files(out)]
    names = {p.name for p in files}
    assert {"locust_stats.csv", "locust_failures.csv", "locust_exceptions.csv",
            "report.html"} <= names, (names, done.stderr[-3000:])  # fmt: skip
    assert run_dirs(out / "results"), done.stderr[-3000:]
    assert {"summary.json", "summary.md"} <= names
    failures = (out / "locust_failures.csv").read_text()
    exceptions = (out / "locust_exceptions.csv").read_text()
    assert "unknown Content-Encoding" in failures and MASK in failures, failures
    assert "invalid value for header field" in exceptions, exceptions
    assert "9000 refused" in exceptions and MASK in exceptions, exceptions
    # ... and no output holds any of either secret
    outputs = {str(p.relative_to(tmp_path)): p.read_bytes() for p in files}
    outputs["stdout"], outputs["stderr"] = done.stdout.encode(), done.stderr.encode()
    leaks = [
        name
        for name, data in outputs.items()
        for mark in (token_mark, password_mark)
        if mark.encode() in data.lower()
    ]
    assert leaks == []
    assert len(outputs) >= 12  # CSVs, report.html, the results folder's files, the output


@pytest.mark.e2e
def test_a_bad_token_stops_locust_with_one_line_that_never_shows_it(tmp_path: Path) -> None:
    value = "Sekr1t-" + secrets.token_hex(8) + "\n"
    with FaultServer(lifetime=30.0) as server:
        done = subprocess.run(
            [sys.executable, "-m", "locust", "-f", str(ROOT / "locustfile.py"), "--headless",
             "--host", server.url_for("ok"), "-u", "1", "-t", "2s"],
            cwd=tmp_path, env=clean_env(PANACEA_AUTH_TOKEN=value), capture_output=True,
            text=True, timeout=60,
        )  # fmt: skip
        assert server.received == []  # not one request
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "PANACEA_AUTH_TOKEN" in lines[0], done.stderr
    output = done.stdout + done.stderr
    assert not [value[i : i + 6] for i in range(len(value) - 6) if value[i : i + 6] in output]
