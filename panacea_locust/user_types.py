"""The user types a run mixes: weights and wait times come from the settings.

``HeavyUser`` and ``LightUser`` send the contract's mix at different paces; ``AnalyticsUser``
leans on the log analytics and reports and is not spawned unless ``ANALYTICS_USER_WEIGHT``
(or ``--analytics-user-weight``) is above 0.
"""

from __future__ import annotations

from locust import between

from panacea_locust.base_user import PanaceaAPIUser
from panacea_locust.config import get_settings
from panacea_locust.tasks import StandardTaskMixin, analytics_weights, weighted_tasks

_settings = get_settings()


class HeavyUser(StandardTaskMixin, PanaceaAPIUser):
    """A support engineer deep in an investigation: frequent requests."""

    weight = _settings.heavy_user_weight
    wait_time = between(_settings.heavy_wait_min, _settings.heavy_wait_max)


class LightUser(StandardTaskMixin, PanaceaAPIUser):
    """A casual user glancing at a case: requests every few seconds."""

    weight = _settings.light_user_weight
    wait_time = between(_settings.light_wait_min, _settings.light_wait_max)


class AnalyticsUser(PanaceaAPIUser):
    """A performance analyst: severity counts, histograms, heatmaps, searches and reports."""

    weight = _settings.analytics_user_weight
    wait_time = between(_settings.standard_wait_min, _settings.standard_wait_max)
    tasks = weighted_tasks(analytics_weights())
