"""A loopback HTTP/1.1 server that holds each request ``--delay-ms``, with or without a capacity.

The accuracy benchmark's target, as exact as a process can be, and what it really did is
recorded (that is the truth the framework is measured against):

- a pool of ``--workers`` processes forked up front, each serving one connection at a time
  (keep-alive, ``TCP_NODELAY``): no GIL and no event loop shared between connections, so a
  waiting request never waits for another one, and no fork happens while requests wait (a
  fork per connection added 8 to 18 ms to the first request of each connection);
- the arrival time is the kernel's receive timestamp of the request's last packet
  (``SO_TIMESTAMPNS``, set on the listener so accepted sockets have it from their first
  packet), so a late wake-up of the process does not move the deadline;
- ``time.sleep`` to that deadline, with the timer slack lowered to 1 us, then one ``sendall``.

Each worker appends, per request, the time it really held the request (from the kernel's
arrival stamp to just before ``sendall``) and the moment it answered (``time.monotonic``, the
clock Locust's processes can read too), both in microseconds, to ``--held-file`` when its
connection ends: what each request's latency truly was. Body: ``--body`` (a JSON file) or ``{}``.

``--capacity N`` gives the server a capacity, as a service with N workers has one: at most N
requests are held at once, each for ``--delay-ms``; a request that arrives while N are held
waits, in arrival order, until the first of them is answered, so the server answers at most
N / delay requests a second and a load above that queues. The queue is kept as N slots' next
free times in shared memory, under one lock: each request, as its worker reads it, takes the
slot that frees first, from its arrival or that moment, whichever is later. Served in the
order the workers take the lock, which is the arrival order but for requests that arrive
within microseconds of each other. What it waited is part of what it was held. Without
``--capacity`` (0) every request is held ``--delay-ms`` from its arrival, however many.

``--requests-file`` also records, per request, when it was answered, what it was held, what
of that it waited in the queue (microseconds) and the trace id of its W3C ``traceparent``
header (``-`` without one), so that a client's own record of each request can be joined to it.

    python bench/delay_server.py --port 0 --delay-ms 50 --held-file /tmp/held.txt
    python bench/delay_server.py --delay-ms 20 --capacity 4 --held-file h --requests-file r
    (prints "listening on http://127.0.0.1:PORT" once ready; SIGTERM stops it and its workers)
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import multiprocessing
import os
import signal
import socket
import struct
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
PR_SET_TIMERSLACK = 29
PR_SET_PDEATHSIG = 1
STOP_WAIT_S = 3.0  #: a worker still there this long after the stop is killed
_stopping = False  #: a worker was told to stop (SIGTERM)
_TIMESPEC = struct.Struct("@ll")


def _lower_timer_slack() -> None:
    """Let ``time.sleep`` wake within ~1 us of its deadline instead of the default 50 us."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0)


