"""Pydantic models of the API contract (docs/api-contract.md): request bodies (strict, unknown
keys rejected) and response shapes (used for the OpenAPI document).

Request bodies are validated with ``Model.model_validate_json`` straight from the raw bytes, which
runs in pydantic-core and keeps validation cheap enough for the 5,000 req/s target.
"""

from __future__ import annotations

import calendar
import re
from datetime import datetime
from functools import lru_cache
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from panacea_locust.contract import (
    BUNDLE_STATUSES,
    MAX_BUNDLE_IDS,
    MAX_PAGE_SIZE,
    MAX_QUESTION_CHARS,
    SFDC_CASE_PATTERN,
    BundleStatus,
    Component,
    HeatmapGroupBy,
    HistogramInterval,
    LogLevel,
    ReportSortBy,
    SortOrder,
)

# ---------------------------------------------------------------------------------------------
# Plain checks, shared by the models and by the hand-written query-string parsing.

#: The largest id or page number accepted anywhere (query or body): a signed 64-bit integer,
#: which every JSON encoder and database column of ids holds. The contract only says "positive
#: integer"; beyond this a number is a 400, never stored, so ``/__stats`` can always print it.
MAX_INT = 2**63 - 1
#: A field name quoted in a 400 is cut to this many characters (a key can be megabytes long).
_MAX_FIELD_CHARS = 64

_TIME_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?Z")
_CASE_RE = re.compile(SFDC_CASE_PATTERN)
_PATH_RE = re.compile(
    r"/users/[A-Za-z][A-Za-z0-9_-]*\.[A-Za-z][A-Za-z0-9_-]*/NTNX-Log-"
    r"(\d{4})-(\d{2})-(\d{2})-\d{5}-\d{1,12}-PE-([0-9.]{7,15})\.zip"
)


@lru_cache(maxsize=8192)
def parse_utc(value: str) -> float | None:
    """Seconds since the epoch for an ISO 8601 UTC time with a ``Z`` suffix, else None."""
    m = _TIME_RE.fullmatch(value)
    if m is None:
        return None
    y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
    try:
        datetime(y, mo, d, h, mi, s)
    except ValueError:
        return None
    frac = float(m.group(7)) if m.group(7) else 0.0
    return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) + frac


def is_private_ipv4(value: str) -> bool:
    """True for a dotted-quad IPv4 address in 10/8, 172.16/12 or 192.168/16."""
    parts = value.split(".")
    if len(parts) != 4:
        return False
    nums: list[int] = []
    for p in parts:
        if not (p.isascii() and p.isdigit()) or len(p) > 3 or (len(p) > 1 and p[0] == "0"):
            return False
        n = int(p)
        if n > 255:
            return False
        nums.append(n)
    a, b = nums[0], nums[1]
    return a == 10 or (a == 172 and 16 <= b <= 31) or (a == 192 and b == 168)


def is_sfdc_case_no(value: str) -> bool:
    return _CASE_RE.fullmatch(value) is not None


def bundle_path_problem(value: str) -> str | None:
    """Why ``value`` is not a remote log bundle path in the contract's format (None if it is)."""
    m = _PATH_RE.fullmatch(value)
    if m is None:
        return (
            "must look like /users/<first>.<last>/NTNX-Log-<YYYY-MM-DD>-<5 digits>-"
            "<unix seconds>-PE-<cvm ip>.zip"
        )
    try:
        datetime(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return "has an invalid date"
    if not is_private_ipv4(m.group(4)):
        return "has a CVM IP that is not a private-range IPv4 address"
    return None


# ---------------------------------------------------------------------------------------------
# Annotated field types.


def _check_time(v: str) -> str:
    if parse_utc(v) is None:
        raise ValueError("must be an ISO 8601 UTC time with a Z suffix, e.g. 2024-01-15T10:00:00Z")
    return v


def _check_ip(v: str) -> str:
    if not is_private_ipv4(v):
        raise ValueError("must be a private-range IPv4 address (10/8, 172.16/12, 192.168/16)")
    return v


def _check_case(v: str) -> str:
    if not is_sfdc_case_no(v):
        raise ValueError("must be exactly 9 digits")
    return v


def _check_path(v: str) -> str:
    problem = bundle_path_problem(v)
    if problem:
        raise ValueError(problem)
    return v


def _check_distinct(v: list[int]) -> list[int]:
    if len(set(v)) != len(v):
        raise ValueError("ids must be distinct")
    return v


PositiveId = Annotated[int, Field(gt=0, le=MAX_INT)]
UtcTime = Annotated[str, AfterValidator(_check_time), Field(examples=["2024-01-15T10:00:00Z"])]
CvmIp = Annotated[str, AfterValidator(_check_ip), Field(examples=["10.1.1.100"])]
SfdcCaseNo = Annotated[str, AfterValidator(_check_case), Field(examples=["012345678"])]
BundlePath = Annotated[
    str,
    AfterValidator(_check_path),
    Field(examples=["/users/john.doe/NTNX-Log-2024-01-15-12345-1705123456-PE-10.1.1.100.zip"]),
]
BundleIds = Annotated[
    list[PositiveId],
    Field(min_length=1, max_length=MAX_BUNDLE_IDS),
    AfterValidator(_check_distinct),
]
PageNo = Annotated[int, Field(ge=1, le=MAX_INT)]
PageSize = Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)]


def _end_after_start(end: str | None, info: ValidationInfo) -> str | None:
    start = info.data.get("start_time")
    if end is not None and start is not None:
        s, e = parse_utc(start), parse_utc(end)
        if s is not None and e is not None and e <= s:
            raise ValueError("must be after start_time")
    return end


