"""Resend a request once when the target closed a kept-alive connection under it.

A server closes an idle keep-alive connection when its timeout fires (uvicorn 5 s, nginx 75 s).
When that close crosses a request the client has just sent on the connection, the request
never reaches the application and not one byte of answer comes back. Browsers and HTTP
libraries resend such a request on a new connection; geventhttpclient does so for GET and HEAD
only, so a POST (most Panacea endpoints) failed as ``connection error (HTTPConnectionClosed)``:
a healthy API failing by chance, and a request counted that the API never received
(docs/reliability.md, "Connections closed under a request", has what was measured).

A request is resent once, on a new connection, only when it went out on a kept-alive
connection and no answer at all came back. A connection opened for the request and closed
without an answer is the target's answer: a failure, and never resent (geventhttpclient resent
a GET then, twice with one connection per user, so the target got requests the results did not
count). Every resend, geventhttpclient's own included, is counted (``summary.json``
``run.connections.stale_resends``); the request is one request in the statistics, timed over
both sends. A user type that shares one connection pool among its users (Locust's
``client_pool``) is left to geventhttpclient: which user's send used which connection is not
known there.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from geventhttpclient.response import HTTPConnectionClosed

#: what a request on a connection closed under it meets: an end of file or a reset where the
#: answer's first byte was due, or a reset or broken pipe while the request was being written
STALE_ERRORS = (HTTPConnectionClosed, ConnectionResetError, BrokenPipeError)


class StaleConnectionResend:
    """Installed on one user's HTTP client (``install``); ``on_resend`` is called per resend.

    It learns which connections are new from the connection pool's ``after_connect`` hook and
    which connection each send of a request used from the pool's ``get_socket``.
    """

    def __init__(self, on_resend: Callable[[], None]) -> None:
        self.on_resend = on_resend
        #: the connections this request's sends used, in order: True for a kept-alive one
        self._sends: list[bool] = []
        self._new = False  #: the connection being handed out was opened for it
        self._pools: weakref.WeakSet[Any] = weakref.WeakSet()

    def install(self, agent: Any) -> None:
        """Wrap ``agent._urlopen`` (a Locust ``FastHttpSession.client``): the one place below
        Locust's timing and statistics where a single send of a request happens."""
        urlopen = agent._urlopen

        def _urlopen(request: Any) -> Any:
            self._watch(agent.clientpool.get_client(request.url_split)._connection_pool)
            sends = self._sends = []
            try:
                response = urlopen(request)
            except STALE_ERRORS:
                if sends[:1] != [True]:  # a new connection: the target's answer
                    raise
                self.on_resend()
                if len(sends) > 1:  # geventhttpclient resent it already (GET, HEAD)
                    raise
                return urlopen(request)
            if len(sends) > 1 and sends[0]:  # resent by geventhttpclient, and answered
                self.on_resend()
            return response

        agent._urlopen = _urlopen

    def _watch(self, pool: Any) -> None:
        if pool in self._pools:
            return
        self._pools.add(pool)
        get_socket, connected = pool.get_socket, pool.after_connect

        def after_connect(sock: Any) -> None:
            self._new = True
            connected(sock)

        def tracked_get_socket() -> Any:
            sends = self._sends
            if sends and not sends[-1]:
                # geventhttpclient resending after a connection opened for this request closed
                # without an answer (to a GET: up to twice more, each one a request the target
                # receives and the results would not count): that close was the answer
                raise HTTPConnectionClosed("connection closed without an answer")
            self._new = False
            sock = get_socket()
            sends.append(not self._new)
            return sock

        pool.after_connect = after_connect
        pool.get_socket = tracked_get_socket
