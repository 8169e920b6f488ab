"""Logs endpoints: analyse a bundle, read its info, and the analytics over its log lines.

Each task is a plain function of the user, so user types can weight them differently.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from panacea_locust.base_user import PanaceaAPIUser


def logs_analyze(user: PanaceaAPIUser) -> None:
    """POST /api/v1/logs/analyze: queue one of the user's bundle paths for analysis."""
    user.call_endpoint("LOGS_ANALYZE")


def logs_info(user: PanaceaAPIUser) -> None:
    """GET /api/v1/logs/info: the summary page a support engineer opens first."""
    user.call_endpoint("LOGS_INFO")


def logs_severity_count(user: PanaceaAPIUser) -> None:
    """POST /api/v1/logs/severity-count: counts per level over some bundles."""
    user.call_endpoint("LOGS_SEVERITY_COUNT")


def logs_histogram(user: PanaceaAPIUser) -> None:
    """POST /api/v1/logs/histogram: log volume over time."""
    user.call_endpoint("LOGS_HISTOGRAM")


def logs_heatmap(user: PanaceaAPIUser) -> None:
    """POST /api/v1/logs/heatmap: volume by component, CVM or level."""
    user.call_endpoint("LOGS_HEATMAP")


def logs_search(user: PanaceaAPIUser) -> None:
    """POST /api/v1/logs/search: paged, filtered log search (the heaviest query)."""
    user.call_endpoint("LOGS_SEARCH")


def logs_filter_options(user: PanaceaAPIUser) -> None:
    """GET /api/v1/logs/filter-options: what the filter menus offer."""
    user.call_endpoint("LOGS_FILTER_OPTIONS")


#: settings key -> task
LOGS_TASKS: dict[str, Callable[[PanaceaAPIUser], None]] = {
    "LOGS_ANALYZE": logs_analyze,
    "LOGS_INFO": logs_info,
    "LOGS_SEVERITY_COUNT": logs_severity_count,
    "LOGS_HISTOGRAM": logs_histogram,
    "LOGS_HEATMAP": logs_heatmap,
    "LOGS_SEARCH": logs_search,
    "LOGS_FILTER_OPTIONS": logs_filter_options,
}
