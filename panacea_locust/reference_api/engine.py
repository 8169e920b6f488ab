"""Request handling for the twelve contract endpoints, independent of any web framework.

``Engine.handle`` takes what an ASGI scope holds (headers, query string, path parameter, body)
and returns (status, JSON bytes, seconds to wait). Both the lean ASGI fast path and the FastAPI
routes call it, so the two can never disagree.

Two kinds of refusal are kept apart: a :class:`Violation` is a request that breaks the contract
(400/401, counted in ``/__stats`` violations), a :class:`NotFound` names an id the data set does
not hold (404, a normal answer to a well-formed request, not counted as a violation).
"""

from __future__ import annotations

import logging
import zlib
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import add
from typing import TypeVar
from urllib.parse import unquote_plus

import orjson
from pydantic import BaseModel, ValidationError

from panacea_locust.contract import (
    COMPONENTS,
    ENDPOINTS,
    INTERVAL_SECONDS,
    LOG_LEVELS,
    MAX_BUNDLE_IDS,
    Endpoint,
)

from .behaviour import Behaviour
from .dataset import Dataset
from .models import (
    MAX_INT,
    AnalyzeRequest,
    AskAIRequest,
    HeatmapRequest,
    HistogramRequest,
    LogFilters,
    ReportsRequest,
    SearchRequest,
    SeverityCountRequest,
    describe_error,
    is_sfdc_case_no,
    parse_utc,
)
from .stats import SESSION_RE, SessionStats, Stats
from .synth import (
    BundleLogs,
    bucket_json,
    ip_key,
    iso,
    iter_bits,
    question_rng,
    search_page,
    template_text,
)

log = logging.getLogger("panacea_locust.reference_api")

_JSON_TYPES = (b"application/json",)
_MAX_DIGITS = len(str(MAX_INT))

Result = tuple[int, bytes]
M = TypeVar("M", bound=BaseModel)


class Violation(Exception):
    """A request that breaks the contract: answered with ``{"detail": reason}``."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class NotFound(Exception):
    """A well-formed request naming an unknown id: answered 404, not a contract violation."""

    def __init__(self, kind: str, ids: Sequence[object]) -> None:
        self.reason = f"{kind} {', '.join(str(i) for i in ids)} not found"
        super().__init__(self.reason)


def _detail(reason: str) -> bytes:
    return orjson.dumps({"detail": reason})


def _positive_int(raw: str, name: str) -> int:
    if not (raw.isascii() and raw.isdigit()) or int(raw[: _MAX_DIGITS + 1]) <= 0:
        raise Violation(f"query.{name}: must be a positive integer")
    if len(raw) > _MAX_DIGITS or int(raw) > MAX_INT:
        raise Violation(f"query.{name}: must be at most {MAX_INT}")
    return int(raw)


def header_problem(ep: Endpoint, h: dict[bytes, bytes]) -> Violation | None:
    """What is wrong with a request's headers (checked in the documented order), or None."""
    auth = h.get(b"authorization")
    if auth is None:
        return Violation("header Authorization: missing bearer token", 401)
    if auth[:7].lower() != b"bearer " or not auth[7:].strip():
        return Violation("header Authorization: malformed bearer token", 401)
    sid = h.get(b"x-session-id")
    if sid is None:
        return Violation("header X-Session-Id: missing")
    if SESSION_RE.fullmatch(sid) is None:
        return Violation("header X-Session-Id: must be 32 lowercase hex characters")
    if ep.method == "POST":
        ctype = h.get(b"content-type")
        if ctype is None or ctype.split(b";", 1)[0].strip().lower() not in _JSON_TYPES:
            return Violation("header Content-Type: must be application/json")
    return None


