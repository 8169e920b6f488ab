"""A real Locust user against a target that misbehaves: every fault ends as a counted request
with the right reason, within ``REQUEST_TIMEOUT``, and without holding a huge body.

Most tests drive ``PanaceaAPIUser._make_request`` in-process, on an ``Environment`` built as
Locust's ``init`` builds it (``new_run``), against the fault server in this process; Locust's
own statistics say what was counted and the server says what it saw. The end-to-end ones run
a real headless ``locust -f locustfile.py`` process: against an endless body and a target that
never answers, and against huge bodies, for the memory they take (the process's resident set,
from ``/proc``).
"""

from __future__ import annotations

import contextlib
import gzip
import json
import subprocess
import sys
import time
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import brotli
import gevent
import pytest
from conftest import clean_env, run_dirs

from panacea_locust.base_user import PanaceaAPIUser
from panacea_locust.contract import ENDPOINTS, ENDPOINTS_BY_KEY
from panacea_locust.payload_generator import RequestSpec

from .conftest import TIMEOUT, MakeUser
from .fault_server import FaultServer, ModeCounts

pytestmark = pytest.mark.faults

SLACK = 1.5  #: seconds a request may take beyond its deadline on a loaded test machine
INFO = ENDPOINTS_BY_KEY["LOGS_INFO"].path  # a GET
SEARCH = ENDPOINTS_BY_KEY["LOGS_SEARCH"].path  # a POST
GET_INFO = RequestSpec("GET", f"{INFO}?bundle_id=801", INFO)
POST_SEARCH = RequestSpec("POST", SEARCH, SEARCH, {"bundle_id": 801, "query": "error"})


# --- helpers ---------------------------------------------------------------------------------


def send(user: PanaceaAPIUser, spec: RequestSpec, limit: float = TIMEOUT + SLACK) -> float:
    """Send ``spec`` from a greenlet of its own, as Locust does; the seconds it took. Fails the
    test if the request is still running after ``limit`` seconds."""
    start = time.monotonic()
    greenlet = gevent.spawn(user._make_request, spec)
    greenlet.join(timeout=limit)
    elapsed = time.monotonic() - start
    if not greenlet.ready():
        greenlet.kill()
        pytest.fail(f"{spec.method} {spec.url}: still running after {limit} s")
    greenlet.get()  # an exception in the request is the test's
    return elapsed


def reasons(user: PanaceaAPIUser) -> Counter[str]:
    """Failure reasons in Locust's statistics, as the results show them."""
    out: Counter[str] = Counter()
    for error in user.environment.stats.errors.values():
        text = str(error.error)
        if text.startswith("CatchResponseError("):
            text = text[len("CatchResponseError(") :].rstrip(")").strip("'\"")
        out[text] += error.occurrences
    return out


def counted(user: PanaceaAPIUser, spec: RequestSpec) -> tuple[int, int]:
    entry = user.environment.stats.get(spec.name, spec.method)
    return entry.num_requests, entry.num_failures


def settled(server: FaultServer, mode: str) -> ModeCounts:
    """The server's counts once every request it started has completed or been aborted."""
    return server.wait_for(mode, lambda c: c.completed + c.aborted >= c.started, timeout=5.0)


# --- the baseline ----------------------------------------------------------------------------
def test_the_fault_servers_ok_answer_passes_every_endpoints_check(
    user_for: MakeUser, fault_server: FaultServer
) -> None:
    user = user_for("ok")
    for endpoint in ENDPOINTS:
        user.call_endpoint(endpoint.key)
    total = user.environment.stats.total
    assert (total.num_requests, total.num_failures) == (len(ENDPOINTS), 0), reasons(user)
    assert fault_server.counts("ok") == ModeCounts(len(ENDPOINTS), len(ENDPOINTS), 0)


