"""The Panacea API contract: the twelve insights endpoints, their enums, limits and reference names.

One fact, one place: the load side, the reference API, the database code and the benchmarks
take endpoints, weights, enums, limits and the reference ClickHouse names from here, so a
change in the real API is one edit. Pure data and stdlib: no Locust, gevent, pydantic or
FastAPI import, so both sides (and the layer test) can rely on it being cheap and neutral.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Literal, get_args

# --- endpoints ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One insights endpoint of the contract, and its defaults."""

    key: str  #: settings prefix: ``<KEY>_PATH`` and ``<KEY>_WEIGHT``
    alias: str  #: short name the reference API accepts (``--fault search=...``, /__config)
    method: str
    path: str  #: the contract's path; ``{name}`` marks a path parameter; the stats row name
    weight: int  #: the contract's default task weight
    analytics_weight: int  #: weight for AnalyticsUser (logs analytics and reports weighted up)
    response_keys: frozenset[str]  #: keys a documented 200 body always has


def _keys(*names: str) -> frozenset[str]:
    return frozenset(names)


#: The twelve endpoints, in the contract's order.
ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("LOGS_ANALYZE", "analyze", "POST", "/api/v1/logs/analyze", 3, 1,
             _keys("bundle_id", "status", "sfdc_case_no")),
    Endpoint("LOGS_INFO", "info", "GET", "/api/v1/logs/info", 4, 2,
             _keys("bundle_id", "sfdc_case_no", "total_lines")),
    Endpoint("LOGS_SEVERITY_COUNT", "severity-count", "POST", "/api/v1/logs/severity-count", 3, 8,
             _keys("counts")),
    Endpoint("LOGS_HISTOGRAM", "histogram", "POST", "/api/v1/logs/histogram", 2, 8,
             _keys("interval", "buckets")),
    Endpoint("LOGS_HEATMAP", "heatmap", "POST", "/api/v1/logs/heatmap", 2, 8,
             _keys("rows", "columns", "values")),
    Endpoint("LOGS_SEARCH", "search", "POST", "/api/v1/logs/search", 3, 8,
             _keys("total", "page_no", "page_size", "results")),
    Endpoint("LOGS_FILTER_OPTIONS", "filter-options", "GET", "/api/v1/logs/filter-options", 2, 2,
             _keys("components", "log_levels", "cvm_ips")),
    Endpoint("EVENTS", "events", "GET", "/api/v1/events", 2, 1, _keys("total", "events")),
    Endpoint("AI_REPORT_SUMMARY", "report_summary", "GET", "/api/v1/ai/report_summary", 1, 1,
             _keys("bundle_id", "summary")),
    Endpoint("AI_ASK_AI", "ask-ai", "POST", "/api/v1/ai/ask-ai", 1, 1,
             _keys("bundle_id", "answer")),
    Endpoint("REPORTS", "reports", "POST", "/api/v1/reports", 2, 6, _keys("total", "reports")),
    Endpoint("BUNDLE_PATHS_BY_CASE", "by-sfdc-case", "GET",
             "/api/v1/log-bundle-paths/by-sfdc-case/{sfdc_case_no}", 1, 1,
             _keys("sfdc_case_no", "paths")),
)  # fmt: skip
ENDPOINTS_BY_KEY: dict[str, Endpoint] = {e.key: e for e in ENDPOINTS}
#: endpoints that may cost money per call on a real deployment (a model behind them): capped
#: by ``AI_MAX_RPS``
COSTLY_KEYS: frozenset[str] = frozenset({"AI_REPORT_SUMMARY", "AI_ASK_AI"})
#: The one endpoint with a path parameter is routed by this prefix (the parameter follows it).
PATH_PARAM_PREFIX = "/api/v1/log-bundle-paths/by-sfdc-case/"
_BY_NAME: dict[str, Endpoint] = {
    **{e.path: e for e in ENDPOINTS},
    **{e.alias: e for e in ENDPOINTS},
    **{e.path.removeprefix("/api/v1"): e for e in ENDPOINTS},
}


def resolve_endpoint(name: str) -> Endpoint:
    """Map a user-given endpoint name (contract path, path without ``/api/v1``, or alias).

    Raises ValueError listing the aliases, so a typo in ``--fault`` or ``/__config`` is one line.
    """
    name = name.strip()
    found = _BY_NAME.get(name)
    if found is None:
        choices = ", ".join(e.alias for e in ENDPOINTS)
        raise ValueError(f"unknown endpoint {name!r} (use a contract path or one of: {choices})")
    return found


# --- enums: Literal types for the models, tuples (``get_args``) for code that draws or counts ---

LogLevel = Literal["fatal", "error", "warn", "info", "debug"]
Component = Literal[
    "acropolis", "stargate", "cassandra", "curator", "cerebro", "zookeeper", "prism", "genesis",
    "hades", "uhura", "ergon", "lazan", "arithmos", "pithos", "insights_server", "alert_manager",
    "chronos", "mercury",
]  # fmt: skip
BundleStatus = Literal["queued", "processing", "completed"]
HistogramInterval = Literal["1m", "5m", "15m", "1h"]
HeatmapGroupBy = Literal["component", "cvm_ip", "log_level"]
ReportSortBy = Literal["created_at", "bundle_id"]
SortOrder = Literal["asc", "desc"]

