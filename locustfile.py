"""Entry point for ``locust -f locustfile.py``: the framework lives in ``panacea_locust``."""

from panacea_locust.locustfile import *  # noqa: F401,F403
