"""The ASGI application: a FastAPI app, fronted by a lean ASGI dispatcher for the hot path.

FastAPI declares all twelve contract routes (so ``/openapi.json`` and ``/docs`` describe them)
and serves the introspection routes. Its routing and middleware stack cost several times more
than the work of answering a request, so requests to the contract endpoints are dispatched by an
exact-path dictionary lookup in ``ReferenceAPI.__call__`` straight to ``Engine.handle``, the same
function the FastAPI routes call. ``fast_path=False`` routes everything through FastAPI instead.

Whatever the route, this layer reads request bodies, and only up to ``Limits.max_body_bytes``:
a contract request's headers (token, session, content type, ``Content-Length``) are judged
before a byte of its body is read, so a refused or oversize request costs no memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from enum import Enum
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError

from panacea_locust import __version__
from panacea_locust.contract import (
    ENDPOINTS,
    MAX_BUNDLE_IDS,
    PATH_PARAM_PREFIX,
    SESSION_ID_PATTERN,
    SFDC_CASE_PATTERN,
    Endpoint,
)

from . import models as m
from .behaviour import ConfigChange
from .capacity import Gate, Limits
from .engine import REQUEST_MODELS, Engine, Violation, header_problem
from .stats import stats_json

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_JSON_HEADER = (b"content-type", b"application/json")
_CLOSE_HEADER = (b"connection", b"close")
_SHUTTING_DOWN = orjson.dumps({"detail": "server shutting down"})


class _TooLarge(Exception):
    """The body went past the limit while being read."""


class _Gone(Exception):
    """The client went away before its body was read."""


#: endpoint key -> the model documenting its 200 body
_RESPONSE_MODELS: dict[str, type[BaseModel]] = {
    "LOGS_ANALYZE": m.AnalyzeResponse,
    "LOGS_INFO": m.InfoResponse,
    "LOGS_SEVERITY_COUNT": m.SeverityCountResponse,
    "LOGS_HISTOGRAM": m.HistogramResponse,
    "LOGS_HEATMAP": m.HeatmapResponse,
    "LOGS_SEARCH": m.SearchResponse,
    "LOGS_FILTER_OPTIONS": m.FilterOptionsResponse,
    "EVENTS": m.EventsResponse,
    "AI_REPORT_SUMMARY": m.ReportSummaryResponse,
    "AI_ASK_AI": m.AskAIResponse,
    "REPORTS": m.ReportsResponse,
    "BUNDLE_PATHS_BY_CASE": m.BundlePathsResponse,
}
_ID_PARAM = {"type": "integer", "minimum": 1}
_BUNDLE_ID_PARAM = {"name": "bundle_id", "in": "query", "required": True, "schema": _ID_PARAM}
#: endpoint key -> its documented query or path parameters
_PARAMS: dict[str, list[dict[str, Any]]] = {
    "LOGS_INFO": [_BUNDLE_ID_PARAM],
    "AI_REPORT_SUMMARY": [_BUNDLE_ID_PARAM],
    "LOGS_FILTER_OPTIONS": [
        {
            "name": "bundle_ids",
            "in": "query",
            "required": True,
            "style": "form",
            "explode": True,
            "schema": {
                "type": "array",
                "items": _ID_PARAM,
                "minItems": 1,
                "maxItems": MAX_BUNDLE_IDS,
                "uniqueItems": True,
            },
        }
    ],
    "EVENTS": [
        {
            "name": "bundle_id",
            "in": "query",
            "required": False,
            "schema": _ID_PARAM,
            "description": "exactly one of bundle_id and combo_id",
        },
        {
            "name": "combo_id",
            "in": "query",
            "required": False,
            "schema": _ID_PARAM,
            "description": "exactly one of bundle_id and combo_id",
        },
    ],
    "BUNDLE_PATHS_BY_CASE": [
        {
            "name": "sfdc_case_no",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "pattern": f"^{SFDC_CASE_PATTERN}$"},
        }
    ],
}
_SESSION_PARAM = {
    "name": "X-Session-Id",
    "in": "header",
    "required": True,
    "schema": {"type": "string", "pattern": f"^{SESSION_ID_PATTERN}$"},
}


def _json(status: int, payload: Any) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")


async def _send(send: Send, status: int, payload: bytes, *, close: bool = False) -> None:
    headers = [_JSON_HEADER, (b"content-length", str(len(payload)).encode())]
    if close:  # the rest of an unread body is not worth reading: end the connection
        headers.append(_CLOSE_HEADER)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def _body_announced(headers: list[tuple[bytes, bytes]]) -> tuple[bool, int | None]:
    """(does a body follow?, the size ``Content-Length`` announces or None: chunked, none)."""
    for name, value in headers:
        if name == b"content-length":
            return value != b"0", int(value) if value.isdigit() else None
        if name == b"transfer-encoding":
            return True, None
    return False, None


async def _read_body(receive: Receive, limit: int) -> bytes:
    """The request body, read only up to ``limit`` bytes (:class:`_TooLarge` past it), whether
    or not a ``Content-Length`` announced it."""
    chunks: list[bytes] = []
    size = 0
    while True:
        msg = await receive()
        if msg["type"] != "http.request":
            raise _Gone
        chunk = msg.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not msg.get("more_body"):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """An ASGI receive giving ``body`` (already read) once, then the client's own events."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