def _query(raw: bytes, allowed: tuple[str, ...]) -> dict[str, list[str]]:
    """Query parameters, only those ``allowed``; percent-decoding only when needed."""
    out: dict[str, list[str]] = {}
    if not raw:
        return out
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise Violation("query: malformed query string") from None
    for pair in text.split("&"):
        k, eq, v = pair.partition("=")
        if "%" in pair or "+" in pair:
            try:
                k, v = unquote_plus(k, errors="strict"), unquote_plus(v, errors="strict")
            except UnicodeDecodeError:
                raise Violation("query: malformed query string") from None
        if not eq or not k:
            raise Violation("query: malformed query string")
        if k not in allowed:
            raise Violation(f"query.{k[:40]}: unknown parameter")
        out.setdefault(k, []).append(v)
    return out


def _one_id(q: dict[str, list[str]], name: str) -> int:
    vals = q.get(name)
    if not vals:
        raise Violation(f"query.{name}: field required")
    if len(vals) > 1:
        raise Violation(f"query.{name}: given more than once")
    return _positive_int(vals[0], name)


def validate_body(model: type[M], body: bytes) -> M:
    """``body`` validated into ``model``, or a :class:`Violation` naming the first bad field."""
    if not body:
        raise Violation("body: missing JSON body")
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise Violation(describe_error(exc)) from None


#: how a route is called: (engine, query string, path parameter, body, session)
Call = Callable[["Engine", bytes, str | None, bytes, SessionStats], Result]


@dataclass(frozen=True, slots=True)
class Route:
    """How the engine answers one endpoint; one table (``ROUTES``) for all twelve."""

    call: Call
    model: type[BaseModel] | None = None  #: the JSON body's model; None: no body
    takes_query: bool = False  #: False: any query parameter is a violation


def _with_body(model: type[M], handler: Callable[[Engine, M, SessionStats], Result]) -> Route:
    """A route whose body is validated into ``model`` before ``handler`` sees it.

    Typed so that mypy checks each handler takes the model its table entry names.
    """

    def call(engine: Engine, q: bytes, p: str | None, body: bytes, s: SessionStats) -> Result:
        return handler(engine, validate_body(model, body), s)

    return Route(call, model)


