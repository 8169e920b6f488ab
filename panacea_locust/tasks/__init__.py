"""All twelve endpoint tasks, and ``StandardTaskMixin`` giving a user type the contract's mix.

Locust collects a ``tasks`` list from a user class's bases; a list with each task repeated
``weight`` times is how Locust itself stores weights, so mixins compose without metaclasses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from panacea_locust.config import get_settings
from panacea_locust.contract import ENDPOINTS
from panacea_locust.tasks.ai_tasks import AI_TASKS
from panacea_locust.tasks.events_tasks import EVENTS_TASKS
from panacea_locust.tasks.logs_tasks import LOGS_TASKS
from panacea_locust.tasks.reports_tasks import REPORTS_TASKS

if TYPE_CHECKING:
    from panacea_locust.base_user import PanaceaAPIUser

TASKS_BY_KEY: dict[str, Callable[[PanaceaAPIUser], None]] = {
    **LOGS_TASKS, **EVENTS_TASKS, **AI_TASKS, **REPORTS_TASKS,
}  # fmt: skip


def weighted_tasks(weights: Mapping[str, int]) -> list[Any]:
    """Locust's task list for ``{settings key: weight}``; weight 0 leaves a task out."""
    unknown = set(weights) - set(TASKS_BY_KEY)
    if unknown:
        raise KeyError(f"no task for endpoint key(s) {sorted(unknown)}")
    return [TASKS_BY_KEY[key] for key, weight in weights.items() for _ in range(weight)]


def standard_weights() -> dict[str, int]:
    """The contract's task weights, as overridden by ``<KEY>_WEIGHT`` settings."""
    settings = get_settings()
    return {e.key: settings.endpoint_weight(e.key) for e in ENDPOINTS}


def analytics_weights() -> dict[str, int]:
    """AnalyticsUser's mix: severity-count, histogram, heatmap, search and reports weighted up.

    An endpoint switched off with ``<KEY>_WEIGHT=0`` stays off for analytics users too.
    """
    settings = get_settings()
    return {e.key: e.analytics_weight if settings.endpoint_weight(e.key) else 0 for e in ENDPOINTS}


class StandardTaskMixin:
    """Gives a user type all twelve endpoints with the standard weights."""

    tasks: list[Any] = weighted_tasks(standard_weights())


__all__ = ["StandardTaskMixin", "TASKS_BY_KEY", "weighted_tasks", "standard_weights",
           "analytics_weights"]  # fmt: skip
