"""Hostile input to the real reference server (a subprocess on 127.0.0.1): ids beyond 64 bits,
deep and huge bodies, bodies from clients without a token, idle sockets under a low descriptor
limit, and SIGTERM with slow responses in flight. Each case was measured against the server
before it was hardened; the test fails on that server."""

from __future__ import annotations

import contextlib
import http.client
import json
import resource
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from panacea_locust.reference_api.dataset import build_dataset
from panacea_locust.reference_api.launcher import ReferenceAPIProcess, contract_headers
from panacea_locust.reference_api.stats import Stats, stats_json

DS = build_dataset(seed=42)
B1 = DS.bundles[0].bundle_id
H = contract_headers("hostile")
BIG = 2**64  #: the id of the SRE's finding: one past the largest unsigned 64-bit integer
MIB = 1 << 20


@pytest.fixture(scope="module")
def api() -> Iterator[ReferenceAPIProcess]:
    with ReferenceAPIProcess(["--latency", "off"]) as proc:
        yield proc


def _stats_ok(api: ReferenceAPIProcess) -> dict[str, Any]:
    status, doc = api.request("GET", "/__stats")
    assert status == 200, doc
    assert isinstance(doc, dict)
    return doc


def _peak_rss_mb(api: ReferenceAPIProcess) -> float:
    """The server's peak resident memory so far (VmHWM), in MiB."""
    assert api.proc is not None
    with open(f"/proc/{api.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def _read_response(sock: socket.socket, timeout: float) -> tuple[int, dict[str, str], bytes]:
    """One HTTP response read from ``sock``: (status, lower-case headers, body)."""
    sock.settimeout(timeout)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a response: {buf!r}")
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body[:length]


def _head(method: str, path: str, headers: dict[str, str], extra: str = "") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()


# --- ids beyond 64 bits ------------------------------------------------------------------------

#: (method, path, body, field the 400 must name): every place an id or page number is read
HUGE_NUMBERS: list[tuple[str, str, Any, str]] = [
    ("GET", f"/api/v1/logs/info?bundle_id={BIG}", None, "query.bundle_id"),
    ("GET", f"/api/v1/logs/info?bundle_id={'9' * 5000}", None, "query.bundle_id"),
    ("GET", f"/api/v1/events?combo_id={BIG}", None, "query.combo_id"),
    ("GET", f"/api/v1/ai/report_summary?bundle_id={BIG}", None, "query.bundle_id"),
    ("GET", f"/api/v1/logs/filter-options?bundle_ids={B1}&bundle_ids={BIG}", None,
     "query.bundle_ids"),
    ("POST", "/api/v1/ai/ask-ai", {"bundle_id": BIG, "question": "why?"}, "body.bundle_id"),
    ("POST", "/api/v1/logs/severity-count", {"bundle_ids": [B1, BIG]}, "body.bundle_ids"),
    ("POST", "/api/v1/logs/search", {"bundle_ids": [B1], "page_size": 10, "page_no": BIG},
     "body.page_no"),
    ("POST", "/api/v1/reports", {"page_no": BIG, "page_size": 10}, "body.page_no"),
    ("POST", "/api/v1/reports", {"page_no": 1, "page_size": 10, "filters": {"bundle_ids": [BIG]}},
     "body.filters.bundle_ids"),
]  # fmt: skip


@pytest.mark.parametrize("case", HUGE_NUMBERS, ids=lambda c: c[3] + ":" + c[1].split("?")[0])
def test_numbers_beyond_64_bits_are_400_and_stats_keep_answering(
    api: ReferenceAPIProcess, case: tuple[str, str, Any, str]
) -> None:
    method, path, body, field = case
    status, doc = api.request(method, path, body, H)
    assert status == 400, doc
    assert set(doc) == {"detail"} and doc["detail"].startswith(field + ":"), doc
    stats = _stats_ok(api)
    assert all(i < 2**63 for s in stats["sessions"].values() for i in s["bundle_ids"])


def test_the_largest_signed_64_bit_id_is_an_ordinary_404(api: ReferenceAPIProcess) -> None:
    top = 2**63 - 1
    assert api.request("GET", f"/api/v1/logs/info?bundle_id={top}", None, H)[0] == 404
    body = {"bundle_id": top, "question": "why?"}
    assert api.request("POST", "/api/v1/ai/ask-ai", body, H)[0] == 404
    assert top in _stats_ok(api)["sessions"][H["X-Session-Id"]]["bundle_ids"]


def test_stats_answer_whatever_was_recorded() -> None:
    """Even values no JSON encoder of 64-bit integers takes, and unpaired surrogates, which
    orjson refuses: ``/__stats`` must answer 200 with valid JSON, never 500."""
    stats = Stats()
    session = stats.session(b"a" * 32, b"PanaceaLocust/1.0 User-x")
    assert session is not None
    session.add_bundles([2**70, 5])
    session.combo_ids.add(-(2**80))
    stats.violation("body.\ud800: unknown key")
    doc = json.loads(stats_json(stats.snapshot()))
    assert doc["sessions"]["a" * 32]["bundle_ids"] == [5, 2**70]
    assert doc["violations_total"] == 1


def test_hostile_keys_and_user_agents_stay_small_in_stats(api: ReferenceAPIProcess) -> None:
    """An unknown key is named in the 400 and counted by reason, but a megabyte-long key or
    thousands of different keys must not make ``/__stats`` (or the server) grow without end."""
    api.reset_stats()
    long_key = "k" * 200_000
    body = {"bundle_id": B1, "question": "q", long_key: 1}
    status, doc = api.request("POST", "/api/v1/ai/ask-ai", body, H)
    assert status == 400 and doc["detail"].startswith("body.kkkk") and len(doc["detail"]) < 300
    for n in range(300):
        body = {"bundle_id": B1, "question": "q", f"extra{n}": 1}
        assert api.request("POST", "/api/v1/ai/ask-ai", body, H)[0] == 400
    ua = {**H, "User-Agent": "PanaceaLocust/1.0 User-" + "u" * 30_000}
    assert api.request("GET", f"/api/v1/logs/info?bundle_id={B1}", None, ua)[0] == 200
    stats = _stats_ok(api)
    assert stats["violations_total"] == 301
    assert len(stats["violations"]) <= 101
    assert all(len(reason) <= 300 for reason in stats["violations"])
    assert all(len(u) <= 300 for s in stats["sessions"].values() for u in s["user_ids"])


# --- deep and huge bodies ----------------------------------------------------------------------


@pytest.mark.parametrize("depth", [100, 10_000, 400_000])
def test_deeply_nested_json_is_400(api: ReferenceAPIProcess, depth: int) -> None:
    body = b'{"bundle_id": 1, "question": "q", "x": ' + b"[" * depth + b"]" * depth + b"}"
    status, doc = api.request("POST", "/api/v1/ai/ask-ai", body, H)
    assert status == 400, doc
    assert doc["detail"] in ("body.x: unknown key", "body: JSON nested too deeply"), doc
    assert _stats_ok(api)


def _post_over_limit(port: int, path: str, body: bytes, headers: dict[str, str]) -> tuple:
    """POST a body the server refuses before reading it: it may answer and close while the
    body is still being sent (a broken pipe for the sender), so the answer is read whatever
    became of the sending."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        head = _head("POST", path, {**headers, "Content-Type": "application/json"},
                     f"Content-Length: {len(body)}\r\n")  # fmt: skip
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(head + body)
        status, _, raw = _read_response(sock, timeout=10)
    finally:
        sock.close()
    return status, json.loads(raw)


def test_a_body_over_the_limit_is_413_in_the_contract_shape(api: ReferenceAPIProcess) -> None:
    question = "q" * (MIB + 10)
    body = json.dumps({"bundle_id": B1, "question": question}).encode()
    status, doc = _post_over_limit(api.port, "/api/v1/ai/ask-ai", body, H)
    assert status == 413, doc
    assert doc == {"detail": f"body: larger than {MIB} bytes"}
    status, doc = _post_over_limit(
        api.port, "/__config", b'{"error_rate": 0' + b" " * MIB + b"}", {}
    )
    assert status == 413, doc
    assert set(doc) == {"detail"}
    # just under the limit is read and validated as usual
    fits = {"bundle_id": B1, "question": "q" * (MIB - 100)}
    status, doc = api.request("POST", "/api/v1/ai/ask-ai", fits, H)
    assert status == 400 and doc["detail"].startswith("body.question:"), doc


@contextlib.contextmanager
def _announced_body(
    port: int, headers: dict[str, str], length: int
) -> Iterator[tuple[socket.socket, Callable[[], int]]]:
    """A POST announcing ``length`` bytes of body, sent slowly only while the test waits:
    yields the socket and a function returning how many bytes the server took so far."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(_head("POST", "/api/v1/ai/ask-ai", headers, f"Content-Length: {length}\r\n"))
    sent = [0]
    stop = threading.Event()

    def feed() -> None:
        chunk = b" " * 65536
        with contextlib.suppress(OSError):
            while not stop.is_set() and sent[0] < length:
                sock.sendall(chunk)
                sent[0] += len(chunk)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        yield sock, lambda: sent[0]
    finally:
        stop.set()
        sock.close()
        feeder.join(10)


@pytest.mark.parametrize(
    ("headers", "status", "detail"),
    [
        (
            {k: v for k, v in H.items() if k != "Authorization"},
            401,
            "header Authorization: missing bearer token",
        ),
        (H, 413, f"body: larger than {MIB} bytes"),
    ],
    ids=["no-token", "over-the-limit"],
)
def test_refused_before_the_body_is_read(
    api: ReferenceAPIProcess, headers: dict[str, str], status: int, detail: str
) -> None:
    """200 MB announced: the answer comes at once, while most of the body is still unsent,
    and the connection is closed rather than drained."""
    with _announced_body(api.port, headers, 200 * MIB) as (sock, sent):
        got, response_headers, body = _read_response(sock, timeout=5)
        assert (got, json.loads(body)) == (status, {"detail": detail})
        assert response_headers.get("connection") == "close"
        assert sent() < 50 * MIB


def test_unauthenticated_huge_bodies_do_not_grow_the_server(api: ReferenceAPIProcess) -> None:
    """The SRE's case: four unauthenticated 200 MB bodies at once (1.1 GB peak before)."""
    before = _peak_rss_mb(api)
    headers = {k: v for k, v in H.items() if k != "Authorization"}
    with contextlib.ExitStack() as stack:
        socks = [
            stack.enter_context(_announced_body(api.port, headers, 200 * MIB)) for _ in range(4)
        ]
        for sock, _ in socks:
            assert _read_response(sock, timeout=10)[0] == 401
    assert _peak_rss_mb(api) - before < 50
    assert _stats_ok(api)["by_status"].get("401", 0) >= 4


def test_chunked_body_is_read_only_up_to_the_limit(api: ReferenceAPIProcess) -> None:
    """No Content-Length: the server reads chunks until the limit, then answers 413 and closes;
    a client sending for ever is cut off, and the server's memory stays flat."""
    before = _peak_rss_mb(api)
    sock = socket.create_connection(("127.0.0.1", api.port), timeout=10)
    sent = 0
    chunk = b"%x\r\n%s\r\n" % (65536, b" " * 65536)
    try:
        sock.sendall(_head("POST", "/api/v1/ai/ask-ai", H, "Transfer-Encoding: chunked\r\n"))
        with contextlib.suppress(OSError):
            while sent < 100 * MIB:
                sock.sendall(chunk)
                sent += 65536
        status, headers, body = _read_response(sock, timeout=5)
    finally:
        sock.close()
    assert (status, json.loads(body)) == (413, {"detail": f"body: larger than {MIB} bytes"})
    assert sent < 50 * MIB, "the server kept reading past its limit"
    assert _peak_rss_mb(api) - before < 50


def test_headers_over_64_kib_are_431_and_closed(api: ReferenceAPIProcess) -> None:
    """A header that never ends would be buffered whole by the HTTP parser: past 64 KiB of
    request line and headers the server answers 431 and closes, while the header is still
    arriving."""
    sock = socket.create_connection(("127.0.0.1", api.port), timeout=10)
    try:
        sock.sendall(_head("GET", f"/api/v1/logs/info?bundle_id={B1}", H).rstrip(b"\r\n") + b"\r\n")
        sock.sendall(b"X-Padding: ")
        sent = 0
        with contextlib.suppress(OSError):
            while sent < 10 * MIB:
                sock.sendall(b"p" * 65536)
                sent += 65536
        status, headers, body = _read_response(sock, timeout=5)
    finally:
        sock.close()
    assert status == 431 and headers.get("connection") == "close"
    assert json.loads(body) == {"detail": "headers: larger than 65536 bytes"}
    assert sent < 5 * MIB
    assert _stats_ok(api)


# --- connections -------------------------------------------------------------------------------


def _low_nofile(limit: int) -> Callable[[], None]:
    def lower() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    return lower


def test_idle_sockets_beyond_the_descriptor_limit_do_not_lock_clients_out() -> None:
    """RLIMIT_NOFILE 256 and 400 sockets that never send a byte (the SRE's 1,100 under
    1,024, scaled down): a fresh client still gets its answer at once, and the server never
    runs out of descriptors."""
    with ReferenceAPIProcess(["--latency", "off"], preexec_fn=_low_nofile(256)) as api:
        idle: list[socket.socket] = []
        try:
            for _ in range(400):
                idle.append(socket.create_connection(("127.0.0.1", api.port), timeout=5))
            time.sleep(0.5)
            for _ in range(3):
                conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=5)
                conn.request("GET", f"/api/v1/logs/info?bundle_id={B1}", headers=H)
                response = conn.getresponse()
                assert response.status == 200, response.read()
                conn.close()
            assert _stats_ok(api)["by_status"] == {"200": 3}
        finally:
            for s in idle:
                s.close()
        output = "\n".join(api.output)
        assert "Too many open files" not in output and "Traceback" not in output, output


