"""``PanaceaAPIUser``: one simulated Panacea user, with its own identity, session and data pool.

Built on ``FastHttpUser`` (geventhttpclient), several times the throughput of ``HttpUser`` per
core (measured in docs/performance.md), so the load generator measures the API, not itself.
"""

from __future__ import annotations

import errno
import re
import socket
import zlib
from collections.abc import Callable
from time import perf_counter
from typing import Any, ClassVar
from urllib.parse import urldefrag, urljoin, urlsplit

import brotli  # geventhttpclient's own dependency, for ``Content-Encoding: br``
import orjson
from gevent import GreenletExit, get_hub, getcurrent
from gevent import Timeout as GeventTimeout
from geventhttpclient.response import HTTPParseError
from locust import FastHttpUser, between
from locust.exception import CatchResponseError, StopUser
from locust.runners import STATE_CLEANUP, STATE_STOPPED, STATE_STOPPING

from panacea_locust import __version__
from panacea_locust.config import get_settings
from panacea_locust.contract import COSTLY_KEYS, ENDPOINTS
from panacea_locust.hotpath.cookie_jar import use_lazy_cookie_jar
from panacea_locust.payload_generator import RequestSpec, UserPool
from panacea_locust.run_context import RunContext, UsersRun, run_of
from panacea_locust.secrets import SCRUBBER, install_logging, secret_values
from panacea_locust.stale_connections import StaleConnectionResend
from panacea_locust.verdict.health import GENERATOR_FAILURE, STALLED_START_S
from panacea_locust.verdict.traces import new_traceparent

