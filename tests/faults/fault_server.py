"""A small HTTP server that misbehaves on purpose, for the fault tests.

One threaded ``http.server`` on 127.0.0.1, on a port the OS picks. What it does is chosen per
request by the first segment of the path (``/trickle/api/v1/logs/info`` is answered in mode
``trickle``), so a Locust user pointed at ``server.url_for("trickle")`` meets that fault on
every endpoint; a path naming no mode gets ``server.default_mode``. The modes:

``ok``
    200 with a JSON object holding every documented response key of the endpoint the rest of
    the path names (``panacea_locust.contract.ENDPOINTS``; every endpoint's keys for a path that
    names none), so the user's response check passes.
``slow``
    ``ok``, after ``slow_seconds``.
``hang``
    reads the request and never answers (until the client goes away or the server stops).
``hang-every-n``
    every ``hang_every``-th request of this mode hangs; the others are ``ok``.
``trickle``
    200, chunked, one byte every ``trickle_interval`` seconds, forever.
``truncate``
    ``Content-Length: 1000``, 100 bytes of body, then the connection is closed. The 100 bytes
    are the ``ok`` body padded with spaces: valid JSON to a client that ignores the length.
``close-mid-body``
    200, chunked, the first half of the ``ok`` body, then the connection is closed (no last
    chunk).
``reset``
    reads the request, then closes with ``SO_LINGER`` 0: the client gets a TCP RST.
``idle-close``
    ``ok``, then the connection is kept until the client sends its next request on it, which
    is not read: the connection is closed under it (counted as ``closed_unread``). What a
    server's keep-alive timeout does when it fires just as a client reuses the connection:
    the request never reaches the application.
``huge`` / ``huge-chunked``
    200 with a ``huge_bytes`` (50 MB) JSON object that looks valid, streamed in blocks; with a
    ``Content-Length`` / chunked.
``gzip`` / ``gzip-bomb``
    the ``ok`` body gzip-compressed; 8 KB of gzip that inflates to 8 MB of valid-looking JSON.
``5xx`` / ``429`` / ``html-200``
    503 with a JSON body; 429 with ``Retry-After``; 200 with an HTML body.
``redirect-301`` / ``-302`` / ``-303`` / ``-307`` / ``-308``
    that status with ``Location: <redirect_to><rest of the path>``. ``redirect_to`` is the
    server's own ``url_for("ok")`` unless a test sets it: another ``FaultServer``'s URL (another
    origin: a different port on 127.0.0.1), a path (a relative ``Location``), or anything else.
``redirect-no-location``
    302 without a ``Location``.
``redirect-loop``
    302 to the very same URL, forever.
``echo-secret``
    a target that quotes what it was sent: 200 whose ``Content-Encoding`` and ``X-Echo`` headers
    and body repeat the request's ``Authorization`` header (a client that puts an unknown
    encoding into its failure message would print the token).

Every request is counted per mode (:class:`ModeCounts`): ``started`` when the request has been
read, ``completed`` when the mode's behaviour has been carried out in full (an answer sent, a
fault delivered), ``aborted`` when it was cut short: the client closed the connection (a write
failed, or a hung connection became readable at its end) or the server stopped. Every request
is also kept whole (:class:`Received`: method, path, headers, body), so a test can say what a
server was sent, or that it was sent nothing.

Every loop is bounded in time: by :meth:`FaultServer.stop` (which wakes hung handlers and
closes every open connection) and, should a test forget to stop it, by ``lifetime`` seconds.
Traffic is loopback only.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import io
import json
import re
import select
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from panacea_locust.contract import ENDPOINTS

MODES = (
    "ok",
    "slow",
    "hang",
    "hang-every-n",
    "trickle",
    "truncate",
    "close-mid-body",
    "reset",
    "idle-close",
    "huge",
    "huge-chunked",
    "gzip",
    "gzip-bomb",
    "5xx",
    "429",
    "html-200",
    "redirect-301",
    "redirect-302",
    "redirect-303",
    "redirect-307",
    "redirect-308",
    "redirect-no-location",
    "redirect-loop",
    "echo-secret",
)
HUGE_BYTES = 50 * 1024 * 1024
TRUNCATE_DECLARED, TRUNCATE_SENT = 1000, 100
STREAM_BLOCK = 64 * 1024
BOMB_BYTES = 8 * 1024 * 1024


def _body(keys: frozenset[str]) -> bytes:
    return json.dumps({key: 1 for key in sorted(keys)}).encode()


#: (path pattern, ``ok`` body) per endpoint; ``{name}`` in a contract path is one segment
OK_BODIES = tuple(
    (re.compile(re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(e.path)) + r"(\?.*)?$"),
     _body(e.response_keys))
    for e in ENDPOINTS
)  # fmt: skip
#: every documented key of every endpoint: passes any endpoint's check
OK_BODY = _body(frozenset().union(*(e.response_keys for e in ENDPOINTS)))


@functools.cache
def _bomb() -> bytes:
    return gzip.compress(OK_BODY[:-1] + b', "pad": "' + b"x" * BOMB_BYTES + b'"}')


def ok_body(path: str) -> bytes:
    """The ``ok`` body for a request path (without the mode segment)."""
    return next((body for pattern, body in OK_BODIES if pattern.match(path)), OK_BODY)


@dataclass
class ModeCounts:
    """What the server saw of one mode (a snapshot from :meth:`FaultServer.counts`)."""

    started: int = 0
    completed: int = 0
    aborted: int = 0
    closed_unread: int = 0  #: ``idle-close``: requests closed under, never read


@dataclass(frozen=True)
class Received:
    """One request as the server read it."""

    method: str
    path: str  #: as sent, mode segment included
    headers: dict[str, str]  #: names lowercased
    body: bytes


class _Aborted(Exception):
    """The client went away, or the server is stopping: the handler ends its response."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real API and Locust's client use it
    disable_nagle_algorithm = True  # no 40 ms delayed-ACK stalls
    timeout = 30  # an idle keep-alive connection ends after this long
    server: _HTTPServer
    rest = "/"  #: the request path less its mode segment

    # --- plumbing ------------------------------------------------------------------------------
    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass  # the client reset the connection, or ``reset`` closed it already
        finally:
            self.server.track(self.connection, add=False)

    def log_message(self, *_: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_GET

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        srv = self.server.owner
        srv.note_traceparent(self.headers.get("traceparent"))
        headers = {name.lower(): value for name, value in self.headers.items()}
        srv.note_request(Received(self.command, self.path, headers, body))
        mode, self.rest = srv.route(self.path)
        if mode == "hang-every-n":
            mode = "hang" if srv.next_is_hang() else "ok"
            srv.count("hang-every-n", "started")
            kind = "hang-every-n"
        else:
            srv.count(mode, "started")
            kind = mode
        try:
            getattr(self, "_" + mode.replace("-", "_").replace("5xx", "status_5xx"))()
        except (_Aborted, OSError):
            srv.count(kind, "aborted")
            self.close_connection = True
        else:
            srv.count(kind, "completed")

    def _write(self, data: bytes) -> None:
        if self.server.owner.stopping.is_set():
            raise _Aborted
        self.wfile.write(data)  # raises OSError once the client has gone

    def _head(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()  # flushes: the head goes out now

    def _answer(self, status: int, body: bytes, content_type: str, **extra: str) -> None:
        self._head(
            status, {"Content-Type": content_type, "Content-Length": str(len(body)), **extra}
        )
        self._write(body)

    def _wait(self, seconds: float) -> None:
        """Sleep ``seconds``, or until the server stops (then raise ``_Aborted``)."""
        if self.server.owner.stopping.wait(min(seconds, self.server.owner.time_left())):
            raise _Aborted
        if self.server.owner.time_left() <= 0:
            raise _Aborted

    # --- the modes -----------------------------------------------------------------------------
    def _ok(self) -> None:
        self._answer(200, ok_body(self.rest), "application/json")

    def _slow(self) -> None:
        self._wait(self.server.owner.slow_seconds)
        self._ok()

    def _gzip(self) -> None:
        body = gzip.compress(ok_body(self.rest))
        self._answer(200, body, "application/json", **{"Content-Encoding": "gzip"})

    def _gzip_bomb(self) -> None:
        self._answer(200, _bomb(), "application/json", **{"Content-Encoding": "gzip"})

    def _status_5xx(self) -> None:
        self._answer(503, b'{"detail": "service unavailable"}', "application/json")

    def _429(self) -> None:
        self._answer(429, b'{"detail": "rate limited"}', "application/json", **{"Retry-After": "1"})

    def _html_200(self) -> None:
        self._answer(200, b"<html><body>maintenance</body></html>", "text/html")

    def _redirect(self, status: int) -> None:
        location = self.server.owner.redirect_to + self.rest
        self._answer(status, b"", "text/plain", Location=location)

    _redirect_301 = functools.partialmethod(_redirect, 301)
    _redirect_302 = functools.partialmethod(_redirect, 302)
    _redirect_303 = functools.partialmethod(_redirect, 303)
    _redirect_307 = functools.partialmethod(_redirect, 307)
    _redirect_308 = functools.partialmethod(_redirect, 308)

    def _redirect_no_location(self) -> None:
        self._answer(302, b"", "text/plain")

    def _redirect_loop(self) -> None:
        self._answer(302, b"", "text/plain", Location=self.path)

    def _echo_secret(self) -> None:
        said = self.headers.get("Authorization") or ""
        body = json.dumps({"detail": f"bad credentials: {said}"}).encode()
        self._answer(200, body, "application/json", **{"Content-Encoding": said, "X-Echo": said})

    def _hang(self) -> None:
        """Never answer: wait until the client closes its end or the server stops."""
        conn = self.connection
        while True:
            readable, _, _ = select.select([conn], [], [], 0.05)
            if readable and not conn.recv(1, socket.MSG_PEEK):
                raise _Aborted  # the client closed the connection
            self._wait(0.05)

    def _trickle(self) -> None:
        self._head(200, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
        self._write(b"1\r\n{\r\n")
        while True:
            self._wait(self.server.owner.trickle_interval)
            self._write(b"1\r\n \r\n")

    def _truncate(self) -> None:
        self._head(200, {"Content-Type": "application/json",
                         "Content-Length": str(TRUNCATE_DECLARED)})  # fmt: skip
        self._write(ok_body(self.rest).ljust(TRUNCATE_SENT))
        self.close_connection = True  # FIN after 100 of the 1000 bytes

    def _close_mid_body(self) -> None:
        self._head(200, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
        body = ok_body(self.rest)
        part = body[: len(body) // 2]
        self._write(b"%x\r\n%s\r\n" % (len(part), part))
        self.close_connection = True  # FIN without the rest and the last chunk

    def _idle_close(self) -> None:
        self._ok()
        conn = self.connection
        while True:  # until the next request arrives, the client leaves or the server stops
            readable, _, _ = select.select([conn], [], [], 0.05)
            if readable:
                break
            owner = self.server.owner
            if owner.stopping.is_set() or owner.time_left() <= 0:  # the answer was complete
                self.close_connection = True
                return
        if conn.recv(1, socket.MSG_PEEK):  # a request, left unread
            self.server.owner.count("idle-close", "closed_unread")
            self._reset()
        self.close_connection = True

    def _reset(self) -> None:
        conn = self.connection
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # the socket's file objects hold it open: close them first so that this close is the
        # real one (an RST), not the server's usual shutdown(SHUT_WR) (a FIN) after the handler
        self.rfile.close()
        self.wfile.close()
        conn.close()
        # what ``http.server`` still does with them (flush, close) must not fail
        self.rfile, self.wfile = io.BytesIO(), io.BytesIO()
        self.close_connection = True

    def _huge(self) -> None:
        self._stream_huge(chunked=False)

    def _huge_chunked(self) -> None:
        self._stream_huge(chunked=True)

    def _stream_huge(self, chunked: bool) -> None:
        size = self.server.owner.huge_bytes
        head, tail = OK_BODY[:-1] + b', "pad": "', b'"}'
        framing = {"Transfer-Encoding": "chunked"} if chunked else {"Content-Length": str(size)}
        self._head(200, {"Content-Type": "application/json", **framing})

        def send(data: bytes) -> None:
            self._write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)

        send(head)
        block, left = b"x" * STREAM_BLOCK, size - len(head) - len(tail)
        while left > 0:
            n = min(left, STREAM_BLOCK)
            send(block[:n])
            left -= n
        send(tail)
        if chunked:
            self._write(b"0\r\n\r\n")


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True  # ``FaultServer.stop`` joins them itself, within a time limit
    block_on_close = False
    request_queue_size = 128  # the default backlog of 5 drops connections under a spawn burst
    owner: FaultServer

    def __init__(self, owner: FaultServer) -> None:
        self.owner = owner
        self._connections: set[socket.socket] = set()
        self._handler_threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread, args=(request, client_address), daemon=True
        )
        with self._lock:
            self._handler_threads = [t for t in self._handler_threads if t.is_alive()]
            self._handler_threads.append(thread)
        thread.start()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that resets or drops its connection is this server's daily bread."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)

    def track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def close_connections(self) -> list[threading.Thread]:
        with self._lock:
            conns, threads = list(self._connections), list(self._handler_threads)
        for conn in conns:
            with contextlib.suppress(OSError):  # wakes a handler blocked reading a next request
                conn.shutdown(socket.SHUT_RDWR)
        return threads


class FaultServer:
    """The fault server: ``start()``/``stop()`` or a ``with`` block; ``url_for(mode)`` is the
    base URL (a Locust host) whose every path is answered in ``mode``."""

    def __init__(
        self,
        default_mode: str = "ok",
        hang_every: int = 3,
        trickle_interval: float = 0.2,
        slow_seconds: float = 0.6,
        huge_bytes: int = HUGE_BYTES,
        lifetime: float = 120.0,
    ) -> None:
        if default_mode not in MODES:
            raise ValueError(f"unknown mode {default_mode!r}; modes: {', '.join(MODES)}")
        self.default_mode = default_mode
        self.hang_every = hang_every
        self.trickle_interval = trickle_interval
        self.slow_seconds = slow_seconds
        self.huge_bytes = huge_bytes
        self.lifetime = lifetime
        self.stopping = threading.Event()
        self._counts: dict[str, ModeCounts] = {mode: ModeCounts() for mode in MODES}
        self._lock = threading.Lock()
        self._every_n = 0
        self._started_at = 0.0
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        #: every request's ``traceparent`` header (None when it had none), in arrival order
        self.traceparents: list[str | None] = []
        #: every request, whole, in arrival order
        self.received: list[Received] = []
        #: where the ``redirect-*`` modes send a client (the rest of the path is appended)
        self.redirect_to = ""
        self.leftover_threads = 0  #: handler threads still alive after ``stop``'s time limit

    # --- life ----------------------------------------------------------------------------------
    def start(self) -> FaultServer:
        self._httpd = _HTTPServer(self)
        self._started_at = time.monotonic()
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        if not self.redirect_to:
            self.redirect_to = self.url_for("ok")
        return self

    def stop(self, join_timeout: float = 5.0) -> None:
        """Stop accepting, wake and end every handler (hung ones included), close the socket."""
        httpd = self._httpd
        if httpd is None:
            return
        self.stopping.set()
        httpd.shutdown()
        threads = httpd.close_connections()
        deadline = time.monotonic() + join_timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.leftover_threads = sum(t.is_alive() for t in threads)
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))
        self._httpd = None

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # --- for the tests -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._httpd is not None, "the server is not running"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def url_for(self, mode: str) -> str:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        return f"{self.url}/{mode}"

    def counts(self, mode: str) -> ModeCounts:
        """A snapshot of what the server saw of ``mode``."""
        with self._lock:
            c = self._counts[mode]
            return ModeCounts(c.started, c.completed, c.aborted, c.closed_unread)

    def wait_for(
        self, mode: str, check: Callable[[ModeCounts], bool], timeout: float = 10.0
    ) -> ModeCounts:
        """Poll ``counts(mode)`` until ``check`` holds or ``timeout`` passes; the last counts."""
        end = time.monotonic() + timeout
        while True:
            counts = self.counts(mode)
            if check(counts) or time.monotonic() >= end:
                return counts
            time.sleep(0.02)

    # --- for the handlers ----------------------------------------------------------------------
    def route(self, path: str) -> tuple[str, str]:
        """(mode, the rest of the path) for a request path."""
        parts = path.split("?", 1)[0].split("/", 2)
        first = parts[1] if len(parts) > 1 else ""
        if first in MODES:
            return first, path[len(first) + 1 :]
        return self.default_mode, path

    def note_traceparent(self, value: str | None) -> None:
        with self._lock:
            self.traceparents.append(value)

    def note_request(self, request: Received) -> None:
        with self._lock:
            self.received.append(request)

    def count(self, mode: str, what: str) -> None:
        with self._lock:
            counts = self._counts[mode]
            setattr(counts, what, getattr(counts, what) + 1)

    def next_is_hang(self) -> bool:
        with self._lock:
            self._every_n += 1
            return self._every_n % self.hang_every == 0

    def time_left(self) -> float:
        return self.lifetime - (time.monotonic() - self._started_at)