# --- no answer, or no end to it: the request deadline ----------------------------------------
@pytest.mark.parametrize("spec", [GET_INFO, POST_SEARCH], ids=["GET", "POST"])
def test_a_target_that_never_answers_fails_as_timeout_after_request_timeout(
    user_for: MakeUser, fault_server: FaultServer, spec: RequestSpec
) -> None:
    user = user_for("hang")
    elapsed = send(user, spec)
    assert TIMEOUT * 0.9 <= elapsed <= TIMEOUT + SLACK
    assert counted(user, spec) == (1, 1)
    assert reasons(user) == {"timeout": 1}
    entry = user.environment.stats.get(spec.name, spec.method)
    assert entry.max_response_time >= TIMEOUT * 900  # counted with the time it took
    # the user gave the connection up: the server sees its end of it close
    counts = settled(fault_server, "hang")
    assert (counts.started, counts.aborted) == (1, 1), counts


def test_an_endless_body_fails_as_timeout_and_the_connection_is_dropped(
    user_for: MakeUser, fault_server: FaultServer
) -> None:
    user = user_for("trickle")
    elapsed = send(user, GET_INFO)
    assert TIMEOUT * 0.9 <= elapsed <= TIMEOUT + SLACK
    assert counted(user, GET_INFO) == (1, 1)
    assert reasons(user) == {"timeout": 1}
    entry = user.environment.stats.get(INFO, "GET")
    assert entry.max_response_time >= TIMEOUT * 900  # the body's time is the request's
    counts = settled(fault_server, "trickle")
    assert (counts.started, counts.aborted) == (1, 1), counts  # the trickle was cut off


def test_every_request_gets_the_whole_request_timeout(
    user_for: MakeUser, fault_server: FaultServer
) -> None:
    """Answers in 0.6 s, deadline 1 s: each passes. (A ``gevent.Timeout`` restarted for each
    request kept only what the last one had left: the second request would time out.)"""
    fault_server.slow_seconds = 0.6
    user = user_for("slow")
    for _ in range(3):
        send(user, GET_INFO)
    assert counted(user, GET_INFO) == (3, 0), reasons(user)


def test_every_nth_request_hanging_costs_one_timeout_each(
    user_for: MakeUser, fault_server: FaultServer
) -> None:
    fault_server.hang_every = 3
    user = user_for("hang-every-n")
    for _ in range(6):  # the 3rd and the 6th hang; the connection after each is a new one
        send(user, GET_INFO)
    assert counted(user, GET_INFO) == (6, 2)
    assert reasons(user) == {"timeout": 2}
    counts = settled(fault_server, "hang-every-n")
    assert counts == ModeCounts(started=6, completed=4, aborted=2)


# --- the connection ends too early -----------------------------------------------------------
def test_a_body_shorter_than_its_content_length_is_a_connection_error(
    user_for: MakeUser, fault_server: FaultServer
) -> None:
    """The 100 bytes sent are the documented JSON: read to the close, it would pass."""
    user = user_for("truncate")
    send(user, GET_INFO)
    assert counted(user, GET_INFO) == (1, 1)
    ((reason, n),) = reasons(user).items()
    assert reason.startswith("connection error (") and n == 1, reason


@pytest.mark.parametrize("spec", [GET_INFO, POST_SEARCH], ids=["GET", "POST"])
def test_a_connection_closed_mid_body_is_a_connection_error_not_a_bad_body(
    user_for: MakeUser, spec: RequestSpec
) -> None:
    user = user_for("close-mid-body")
    send(user, spec)
    assert counted(user, spec) == (1, 1)
    ((reason, _),) = reasons(user).items()
    assert reason.startswith("connection error ("), reason


@pytest.mark.parametrize("spec", [GET_INFO, POST_SEARCH], ids=["GET", "POST"])
def test_a_reset_is_a_connection_error_and_not_resent(
    user_for: MakeUser, fault_server: FaultServer, spec: RequestSpec
) -> None:
    """geventhttpclient resends a GET whose connection closed before the answer once per pool
    slot plus one: with Locust's ten-slot pool, eleven sends per request to a server that
    resets, and with one slot per user, two; the target then received more requests than
    the results counted. A connection opened for the request and closed without an answer is
    the target's answer, whatever the method: sent once, one failure."""
    user = user_for("reset")
    for _ in range(2):
        send(user, spec)
    assert counted(user, spec) == (2, 2)
    ((reason, _),) = reasons(user).items()
    assert reason.startswith("connection error ("), reason
    assert fault_server.counts("reset").started == 2
    assert user.run_context.tally.stale_resends == 0


