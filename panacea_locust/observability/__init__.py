"""Live views of a run while it goes on (docs/observability.md).

``metrics`` turns a plain snapshot of a run into Prometheus metric families (pure: no Locust,
no gevent); ``prometheus`` is the Locust glue that takes the snapshot at scrape time and
serves it. Nothing is imported here, so the pure part stays importable without Locust.
"""
