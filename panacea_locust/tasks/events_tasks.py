"""Events endpoint: the event timeline of a bundle or of a combo of bundles.

Each task is a plain function of the user, so user types can weight them differently.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from panacea_locust.base_user import PanaceaAPIUser


def events(user: PanaceaAPIUser) -> None:
    """GET /api/v1/events: by bundle id (70%) or combo id (30%)."""
    user.call_endpoint("EVENTS")


#: settings key -> task
EVENTS_TASKS: dict[str, Callable[[PanaceaAPIUser], None]] = {
    "EVENTS": events,
}