# --- too much of it --------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["huge", "huge-chunked"])
def test_a_huge_body_fails_as_body_too_large_without_reading_it_all(
    user_for: MakeUser, fault_server: FaultServer, mode: str
) -> None:
    user = user_for(mode, MAX_RESPONSE_BYTES=1_048_576)  # 1 MB of the 50 MB
    send(user, GET_INFO, limit=10)
    assert counted(user, GET_INFO) == (1, 1)
    assert reasons(user) == {"body too large": 1}
    counts = settled(fault_server, mode)
    assert (counts.started, counts.completed, counts.aborted) == (1, 0, 1), counts


@pytest.mark.parametrize("mode", ["huge", "huge-chunked"])
def test_a_body_of_exactly_max_response_bytes_passes_and_one_more_byte_fails(
    user_for: MakeUser, fault_server: FaultServer, mode: str
) -> None:
    user = user_for(mode, MAX_RESPONSE_BYTES=1024)
    fault_server.huge_bytes = 1024
    send(user, GET_INFO)
    assert counted(user, GET_INFO) == (1, 0), reasons(user)
    fault_server.huge_bytes = 1025
    send(user, GET_INFO)
    assert counted(user, GET_INFO) == (2, 1)
    assert reasons(user) == {"body too large": 1}


def test_a_compressed_body_is_decoded_and_its_decoded_size_bounded(
    user_for: MakeUser, fault_server: FaultServer
) -> None:
    user = user_for("gzip", MAX_RESPONSE_BYTES=1_048_576)
    send(user, GET_INFO)
    assert counted(user, GET_INFO) == (1, 0), reasons(user)
    user = user_for("gzip-bomb", MAX_RESPONSE_BYTES=1_048_576)  # 8 KB on the wire, 8 MB inside
    send(user, GET_INFO)
    assert counted(user, GET_INFO) == (1, 1)
    assert reasons(user) == {"body too large": 1}


def test_decode_body_reads_every_encoding_within_the_limit() -> None:
    from panacea_locust.base_user import decode_body

    body = json.dumps({"bundle_id": 1, "pad": "x" * 5000}).encode()
    deflated = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    raw_deflate = deflated.compress(body) + deflated.flush()
    encoded = {
        "identity": body,
        "gzip": gzip.compress(body),
        "x-gzip": gzip.compress(body),
        "deflate": zlib.compress(body),  # the zlib format, as most servers send it
        "DEFLATE": raw_deflate,  # the raw format, as some do
        "br": brotli.compress(body),
    }
    for encoding, data in encoded.items():
        assert decode_body(data, encoding, len(body)) == body, encoding
        assert decode_body(bytearray(data), encoding, len(body)) == body, encoding  # streamed
        assert decode_body(data, encoding, len(body) - 1) is None, encoding  # too large
    with pytest.raises(ValueError, match="Content-Encoding"):
        decode_body(body, "compress", 10_000)
    with pytest.raises(ValueError, match="gzip"):
        decode_body(b"not gzip at all", "gzip", 10_000)


# --- answers that are not the documented JSON keep their reasons -----------------------------
@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("5xx", "HTTP 503"),
        ("429", "HTTP 429 (rate limited)"),
        ("html-200", "HTTP 200 with a body that is not JSON"),
    ],
)
def test_error_answers_fail_with_their_reason(
    user_for: MakeUser, fault_server: FaultServer, mode: str, reason: str
) -> None:
    user = user_for(mode)
    for _ in range(3):  # on one kept-alive connection
        send(user, GET_INFO)
    assert counted(user, GET_INFO) == (3, 3)
    assert reasons(user) == {reason: 3}
    assert fault_server.counts(mode) == ModeCounts(3, 3, 0)


