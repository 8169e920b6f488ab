"""Live Prometheus metrics of a run: ``--prometheus-port`` serves ``/metrics`` while it goes on.

Importing this module adds two listeners to Locust's global events, as ``event_handlers``
does: the command-line options, and an ``init`` hook that gives the master (or the single
local process) of a run one :class:`PrometheusExporter`, bound to that ``Environment``. A
worker gets none: its requests reach the master's statistics and tally with its reports, and
the exporter reads those at scrape time, so a distributed run and a local one serve the same
metrics. The figures are computed by ``observability/metrics.py`` (pure); this module copies
the live state and serves it on loopback with gevent's WSGI server (Locust's own loop: no
thread, nothing counted twice). Docs: docs/observability.md.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import gevent
from gevent.pywsgi import WSGIServer
from locust import events
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner
from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from panacea_locust.event_handlers import (
    PanaceaRun,
    endpoint_names,
    error_reason,
    run_label,
    run_metadata,
)
from panacea_locust.observability.metrics import RunSnapshot, families
from panacea_locust.verdict.health import CpuMeter

logger = logging.getLogger("panacea_locust")

PORT_ENV = "PROMETHEUS_PORT"
HOST_ENV = "PROMETHEUS_HOST"
LINGER_ENV = "PROMETHEUS_LINGER"
#: loopback only unless asked: the metrics name the target host and the run's figures
DEFAULT_HOST = "127.0.0.1"
#: a local process's CPU share is measured between scrapes at least this far apart (seconds)
CPU_MIN_WINDOW_S = 1.0
_ATTRIBUTE = "panacea_prometheus"  #: where an environment keeps its exporter


# --- command line (global: Locust builds one parser per process, before any environment) ----
@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any, **_: Any) -> None:
    group = parser.add_argument_group("panacea-locust live metrics (Prometheus)")
    group.add_argument(
        "--prometheus-port", type=int, default=None, env_var=PORT_ENV,
        help=f"Serve Prometheus metrics of the run at http://HOST:PORT/metrics (master or local "
        f"process); 0 picks a free port and logs the URL [env {PORT_ENV}; default: off].",
    )  # fmt: skip
    group.add_argument(
        "--prometheus-host", type=str, default=DEFAULT_HOST, env_var=HOST_ENV,
        help=f"Address /metrics listens on; 0.0.0.0 lets another machine scrape it "
        f"[env {HOST_ENV}; default {DEFAULT_HOST}].",
    )  # fmt: skip
    group.add_argument(
        "--prometheus-linger", type=float, default=0.0, env_var=LINGER_ENV,
        help=f"At the end, keep /metrics up until it has been scraped once more (the final "
        f"figures), at most this many seconds [env {LINGER_ENV}; default 0: stop at once].",
    )  # fmt: skip


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    """The master or a local process of a run with ``--prometheus-port`` starts serving; a bad
    option or a taken port stops the run before its first request (exit 2, one line)."""
    options = environment.parsed_options
    port = getattr(options, "prometheus_port", None) if options else None
    if port is None or isinstance(environment.runner, WorkerRunner):
        return
    host = getattr(options, "prometheus_host", DEFAULT_HOST) or DEFAULT_HOST
    linger = getattr(options, "prometheus_linger", 0.0) or 0.0
    try:
        PrometheusExporter(environment, port, host, linger).start()
    except (OSError, ValueError) as err:
        sys.stderr.write(f"panacea-locust: --prometheus-port {port} on {host}: {err}\n")
        sys.exit(2)


class RunCollector(Collector):
    """Reads one environment's run when Prometheus scrapes: Locust's statistics, the run's
    tally and rules, its users and its load generators' CPU. Nothing is kept between scrapes
    but the CPU readings (a share needs two)."""

    def __init__(self, environment: Environment) -> None:
        self.environment = environment
        self._cpu_meter = CpuMeter()
        self._cpu_meter.sample(time.monotonic(), time.process_time())
        self._local_cpu: float | None = None
        #: each worker's CPU share, as its last report gave it (a master's only measure)
        self.worker_cpu: dict[str, float] = {}

    def collect(self) -> Iterable[Metric]:
        return families(self.snapshot())

    def snapshot(self) -> RunSnapshot:
        environment = self.environment
        run = PanaceaRun.of(environment)
        stats = environment.stats
        requests: Counter[str] = Counter()
        failures: Counter[str] = Counter()
        for (name, _method), entry in stats.entries.items():
            requests[name] += entry.num_requests
            failures[name] += entry.num_failures
        reasons: Counter[tuple[str, str]] = Counter()
        for error in stats.errors.values():
            reasons[(error.name, error_reason(str(error.error)))] += error.occurrences
        # the rules as the abort monitor sees them: judged on the run so far
        rules = (
            run.collect_summary(final=False)["thresholds"]["rules"]
            if run.state.slo is not None
            else []
        )
        settings = run.context.settings
        version = run_metadata(environment.parsed_options)["target_version"]
        info = {
            "label": run_label(environment),
            "host": environment.host or settings.panacea_host or "",
            "target_version": version or "",
        }
        return RunSnapshot(
            endpoints=endpoint_names(settings), requests=requests, failures=failures,
            acceptable=run.context.tally.acceptable, failure_reasons=reasons,
            answered=run.context.tally.histograms, users=self._users(), rules=rules,
            cpu_percent=self._cpu_percent(), info=info,
            stale_resends=run.context.tally.stale_resends,
            stalled_starts=run.context.tally.stalled_starts,
        )  # fmt: skip

    def _users(self) -> dict[str, int]:
        environment, runner = self.environment, self.environment.runner
        users = {cls.__name__: 0 for cls in environment.user_classes}
        if isinstance(runner, MasterRunner):  # the master runs none: its workers report theirs
            users.update(runner.reported_user_classes_count)
        elif runner is not None:
            users.update(runner.user_classes_count)
        return users

    def _cpu_percent(self) -> dict[str, float]:
        """A master: each connected worker's share from its last report (what the verdict's
        ``load_generator`` is built from); a local process: its own since the last scrape."""
        runner = self.environment.runner
        if isinstance(runner, MasterRunner):
            connected = set(runner.clients)
            return {k: v for k, v in self.worker_cpu.items() if k in connected}
        # a window of at least CPU_MIN_WINDOW_S, but the first scrape takes what there is
        min_window = 0.0 if self._local_cpu is None else CPU_MIN_WINDOW_S
        share = self._cpu_meter.sample(time.monotonic(), time.process_time(), min_window)
        if share is not None:
            self._local_cpu = share
        return {} if self._local_cpu is None else {"local": self._local_cpu}

    def on_worker_report(self, client_id: str, data: dict[str, Any], **_: Any) -> None:
        share = data.get("panacea_cpu")  # PanaceaRun's workers send it with every report
        if isinstance(share, (int, float)):
            self.worker_cpu[client_id] = float(share)


class PrometheusExporter:
    """One environment's ``/metrics``: its own registry (never the process-wide one, so two
    environments in one process never mix), its collector and its server, which runs from
    ``start`` until Locust's ``quit`` (after the results are written, so the final figures
    can still be scraped: ``linger_s``)."""

    def __init__(
        self,
        environment: Environment,
        port: int = 0,
        host: str = DEFAULT_HOST,
        linger_s: float = 0.0,
    ) -> None:
        if not 0 <= port <= 65535:
            raise ValueError("the port must be 0 (any free one) to 65535")
        if linger_s < 0:
            raise ValueError("--prometheus-linger must be at least 0 seconds")
        if getattr(environment, _ATTRIBUTE, None) is not None:
            raise RuntimeError("this environment already has a PrometheusExporter")
        self.environment = environment
        self.host, self.port, self.linger_s = host, port, linger_s
        self.collector = RunCollector(environment)
        self.registry = CollectorRegistry()
        self.registry.register(self.collector)
        self._metrics_app = make_wsgi_app(self.registry)
        self._server: WSGIServer | None = None
        #: scrapes are numbered as they begin; the highest number answered in full
        self.scrapes_begun = 0
        self.last_answered = 0
        setattr(environment, _ATTRIBUTE, self)
        environment.events.worker_report.add_listener(self.collector.on_worker_report)
        environment.events.quit.add_listener(self._on_quit)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def start(self) -> str:
        """Bind and serve (``OSError`` if the port is taken); returns the URL, also logged."""
        server = WSGIServer((self.host, self.port), self._serve, log=None)
        server.start()
        self._server = server
        self.port = server.server_port
        logger.info("panacea-locust: Prometheus metrics at %s", self.url)
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(timeout=1.0)
            self._server = None

    def _serve(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterator[bytes]:
        """prometheus_client's WSGI app, noting which scrapes were answered in full."""
        self.scrapes_begun += 1
        number = self.scrapes_begun
        yield from self._metrics_app(environ, start_response)
        self.last_answered = max(self.last_answered, number)

    def _on_quit(self, **_: Any) -> None:
        """The run is over and its results written: serve one more scrape if asked, stop."""
        if self.linger_s > 0 and self._server is not None:
            self.await_final_scrape(self.linger_s)
        self.stop()

    def await_final_scrape(self, timeout_s: float) -> bool:
        """Wait until a scrape begun from now on has been answered, at most ``timeout_s``;
        True if one was. (A scrape begun earlier may hold figures from before the end.)"""
        if gevent.getcurrent() is gevent.get_hub():  # pragma: no cover - cannot wait there
            return False
        before = self.scrapes_begun
        deadline = time.monotonic() + timeout_s
        while self.last_answered <= before and time.monotonic() < deadline:
            gevent.sleep(0.05)
        return self.last_answered > before
