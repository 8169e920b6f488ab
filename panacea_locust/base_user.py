"""``PanaceaAPIUser``: one simulated Panacea user, with its own identity, session and data pool.

Built on ``FastHttpUser`` (geventhttpclient), about four times the throughput of
``HttpUser`` per core, so the load generator measures the API rather than itself.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any, ClassVar

import orjson
from gevent import Timeout as GeventTimeout
from locust import FastHttpUser, between

from panacea_locust import __version__
from panacea_locust.config import get_settings
from panacea_locust.contract import ENDPOINTS
from panacea_locust.event_handlers import PanaceaRun
from panacea_locust.hotpath.cookie_jar import use_lazy_cookie_jar
from panacea_locust.payload_generator import RequestSpec, UserPool
from panacea_locust.run_context import RunContext

_settings = get_settings()
_REQUIRED_KEYS = {_settings.endpoint_path(e.key): e.response_keys for e in ENDPOINTS}
_NO_KEYS: frozenset[str] = frozenset()
_TIMEOUTS = (socket.timeout, TimeoutError, GeventTimeout)


def failure_reason(status: int, error: BaseException | None) -> str:
    """A short reason that groups well in Locust's failure table and in summary.json."""
    if status == 0 or error is not None and status < 100:
        if isinstance(error, _TIMEOUTS) or "timed out" in str(error).lower():
            return "timeout"
        return f"connection error ({type(error).__name__})" if error else "connection error"
    if status == 429:
        return "HTTP 429 (rate limited)"
    return f"HTTP {status}"


class PanaceaAPIUser(FastHttpUser):
    """Abstract base of every user type: identity, headers and the response check."""

    abstract = True
    wait_time = between(_settings.standard_wait_min, _settings.standard_wait_max)
    network_timeout = _settings.request_timeout
    connection_timeout = _settings.request_timeout

    #: filled in by ``on_start``; class-level defaults keep type checkers informed
    run_context: RunContext  #: this user's run's (``PanaceaRun.of(self.environment)``)
    index: int = -1
    pool: UserPool
    user_id: str = ""
    session_id: str = ""
    request_headers: ClassVar[dict[str, str]] = {}
    _build: Callable[[str, UserPool], RequestSpec]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        use_lazy_cookie_jar(self.client)  # cookies still work; no cost while there are none

    def on_start(self) -> None:
        """Take a global index and build this user's pools: once per virtual user."""
        run = PanaceaRun.of(self.environment)
        ctx = self.run_context = run.context
        self.index = run.allocator.next_index()
        self.pool = UserPool.build(self.index, ctx.settings, ctx.pool_data)
        self.user_id, self.session_id = self.pool.user_id, self.pool.session_id
        token = ctx.settings.panacea_auth_token
        bearer = token.get_secret_value() if token else f"mock-token-{self.user_id}"
        self.request_headers = {  # type: ignore[misc]  # per instance on purpose
            "X-Session-Id": self.session_id,
            "Authorization": f"Bearer {bearer}",
            "Content-Type": "application/json",
            "User-Agent": f"PanaceaLocust/{__version__} User-{self.user_id}",
        }
        # The HTTP client sends its default headers with every request from its own copy:
        # cheaper than handing the same four headers to each request (they are merged and
        # validated one by one, in Python, several times per request).
        self.client.client.default_headers.update(self.request_headers)
        self._build = ctx.payloads.build
        ctx.tally.user_started(type(self).__name__, self.pool.session_from_database)

    def call_endpoint(self, key: str) -> None:
        """Build endpoint ``key``'s payload from this user's pool and send it."""
        self._make_request(self._build(key, self.pool))

    def _make_request(self, spec: RequestSpec) -> Any:
        """Send one request and classify its response; returns the JSON body on success.

        200 with the documented JSON object is a success; a status listed in
        ``ACCEPTABLE_STATUS_CODES`` is not a failure but is counted per endpoint and code;
        anything else fails with a reason (HTTP code, timeout, connection error, bad body).
        """
        payload = spec.json
        # bytes are sent as-is (Locust's annotation says str or dict; its client takes bytes)
        body: Any = orjson.dumps(payload) if payload is not None else None
        with self.client.request(
            spec.method, spec.url, name=spec.name, data=body, catch_response=True
        ) as response:  # the user's headers are the client's defaults (``on_start``)
            status = response.status_code or 0
            if status == 200:
                try:
                    parsed = orjson.loads(response.content or b"")
                except orjson.JSONDecodeError:
                    response.failure("HTTP 200 with a body that is not JSON")
                    return None
                required = _REQUIRED_KEYS.get(spec.name, _NO_KEYS)
                # one C-level test for the common case: an object with every documented key
                if type(parsed) is not dict or not parsed.keys() >= required:
                    missing = _missing_keys(spec.name, parsed)
                    response.failure(f"HTTP 200 without documented key(s) {missing}")
                    return None
                response.success()
                return parsed
            ctx = self.run_context
            if status in ctx.settings.acceptable_status_codes:
                response.success()
                ctx.tally.acceptable_response(spec.name, status)
                return None
            response.failure(failure_reason(status, getattr(response, "error", None)))
            return None


def _missing_keys(name: str, parsed: Any) -> str:
    if not isinstance(parsed, dict):
        return "(not a JSON object)"
    required = _REQUIRED_KEYS.get(name)
    if not required:
        return ""
    missing = required.difference(parsed)
    return ", ".join(sorted(missing))