# --- end to end: a real Locust process -------------------------------------------------------
LOCUSTFILE = Path(__file__).resolve().parents[2] / "locustfile.py"
FAST = {"HEAVY_WAIT_MIN": "0", "HEAVY_WAIT_MAX": "0.1", "LIGHT_WAIT_MIN": "0",
        "LIGHT_WAIT_MAX": "0.1"}  # fmt: skip


def _locust(host: str, users: int, seconds: int, cwd: Path, **env: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", host,
           "-u", str(users), "-r", str(users), "-t", f"{seconds}s"]  # fmt: skip
    return subprocess.Popen(
        cmd, cwd=cwd, env=clean_env(**FAST, **env), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def _finish(proc: subprocess.Popen[str]) -> str:
    """Wait for the run's end (a bounded wait; killed past it); its standard error."""
    try:
        return proc.communicate(timeout=60)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _summary(cwd: Path, stderr: str) -> dict[str, Any]:
    dirs = run_dirs(cwd / "results")
    assert dirs, stderr[-3000:]
    return json.loads((dirs[-1] / "summary.json").read_text())


def _failures_by_reason(summary: dict[str, Any]) -> Counter[str]:
    out: Counter[str] = Counter()
    for block in summary["endpoints"].values():
        out.update(block["failures_by_reason"])
    return out


@pytest.mark.e2e
@pytest.mark.parametrize("mode", ["trickle", "hang"])
def test_a_locust_run_counts_an_endless_body_or_no_answer_as_timeouts(
    fault_server: FaultServer, tmp_path: Path, mode: str
) -> None:
    """The finding: 0 requests counted and exit 0 while a body trickled for the whole run."""
    proc = _locust(fault_server.url_for(mode), 2, 5, tmp_path, REQUEST_TIMEOUT="1")
    err = _finish(proc)
    summary = _summary(tmp_path, err)
    total = summary["total"]
    assert total["requests"] >= 2, total  # two users, about one a second each (fewer if slow)
    assert total["failures"] == total["requests"]
    assert total["failures_by_reason"] == {"timeout": total["requests"]}
    assert set(_failures_by_reason(summary)) == {"timeout"}
    assert 900 <= total["failed_ms"]["max_ms"] <= (1 + SLACK) * 1000  # each took the deadline
    assert proc.returncode != 0, "a run whose every request failed must not exit 0"


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


@pytest.mark.e2e
@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("mode", ["huge", "huge-chunked"])
def test_a_huge_body_does_not_balloon_the_users_memory(
    fault_server: FaultServer, tmp_path: Path, mode: str
) -> None:
    """50 MB answers, the default MAX_RESPONSE_BYTES (16 MB): the process's peak resident set
    grows less than 40 MB over what it was when the first request went out."""
    proc = _locust(fault_server.url_for(mode), 1, 4, tmp_path)
    base_kb: int | None = None
    peak_kb = 0
    give_up = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < give_up:
        try:
            if base_kb is not None:  # VmHWM only grows: the last reading is the peak
                peak_kb = max(peak_kb, _status_kb(proc.pid, "VmHWM"))
            elif fault_server.counts(mode).started:  # the first request has gone out
                rss = _status_kb(proc.pid, "VmRSS")
                # peak := now; where that is not allowed, the peak counts from the start: stricter
                with contextlib.suppress(PermissionError):
                    Path(f"/proc/{proc.pid}/clear_refs").write_text("5")
                base_kb = peak_kb = rss
        except (OSError, KeyError):  # the process has just ended
            break
        time.sleep(0.02)
    err = _finish(proc)
    assert base_kb is not None, f"no request seen while the process ran: {err[-2000:]}"
    growth_mb = (peak_kb - base_kb) / 1024
    assert growth_mb < 40, f"peak RSS grew by {growth_mb:.0f} MB"
    summary = _summary(tmp_path, err)
    assert summary["total"]["requests"] >= 1
    assert set(_failures_by_reason(summary)) == {"body too large"}