class Engine:
    """The reference API's behaviour: validation, answers from the data set, stats, faults."""

    def __init__(self, dataset: Dataset, behaviour: Behaviour, stats: Stats | None = None):
        self.ds = dataset
        self.behaviour = behaviour
        self.stats = stats or Stats()
        self._summary: dict[int, bytes] = {}

    # -- entry point --------------------------------------------------------------------------

    def handle(
        self,
        ep: Endpoint,
        headers: Sequence[tuple[bytes, bytes]],
        query: bytes,
        path_param: str | None,
        body: bytes,
    ) -> tuple[int, bytes, float]:
        """Answer one request to a contract endpoint: (status, body, delay in seconds)."""
        h = dict(headers)  # ASGI header names are lower-case; the last duplicate wins
        sid = h.get(b"x-session-id")
        stats = self.stats
        session = stats.session(sid, h.get(b"user-agent")) if sid is not None else None
        delay = 0.0
        try:
            problem = header_problem(ep, h)
            if problem is not None:
                raise problem
            assert session is not None  # a well-formed X-Session-Id always has one
            route = ROUTES[ep.key]
            if query and not route.takes_query:
                _query(query, ())  # raises: this endpoint has no query parameters
            try:
                status, payload = route.call(self, query, path_param, body, session)
            except NotFound as nf:  # a normal answer: latency and faults apply as to a 200
                status, payload = 404, _detail(nf.reason)
            is_error, is_slow, delay = self.behaviour.decide(ep.path)
            if is_slow:
                stats.injected_slow += 1
            if is_error:
                stats.injected_errors += 1
                status, payload = 500, _detail("injected fault: internal server error")
        except Violation as v:
            stats.violation(v.reason)
            status, payload, delay = v.status, _detail(v.reason), 0.0
        except Exception:  # a bug must still answer, and be counted, not kill the connection
            log.exception("error while handling %s", ep.path)
            status, payload, delay = 500, _detail("internal error"), 0.0
        stats.record(ep.path, status)
        return status, payload, delay

    def refuse(self, ep: Endpoint, headers: Sequence[tuple[bytes, bytes]], v: Violation) -> bytes:
        """Count a request refused before its body was read (bad headers, too large) as
        ``handle`` counts any violation, and return the answer's body."""
        h = dict(headers)
        sid = h.get(b"x-session-id")
        if sid is not None:
            self.stats.session(sid, h.get(b"user-agent"))
        self.stats.violation(v.reason)
        self.stats.record(ep.path, v.status)
        return _detail(v.reason)

    # -- helpers ------------------------------------------------------------------------------

    def _known_logs(self, ids: Sequence[int]) -> list[BundleLogs]:
        """The bundles' logs; :class:`NotFound` naming every unknown id."""
        known = self.ds.bundle_by_id
        missing = [b for b in ids if b not in known]
        if missing:
            raise NotFound("bundle" if len(missing) == 1 else "bundles", missing)
        return [self.ds.logs(b) for b in ids]

    def _known_bundle(self, bid: int, s: SessionStats) -> None:
        """Note the id in the session, then :class:`NotFound` if the data set lacks it."""
        s.bundle_ids.add(bid)
        if bid not in self.ds.bundle_by_id:
            raise NotFound("bundle", [bid])

    def _selected(
        self, ids: Sequence[int], f: LogFilters | None, session: SessionStats
    ) -> list[tuple[BundleLogs, int]]:
        session.add_bundles(ids)
        return [(b, b.select(f)) for b in self._known_logs(ids)]

    # -- endpoints ----------------------------------------------------------------------------

    def _analyze(self, req: AnalyzeRequest, s: SessionStats) -> Result:
        rec = self.ds.by_path.get((req.remote_log_bundle_path, req.sfdc_case_no))
        if rec is None:
            bid = self.ds.new_bundle_id(req.remote_log_bundle_path, req.sfdc_case_no)
            status = "queued"
        else:
            bid, status = rec.bundle_id, "queued" if req.is_retry else rec.status
        return 200, orjson.dumps(
            {"bundle_id": bid, "status": status, "sfdc_case_no": req.sfdc_case_no}
        )

    def _info(self, q: bytes, p: str | None, body: bytes, s: SessionStats) -> Result:
        bid = _one_id(_query(q, ("bundle_id",)), "bundle_id")
        self._known_bundle(bid, s)
        rec = self.ds.bundle_by_id[bid]
        bl = self.ds.logs(bid)
        if bl.info_json is None:
            bl.info_json = orjson.dumps(
                {
                    "bundle_id": bid,
                    "sfdc_case_no": rec.sfdc_case_no,
                    "remote_log_bundle_path": rec.remote_log_bundle_path,
                    "cvm_ips": [ip for _, ip in sorted(bl.ip_keys)],
                    "components": bl.components,
                    "start_time": iso(bl.ts[0]),
                    "end_time": iso(bl.ts[-1]),
                    "total_lines": bl.n,
                }
            )
        return 200, bl.info_json

    def _severity_count(self, req: SeverityCountRequest, s: SessionStats) -> Result:
        parts = self._selected(req.bundle_ids, req.filters, s)
        counts = dict.fromkeys(LOG_LEVELS, 0)
        for b, m in parts:
            b.severity(m, counts)
        return 200, orjson.dumps({"counts": counts})

    def _histogram(self, req: HistogramRequest, s: SessionStats) -> Result:
        parts = self._selected(req.bundle_ids, req.filters, s)
        interval = INTERVAL_SECONDS[req.interval]
        parts = sorted(((b, m) for b, m in parts if m), key=lambda p: p[0].ts[0])
        disjoint = all(
            parts[k][0].ts[0] - parts[k][0].ts[0] % interval > parts[k - 1][0].ts[-1]
            for k in range(1, len(parts))
        )
        chunks: list[bytes] = []
        if disjoint:  # buckets never shared: serialise bundle by bundle, reuse full ones
            chunks = [b.histogram_json(m, interval) for b, m in parts]
        else:
            counts: dict[int, int] = {}
            for b, m in parts:
                for t, c in b.histogram(m, interval):
                    counts[t] = counts.get(t, 0) + c
            chunks = [bucket_json(t, counts[t]) for t in sorted(counts)]
        return 200, b'{"interval":"%s","buckets":[%s]}' % (req.interval.encode(), b",".join(chunks))

    def _heatmap(self, req: HeatmapRequest, s: SessionStats) -> Result:
        parts = self._selected(req.bundle_ids, req.filters, s)
        levels = list(LOG_LEVELS)
        if req.group_by == "cvm_ip":
            by_ip: dict[str, list[int]] = {}
            for b, m in parts:
                if not m:
                    continue
                cells = b.heatmap_cells(m, "cvm_ip")
                for k, ip in enumerate(b.cvm_ips):
                    row = cells[k * 5 : k * 5 + 5]
                    if any(row):
                        old = by_ip.get(ip)
                        by_ip[ip] = row if old is None else list(map(add, old, row))
            rows = sorted(by_ip, key=ip_key)
            return 200, orjson.dumps(
                {"rows": rows, "columns": levels, "values": [by_ip[ip] for ip in rows]}
            )
        total: list[int] | None = None
        for b, m in parts:
            if m:
                cells = b.heatmap_cells(m, "component")
                total = cells if total is None else list(map(add, total, cells))
        grid = [total[c * 5 : c * 5 + 5] for c in range(len(COMPONENTS))] if total else []
        present = sorted((name, c) for c, name in enumerate(COMPONENTS) if grid and any(grid[c]))
        if req.group_by == "component":
            return 200, orjson.dumps(
                {
                    "rows": [name for name, _ in present],
                    "columns": levels,
                    "values": [grid[c] for _, c in present],
                }
            )
        rows_idx = [li for li in range(5) if any(grid[c][li] for _, c in present)]
        return 200, orjson.dumps(
            {
                "rows": [LOG_LEVELS[li] for li in rows_idx],
                "columns": [name for name, _ in present],
                "values": [[grid[c][li] for _, c in present] for li in rows_idx],
            }
        )

    def _search(self, req: SearchRequest, s: SessionStats) -> Result:
        parts = self._selected(req.bundle_ids, req.filters, s)
        total = sum(m.bit_count() for _, m in parts)
        offset = (req.page_no - 1) * req.page_size
        page = search_page(parts, total, offset, req.page_size)
        return 200, orjson.dumps(
            {
                "total": total,
                "page_no": req.page_no,
                "page_size": req.page_size,
                "results": orjson.Fragment(b"[" + b",".join(page) + b"]"),
            }
        )

    def _filter_options(self, q: bytes, p: str | None, body: bytes, s: SessionStats) -> Result:
        vals = _query(q, ("bundle_ids",)).get("bundle_ids")
        if not vals:
            raise Violation("query.bundle_ids: field required")
        if len(vals) > MAX_BUNDLE_IDS:
            raise Violation(f"query.bundle_ids: at most {MAX_BUNDLE_IDS} ids")
        ids = [_positive_int(v, "bundle_ids") for v in vals]
        if len(set(ids)) != len(ids):
            raise Violation("query.bundle_ids: ids must be distinct")
        s.add_bundles(ids)
        logs = self._known_logs(ids)
        comps: set[str] = set()
        levels: set[str] = set()
        ips: set[tuple[tuple[int, ...], str]] = set()
        for b in logs:
            comps.update(b.comp_mask)
            levels |= b.levels_present
            ips.update(b.ip_keys)
        return 200, orjson.dumps(
            {
                "components": sorted(comps),
                "log_levels": [lvl for lvl in LOG_LEVELS if lvl in levels],
                "cvm_ips": [ip for _, ip in sorted(ips)],
            }
        )

    def _events(self, q: bytes, p: str | None, body: bytes, s: SessionStats) -> Result:
        query = _query(q, ("bundle_id", "combo_id"))
        if ("bundle_id" in query) == ("combo_id" in query):
            raise Violation(
                "query.bundle_id|combo_id: exactly one of bundle_id and combo_id is required"
            )
        if "bundle_id" in query:
            bid = _one_id(query, "bundle_id")
            self._known_bundle(bid, s)
            bl = self.ds.logs(bid)
            if bl.events_json is None:
                bl.events_json = orjson.dumps({"total": len(bl.events), "events": bl.events})
            return 200, bl.events_json
        cid = _one_id(query, "combo_id")
        s.combo_ids.add(cid)
        if cid not in self.ds.combo_by_id:
            raise NotFound("combo", [cid])
        return 200, self.ds.combo_events_json(cid)

    def _report_summary(self, q: bytes, p: str | None, body: bytes, s: SessionStats) -> Result:
        bid = _one_id(_query(q, ("bundle_id",)), "bundle_id")
        self._known_bundle(bid, s)
        found = self._summary.get(bid)
        if found is None:
            found = self._summary[bid] = self._make_summary(bid)
        return 200, found

    def _make_summary(self, bid: int) -> bytes:
        rec, b = self.ds.bundle_by_id[bid], self.ds.logs(bid)
        c = {lvl: m.bit_count() for lvl, m in b.lvl_mask.items()}
        bad = b.lvl_mask["fatal"] | b.lvl_mask["error"]
        worst = sorted(b.comp_mask, key=lambda k: (-(b.comp_mask[k] & bad).bit_count(), k))[:2]
        critical = sum(1 for e in b.events if e["severity"] == "critical")
        summary = (
            f"Bundle {bid} (SFDC case {rec.sfdc_case_no}) holds {b.n} log lines from "
            f"{len(b.cvm_ips)} CVMs between {iso(b.ts[0])} and {iso(b.ts[-1])}. "
            f"It has {c['fatal']} fatal, {c['error']} error and {c['warn']} warning lines; "
            f"most errors come from {' and '.join(worst)}. {len(b.events)} cluster events were "
            f"recorded, {critical} of them critical."
        )
        generated = b.created_ts + 300 + zlib.crc32(f"{self.ds.seed}:{bid}".encode()) % 3300
        return orjson.dumps({"bundle_id": bid, "summary": summary, "generated_at": iso(generated)})

    def _ask_ai(self, req: AskAIRequest, s: SessionStats) -> Result:
        bid = req.bundle_id
        self._known_bundle(bid, s)
        b = self.ds.logs(bid)
        text = req.question.lower()
        comps = [c for c in b.comp_mask if c in text]
        levels = [lvl for lvl in LOG_LEVELS if lvl in text] or ["fatal", "error"]
        m = 0
        for lvl in levels:
            m |= b.lvl_mask[lvl]
        if comps:
            cm = 0
            for c in comps:
                cm |= b.comp_mask[c]
            m &= cm
        if not m:
            m = b.lvl_mask["warn"] or b.full
        by_tmpl: dict[int, list[int]] = {}
        for i in iter_bits(m):
            by_tmpl.setdefault(b.tmpl[i], []).append(i)
        top, lines = max(by_tmpl.items(), key=lambda kv: (len(kv[1]), -kv[0]))
        rng = question_rng(self.ds.seed, bid, req.question)
        first = lines[0]
        opener = rng.choice(("Looking at", "Based on", "From"))
        scope = f" in {', '.join(comps)}" if comps else ""
        answer = (
            f"{opener} {m.bit_count()} {'/'.join(levels)} lines{scope} of bundle {bid}, the most "
            f'frequent pattern is "{template_text(top)}" ({len(lines)} times, first at '
            f"{iso(b.ts[first])} on {b.cvm_ips[b.ip[first]]}). "
            f"{rng.choice(_ADVICE)}"
        )
        picks = sorted(rng.sample(lines, min(3, len(lines))))
        sources = [
            f"{b.cvm_ips[b.ip[i]]} {COMPONENTS[b.comp[i]]} {iso(b.ts[i])}: {b.msg[i]}"
            for i in picks
        ]
        return 200, orjson.dumps({"bundle_id": bid, "answer": answer, "sources": sources})

    def _reports(self, req: ReportsRequest, s: SessionStats) -> Result:
        f = req.filters
        ds = self.ds
        created = ds.created_ts
        statuses = frozenset(f.status) if f is not None and f.status else None
        lo = parse_utc(f.start_time) if f is not None and f.start_time else None
        hi = parse_utc(f.end_time) if f is not None and f.end_time else None
        if f is not None and (f.bundle_ids or f.sfdc_case_no):
            if f.bundle_ids:
                s.add_bundles(f.bundle_ids)
                by_id = ds.bundle_by_id
                found = [by_id[b] for b in f.bundle_ids if b in by_id]
            else:
                found = list(ds.bundles_by_case.get(f.sfdc_case_no or "", ()))
            case = f.sfdc_case_no
            cands = sorted(
                (
                    r
                    for r in found
                    if (case is None or r.sfdc_case_no == case)
                    and (statuses is None or r.status in statuses)
                    and (lo is None or created[r.bundle_id] >= lo)
                    and (hi is None or created[r.bundle_id] <= hi)
                ),
                key=lambda r: (created[r.bundle_id], r.bundle_id),
            )
        else:  # the whole table: pre-sorted per status set, time range by bisection
            cands, times = ds.reports_by_created(statuses)
            if lo is not None or hi is not None:
                i = bisect_left(times, lo) if lo is not None else 0
                j = bisect_right(times, hi) if hi is not None else len(times)
                cands = cands[i:j]
        desc = (req.sort_order or "desc") == "desc"
        if req.sort_by == "bundle_id":
            ordered = sorted(cands, key=lambda r: r.bundle_id, reverse=desc)
        else:
            ordered = cands[::-1] if desc else cands
        offset = (req.page_no - 1) * req.page_size
        page = ordered[offset : offset + req.page_size]
        reports = b"[" + b",".join([ds.report_json[r.bundle_id] for r in page]) + b"]"
        return 200, b'{"total":%d,"page_no":%d,"page_size":%d,"reports":%s}' % (
            len(ordered),
            req.page_no,
            req.page_size,
            reports,
        )

    def _by_sfdc_case(self, q: bytes, p: str | None, body: bytes, s: SessionStats) -> Result:
        case = p or ""
        if not is_sfdc_case_no(case):
            raise Violation("path.sfdc_case_no: must be exactly 9 digits")
        found = self.ds.paths_json.get(case)
        if found is None:
            raise NotFound("sfdc case", [case])
        return 200, found