def test_idle_connections_close_after_the_keep_alive_timeout() -> None:
    """Both a keep-alive connection after its answer and one that never sends anything are
    closed after ``--keep-alive-timeout`` seconds."""
    with ReferenceAPIProcess(["--latency", "off", "--keep-alive-timeout", "1"]) as api:
        silent = socket.create_connection(("127.0.0.1", api.port), timeout=5)
        used = socket.create_connection(("127.0.0.1", api.port), timeout=5)
        used.sendall(_head("GET", f"/api/v1/logs/info?bundle_id={B1}", H))
        assert _read_response(used, timeout=5)[0] == 200
        t0 = time.monotonic()
        for s in (silent, used):
            s.settimeout(5)
            assert s.recv(1) == b"", "the server kept an idle connection open"
        assert time.monotonic() - t0 < 4
        silent.close()
        used.close()


def test_connections_beyond_the_limit_are_refused_cleanly() -> None:
    """With every connection busy, one more gets a 503 in the contract's error shape and a
    closed connection, not a reset or a hang."""
    args = ["--max-connections", "4", "--fault", "info=latency:1500"]
    with ReferenceAPIProcess(args) as api:
        busy: list[socket.socket] = []
        try:
            for _ in range(4):
                s = socket.create_connection(("127.0.0.1", api.port), timeout=5)
                s.sendall(_head("GET", f"/api/v1/logs/info?bundle_id={B1}", H))
                busy.append(s)
            time.sleep(0.3)
            extra = socket.create_connection(("127.0.0.1", api.port), timeout=5)
            extra.sendall(_head("GET", f"/api/v1/logs/info?bundle_id={B1}", H))
            status, headers, body = _read_response(extra, timeout=2)
            assert status == 503 and headers.get("connection") == "close"
            assert json.loads(body) == {"detail": "server busy: all 4 connections in use"}
            extra.close()
        finally:
            for s in busy:
                s.close()


# --- shutdown ----------------------------------------------------------------------------------


def test_sigterm_drains_slow_requests_for_a_bounded_time() -> None:
    """A 30-second response in flight: SIGTERM ends the server within its drain time
    (``--shutdown-grace``, 3 s by default) plus start-up slack, answering the slow request 503."""
    with ReferenceAPIProcess(["--fault", "info=latency:30000"]) as api:
        assert api.proc is not None
        sock = socket.create_connection(("127.0.0.1", api.port), timeout=10)
        sock.sendall(_head("GET", f"/api/v1/logs/info?bundle_id={B1}", H))
        time.sleep(0.3)
        t0 = time.monotonic()
        api.proc.send_signal(signal.SIGTERM)
        try:
            api.proc.wait(8)
        except Exception:
            pytest.fail("the server still waits for its slow request 8 s after SIGTERM")
        took = time.monotonic() - t0
        status, _, body = _read_response(sock, timeout=1)
        sock.close()
        assert 2.5 < took < 6, took
        assert (status, json.loads(body)) == (503, {"detail": "server shutting down"})
        assert api.proc.returncode in (0, -signal.SIGTERM)  # uvicorn re-raises the signal
        assert "Traceback" not in "\n".join(api.output)
