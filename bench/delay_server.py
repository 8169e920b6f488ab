"""A loopback HTTP/1.1 server that answers every request exactly ``--delay-ms`` after it arrived.

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

    python bench/delay_server.py --port 0 --delay-ms 50 --held-file /tmp/held.txt
    (prints "listening on http://127.0.0.1:PORT" once ready; SIGTERM stops it and its workers)
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import signal
import socket
import struct
import sys
import time
from pathlib import Path
from types import FrameType

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
PR_SET_TIMERSLACK = 29
_TIMESPEC = struct.Struct("@ll")


def _lower_timer_slack() -> None:
    """Let ``time.sleep`` wake within ~1 us of its deadline instead of the default 50 us."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0)


def _content_length(head: bytes) -> int:
    at = head.lower().find(b"content-length:")
    if at < 0:
        return 0
    return int(head[at + 15 :].split(b"\r\n", 1)[0])


def serve_connection(conn: socket.socket, delay: float, response: bytes, held_file: str) -> None:
    """Answer requests on ``conn`` until the client closes it; record what each was held."""
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    # perf_counter (CLOCK_MONOTONIC) minus realtime: converts the kernel's stamps
    offset = time.perf_counter() - time.time()
    held: list[tuple[int, int]] = []  # (held, answered at), microseconds
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
            buf = buf[need:]
            pause = arrived + delay - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            now = time.perf_counter()
            held.append((int((now - arrived) * 1e6), int(now * 1e6)))
            conn.sendall(response)
    except OSError:
        return
    finally:
        # SIGTERM (the stop) waits until the figures are written: when a client closes and
        # the server is stopped at once, it used to land in the write and lose them all
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        try:
            if held:
                with open(held_file, "a") as f:  # one write per connection: O_APPEND keeps it whole
                    f.write("".join(f"{us} {at}\n" for us, at in held))
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})


def _exit_quietly(_signum: int, _frame: FrameType | None) -> None:
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


def worker(listener: socket.socket, delay: float, response: bytes, held_file: str) -> None:
    """Accept and serve connections one after the other; SIGTERM ends it (figures written)."""
    signal.signal(signal.SIGTERM, _exit_quietly)
    warm_up(response)
    while True:
        conn, _ = listener.accept()
        with conn:
            serve_connection(conn, delay, response, held_file)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--delay-ms", type=float, default=50.0)
    ap.add_argument("--held-file", required=True)
    ap.add_argument("--body", help="JSON file to answer with (default: {})")
    ap.add_argument(
        "--workers", type=int, default=64, help="connections served at once (default: 64)"
    )
    opts = ap.parse_args(argv)
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
    children: list[int] = []
    for _ in range(opts.workers):
        pid = os.fork()
        if pid == 0:
            try:
                worker(listener, opts.delay_ms / 1000, response, opts.held_file)
            finally:
                os._exit(0)
        children.append(pid)

    def stop(_signum: int, _frame: FrameType | None) -> None:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        for pid in children:  # each writes what it held before it exits
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    print(f"listening on http://127.0.0.1:{listener.getsockname()[1]}", flush=True)
    while True:
        signal.pause()


if __name__ == "__main__":
    sys.exit(main())
