"""Global virtual-user indexes, unique across every process of a run.

SPEC's pools are a function of a user's global index ``g``. A worker knows its own
``worker_index`` but not how many users the others hold, so the master hands out indexes:
a worker asks with a custom message and the user waits (a few milliseconds) for the reply.
A local run simply counts. Each run (``PanaceaRun.allocator``) has its own allocator,
installed on its environment's runner.
"""

from __future__ import annotations

import itertools
from typing import Any

from gevent.event import AsyncResult
from locust.runners import MasterRunner, Runner, WorkerRunner

REQUEST = "panacea_index_request"
REPLY = "panacea_index_reply"


class IndexAllocator:
    """Hands out 0, 1, 2 ... to one run's users: itself (master, local) or through the master."""

    def __init__(self, reply_timeout: float = 30.0) -> None:
        self._next = 0
        self._requests = itertools.count()
        self._pending: dict[int, AsyncResult] = {}
        self._runner: Runner | None = None
        self.reply_timeout = reply_timeout

    def install(self, runner: Runner) -> None:
        """Register the messages this process answers or waits for."""
        self._runner = runner
        if isinstance(runner, MasterRunner):
            runner.register_message(REQUEST, self._on_request)
        elif isinstance(runner, WorkerRunner):
            runner.register_message(REPLY, self._on_reply)

    def reset(self) -> None:
        """A new test starts numbering at 0 again (master or local runner only)."""
        self._next = 0

    def next_index(self) -> int:
        if isinstance(self._runner, WorkerRunner):
            request_id = next(self._requests)
            result: AsyncResult = AsyncResult()
            self._pending[request_id] = result
            try:
                self._runner.send_message(REQUEST, {"id": request_id})
                return int(result.get(timeout=self.reply_timeout))
            finally:
                self._pending.pop(request_id, None)
        index, self._next = self._next, self._next + 1
        return index

    def _on_request(self, environment: Any, msg: Any, **_: Any) -> None:
        index, self._next = self._next, self._next + 1
        environment.runner.send_message(
            REPLY, {"id": msg.data["id"], "index": index}, client_id=msg.node_id
        )

    def _on_reply(self, environment: Any, msg: Any, **_: Any) -> None:
        result = self._pending.get(msg.data["id"])
        if result is not None:
            result.set(msg.data["index"])
