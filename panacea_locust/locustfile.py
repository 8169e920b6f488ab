"""What ``locust -f`` loads: the user types, the event handlers and, if chosen, a load shape.

Kept to imports so that Locust's own discovery (user classes and a shape class found in the
locustfile's namespace) does the work. The root ``locustfile.py`` re-exports this module.
"""

from __future__ import annotations

import sys

from panacea_locust.config import ConfigError, get_settings

try:
    get_settings()  # a bad setting stops here, before any request, with one line
except ConfigError as _err:
    sys.stderr.write(f"panacea-locust: {_err}\n")
    raise SystemExit(2) from None

from panacea_locust import event_handlers  # noqa: E402,F401  (options, init hook)
from panacea_locust.observability import prometheus  # noqa: E402,F401  (live metrics)
from panacea_locust.shapes import ShapeError, selected_shape  # noqa: E402
from panacea_locust.user_types import AnalyticsUser, HeavyUser, LightUser  # noqa: E402

try:
    _shape = selected_shape()  # --load-shape, LOAD_SHAPE or a --config file's load-shape
except ShapeError as _err:
    sys.stderr.write(f"panacea-locust: {_err}\n")
    raise SystemExit(2) from None
if _shape is not None:
    LoadShape = _shape  # Locust uses the shape class it finds in the locustfile

__all__ = ["AnalyticsUser", "HeavyUser", "LightUser"] + (["LoadShape"] if _shape else [])