LOG_LEVELS: tuple[str, ...] = get_args(LogLevel)
COMPONENTS: tuple[str, ...] = get_args(Component)
BUNDLE_STATUSES: tuple[str, ...] = get_args(BundleStatus)
HISTOGRAM_INTERVALS: tuple[str, ...] = get_args(HistogramInterval)
HEATMAP_GROUP_BY: tuple[str, ...] = get_args(HeatmapGroupBy)
REPORT_SORT_BY: tuple[str, ...] = get_args(ReportSortBy)
SORT_ORDERS: tuple[str, ...] = get_args(SortOrder)
#: What each histogram interval means, in seconds (a bucket starts at a multiple of it).
INTERVAL_SECONDS: dict[str, int] = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600}
assert tuple(INTERVAL_SECONDS) == HISTOGRAM_INTERVALS

# --- limits and formats ------------------------------------------------------------------------

MAX_BUNDLE_IDS = 10  #: ids in one ``bundle_ids`` list
MAX_PAGE_SIZE = 100  #: ``page_size`` of search and reports
MAX_QUESTION_CHARS = 2000  #: ``question`` of ask-ai
SFDC_CASE_PATTERN = r"[0-9]{9}"  #: an SFDC case number (``fullmatch``)
SESSION_ID_PATTERN = r"[0-9a-f]{32}"  #: an ``X-Session-Id`` value (``fullmatch``)

# --- the reference ClickHouse schema ---------------------------------------------------

#: A plain ClickHouse name: the only kind this project puts (backquoted) into SQL text.
IDENTIFIER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
IDENTIFIER_RULE = "must be a plain name: a letter or '_', then letters, digits or '_'"


def quote_identifier(name: str) -> str:
    """``name`` backquoted, after checking it is a plain identifier (no quoting games)."""
    if not IDENTIFIER_RE.fullmatch(name):
        raise ValueError(f"not a plain ClickHouse identifier: {name!r}")
    return f"`{name}`"


@dataclass(frozen=True)
class SchemaNames:
    """Database, table and column names in use; the defaults are the reference schema
    (docs/database.md).

    The load side (``Settings``, ``clickhouse_dao``) and the reference API's ClickHouse source
    both use this type, so the two always read the same tables. Fields are checked to be plain
    identifiers on construction (ValueError naming the variable that sets it).
    """

    database: str = "panacea"
    user_sessions: str = "user_sessions"
    log_bundles: str = "log_bundles"
    combo_bundles: str = "combo_bundles"
    sfdc_cases: str = "sfdc_cases"
    user_id: str = "user_id"
    session_id: str = "session_id"
    created_at: str = "created_at"
    bundle_id: str = "bundle_id"
    sfdc_case_no: str = "sfdc_case_no"
    remote_log_bundle_path: str = "remote_log_bundle_path"
    status: str = "status"
    combo_id: str = "combo_id"
    bundle_ids: str = "bundle_ids"

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not isinstance(value, str) or not IDENTIFIER_RE.fullmatch(value):
                raise ValueError(f"invalid {SCHEMA_VARIABLES[name]}={value!r}: {IDENTIFIER_RULE}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> SchemaNames:
        """The names the ``CLICKHOUSE_*`` variables in ``environ`` give (unset, empty: default)."""
        return cls(**{f: environ[v] for f, v in SCHEMA_VARIABLES.items() if environ.get(v)})

    def q(self, attr: str) -> str:
        """The backquoted name held in field ``attr``."""
        return quote_identifier(getattr(self, attr))

    def table(self, attr: str) -> str:
        """The backquoted, database-qualified table held in field ``attr``."""
        return f"{self.q('database')}.{self.q(attr)}"

    def shown(self, attr: str) -> str:
        """``database.table`` for messages."""
        return f"{self.database}.{getattr(self, attr)}"


#: Field of :class:`SchemaNames` -> the variable (``Settings`` field, upper-case) that renames it;
#: a column name applies in every table that has that column.
SCHEMA_VARIABLES: dict[str, str] = {
    "database": "CLICKHOUSE_DATABASE",
    "user_sessions": "CLICKHOUSE_USER_SESSIONS_TABLE",
    "log_bundles": "CLICKHOUSE_LOG_BUNDLES_TABLE",
    "combo_bundles": "CLICKHOUSE_COMBO_BUNDLES_TABLE",
    "sfdc_cases": "CLICKHOUSE_SFDC_CASES_TABLE",
    "user_id": "CLICKHOUSE_USER_ID_COLUMN",
    "session_id": "CLICKHOUSE_SESSION_ID_COLUMN",
    "created_at": "CLICKHOUSE_CREATED_AT_COLUMN",
    "bundle_id": "CLICKHOUSE_BUNDLE_ID_COLUMN",
    "sfdc_case_no": "CLICKHOUSE_SFDC_CASE_COLUMN",
    "remote_log_bundle_path": "CLICKHOUSE_BUNDLE_PATH_COLUMN",
    "status": "CLICKHOUSE_STATUS_COLUMN",
    "combo_id": "CLICKHOUSE_COMBO_ID_COLUMN",
    "bundle_ids": "CLICKHOUSE_COMBO_BUNDLE_IDS_COLUMN",
}
assert tuple(SCHEMA_VARIABLES) == tuple(f.name for f in fields(SchemaNames))
#: The reference schema's names: the defaults of every ``CLICKHOUSE_*`` name setting.
REFERENCE_SCHEMA = SchemaNames()
