"""Reports endpoints: the report list and the bundle paths of a support case.

Each task is a plain function of the user, so user types can weight them differently.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from panacea_locust.base_user import PanaceaAPIUser


def reports(user: PanaceaAPIUser) -> None:
    """POST /api/v1/reports: paged, filtered, sorted list of analysis reports."""
    user.call_endpoint("REPORTS")


def bundle_paths_by_case(user: PanaceaAPIUser) -> None:
    """GET /api/v1/log-bundle-paths/by-sfdc-case/{sfdc_case_no}: one stats row."""
    user.call_endpoint("BUNDLE_PATHS_BY_CASE")


#: settings key -> task
REPORTS_TASKS: dict[str, Callable[[PanaceaAPIUser], None]] = {
    "REPORTS": reports,
    "BUNDLE_PATHS_BY_CASE": bundle_paths_by_case,
}