def _die_with(parent: int) -> None:
    """A worker is killed with the main process, should that one be killed (SIGKILL): a
    worker left behind would serve on, orphaned, for ever."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # killed before the line above
        os._exit(0)


def _content_length(head: bytes) -> int:
    at = head.lower().find(b"content-length:")
    if at < 0:
        return 0
    return int(head[at + 15 :].split(b"\r\n", 1)[0])


def _trace_id(head: bytes) -> str:
    """The trace id of a ``traceparent: 00-<trace id>-<parent id>-<flags>`` header, or ``-``."""
    at = head.lower().find(b"traceparent:")
    if at < 0:
        return "-"
    parts = head[at + 12 :].split(b"\r\n", 1)[0].strip().split(b"-")
    return parts[1].decode("ascii", "replace") if len(parts) == 4 else "-"


class Capacity:
    """At most ``n`` requests held at once, the others queued in arrival order (``--capacity``).

    Shared by the forked workers: each slot's next free time (``perf_counter`` seconds) in
    shared memory, under a process-shared lock held for a few microseconds per request.
    """

    def __init__(self, n: int) -> None:
        if n < 1:
            raise ValueError("a capacity is at least 1 request at once")
        self._free_at: Any = multiprocessing.RawArray("d", n)  # 0.0: free since boot
        self._lock = multiprocessing.Lock()

    def start(self, arrived: float, hold: float) -> float:
        """When a request that arrived at ``arrived`` starts being held: at once if a slot is
        free, else when the first slot frees; that slot is then taken for ``hold`` seconds."""
        with self._lock:
            free_at = self._free_at
            slot = min(range(len(free_at)), key=free_at.__getitem__)
            start = max(arrived, float(free_at[slot]))
            free_at[slot] = start + hold
        return start


def serve_connection(
    conn: socket.socket,
    delay: float,
    response: bytes,
    held_file: str,
    capacity: Capacity | None = None,
    requests_file: str | None = None,
) -> None:
    """Answer requests on ``conn`` until the client closes it; record what each was held."""
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    # perf_counter (CLOCK_MONOTONIC) minus realtime: converts the kernel's stamps
    offset = time.perf_counter() - time.time()
    held: list[tuple[int, int]] = []  # (held, answered at), microseconds
    requests: list[str] = []  # "answered at, held, queued (us), trace id" (--requests-file)
    buf = b""
    stamp = 0.0
    try:
        while True:
            end = buf.find(b"\r\n\r\n")
            need = end + 4 + _content_length(buf[:end]) if end >= 0 else -1
            while end < 0 or len(buf) < need:
                data, ancdata, _flags, _addr = conn.recvmsg(65536, 64)
                if not data:
                    return
                for level, kind, raw in ancdata:
                    if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                        sec, nsec = _TIMESPEC.unpack(raw[: _TIMESPEC.size])
                        stamp = sec + nsec / 1e9 + offset
                buf += data
                if end < 0:
                    end = buf.find(b"\r\n\r\n")
                    if end >= 0:
                        need = end + 4 + _content_length(buf[:end])
            arrived = stamp or time.perf_counter()
            trace = _trace_id(buf[:end]) if requests_file else "-"
            buf = buf[need:]
            start = capacity.start(arrived, delay) if capacity is not None else arrived
            pause = start + delay - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            now = time.perf_counter()
            held_us, now_us = int((now - arrived) * 1e6), int(now * 1e6)
            held.append((held_us, now_us))
            if requests_file:
                requests.append(f"{now_us} {held_us} {int((start - arrived) * 1e6)} {trace}\n")
            conn.sendall(response)
    except OSError:
        return
    finally:
        # SIGTERM (the stop) waits until the figures are written: when a client closes and
        # the server is stopped at once, it used to land in the write and lose them all. It
        # also lands here, just before it is blocked, as often as not (the worker wakes up for
        # the client's close as the stop arrives): the records are written then too.
        try:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        finally:
            try:
                _write_records(held, held_file, requests, requests_file)
            finally:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})


def _write_records(
    held: list[tuple[int, int]], held_file: str, requests: list[str], requests_file: str | None
) -> None:
    """One write per file and connection: O_APPEND keeps each whole."""
    if held:
        with open(held_file, "a") as f:
            f.write("".join(f"{us} {at}\n" for us, at in held))
    if requests and requests_file:
        with open(requests_file, "a") as f:
            f.write("".join(requests))


def _exit_quietly(_signum: int, _frame: FrameType | None) -> None:
    global _stopping
    # noted too: a handler that runs inside a weakref callback or a __del__ (garbage
    # collection) has its SystemExit swallowed ("Exception ignored"); the worker then still
    # stops after its connection, instead of serving on while the main process waits for it
    _stopping = True
    raise SystemExit(0)


def warm_up(response: bytes) -> None:
    """Serve one request over a loopback connection of its own, as a real one is served: a
    new process's first request pays for copy-on-write page faults and cold code (measured:
    up to 15 ms with 20 fresh workers on one core), which must not land on a real request."""
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        with socket.create_connection(listener.getsockname()) as client:
            conn, _ = listener.accept()
            with conn:
                client.sendall(b"GET / HTTP/1.1\r\nHost: warm-up\r\n\r\n")
                client.shutdown(socket.SHUT_WR)
                serve_connection(conn, 0.0, response, os.devnull)
            while client.recv(65536):
                pass


def worker(
    listener: socket.socket,
    delay: float,
    response: bytes,
    held_file: str,
    capacity: Capacity | None = None,
    requests_file: str | None = None,
) -> None:
    """Accept and serve connections one after the other; SIGTERM ends it (figures written).
    While it waits for a connection it has nothing to write, and SIGTERM ends it at once."""
    signal.signal(signal.SIGTERM, _exit_quietly)
    warm_up(response)  # not through the capacity: it must not take a slot
    while not _stopping:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        conn, _ = listener.accept()
        signal.signal(signal.SIGTERM, _exit_quietly)
        with conn:
            serve_connection(conn, delay, response, held_file, capacity, requests_file)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--delay-ms", type=float, default=50.0)
    ap.add_argument("--held-file", required=True)
    ap.add_argument("--body", help="JSON file to answer with (default: {})")
    ap.add_argument(
        "--workers", type=int, default=64, help="connections served at once (default: 64)"
    )
    ap.add_argument(
        "--capacity",
        type=int,
        default=0,
        help="requests held at once, the others queued in arrival order (default 0: no limit)",
    )
    ap.add_argument(
        "--requests-file", help="also record per request: answered at, held, queued, trace id"
    )
    opts = ap.parse_args(argv)
    if opts.capacity < 0:
        ap.error("--capacity must be 0 (no limit) or more")
    body = Path(opts.body).read_bytes() if opts.body else b"{}"
    response = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )
    _lower_timer_slack()
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)  # inherited by accepted sockets
    listener.bind(("127.0.0.1", opts.port))
    listener.listen(1024)
    capacity = Capacity(opts.capacity) if opts.capacity else None  # before the fork: shared
    children: list[int] = []
    parent = os.getpid()
    for _ in range(opts.workers):
        pid = os.fork()
        if pid == 0:
            try:
                _die_with(parent)
                worker(
                    listener,
                    opts.delay_ms / 1000,
                    response,
                    opts.held_file,
                    capacity,
                    opts.requests_file,
                )
            finally:
                os._exit(0)
        children.append(pid)

    def stop(_signum: int, _frame: FrameType | None) -> None:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        waiting, deadline = set(children), time.monotonic() + STOP_WAIT_S
        while waiting and time.monotonic() < deadline:  # each writes what it held, then exits
            for pid in list(waiting):
                with contextlib.suppress(ChildProcessError):
                    if os.waitpid(pid, os.WNOHANG)[0] == 0:
                        continue
                waiting.discard(pid)
            time.sleep(0.01)
        for pid in waiting:  # stuck (a client still connected): killed, not left behind
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    print(f"listening on http://127.0.0.1:{listener.getsockname()[1]}", flush=True)
    while True:
        signal.pause()


if __name__ == "__main__":
    sys.exit(main())