_ADVICE = (
    "Check the CVM's service logs around that time and whether the pattern repeats after the "
    "last restart.",
    "This usually points at a resource problem on the CVM; compare disk and memory usage "
    "across CVMs.",
    "Correlate it with the cluster events of the same window before escalating.",
)


#: endpoint key -> how it is answered: the one table of models, handlers and query rules
ROUTES: dict[str, Route] = {
    "LOGS_ANALYZE": _with_body(AnalyzeRequest, Engine._analyze),
    "LOGS_INFO": Route(Engine._info, takes_query=True),
    "LOGS_SEVERITY_COUNT": _with_body(SeverityCountRequest, Engine._severity_count),
    "LOGS_HISTOGRAM": _with_body(HistogramRequest, Engine._histogram),
    "LOGS_HEATMAP": _with_body(HeatmapRequest, Engine._heatmap),
    "LOGS_SEARCH": _with_body(SearchRequest, Engine._search),
    "LOGS_FILTER_OPTIONS": Route(Engine._filter_options, takes_query=True),
    "EVENTS": Route(Engine._events, takes_query=True),
    "AI_REPORT_SUMMARY": Route(Engine._report_summary, takes_query=True),
    "AI_ASK_AI": _with_body(AskAIRequest, Engine._ask_ai),
    "REPORTS": _with_body(ReportsRequest, Engine._reports),
    "BUNDLE_PATHS_BY_CASE": Route(Engine._by_sfdc_case),
}
assert list(ROUTES) == [e.key for e in ENDPOINTS]
#: endpoint key -> its request body's model (the OpenAPI document names them)
REQUEST_MODELS: dict[str, type[BaseModel]] = {
    k: r.model for k, r in ROUTES.items() if r.model is not None
}
