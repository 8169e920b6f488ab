"""The parts of PANACEA_API.md the server enforces: endpoint table, enums and default latencies.

Kept in one place so that a change in the real API is one edit here, not a hunt through handlers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

LogLevel = Literal["fatal", "error", "warn", "info", "debug"]
Component = Literal[
    "acropolis",
    "stargate",
    "cassandra",
    "curator",
    "cerebro",
    "zookeeper",
    "prism",
    "genesis",
    "hades",
    "uhura",
    "ergon",
    "lazan",
    "arithmos",
    "pithos",
    "insights_server",
    "alert_manager",
    "chronos",
    "mercury",
]
#: the same values as tuples, for the data generator
LOG_LEVELS: tuple[str, ...] = get_args(LogLevel)
COMPONENTS: tuple[str, ...] = get_args(Component)
BUNDLE_STATUSES: tuple[str, ...] = ("queued", "processing", "completed")
HISTOGRAM_INTERVALS: dict[str, int] = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600}
HEATMAP_GROUP_BY: tuple[str, ...] = ("component", "cvm_ip", "log_level")
REPORT_SORT_BY: tuple[str, ...] = ("created_at", "bundle_id")
SORT_ORDERS: tuple[str, ...] = ("asc", "desc")
MAX_BUNDLE_IDS = 10
MAX_PAGE_SIZE = 100
MAX_QUESTION_CHARS = 2000


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One contract endpoint: how it is routed, named in stats, and how slow it is by default."""

    name: str  # short alias accepted on the command line, e.g. "search"
    method: str
    template: str  # the contract path (with {placeholder}); also the name used in /__stats
    weight: int  # the contract's default task weight (used by the benchmark mix)
    latency_ms: tuple[float, float]  # default (low, high) of the latency model


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("analyze", "POST", "/api/v1/logs/analyze", 3, (30.0, 120.0)),
    Endpoint("info", "GET", "/api/v1/logs/info", 4, (5.0, 20.0)),
    Endpoint("severity-count", "POST", "/api/v1/logs/severity-count", 3, (15.0, 60.0)),
    Endpoint("histogram", "POST", "/api/v1/logs/histogram", 2, (20.0, 80.0)),
    Endpoint("heatmap", "POST", "/api/v1/logs/heatmap", 2, (25.0, 90.0)),
    Endpoint("search", "POST", "/api/v1/logs/search", 3, (20.0, 80.0)),
    Endpoint("filter-options", "GET", "/api/v1/logs/filter-options", 2, (5.0, 25.0)),
    Endpoint("events", "GET", "/api/v1/events", 2, (10.0, 40.0)),
    Endpoint("report_summary", "GET", "/api/v1/ai/report_summary", 1, (50.0, 200.0)),
    Endpoint("ask-ai", "POST", "/api/v1/ai/ask-ai", 1, (300.0, 1500.0)),
    Endpoint("reports", "POST", "/api/v1/reports", 2, (15.0, 60.0)),
    Endpoint(
        "by-sfdc-case",
        "GET",
        "/api/v1/log-bundle-paths/by-sfdc-case/{sfdc_case_no}",
        1,
        (5.0, 20.0),
    ),
)
BY_TEMPLATE: dict[str, Endpoint] = {e.template: e for e in ENDPOINTS}
BY_NAME: dict[str, Endpoint] = {e.name: e for e in ENDPOINTS}
#: the one endpoint with a path parameter is routed by this prefix
SFDC_PATHS_PREFIX = "/api/v1/log-bundle-paths/by-sfdc-case/"
SFDC_PATHS_TEMPLATE = SFDC_PATHS_PREFIX + "{sfdc_case_no}"


def resolve_endpoint(key: str) -> Endpoint:
    """Map a user-given endpoint key (template path or short name) to its endpoint."""
    key = key.strip()
    found = BY_TEMPLATE.get(key) or BY_NAME.get(key)
    if found is None:
        for e in ENDPOINTS:
            if key == e.template.removeprefix("/api/v1"):
                return e
        choices = ", ".join(e.name for e in ENDPOINTS)
        raise ValueError(f"unknown endpoint {key!r} (use a contract path or one of: {choices})")
    return found
