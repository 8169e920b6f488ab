"""A uvicorn HTTP protocol (httptools) that writes each response with one system call.

uvicorn writes the status line and headers, then the body, as two ``transport.write`` calls;
with uvloop each is an immediate ``send()``. Buffering the writes of one loop iteration and
flushing them together halves the system calls per response, a measurable share of the cost of
a small JSON answer. Passed to uvicorn through its documented ``http=`` protocol-class option.

:class:`GuardedHttpToolsProtocol` adds the connection limits uvicorn lacks (see its docstring).
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class _CoalescingTransport:
    """Forwards to the real transport, joining the writes made before the loop runs again."""

    __slots__ = ("_transport", "_pending", "_loop")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._pending: list[bytes] | None = None
        self._loop = loop

    def write(self, data: bytes) -> None:
        pending = self._pending
        if pending is None:
            self._pending = [data]
            self._loop.call_soon(self.flush)
        else:
            pending.append(data)

    def flush(self) -> None:
        pending = self._pending
        if pending is not None:
            self._pending = None
            if not self._transport.is_closing():
                self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` whose responses go out in one write."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = _CoalescingTransport(  # type: ignore[assignment]
            transport, asyncio.get_running_loop()
        )


def _raw_response(status: bytes, detail: str) -> bytes:
    body = orjson.dumps({"detail": detail})
    return (
        b"HTTP/1.1 %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
        b"connection: close\r\n\r\n%s" % (status, len(body), body)
    )


class GuardedHttpToolsProtocol(CoalescingHttpToolsProtocol):
    """Connections within the process's descriptors, and none idle for ever.

    uvicorn closes a keep-alive connection ``timeout_keep_alive`` seconds after an answer, but
    never one that has not sent a full request yet, and accepts connections until the process
    runs out of descriptors (then the event loop resets every newcomer). This protocol:

    - closes a connection whose request line and headers have not arrived within
      ``timeout_keep_alive`` seconds of connecting or of its previous answer (idle or slow);
    - keeps at most ``max_connections`` open: one more closes the connection idle the longest
      (a keep-alive client reconnects, as after a timeout) or, with none idle, is answered 503
      and closed;
    - answers 431 and closes when a request's line and headers exceed ``max_header_bytes``.

    Use :func:`guarded_protocol` to get a class with its own limits and registry.
    """

    max_connections: ClassVar[int] = 1 << 20
    max_header_bytes: ClassVar[int] = 1 << 16
    #: open connections, and the subset waiting for a request (oldest first); per class
    live: ClassVar[dict[GuardedHttpToolsProtocol, None]] = {}
    idle: ClassVar[dict[GuardedHttpToolsProtocol, None]] = {}

    _waiting = False
    _header_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        live = self.live
        if len(live) >= self.max_connections:
            victim = next(iter(self.idle), None)
            if victim is None:
                self._reject(
                    b"503 Service Unavailable",
                    f"server busy: all {self.max_connections} connections in use",
                )
                return
            victim._drop()
        live[self] = None
        self._wait_for_request()
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )

    def _wait_for_request(self) -> None:
        self._waiting = True
        self._header_bytes = 0
        self.idle.pop(self, None)
        self.idle[self] = None

    def _drop(self) -> None:
        """Close now, and stop counting this connection (its socket goes on the next turn)."""
        self.live.pop(self, None)
        self.idle.pop(self, None)
        self.connections.discard(self)
        self._unset_keepalive_if_required()
        self.transport.close()

    def _reject(self, status: bytes, detail: str) -> None:
        self.transport.write(_raw_response(status, detail))
        self._drop()

    def data_received(self, data: bytes) -> None:
        if not self._waiting:
            super().data_received(data)
            return
        # Waiting for a request's headers: the keep-alive deadline stays armed until they are
        # complete (uvicorn would cancel it on the first byte: a slow sender would never go).
        deadline, self.timeout_keep_alive_task = self.timeout_keep_alive_task, None
        self._header_bytes += len(data)
        super().data_received(data)
        if self._waiting and not self.transport.is_closing():
            self.timeout_keep_alive_task = deadline
            if self._header_bytes > self.max_header_bytes:
                self._reject(
                    b"431 Request Header Fields Too Large",
                    f"headers: larger than {self.max_header_bytes} bytes",
                )
        elif deadline is not None:
            deadline.cancel()

    def on_headers_complete(self) -> None:
        self._waiting = False
        self.idle.pop(self, None)
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.timeout_keep_alive_task is not None:  # uvicorn armed it: idle again
            self._wait_for_request()

    def connection_lost(self, exc: Exception | None) -> None:
        self.live.pop(self, None)
        self.idle.pop(self, None)
        super().connection_lost(exc)


def guarded_protocol(max_connections: int, max_header_bytes: int) -> type[HttpToolsProtocol]:
    """A :class:`GuardedHttpToolsProtocol` with these limits, for uvicorn's ``http=``."""
    attrs = {
        "max_connections": max_connections,
        "max_header_bytes": max_header_bytes,
        "live": {},
        "idle": {},
    }
    return type("ReferenceHttpProtocol", (GuardedHttpToolsProtocol,), attrs)
