"""The Panacea API contract: the twelve insights endpoints, their enums and reference names.

One fact, one place: the load side, the reference API, the database code and the benchmarks
take endpoints, weights and enums from here, so a change in the real API is one edit.
Pure data: no Locust, gevent or pydantic import.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Endpoint:
    """One insights endpoint of the contract, and its defaults."""

    key: str  #: settings prefix: ``<KEY>_PATH`` and ``<KEY>_WEIGHT``
    method: str
    path: str  #: the contract's path; ``{name}`` marks a path parameter
    weight: int  #: the contract's default task weight
    analytics_weight: int  #: weight for AnalyticsUser (logs analytics and reports weighted up)
    response_keys: frozenset[str]  #: keys a documented 200 body always has


def _keys(*names: str) -> frozenset[str]:
    return frozenset(names)


#: The twelve endpoints, in the contract's order.
ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "LOGS_ANALYZE",
        "POST",
        "/api/v1/logs/analyze",
        3,
        1,
        _keys("bundle_id", "status", "sfdc_case_no"),
    ),
    Endpoint(
        "LOGS_INFO",
        "GET",
        "/api/v1/logs/info",
        4,
        2,
        _keys("bundle_id", "sfdc_case_no", "total_lines"),
    ),
    Endpoint("LOGS_SEVERITY_COUNT", "POST", "/api/v1/logs/severity-count", 3, 8, _keys("counts")),
    Endpoint(
        "LOGS_HISTOGRAM", "POST", "/api/v1/logs/histogram", 2, 8, _keys("interval", "buckets")
    ),
    Endpoint(
        "LOGS_HEATMAP", "POST", "/api/v1/logs/heatmap", 2, 8, _keys("rows", "columns", "values")
    ),
    Endpoint(
        "LOGS_SEARCH",
        "POST",
        "/api/v1/logs/search",
        3,
        8,
        _keys("total", "page_no", "page_size", "results"),
    ),
    Endpoint(
        "LOGS_FILTER_OPTIONS",
        "GET",
        "/api/v1/logs/filter-options",
        2,
        2,
        _keys("components", "log_levels", "cvm_ips"),
    ),
    Endpoint("EVENTS", "GET", "/api/v1/events", 2, 1, _keys("total", "events")),
    Endpoint(
        "AI_REPORT_SUMMARY", "GET", "/api/v1/ai/report_summary", 1, 1, _keys("bundle_id", "summary")
    ),
    Endpoint("AI_ASK_AI", "POST", "/api/v1/ai/ask-ai", 1, 1, _keys("bundle_id", "answer")),
    Endpoint("REPORTS", "POST", "/api/v1/reports", 2, 6, _keys("total", "reports")),
    Endpoint(
        "BUNDLE_PATHS_BY_CASE",
        "GET",
        "/api/v1/log-bundle-paths/by-sfdc-case/{sfdc_case_no}",
        1,
        1,
        _keys("sfdc_case_no", "paths"),
    ),
)
ENDPOINTS_BY_KEY: dict[str, Endpoint] = {e.key: e for e in ENDPOINTS}
#: Request names (rows in Locust's statistics and in summary.json), in the contract's order.
ENDPOINT_NAMES: tuple[str, ...] = tuple(e.path for e in ENDPOINTS)