class ReferenceAPI:
    """The ASGI callable uvicorn serves (see the module docstring)."""

    def __init__(
        self, engine: Engine, *, fast_path: bool = True, limits: Limits | None = None
    ) -> None:
        self.engine = engine
        self.fast_path = fast_path
        self.limits = limits = limits or Limits()
        self.gate = Gate(limits.max_concurrency)
        self.routes: dict[tuple[str, str], Endpoint] = {
            (e.method, e.path): e for e in ENDPOINTS if "{" not in e.path
        }
        self.sfdc_endpoint = next(e for e in ENDPOINTS if e.path.startswith(PATH_PARAM_PREFIX))
        self.too_large = Violation(f"body: larger than {limits.max_body_bytes} bytes", 413)
        self.fastapi = build_fastapi(self)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.fastapi(scope, receive, send)
            return
        path: str = scope["path"]
        method: str = scope["method"]
        ep = self.routes.get((method, path))
        param = None
        if ep is None and path.startswith(PATH_PARAM_PREFIX) and method == "GET":
            param = path[len(PATH_PARAM_PREFIX) :]
            if param and "/" not in param:
                ep = self.sfdc_endpoint
        try:
            if ep is not None:
                await self._contract(ep, param, scope, receive, send)
                return
            limit = self.limits.max_body_bytes
            has_body, length = _body_announced(scope["headers"])
            if length is not None and length > limit:
                raise _TooLarge
            body = await _read_body(receive, limit) if has_body else b""
            await self.fastapi(scope, _replay(body, receive), send)
        except _TooLarge:
            await _send(send, 413, orjson.dumps({"detail": self.too_large.reason}), close=True)
        except _Gone:
            return

    async def _contract(
        self, ep: Endpoint, param: str | None, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """A contract request: headers judged first, then the body read within the limit,
        then a slot (``--max-concurrency``), the answer and its latency."""
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        has_body, length = _body_announced(headers)
        if has_body or ep.method == "POST":  # a GET without a body: the engine checks all
            problem = header_problem(ep, dict(headers))
            if problem is None and length is not None and length > self.limits.max_body_bytes:
                problem = self.too_large
            if problem is not None:
                payload = self.engine.refuse(ep, headers, problem)
                await _send(send, problem.status, payload, close=has_body)
                return
        body = b""
        if ep.method == "POST":
            try:
                body = await _read_body(receive, self.limits.max_body_bytes)
            except _TooLarge:
                payload = self.engine.refuse(ep, headers, self.too_large)
                await _send(send, 413, payload, close=True)
                return
        if not self.fast_path:
            await self.fastapi(scope, _replay(body, receive), send)
            return
        try:
            answer = await self.serve(ep, headers, scope["query_string"], param, body, receive)
        except asyncio.CancelledError:
            await _send(send, 503, _SHUTTING_DOWN, close=True)
            return  # uvicorn cancels requests still running when the drain time is up
        if answer is not None:  # a GET's unread body is not worth draining: close after it
            await _send(send, *answer, close=has_body and ep.method == "GET")

    async def serve(
        self,
        ep: Endpoint,
        headers: list[tuple[bytes, bytes]],
        query: bytes,
        param: str | None,
        body: bytes,
        receive: Receive,
    ) -> tuple[int, bytes] | None:
        """(status, body) of one contract request, once it has a slot; None if its client
        left while it waited for one."""
        gate = self.gate
        if not gate.enter_now() and not await gate.enter_queued(receive):
            return None
        try:
            status, payload, delay = self.engine.handle(ep, headers, query, param, body)
            if delay > 0:
                await asyncio.sleep(delay)
            return status, payload
        finally:
            gate.leave()


def _route_handler(api: ReferenceAPI, ep: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    async def handler(request: Request) -> Response:
        body = await request.body() if ep.method == "POST" else b""
        param = request.path_params.get("sfdc_case_no")
        scope = request.scope
        try:
            answer = await api.serve(
                ep, scope["headers"], scope["query_string"], param, body, request.receive
            )
        except asyncio.CancelledError:
            return Response(_SHUTTING_DOWN, 503, {"connection": "close"}, "application/json")
        if answer is None:  # the client left while queued: nobody reads this
            return Response(b"", 499)
        return Response(answer[1], status_code=answer[0], media_type="application/json")

    handler.__name__ = ep.alias.replace("-", "_")
    return handler


def build_fastapi(api: ReferenceAPI) -> FastAPI:
    """The FastAPI app: the contract routes (documented from the models) and introspection."""
    engine = api.engine
    app = FastAPI(
        title="Panacea API (reference server)",
        version=__version__,
        description="Local stand-in for the Panacea insights API, from the API contract "
        "(docs/api-contract.md). "
        "Introspection: GET /__stats, POST /__stats/reset, GET/POST /__config.",
    )
    errors: dict[int | str, dict[str, Any]] = {
        str(code): {"model": m.ErrorBody, "description": text}
        for code, text in (
            (400, "the request broke the contract"),
            (401, "no or bad bearer token"),
            (404, "unknown bundle, combo or case"),
            (500, "injected fault"),
        )
    }
    for ep in ENDPOINTS:
        extra: dict[str, Any] = {
            "parameters": [_SESSION_PARAM, *_PARAMS.get(ep.key, [])],
            "security": [{"bearerAuth": []}],
        }
        req_model = REQUEST_MODELS.get(ep.key)
        if req_model is not None:
            extra["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"$ref": f"#/components/schemas/{req_model.__name__}"}
                    }
                },
            }
        app.add_api_route(
            ep.path,
            _route_handler(api, ep),
            methods=[ep.method],
            name=ep.alias,
            summary=ep.alias,
            tags=[ep.path.split("/")[3]],
            responses={"200": {"model": _RESPONSE_MODELS[ep.key]}, **errors},
            openapi_extra=extra,
        )

    async def stats() -> Response:
        doc = engine.stats.snapshot()
        doc["concurrency"] = api.gate.describe()
        return Response(stats_json(doc), media_type="application/json")

    async def stats_reset() -> Response:
        engine.stats.reset()
        api.gate.reset()
        return _json(200, {"reset": True})

    async def get_config() -> Response:
        return _json(200, engine.behaviour.describe())

    async def post_config(request: Request) -> Response:
        try:
            change = ConfigChange.model_validate_json(await request.body() or b"{}")
            engine.behaviour.apply(change)
        except ValidationError as exc:
            return _json(400, {"detail": m.describe_error(exc)})
        except ValueError as exc:
            return _json(400, {"detail": f"body.endpoints: {exc}"})
        return _json(200, engine.behaviour.describe())

    async def health() -> Response:
        ds = engine.ds
        return _json(
            200,
            {
                "status": "ok",
                "seed": ds.seed,
                "bundles": len(ds.bundles),
                "combos": len(ds.combos),
                "sfdc_cases": len(ds.sfdc_cases),
            },
        )

    intro: list[str | Enum] = ["introspection"]
    app.add_api_route(
        "/__stats", stats, methods=["GET"], tags=intro, summary="what the server received"
    )
    app.add_api_route(
        "/__stats/reset", stats_reset, methods=["POST"], tags=intro, summary="clear the stats"
    )
    app.add_api_route(
        "/__config",
        get_config,
        methods=["GET"],
        tags=intro,
        summary="current latency and fault settings",
    )
    app.add_api_route(
        "/__config",
        post_config,
        methods=["POST"],
        tags=intro,
        summary="change latency and fault settings live",
        openapi_extra={
            "requestBody": {
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/ConfigChange"}}
                }
            }
        },
    )
    app.add_api_route("/__health", health, methods=["GET"], tags=intro, summary="liveness")

    async def no_422(request: Request, exc: Exception) -> Response:
        # no route declares typed parameters, but never let FastAPI's 422 leak anyway
        first = exc.errors()[0] if isinstance(exc, RequestValidationError) else {}
        field = ".".join(str(p) for p in first.get("loc", ()) if not isinstance(p, int))
        return _json(400, {"detail": f"{field or 'request'}: {first.get('msg', 'invalid')}"})

    app.add_exception_handler(RequestValidationError, no_422)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        doc = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        extra_models: list[type[BaseModel]] = [*REQUEST_MODELS.values(), ConfigChange]
        for model in extra_models:
            js = model.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(js.pop("$defs", {}))
            schemas[model.__name__] = js
        doc["components"]["securitySchemes"] = {"bearerAuth": {"type": "http", "scheme": "bearer"}}
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
    return app