_settings = get_settings()
# every log record of this process is scrubbed of the secrets from here on (the locustfile's
# import); each run's Locust failure and exception lists get theirs at ``init``
SCRUBBER.add(*secret_values(_settings))
install_logging()
_REQUIRED_KEYS = {_settings.endpoint_path(e.key): e.response_keys for e in ENDPOINTS}
_NO_KEYS: frozenset[str] = frozenset()
_TIMEOUTS = (socket.timeout, TimeoutError, GeventTimeout)
#: what reading a body can raise when the connection fails (socket errors and timeouts are
#: OSError; a connection closed before the end of the body is the parser's HTTPParseError)
_BODY_ERRORS = (OSError, HTTPParseError)
_READ_BLOCK = 64 * 1024  #: bytes asked of the socket per read while streaming a body
TOO_LARGE = "body too large"
#: the failure of a request still in flight when its user was stopped (after the grace)
UNFINISHED = "unfinished at stop"
#: the runner is stopping the test: no new request may start
_STOPPING = (STATE_CLEANUP, STATE_STOPPING, STATE_STOPPED)
#: ``FOLLOW_REDIRECTS=same-origin``: the most redirects one request follows (then it fails as
#: ``too many redirects``); a loop ends after this many, not after the client's 30
MAX_REDIRECTS = 5
#: the redirects that may be followed; another 3xx (300, 304 ...) only ever fails
_FOLLOWED = frozenset({301, 302, 303, 307, 308})
#: those that keep the method and the body; 301, 302 and 303 would turn a POST into a GET
_KEEP_METHOD = frozenset({307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST_RE = re.compile(r"[a-z0-9_.-]{1,253}|\[[0-9a-f:.]{2,45}\]")
_LOCATION_RE = re.compile(r"[\x21-\x7e]+")  #: a usable ``Location``: printable ASCII
#: what Locust's session adds to each request's headers (the user's own are the defaults)
_ACCEPT_ENCODING = {"Accept-Encoding": "gzip, deflate, br"}


class DeadlinePassed(TimeoutError):
    """Raised in a user's greenlet when its request has run for ``REQUEST_TIMEOUT``.

    An ``OSError``, like a socket timeout, so that geventhttpclient releases the connection on
    its way out wherever it meets it (connecting, sending, waiting for or reading the answer).
    """

    def __str__(self) -> str:  # geventhttpclient wraps it: ``failure_reason`` reads this
        return "request timed out (REQUEST_TIMEOUT)"


#: the load generator's own shortages, met when opening a connection: the request never left
_GENERATOR_ERRNOS = {
    errno.EMFILE: "too many open files",
    errno.ENFILE: "too many open files in the system",
    errno.EADDRNOTAVAIL: "no local port free",
    errno.ENOBUFS: "no buffer space",
    errno.ENOMEM: "out of memory",
}


def failure_reason(status: int, error: BaseException | None) -> str:
    """A short reason that groups well in Locust's failure table and in summary.json."""
    if isinstance(error, OSError) and error.errno in _GENERATOR_ERRNOS:
        name = errno.errorcode[error.errno]
        return f"{GENERATOR_FAILURE}{_GENERATOR_ERRNOS[error.errno]} ({name})"
    if status == 0 or error is not None and status < 100:
        if isinstance(error, _TIMEOUTS) or "timed out" in str(error).lower():
            return "timeout"
        return f"connection error ({type(error).__name__})" if error else "connection error"
    if status == 429:
        return "HTTP 429 (rate limited)"
    return f"HTTP {status}"


def origin_of(url: str) -> str | None:
    """``scheme://host:port`` of an absolute http(s) URL (host lowercased, the default port
    written out), or ``None`` for anything else: what a redirect's failure reason names and
    what same-origin following compares."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # a port out of range, a broken IPv6 literal
        return None
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    if not _HOST_RE.fullmatch(host):
        return None
    return f"{scheme}://{host}:{_DEFAULT_PORTS[scheme] if port is None else port}"


def redirect_target(url: str, location: Any) -> str | None:
    """The absolute URL a ``Location`` (one header of printable ASCII) points to from ``url``,
    its fragment dropped; ``None`` when there is no usable one."""
    if not isinstance(location, str) or not _LOCATION_RE.fullmatch(location):
        return None
    try:
        given = urlsplit(location)
        if given.scheme and not given.netloc:
            return None  # ``http:///x``, ``http:x``: urljoin would take them relative to ``url``
        return urldefrag(urljoin(url, location))[0]
    except ValueError:
        return None


class PanaceaAPIUser(FastHttpUser):
    """Abstract base of every user type: identity, headers and the response check."""

    abstract = True
    wait_time = between(_settings.standard_wait_min, _settings.standard_wait_max)
    network_timeout = _settings.request_timeout
    connection_timeout = _settings.request_timeout
    #: a user is one greenlet, one request at a time: one connection is all its pool needs,
    #: and geventhttpclient resends a request whose connection closed once per pool slot plus
    #: one (eleven times with Locust's ten), which multiplied the load on a failing server
    concurrency = 1  # noqa: V107  (Locust reads it, as network_timeout; vulture cannot see)
    #: the client follows no redirect: it followed 30 to any origin, with every header but
    #: ``Authorization`` and a 307's body, and 301/302 turned a POST into a GET that passed.
    #: A 3xx comes back as it is, and ``_redirected`` decides (``FOLLOW_REDIRECTS``).
    max_redirects = 0  # noqa: V107  (Locust reads it)

    #: filled in by ``on_start``; class-level defaults keep type checkers informed
    run_context: RunContext  #: this user's run's (``run_of(self.environment)``)
    _run: UsersRun
    index: int = -1
    pool: UserPool
    user_id: str = ""
    session_id: str = ""
    request_headers: ClassVar[dict[str, str]] = {}
    _build: Callable[[str, UserPool], RequestSpec]
    #: the request deadline: an event-loop timer, (re)started and stopped around each request
    _deadline: Any
    _max_body: int = 0  #: ``MAX_RESPONSE_BYTES``
    _trace: bool = False  #: ``--trace-context``: a ``traceparent`` on every request
    #: ``FOLLOW_REDIRECTS=same-origin`` (or ``--follow-redirects``): redirects within the
    #: target's origin (``_origin``, ``scheme://host:port``) are followed
    _follow: bool = False
    _origin: str | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        use_lazy_cookie_jar(self.client)  # cookies still work; no cost while there are none
        if self.client_pool is None:  # its own connections: which one each send used is known
            StaleConnectionResend(self._stale_resend).install(self.client.client)

    def _stale_resend(self) -> None:
        self.run_context.tally.stale_resends += 1

    def _stalled_start(self) -> None:
        self.run_context.tally.stalled_starts += 1

    def on_start(self) -> None:
        """Take a global index and build this user's pools: once per virtual user."""
        run = self._run = run_of(self.environment)
        ctx = self.run_context = run.context
        # a user still waiting here after STALLED_START_S is counted then, while the run
        # lasts (a worker reports it with its next report), not when it is stopped
        stalled = get_hub().loop.timer(STALLED_START_S)
        stalled.start(self._stalled_start)
        try:
            if not run.may_run_users():  # another run's master, or the run stopping
                raise StopUser()
            self.index = run.allocator.next_index()
        finally:
            stalled.close()
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
        # One timer per user. ``gevent.Timeout`` cannot be reused: libev keeps what was left
        # of a stopped timer, so each restart got the previous request's remainder (and one that
        # had fired expired at once). A repeating timer restarted with ``again`` always runs its
        # full period, and costs under a microsecond; should the deadline be swallowed on the
        # way (a connection attempt catches OSError), it fires again a period later.
        timeout = ctx.settings.request_timeout
        self._deadline = get_hub().loop.timer(timeout, timeout)
        self._max_body = ctx.settings.max_response_bytes
        self._trace = run.trace_context
        options = self.environment.parsed_options
        chosen = getattr(options, "follow_redirects", None) if options else None
        self._follow = (chosen or ctx.settings.follow_redirects) == "same-origin"
        self._origin = origin_of(self.client.base_url or "")
        ctx.tally.user_started(type(self).__name__, self.pool.session_from_database)

    def call_endpoint(self, key: str, due: float | None = None) -> None:
        """Build endpoint ``key``'s payload from this user's pool and send it (``due``: an
        open-model arrival's due time). An AI request over ``AI_MAX_RPS`` is counted as
        skipped instead of sent."""
        spec = self._build(key, self.pool)
        if key in COSTLY_KEYS:
            cap = self._run.cost_cap
            if cap is not None and not cap.allow(perf_counter()):
                self.run_context.tally.costly_skipped[spec.name] += 1
                return
        self._make_request(spec, due)

    def _make_request(self, spec: RequestSpec, due: float | None = None) -> Any:
        """Send one request and classify its response; returns the JSON body on success.

        ``due`` (``perf_counter`` time): an open-model arrival's due time; the request's time
        then runs from it (what a client arriving then waited), and the time from the actual
        send goes to the listeners as ``context["lag_ms"]`` less.

        200 with the documented JSON object is a success; a status listed in
        ``ACCEPTABLE_STATUS_CODES`` is not a failure but is counted per endpoint and code;
        anything else fails with a reason (HTTP code, timeout, connection error, body too
        large, bad body, ``redirect to <origin>``). ``REQUEST_TIMEOUT`` bounds the whole
        exchange (connect, send, headers and body, and the redirects followed); a body is read
        up to ``MAX_RESPONSE_BYTES`` and never held beyond.
        """
        runner = self.environment.runner
        if runner is not None and runner.state in _STOPPING:
            # a user that was waiting when the stop began (Locust's kill of it is on its way,
            # and would land in this request): send nothing more
            raise StopUser()
        payload = spec.json
        # bytes are sent as-is (Locust's annotation says str or dict; its client takes bytes)
        body: Any = orjson.dumps(payload) if payload is not None else None
        deadline = self._deadline
        deadline.again(_expire, getcurrent())  # from now: the loop's clock is brought up to date
        started = perf_counter()
        extra: dict[str, Any] = {}
        if self._trace:  # a fresh trace per request; the listener keeps the slowest by id
            traceparent, trace_id = new_traceparent()
            extra = {"headers": {"traceparent": traceparent}, "context": {"trace_id": trace_id}}
        lag_ms = 0.0
        if due is not None:  # open model: timed from the due time
            lag_ms = max(0.0, (started - due) * 1000.0)
            extra.setdefault("context", {})["lag_ms"] = lag_ms
            started = min(started, due)
        try:
            # stream=True: the body is read here, within the deadline and the size limit
            with self.client.request(
                spec.method,
                spec.url,
                name=spec.name,
                data=body,
                catch_response=True,
                stream=True,
                **extra,
            ) as response:  # the user's headers are the client's defaults (``on_start``)
                if lag_ms:
                    response.request_meta["response_time"] += lag_ms
                status = response.status_code or 0
                if status == 200:
                    content = self._read_body(response)
                    deadline.stop()  # before the with-block reports the request
                    if isinstance(content, str):
                        response.failure(content)
                        return None
                    return self._check_json(spec.name, response, content)
                ctx = self.run_context
                acceptable = status in ctx.settings.acceptable_status_codes
                if 300 <= status < 400 and not acceptable:
                    return self._redirected(spec, response, body, extra)
                deadline.stop()
                raw = response._response
                if raw is not None:
                    raw.release()  # this body is not read: its connection is kept only if done
                if acceptable:
                    response.success()
                    ctx.tally.acceptable_response(spec.name, status)
                    return None
                response.failure(failure_reason(status, getattr(response, "error", None)))
                return None
        except GreenletExit:
            # the run stopped this user mid-request (after the stop grace): the target has the
            # request, so it is counted, as a failure; Locust alone would drop it
            self.environment.events.request.fire(
                request_type=spec.method, name=spec.name,
                response_time=(perf_counter() - started) * 1000, response_length=0,
                exception=CatchResponseError(UNFINISHED), context={}, response=None, url=spec.url,
            )  # fmt: skip
            raise
        finally:
            deadline.stop()  # on the way out of an exception (the user being stopped)

    def _redirected(self, spec: RequestSpec, response: Any, body: Any, extra: Any) -> Any:
        """A 3xx answer to ``spec`` (``response``, the request's with-block): a failure naming
        where it pointed, or, with ``FOLLOW_REDIRECTS=same-origin`` and a ``Location`` within
        the target's origin, followed (307/308 with the method and the body, 301/302/303 for a
        GET or HEAD only) up to ``MAX_REDIRECTS`` times, the last answer classified as any.
        One request in the statistics, timed over every hop, within the one deadline. Nothing
        is ever sent to another origin."""
        deadline, meta = self._deadline, response.request_meta
        acceptable = self.run_context.settings.acceptable_status_codes
        answer, url, hops = response, meta["url"], 0
        headers = {**_ACCEPT_ENCODING, **extra.get("headers", {})}
        while True:  # ``answer`` is a 3xx that is not acceptable
            status = answer.status_code or 0
            found = answer.headers.get("location") if answer.headers is not None else None
            target = redirect_target(url, found)
            raw = answer._response
            if raw is not None:
                raw.release()  # the body of a redirect is not read
            origin = origin_of(target) if target else None
            reason = f"redirect to {origin}" if origin else "redirect"
            if target is None or not (
                self._follow and origin == self._origin and status in _FOLLOWED
            ):
                break
            if status not in _KEEP_METHOD and spec.method not in ("GET", "HEAD"):
                reason = f"{reason} ({status} would turn {spec.method} into GET)"
                break
            if hops == MAX_REDIRECTS:
                reason = f"too many redirects (more than {MAX_REDIRECTS})"
                break
            hops += 1
            started = perf_counter()
            answer = self.client._send_request_safe_mode(
                spec.method, target, payload=body if status in _KEEP_METHOD else None,
                headers=headers,
            )  # fmt: skip
            meta["response_time"] += (perf_counter() - started) * 1000
            url, status = target, answer.status_code or 0
            if not 300 <= status < 400 or status in acceptable:  # the last answer
                return self._after_redirects(spec, response, answer, status)
        deadline.stop()
        response.failure(reason)
        return None

    def _after_redirects(self, spec: RequestSpec, response: Any, answer: Any, status: int) -> Any:
        """The last answer of followed redirects, classified as ``_make_request`` does the
        first, and reported on ``response`` (the request's with-block)."""
        deadline, ctx = self._deadline, self.run_context
        if status == 200:
            answer.request_meta = response.request_meta  # ``_read_body`` adds its time there
            content = self._read_body(answer)
            deadline.stop()
            if isinstance(content, str):
                response.failure(content)
                return None
            return self._check_json(spec.name, response, content)
        deadline.stop()
        raw = answer._response
        if raw is not None:
            raw.release()
        if status in ctx.settings.acceptable_status_codes:
            response.success()
            ctx.tally.acceptable_response(spec.name, status)
            return None
        response.failure(failure_reason(status, getattr(answer, "error", None)))
        return None

    def _read_body(self, response: Any) -> bytes | bytearray | str:
        """The body of a 200, decoded; or the failure reason when it could not be had."""
        raw = response._response
        meta = response.request_meta
        limit = self._max_body
        if raw.message_complete:  # the common case: the body came with the headers
            data = raw.read()
        else:
            length = raw.content_length
            if length is not None and length > limit:
                raw.release()  # not read: the connection is closed
                return TOO_LARGE
            started = perf_counter()
            try:
                data = _read_capped(raw, limit)
            except _BODY_ERRORS as exc:  # the deadline (DeadlinePassed) is one of them
                raw.release()
                return failure_reason(0, exc)
            finally:  # Locust timed the headers (stream=True); the request's time is the body's
                meta["response_time"] += (perf_counter() - started) * 1000
            if data is None:
                return TOO_LARGE
        headers = response.headers
        if "content-encoding" in headers:  # (``in``: ``get`` raises and catches a KeyError)
            encoding = headers["content-encoding"]
            if not isinstance(encoding, str):  # the header more than once: codings stacked
                encoding = ", ".join(encoding)
            try:
                data = decode_body(data, encoding, limit)
            except ValueError as exc:
                return f"HTTP 200 with a body that does not decode ({exc})"
            if data is None:
                return TOO_LARGE
        elif len(data) > limit:
            return TOO_LARGE
        meta["response_length"] = len(data)
        return data

    def _check_json(self, name: str, response: Any, content: bytes | bytearray) -> Any:
        try:
            parsed = orjson.loads(content)
        except orjson.JSONDecodeError:
            response.failure("HTTP 200 with a body that is not JSON")
            return None
        required = _REQUIRED_KEYS.get(name, _NO_KEYS)
        # one C-level test for the common case: an object with every documented key
        if type(parsed) is not dict or not parsed.keys() >= required:
            missing = _missing_keys(name, parsed)
            response.failure(f"HTTP 200 without documented key(s) {missing}")
            return None
        response.success()
        return parsed


def _expire(greenlet: Any) -> None:
    """The request deadline's callback (in the event loop): the request's greenlet gets
    ``DeadlinePassed`` where it waits."""
    greenlet.throw(DeadlinePassed)


def _read_capped(raw: Any, limit: int) -> bytearray | None:
    """Read the rest of a body in blocks; ``None`` (and the connection closed) past ``limit``
    bytes, so that an endless or huge body is never held. Into one ``bytearray`` (which
    ``orjson`` parses as it is): a list joined at the end would need twice the memory."""
    body = bytearray()
    while True:
        block = raw.read(_READ_BLOCK)
        if not block:
            return body
        if len(body) + len(block) > limit:
            raw.release()  # the rest stays unread: the connection is closed
            return None
        body += block


def decode_body(data: bytes | bytearray, encoding: str, limit: int) -> bytes | bytearray | None:
    """``data`` decoded per its ``Content-Encoding``; ``None`` past ``limit`` decoded bytes (a
    small compressed body can inflate to gigabytes). ``ValueError`` for an unknown encoding
    or a body that does not decode."""
    kind = encoding.strip().lower()
    try:
        if kind in ("gzip", "x-gzip"):
            return _inflate(zlib.decompressobj(16 + zlib.MAX_WBITS), data, limit)
        if kind == "deflate":  # the zlib format as most servers send it, or raw deflate
            wbits = zlib.MAX_WBITS if data[:1] == b"\x78" else -zlib.MAX_WBITS
            return _inflate(zlib.decompressobj(wbits), data, limit)
        if kind == "br":
            out = brotli.Decompressor().process(data, output_buffer_limit=limit + 1)
            return None if len(out) > limit else out
        if kind == "identity":
            return None if len(data) > limit else data
    except (zlib.error, brotli.error) as exc:
        raise ValueError(f"{kind}: {exc}") from None
    raise ValueError(f"unknown Content-Encoding {encoding!r}")


def _inflate(decompressor: Any, data: bytes | bytearray, limit: int) -> bytes | None:
    out = decompressor.decompress(data, limit + 1)
    if len(out) > limit:
        return None
    if not decompressor.eof:
        raise zlib.error("incomplete compressed body")
    return out


def _missing_keys(name: str, parsed: Any) -> str:
    if not isinstance(parsed, dict):
        return "(not a JSON object)"
    required = _REQUIRED_KEYS.get(name)
    if not required:
        return ""
    missing = required.difference(parsed)
    return ", ".join(sorted(missing))