class _Strict(BaseModel):
    """Contract bodies: no unknown keys, no type coercion (``"5"`` is not an id)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class LogFilters(_Strict):
    """``filters`` of the logs endpoints; every key optional (an empty list filters nothing)."""

    components: list[Component] | None = None
    log_levels: list[LogLevel] | None = None
    cvm_ips: list[CvmIp] | None = None
    start_time: UtcTime | None = None
    end_time: UtcTime | None = None
    search_log_string: str | None = None
    is_curated: bool | None = None

    @field_validator("end_time")
    @classmethod
    def _end_after_start(cls, end: str | None, info: ValidationInfo) -> str | None:
        return _end_after_start(end, info)


class AnalyzeRequest(_Strict):
    remote_log_bundle_path: BundlePath
    sfdc_case_no: SfdcCaseNo
    is_retry: bool


class SeverityCountRequest(_Strict):
    bundle_ids: BundleIds
    filters: LogFilters | None = None


class HistogramRequest(_Strict):
    bundle_ids: BundleIds
    interval: HistogramInterval
    filters: LogFilters | None = None


class HeatmapRequest(_Strict):
    bundle_ids: BundleIds
    group_by: HeatmapGroupBy
    filters: LogFilters | None = None


class SearchRequest(_Strict):
    bundle_ids: BundleIds
    page_size: PageSize
    page_no: PageNo
    filters: LogFilters | None = None


class AskAIRequest(_Strict):
    bundle_id: PositiveId
    question: Annotated[str, Field(min_length=1, max_length=MAX_QUESTION_CHARS)]


class ReportFilters(_Strict):
    sfdc_case_no: SfdcCaseNo | None = None
    bundle_ids: BundleIds | None = None
    status: (
        Annotated[list[BundleStatus], Field(min_length=1, max_length=len(BUNDLE_STATUSES))] | None
    ) = None
    start_time: UtcTime | None = None
    end_time: UtcTime | None = None

    @field_validator("end_time")
    @classmethod
    def _end_after_start(cls, end: str | None, info: ValidationInfo) -> str | None:
        return _end_after_start(end, info)


class ReportsRequest(_Strict):
    page_no: PageNo
    page_size: PageSize
    filters: ReportFilters | None = None
    sort_by: ReportSortBy | None = None
    sort_order: SortOrder | None = None


def describe_error(exc: ValidationError, prefix: str = "body") -> str:
    """One line naming the first offending field, e.g. ``body.filters.cvm_ips: must be ...``.

    List indexes are left out of the field name so that the reason is stable enough to be
    counted in ``/__stats``; a long key is cut (``_MAX_FIELD_CHARS``).
    """
    err = exc.errors(include_url=False, include_input=False)[0]
    parts = [prefix] + [_short(str(p)) for p in err["loc"] if not isinstance(p, int)]
    kind = err["type"]
    if kind == "extra_forbidden":
        msg = "unknown key"
    elif kind == "missing":
        msg = "field required"
    elif kind == "json_invalid":
        if "recursion limit" in str(err["msg"]):
            return f"{prefix}: JSON nested too deeply"
        return f"{prefix}: invalid JSON"
    elif kind in ("model_type", "dict_type", "model_attributes_type") and len(parts) == 1:
        return f"{prefix}: must be a JSON object"
    else:
        msg = str(err["msg"]).removeprefix("Value error, ")
    return f"{'.'.join(parts)}: {msg}"


def _short(name: str) -> str:
    return name if len(name) <= _MAX_FIELD_CHARS else name[: _MAX_FIELD_CHARS - 3] + "..."


# ---------------------------------------------------------------------------------------------
# Response shapes (documentation; the handlers build the same JSON directly with orjson).


class ErrorBody(BaseModel):
    detail: str


class AnalyzeResponse(BaseModel):
    bundle_id: int
    status: BundleStatus
    sfdc_case_no: str


class InfoResponse(BaseModel):
    bundle_id: int
    sfdc_case_no: str
    remote_log_bundle_path: str
    cvm_ips: list[str]
    components: list[str]
    start_time: str
    end_time: str
    total_lines: int


class SeverityCounts(BaseModel):
    fatal: int
    error: int
    warn: int
    info: int
    debug: int


class SeverityCountResponse(BaseModel):
    counts: SeverityCounts


class HistogramBucket(BaseModel):
    time: str
    count: int


class HistogramResponse(BaseModel):
    interval: HistogramInterval
    buckets: list[HistogramBucket]


class HeatmapResponse(BaseModel):
    rows: list[str]
    columns: list[str]
    values: list[list[int]]


class LogLine(BaseModel):
    bundle_id: int
    timestamp: str
    component: str
    log_level: str
    cvm_ip: str
    message: str


class SearchResponse(BaseModel):
    total: int
    page_no: int
    page_size: int
    results: list[LogLine]


class FilterOptionsResponse(BaseModel):
    components: list[str]
    log_levels: list[str]
    cvm_ips: list[str]


class Event(BaseModel):
    timestamp: str
    type: str
    severity: str
    component: str
    description: str


class EventsResponse(BaseModel):
    total: int
    events: list[Event]


class ReportSummaryResponse(BaseModel):
    bundle_id: int
    summary: str
    generated_at: str


class AskAIResponse(BaseModel):
    bundle_id: int
    answer: str
    sources: list[str]


class Report(BaseModel):
    bundle_id: int
    sfdc_case_no: str
    remote_log_bundle_path: str
    status: BundleStatus
    created_at: str


class ReportsResponse(BaseModel):
    total: int
    page_no: int
    page_size: int
    reports: list[Report]


class BundlePathsResponse(BaseModel):
    sfdc_case_no: str
    paths: list[str]
