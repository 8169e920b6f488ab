"""Locust event listeners: set-up at ``init``, counting, progress, verdict and results export.

Importing this module adds two listeners to Locust's global events: the command-line options
(Locust has one parser per process) and an ``init`` hook that gives each ``Environment`` its
own :class:`PanaceaRun`. A run's listeners sit on its environment's events and its state is
its own, so two environments in one process (tests, a library user) do not mix; users reach
their run with ``PanaceaRun.of(self.environment)``. Results are written by the master (or the
single local process) when a test stops, when Locust quits, and after Ctrl-C or SIGTERM, so an
interrupted run still leaves its ``summary.json``.

Beside the whole-run counts, the master (or the local process) keeps the run's timeline
(``verdict/timeline.py``: per-interval histograms, written as ``timeline.json`` and
``latency.hlog``, judged by rules with ``window_s``), and every process that generates load
runs a loop-lag probe whose wake-ups end up in ``run.load_generator``.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import logging
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from time import perf_counter
from types import FrameType, SimpleNamespace
from typing import Any

import gevent
import gevent.event
from locust import User, events
from locust.env import Environment
from locust.event import EventHook
from locust.runners import (
    STATE_CLEANUP,
    STATE_RUNNING,
    STATE_SPAWNING,
    STATE_STOPPING,
    MasterRunner,
    WorkerRunner,
)
from locust.stats import StatsError

from panacea_locust.config import Settings, get_settings
from panacea_locust.cost_guard import RateCap
from panacea_locust.descriptors import process_reserve
from panacea_locust.hotpath import gc_tuning, inspect_warmup
from panacea_locust.open_model.dispatcher import ArrivalDispatcher
from panacea_locust.open_model.schedule import (
    PROCESSES,
    ArrivalSchedule,
    OpenPlan,
    ScheduleError,
    expected_arrivals,
    length_s,
    open_plan_of,
    split_shares,
)
from panacea_locust.open_model.schedule import plan as arrival_plan
from panacea_locust.payload_generator import POOL_KINDS, PoolData
from panacea_locust.pool_transfer import Assembler, Packed, TransferError, pack
from panacea_locust.report.html import write_summary_html
from panacea_locust.report.junit import write_junit
from panacea_locust.report.summary import (
    generator_warnings,
    render_table,
    verdict_line,
    workload_line,
    write_results,
)
from panacea_locust.report.thresholds import render_thresholds_text
from panacea_locust.run_context import RunContext, bind, run_of
from panacea_locust.run_secret import new_nonce, proof, valid
from panacea_locust.scenarios import (
    SCENARIOS,
    default_slo,
    scenario_options,
    scenario_path,
    scenario_slo,
)
from panacea_locust.secrets import SCRUBBER
from panacea_locust.secrets import install as install_scrubbing
from panacea_locust.shapes import add_shape_arguments, describe_stages, shape_length_s, shape_record
from panacea_locust.target_guard import TargetRefused, check_target
from panacea_locust.user_index import IndexAllocator
from panacea_locust.verdict.decision import EXIT_RESULTS_UNWRITABLE, decide
from panacea_locust.verdict.health import (
    LOOP_LAG_PERIOD_S,
    CpuMeter,
    GeneratorHealth,
    generator_failure_warning,
    lost_worker_text,
    read_cpu_times,
    stalled_start_warning,
    steal_percent,
)
from panacea_locust.verdict.histogram import SparseHistogram
from panacea_locust.verdict.results import (
    EndpointCounts,
    add_service_times,
    build_summary,
    create_run_dir,
    unwritable,
)
from panacea_locust.verdict.stages import build_stages, capacity
from panacea_locust.verdict.tally import RunTally
from panacea_locust.verdict.thresholds import (
    SLO,
    AbortTracker,
    SLOError,
    WindowSource,
    cached_windows,
    load_slo,
    mark_aborted,
)
from panacea_locust.verdict.timeline import DEFAULT_INTERVAL_S, Timeline, parse_interval
from panacea_locust.verdict.workload import generator_lag_warning, workload_record
from panacea_locust.web_ui.panel import NO_BASELINE, REPORT_FILES, baseline_choices

logger = logging.getLogger("panacea_locust")

#: set by ``panacea-locust run``: the folder (already created) this run writes into
RUN_DIR_ENV = "PANACEA_RUN_DIR"
PROGRESS_ENV = "PANACEA_PROGRESS"
CPU_SAMPLE_S = 5.0  #: seconds between samples of the load generator's CPU
TIMELINE_INTERVAL_ENV = "TIMELINE_INTERVAL"
TARGET_VERSION_ENV = "TARGET_VERSION"
#: the timeline notes the users running at least this often (seconds)
USERS_SAMPLE_S = 1.0
#: seconds after a second SIGINT/SIGTERM before the process exits whatever it is waiting for
FORCED_EXIT_S = 5.0
#: a worker that has heard no heartbeat from its master for this long stops (Locust waits 60 s)
MASTER_LOST_S = 8.0
#: the run-secret handshake's messages (``run_secret.py``)
READY, HELLO, PROOF, REFUSED = "panacea_ready", "panacea_hello", "panacea_proof", "panacea_refused"
LEAVING = "panacea_leaving"
#: seconds a user waits for its worker's handshake with the master before it gives up
HANDSHAKE_WAIT_S = 10.0
#: the master's message giving a worker its share of the run's rates (an open-model run's
#: arrivals, AI_MAX_RPS), in proportion to the users it runs
SHARE_MESSAGE = "panacea_share"
#: the master's pool data for a worker, one chunk a message (``pool_transfer.py``)
DATA_MESSAGE = "panacea_data"
#: seconds a worker's users wait for the master's data before the worker generates its own
DATA_WAIT_S = 60.0


class _RunState:
    """What the master (or local process) remembers about the test in progress."""

    def __init__(self) -> None:
        self.slo: SLO | None = None
        self.slo_path: str | None = None  #: the file ``slo`` came from
        #: the summary as written at the end (the web UI's tab shows it after the run)
        self.final: dict[str, Any] | None = None
        #: the comparison with ``--baseline`` (the web UI's tab says its outcome)
        self.compare: dict[str, Any] | None = None
        self.started_at: datetime | None = None
        self.started_monotonic = 0.0
        self.ended_at: datetime | None = None
        self.written = True  # nothing to write before the first test starts
        self.run_dir: Path | None = None
        self.aborted: str | None = None
        #: ``{"signal", "at_s"}`` when SIGINT or SIGTERM stopped the test
        self.interrupted: dict[str, Any] | None = None
        #: the verdict's exit code once the results are written (None: no rules applied)
        self.exit_code: int | None = None
        self.report = ""  #: the table, rules and verdict, printed once the run has ended
        self.greenlets: list[gevent.Greenlet] = []
        self.health = GeneratorHealth()
        self.cpu_times_at_start = read_cpu_times()


def endpoint_names(settings: Settings) -> tuple[str, ...]:
    return settings.endpoint_names()


def _fail_start(message: str, code: int = 2) -> None:
    sys.stderr.write(f"panacea-locust: {message}\n")
    sys.exit(code)


# --- command line (global: Locust builds one parser per process, before any environment) ----
@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any, **_: Any) -> None:
    """Our options. Those marked ``_in_web_ui`` are also fields of the web UI's start form
    (its "Custom parameters"): what a run started there needs; the rest stay command-line
    options (Locust shows a group's options in the form only when told to)."""
    group = parser.add_argument_group("panacea-locust")
    _in_web_ui(group.add_argument(
        "--scenario", type=str, default="",
        help=f"Scenario name (results label); in the web UI one of {', '.join(SCENARIOS)}: "
        "its SLO file and arrival stages apply.",
    ))  # fmt: skip
    _in_web_ui(group.add_argument(
        "--label", type=str, default="", help="Label of the results folder."
    ))  # fmt: skip
    _in_web_ui(group.add_argument(
        "--slo-file", type=str, default="",
        help="TOML thresholds deciding pass/fail (SLO_FILE); in the web UI, when empty: the "
        "scenario's, else the shipped slo.toml when found.",
    ))  # fmt: skip
    _in_web_ui(group.add_argument(
        "--analytics-user-weight", type=int, default=-1,
        help="Weight of AnalyticsUser (overrides ANALYTICS_USER_WEIGHT; -1: keep).",
    ))  # fmt: skip
    group.add_argument(
        "--results-dir", type=str, default="", help="Where run folders go (RESULTS_DIR)."
    )
    group.add_argument(
        "--progress", action="store_true", default=False, help="Print a live progress line."
    )
    group.add_argument(
        "--timeline-interval", type=str, default=None, env_var=TIMELINE_INTERVAL_ENV,
        help=f"Seconds per interval of timeline.json, latency.hlog and windowed rules "
        f"[env {TIMELINE_INTERVAL_ENV}; default {DEFAULT_INTERVAL_S:g}].",
    )  # fmt: skip
    _in_web_ui(group.add_argument(
        "--target-version", type=str, default="", env_var=TARGET_VERSION_ENV,
        help=f"Build or version of the API under test, recorded in summary.json "
        f"[env {TARGET_VERSION_ENV}].",
    ))  # fmt: skip
    _in_web_ui(group.add_argument(
        "--description", type=str, default="", help="A note on this run, kept in summary.json."
    ))  # fmt: skip
    group.add_argument(
        "--trace-context", action="store_true", default=False,
        help="A W3C traceparent header on every request; summary.json names each endpoint's "
        "slowest by trace id (TRACE_CONTEXT=true).",
    )  # fmt: skip
    _in_web_ui(group.add_argument(
        "--arrival-rate", type=float, default=None, env_var="ARRIVAL_RATE",
        help="Open model: requests a second over all endpoints, whatever the API's speed "
        "[env ARRIVAL_RATE]; in the web UI the number of users serves the arrivals.",
    ))  # fmt: skip
    group.add_argument(
        "--arrival-stages", type=str, default="", env_var="ARRIVAL_STAGES",
        help="Open model: rate stages RATE:DURATION or FROM..TO:DURATION, e.g. "
        "10:1m,10..50:2m [env ARRIVAL_STAGES].",
    )  # fmt: skip
    group.add_argument(
        "--arrival-process", type=str, default="poisson", env_var="ARRIVAL_PROCESS",
        choices=PROCESSES, help="Open model: poisson (independent users) or uniform arrivals.",
    )  # fmt: skip
    group.add_argument(
        "--max-users", type=int, default=None,
        help="Open model: virtual users that serve the arrivals (default LOCUST_MAX_USERS).",
    )  # fmt: skip
    group.add_argument(
        "--confirm-host", type=str, default="",
        help="Repeat the target's host[:port] to run against a PANACEA_PROTECTED_HOSTS host.",
    )  # fmt: skip
    group.add_argument(
        "--follow-redirects", choices=("none", "same-origin"), default=None,
        help="none: a 3xx answer is a failure; same-origin: follow it within the target's "
        "scheme, host and port only [FOLLOW_REDIRECTS; default none].",
    )  # fmt: skip
    _in_web_ui(group.add_argument(
        "--baseline", type=str, default=NO_BASELINE,
        choices=baseline_choices(Path(os.environ.get("RESULTS_DIR") or "results")),
        help="An earlier run of the results folder to compare this one with at its end "
        "(compare.md, compare.html, compare.json in the run's folder).",
    ))  # fmt: skip
    add_shape_arguments(parser)


def _in_web_ui(action: Any) -> None:
    """Show ``action`` in the web UI's start form. Locust's parser marks the options added
    to it directly; an option group's ``add_argument`` is argparse's, which knows nothing of
    the form, so the marks are set here as Locust's own ``add_argument`` sets them."""
    action.include_in_web_ui = True
    action.is_secret = action.is_required = action.is_multiple = False


# --- the one init hook ---------------------------------------------------------------------
@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    """Locust sets up an environment: tune this process, then give the environment its run."""
    gc_tuning.GcTuning.install(environment)
    inspect_warmup.warm_inspect_caches()
    install_scrubbing(environment, get_settings())  # secrets out of logs, failures, exceptions
    PanaceaRun(environment)


def _add_listener_run_last(hook: EventHook, listener: Callable[..., None]) -> None:
    """Add ``listener`` to a hook Locust fires in reverse (``quitting``) so that it runs last.

    A master's runner registers its own ``quitting`` listener when it is created, before
    ``init``: it sends the workers ``quit`` and waits 0.5 s for their final reports. The
    results must be written after that, so ours goes first in the list (``EventHook`` has no
    public way to order listeners).
    """
    hook._handlers.insert(0, listener)


class PanaceaRun:
    """One Locust environment's run: its context (settings, data, payloads, tally), its user
    index allocator, its test state, and the listeners that count, watch and report on it.

    Created by the ``init`` hook (or directly, in tests); ``PanaceaRun.of(environment)`` finds
    it again.
    """

    def __init__(self, environment: Environment) -> None:
        self.environment = environment
        # a worker's counts only travel to the master with its reports: kept sparse
        worker = isinstance(environment.runner, WorkerRunner)
        self.context = RunContext(get_settings(), tally=RunTally(sparse=worker))
        self.allocator = IndexAllocator()
        self.state = _RunState()
        #: this process's CPU share: sampled by a local run's sampler, or by a worker's reports
        self.cpu_meter = CpuMeter()
        #: this process's loop-lag probe wake-ups since they were last handed on (ms)
        self.loop_lag = SparseHistogram()
        self._lag_probe: gevent.Greenlet | None = None
        #: the run over time: fed by the local process's requests, or the workers' reports
        self.timeline = Timeline()
        self.tests_started = 0
        #: Locust's ``--html`` file, written by ``export_results`` after the summary (taken
        #: from Locust, which would write it first, and crash the shutdown if it could not)
        self.html_file: str | None = None
        #: ``--trace-context`` or ``TRACE_CONTEXT``: users send a ``traceparent`` header
        self.trace_context = False
        #: open model: the rate stages, the arrival process and the users serving them
        self.open_plan: OpenPlan | None = None
        #: open model, in a process that generates load: hands arrivals to idle users
        self.arrivals: ArrivalDispatcher | None = None
        self._schedule_started = 0.0  #: monotonic time the arrival schedule began
        self._schedule_epoch: float | None = None  #: ... as wall-clock time, for the workers
        #: AI_MAX_RPS in this process (its share of it on a worker); None without a cap
        self.cost_cap: RateCap | None = None
        self._share_loop: gevent.Greenlet | None = None
        self._schedule_ended = 0.0  #: ... and ended (the test stopping)
        #: monotonic time since which the arrivals are counted (the start, or the last reset)
        self._arrivals_counted_since = 0.0
        self._arrival_greenlets: list[gevent.Greenlet] = []
        #: master: workers that joined and were lost during the test (``run.workers``)
        self.workers_joined: list[dict[str, Any]] = []
        self.workers_lost: list[dict[str, Any]] = []
        self._master_heard = 0.0  #: worker: monotonic time of the master's last heartbeat
        self._worker_watch: gevent.Greenlet | None = None
        #: PANACEA_RUN_SECRET: master and workers prove they share it (``run_secret.py``)
        self.run_secret: str | None = None
        #: set once users may run here: at once without a secret or off a worker, else when
        #: the master has proved it knows the secret; ``refused``: it did not
        self.verified = gevent.event.Event()
        self.refused = False
        self._nonces: dict[str, str] = {}
        #: set once this process has its pool data: at once off a worker, else when the
        #: master's has arrived (only the master reads the database)
        self.data_ready = gevent.event.Event()
        self._assembler = Assembler()
        self._packed: Packed | None = None  #: master: its data, chunked for the workers
        #: master: workers accepted while it was still loading its data; sent it once packed
        self._awaiting_data: list[str] = []
        #: master: what loading and shipping the data cost (``run.workers["data"]``)
        self.data_shipping: dict[str, Any] = {}
        self._signals = 0  #: SIGINT/SIGTERM received since the handlers were installed
        self._quitting = False  #: Locust's shutdown has begun
        #: master: each worker's CPU share in its last report (the web UI's tab)
        self.worker_cpu: dict[str, float] = {}
        self.abort_tracker: AbortTracker | None = None  #: the abort monitor's, while it runs
        #: the user classes of a closed run (a web UI run may go open and back)
        self._closed_classes: list[type[User]] = []
        self.web_ui: Any = None  #: the Panacea parts of Locust's web UI, when it has one
        #: descriptors held back for writing the results (``descriptors.py``)
        self.descriptors = process_reserve()
        bind(environment, self)
        self._set_up()
        self._add_listeners()

    @classmethod
    def of(cls, environment: Environment) -> PanaceaRun:
        """The run of ``environment``: how users and tasks reach their settings and counters."""
        run = run_of(environment)  # LookupError, saying what to do, when there is none
        if not isinstance(run, cls):
            raise LookupError(f"this environment's run is a {type(run).__name__}, not a PanaceaRun")
        return run

    # --- set-up ----------------------------------------------------------------------------
    def _set_up(self) -> None:
        """Check the options and the thresholds file before any user starts (a bad one exits
        with 2 and one line), then load this process's pool data."""
        environment, ctx = self.environment, self.context
        options = environment.parsed_options
        runner = environment.runner
        if not environment.host and ctx.settings.panacea_host:
            # the original design's ``export PANACEA_HOST=...`` for plain ``locust -f``:
            # Locust gives every user class the environment's host
            environment.host = ctx.settings.panacea_host
        if environment.host:  # ``http://api/`` + ``/api/v1/...`` would send ``//api/v1/...``
            environment.host = environment.host.rstrip("/")
        if runner is not None:
            self.allocator.install(runner)
        secret = ctx.settings.panacea_run_secret
        self.run_secret = secret.get_secret_value() if secret else None
        if isinstance(runner, MasterRunner):
            runner.register_message(READY, self._on_worker_ready)
            runner.register_message(PROOF, self._on_worker_proof)
            runner.register_message(LEAVING, self._on_worker_leaving)
        if isinstance(runner, WorkerRunner):
            runner.register_message(HELLO, self._on_master_hello)
            runner.register_message(REFUSED, self._on_refused)
            runner.register_message(DATA_MESSAGE, self._on_master_data)
            runner.send_message(READY, None)  # the master's hello (or data) may come now
        else:
            self.verified.set()
            self.data_ready.set()
        if isinstance(runner, WorkerRunner):
            runner.register_message(SHARE_MESSAGE, self._on_share)
            environment.events.heartbeat_received.add_listener(self._on_master_heartbeat)
            gevent.spawn(self._master_watchdog)
        if isinstance(runner, MasterRunner):
            environment.events.worker_connect.add_listener(self._on_worker_connect)
        self.trace_context = ctx.settings.trace_context or bool(
            getattr(options, "trace_context", False) if options else False
        )
        try:
            self.open_plan = open_plan(options, ctx.settings)
        except ScheduleError as err:
            _fail_start(str(err))
        if self.open_plan is not None or isinstance(runner, WorkerRunner):
            from panacea_locust.open_model.user import OpenUser

            if isinstance(runner, WorkerRunner):  # the master names the classes to spawn
                environment.user_classes = [*environment.user_classes, OpenUser]
            else:
                self._open_model_set_up(OpenUser)
        cap = ctx.settings.ai_max_rps
        if cap is not None and not isinstance(runner, MasterRunner):
            # a worker sends no AI request until the master gives it its share of the cap
            self.cost_cap = RateCap(
                0.0 if isinstance(runner, WorkerRunner) else cap, perf_counter()
            )
        if not environment.stop_timeout:
            # a grace for the requests in flight when the run stops (Locust's default kills
            # them, and they vanished from the counts); on a master it reaches the workers
            environment.stop_timeout = ctx.settings.stop_grace_s
        weight = getattr(options, "analytics_user_weight", -1) if options else -1
        if weight is not None and weight >= 0:
            _set_analytics_weight(environment, weight)
        try:
            self.timeline = Timeline(parse_interval(_timeline_interval(options)))
        except ValueError as err:
            _fail_start(f"--timeline-interval ({TIMELINE_INTERVAL_ENV}) {err}")
        if self._records_requests_itself:
            ctx.tally.timeline = self.timeline
        users = getattr(options, "num_users", None) if options else None
        if users and users > ctx.settings.locust_max_users:
            _fail_start(
                f"-u {users} is above LOCUST_MAX_USERS ({ctx.settings.locust_max_users}); "
                "raise LOCUST_MAX_USERS (and USER_POOL_SIZE) to run more users"
            )
        shape_peak = max(
            (int(stage["users"]) for stage in describe_stages(environment.shape_class)),
            default=0,
        )
        if shape_peak > ctx.settings.locust_max_users:  # a shape sets users without -u
            _fail_start(
                f"the load shape peaks at {shape_peak} users, above LOCUST_MAX_USERS "
                f"({ctx.settings.locust_max_users}); raise LOCUST_MAX_USERS to run more users"
            )
        if not isinstance(runner, WorkerRunner) and environment.host:
            self._guard_target(shape_peak)
        if not isinstance(runner, WorkerRunner):
            from_option = getattr(options, "slo_file", "") if options else ""
            slo_path = from_option or ctx.settings.slo_file
            if slo_path:
                try:
                    slo = self.state.slo = load_slo(slo_path, endpoint_names(ctx.settings))
                except SLOError as err:
                    _fail_start(str(err))
                self.state.slo_path = slo_path
                if not any(r.metric == "max_failure_ratio" for r in slo.rules):
                    logger.warning(
                        "panacea-locust: %s has no max_failure_ratio rule: errors are judged "
                        "only when no request got an answer at all",
                        slo_path,
                    )
        if not isinstance(runner, WorkerRunner) and options is not None:
            if getattr(options, "html_file", None):
                self.html_file, options.html_file = options.html_file, None
            self._check_results_writable()
        if not isinstance(runner, WorkerRunner):  # a worker gets its master's
            self._load_pool_data()
        self._closed_classes = list(environment.user_classes)
        if environment.web_ui is not None and not isinstance(runner, WorkerRunner):
            from panacea_locust.web_ui.app import PanaceaWebUI

            self.web_ui = PanaceaWebUI(self, environment.web_ui)
        logger.info(
            "panacea-locust: target %s, data source %s",
            environment.host or ctx.settings.panacea_host, ctx.pool_data.describe()["mode"],
        )  # fmt: skip
        logger.debug("effective configuration: %s", ctx.settings.masked())

    def _guard_target(self, shape_peak: int) -> None:
        """Exit 2 before any request when the target is outside PANACEA_ALLOWED_HOSTS, or is
        a protected host not confirmed with --confirm-host or asked for too many users."""
        environment, settings = self.environment, self.context.settings
        options = environment.parsed_options
        users = getattr(options, "num_users", None) if options else None
        peak = max(users or 1, shape_peak, self.open_plan.max_users if self.open_plan else 0)
        try:
            check_target(
                environment.host or "", settings.panacea_allowed_hosts,
                settings.panacea_protected_hosts,
                getattr(options, "confirm_host", "") if options else "", peak,
                settings.protected_max_users,
            )  # fmt: skip
        except TargetRefused as err:
            _fail_start(str(err))

    def _check_results_writable(self) -> None:
        """Exit 6 before any request when the results could not be written: a full disk, a
        read-only or impossible folder found now costs nothing, found at the end it costs
        the run. Creates the results folder (or the one ``panacea-locust run`` made)."""
        folder = os.environ.get(RUN_DIR_ENV) or self._results_root()
        try:
            Path(folder).mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".panacea-probe-") as probe:
                probe.write(b"\n" * 4096)
                probe.flush()
                os.fsync(probe.fileno())
        except OSError as err:
            _fail_start(unwritable(folder, err), EXIT_RESULTS_UNWRITABLE)

    def _load_pool_data(self) -> None:
        """Database mode loads the ids once, here (a local process or the master; workers
        get the master's); generated mode needs nothing. A master packs them for its
        workers at once, so a worker that connects waits for nothing but the sending."""
        ctx = self.context
        started = time.monotonic()
        if ctx.settings.use_database_data:
            from panacea_locust.clickhouse_dao import load_pool_data

            ctx.pool_data = load_pool_data(ctx.settings)
        ctx.tally.data_sources[f"{os.getpid()}"] = ctx.pool_data.describe()
        if isinstance(self.environment.runner, MasterRunner):
            packed = self._packed = pack(ctx.pool_data)
            waiting, self._awaiting_data = self._awaiting_data, []
            for node_id in waiting:  # they connected while the database was answering
                self._send_data(node_id)
            self.data_shipping = {
                "load_s": round(time.monotonic() - started, 3),
                "bytes": packed.sent_bytes, "json_bytes": packed.raw_bytes,
                "chunks": len(packed.chunks), "sent_to": 0,
            }  # fmt: skip
            if ctx.settings.use_database_data:
                logger.info(
                    "database mode: the workers run on this master's data: %d kB in %d "
                    "chunks each (%d kB of JSON), loaded and packed in %.2f s",
                    packed.sent_bytes // 1024, len(packed.chunks), packed.raw_bytes // 1024,
                    self.data_shipping["load_s"],
                )  # fmt: skip

    @property
    def _records_requests_itself(self) -> bool:
        """A local process (not a master, not a worker): its own requests make its timeline."""
        return not isinstance(self.environment.runner, (MasterRunner, WorkerRunner))

    def _add_listeners(self) -> None:
        """On this environment's events only, so another environment's run never sees them."""
        on = self.environment.events
        on.spawning_complete.add_listener(self._on_spawning_complete)
        on.reset_stats.add_listener(self._on_reset_stats)
        on.request.add_listener(self._request_listener())
        if self.trace_context:
            on.request.add_listener(self._note_slowest)
        on.report_to_master.add_listener(self._on_report_to_master)
        on.worker_report.add_listener(self._on_worker_report)
        on.test_start.add_listener(self._on_test_start)
        on.test_stopping.add_listener(self._on_test_stopping)
        on.test_stop.add_listener(self._on_test_stop)
        _add_listener_run_last(on.quitting, self._on_quitting)
        on.quit.add_listener(self._on_quit)

    # --- counting --------------------------------------------------------------------------
    def _on_spawning_complete(self, **_: Any) -> None:
        """With ``--reset-stats`` Locust resets its statistics when spawning completes (in
        every process); our per-request counts follow, so both cover the same requests.
        An open-model run's arrivals start now, every user being ready for them."""
        if self.environment.reset_stats:
            self.context.tally.reset_requests()
            self.timeline.clear_requests()
        if self.open_plan is not None and not isinstance(self.environment.runner, WorkerRunner):
            self._start_arrivals()

    def _on_reset_stats(self, **_: Any) -> None:
        # the web UI's Reset Stats (master or local process; workers ship deltas anyway)
        self.context.tally.reset_requests()
        self.timeline.clear_requests()
        if self._schedule_started and not self._schedule_ended:
            self._arrivals_counted_since = time.monotonic()  # the rates of what is counted

    def _request_listener(self) -> Callable[..., None]:
        """Once per request: straight to the histograms. The tally and the timeline live as
        long as the run (their resets clear them in place), so the closure saves look-ups per
        request. A local process also records into its timeline's current interval (about
        0.6 us more); a worker's deltas reach the master's timeline with its reports."""
        tally = self.context.tally
        if not self._records_requests_itself:

            def on_request(
                name: str, response_time: float, exception: Any = None, **_: Any
            ) -> None:
                if exception:
                    tally.record_failure(name, response_time, failure_key(exception))
                else:
                    tally.histograms.record(name, response_time)

            return on_request
        timeline = self.timeline

        def on_request_local(
            name: str, response_time: float, exception: Any = None, **_: Any
        ) -> None:
            current = timeline.current
            if exception:
                tally.failed.record(name, response_time)
                current.fail(name, failure_key(exception))
            else:
                tally.histograms.record(name, response_time)
                current.record(name, response_time)

        return on_request_local

    def _note_slowest(
        self, name: str, response_time: float, context: Any = None, response: Any = None,
        start_time: float | None = None, **_: Any,
    ) -> None:  # fmt: skip
        """With ``--trace-context``: keep each endpoint's slowest requests by trace id."""
        trace = context.get("trace_id") if context else None
        if trace:
            status = getattr(response, "status_code", 0) or 0
            at = start_time if start_time is not None else time.time()
            self.context.tally.slowest.note(name, response_time, trace, at, int(status))

    def _on_report_to_master(self, data: dict[str, Any], **_: Any) -> None:
        data["panacea"] = self.context.tally.drain()
        data["panacea_cpu"] = self._cpu_share(min_window=0.5)  # every 3 s, and at the end
        lag, self.loop_lag = self.loop_lag, SparseHistogram()
        data["panacea_loop_lag"] = lag.to_payload() if lag.count else None

    def _on_worker_report(self, client_id: str, data: dict[str, Any], **_: Any) -> None:
        state = self.state
        report = data.get("panacea")
        if report:
            delta = self.context.tally.merge(report)
            if state.started_at is not None and not state.written:
                at_s = time.monotonic() - state.started_monotonic
                self.timeline.add(
                    at_s, delta.answered, delta.failed, delta.acceptable, delta.reasons
                )
        cpu = data.get("panacea_cpu")
        if isinstance(cpu, (int, float)):
            self.worker_cpu[client_id] = float(cpu)
        if not state.written:
            state.health.note_cpu(cpu, client_id)
            lag = data.get("panacea_loop_lag")
            if lag:
                state.health.note_loop_lag(SparseHistogram.from_payload(lag))

    def _cpu_share(self, min_window: float = 0.0) -> float | None:
        return self.cpu_meter.sample(time.monotonic(), time.process_time(), min_window)

    def note_cpu_sample(self, min_window: float = 0.0) -> None:
        """A local process notes its own CPU share since its last sample (if at least
        ``min_window`` seconds ago); a master's figures come with its workers' reports."""
        if not isinstance(self.environment.runner, MasterRunner):
            self.state.health.note_cpu(self._cpu_share(min_window))

    def load_generator_health(self, final: bool = True) -> GeneratorHealth:
        """The run's ``GeneratorHealth`` so far: samples, Locust's CPU flags, steal since start;
        ``final``: also the last stretch since the last sample, unless too short to tell."""
        health = self.state.health
        runner = self.environment.runner
        if final:
            self.note_cpu_sample(min_window=1.0)
        if not isinstance(runner, MasterRunner):  # a master's figures come with the reports
            lag, self.loop_lag = self.loop_lag, SparseHistogram()
            health.note_loop_lag(lag)
        if isinstance(runner, MasterRunner):  # the workers measure; the master only adds up
            health.cpu_warning = runner.worker_cpu_warning_emitted
        elif runner is not None:
            health.cpu_warning = runner.cpu_warning_emitted
        health.steal_percent = steal_percent(self.state.cpu_times_at_start, read_cpu_times())
        return health

    # --- test lifecycle --------------------------------------------------------------------
    def _on_test_start(self, **_: Any) -> None:
        environment, state, ctx = self.environment, self.state, self.context
        self.cpu_meter.sample(time.monotonic(), time.process_time())  # CPU counts from here
        if not isinstance(environment.runner, MasterRunner):  # this process generates load
            self.loop_lag = SparseHistogram()
            if self._lag_probe is None or self._lag_probe.dead:
                self._lag_probe = gevent.spawn(self._loop_lag_probe)
        if isinstance(environment.runner, WorkerRunner):
            self._worker_open_model()
            return
        self.allocator.reset()
        self.tests_started += 1
        self._configure_web_ui_run()
        if self.tests_started > 1:  # the web UI's next test: a new run
            ctx.tally.reset()
            ctx.tally.data_sources.clear()
            if not isinstance(environment.runner, MasterRunner):
                ctx.tally.data_sources[f"{os.getpid()}"] = ctx.pool_data.describe()
        state.started_at = datetime.now(timezone.utc)
        state.started_monotonic = time.monotonic()
        state.ended_at, state.written, state.aborted, state.run_dir = None, False, None, None
        state.exit_code, state.interrupted = None, None
        state.final, state.compare, self.abort_tracker = None, None, None  # the last run's
        self._schedule_started = self._schedule_ended = 0.0
        self._schedule_epoch = None
        self._install_signal_handlers()
        state.health, state.cpu_times_at_start = GeneratorHealth(), read_cpu_times()
        for greenlet in state.greenlets:
            greenlet.kill(block=False)
        state.greenlets = []
        self.timeline.restart()
        state.greenlets.append(gevent.spawn(self._timeline_ticker))
        if state.slo is not None and state.slo.abort_rules():
            state.greenlets.append(gevent.spawn(self._abort_monitor, state.slo))
        if isinstance(environment.runner, MasterRunner):
            if self._share_loop is not None:
                self._share_loop.kill(block=False)
            self._share_loop = None
            if self.open_plan is not None or ctx.settings.ai_max_rps is not None:
                self._share_loop = gevent.spawn(self._assign_shares)
                state.greenlets.append(self._share_loop)
            self.workers_lost = []
            self._stop_worker_watch()
            self._worker_watch = gevent.spawn(self._watch_workers)
        if self._progress_enabled():
            state.greenlets.append(gevent.spawn(self._progress_printer))
        if not isinstance(environment.runner, MasterRunner):
            state.greenlets.append(gevent.spawn(self._cpu_sampler))

    def _on_test_stopping(self, **_: Any) -> None:
        """Before the users stop: no arrival comes due any more; those waiting count as
        dropped (they never left). Workers that stop from now on are not lost."""
        self._stop_arrivals()
        self._stop_worker_watch()

    def _on_test_stop(self, **_: Any) -> None:
        environment = self.environment
        self._stop_lag_probe()  # the users have stopped: nothing more to measure
        self._stop_arrivals()
        if isinstance(environment.runner, WorkerRunner) or self.state.started_at is None:
            return
        self.state.ended_at = datetime.now(timezone.utc)
        options = environment.parsed_options
        if options is not None and not options.headless:
            # Web UI: each test is a run; a master gives its workers' last reports a moment
            # to arrive; a local process has them all (and the page's last poll may then
            # already show the verdict)
            wait = 2.0 if isinstance(environment.runner, MasterRunner) else 0.0
            gevent.spawn_later(wait, self.export_results)

    def _on_quitting(self, **_: Any) -> None:
        environment, state = self.environment, self.state
        self._quitting = True
        self._stop_lag_probe()
        if isinstance(environment.runner, WorkerRunner):
            return
        for greenlet in state.greenlets:
            greenlet.kill(block=False)
        if not state.written:
            self.export_results()
        if state.exit_code is not None:  # None: no rules, Locust's own exit code stands
            environment.process_exit_code = state.exit_code

    def _on_quit(self, **_: Any) -> None:
        """Locust prints its tables during shutdown; the verdict comes last, after them."""
        self._print_report()

    # --- the workers of a distributed run ------------------------------------------------------
    def _on_worker_ready(self, environment: Environment, msg: Any, **_: Any) -> None:
        """Master: a worker is set up; prove this run's secret to it and ask for its proof."""
        if self.run_secret is None:
            self._send_data(msg.node_id)
            return
        nonce = new_nonce()
        self._nonces[msg.node_id] = nonce
        data = {"nonce": nonce, "proof": proof(self.run_secret, "master", nonce)}
        runner = environment.runner
        if runner is not None:
            runner.send_message(HELLO, data, msg.node_id)

    def _on_worker_proof(self, environment: Environment, msg: Any, **_: Any) -> None:
        """Master: a worker that cannot prove the run's secret is sent away."""
        nonce = self._nonces.pop(msg.node_id, None)
        if self.run_secret is None or nonce is None:
            return
        if not valid(self.run_secret, "worker", nonce, (msg.data or {}).get("proof")):
            logger.warning(
                "panacea-locust: refused worker %s: it does not share this run's "
                "PANACEA_RUN_SECRET", msg.node_id,
            )  # fmt: skip
            runner = environment.runner
            if runner is not None:
                runner.send_message(REFUSED, None, msg.node_id)
            return
        self._send_data(msg.node_id)

    def _send_data(self, node_id: str) -> None:
        """Master: the pool data to one worker it accepted, chunk by chunk, in a greenlet of
        its own (the messages handler goes on reading heartbeats and reports meanwhile).
        A worker accepted before the data is loaded (the messages handler runs while the
        database answers) gets it once it is packed."""
        packed, runner = self._packed, self.environment.runner
        if runner is None:
            return
        if packed is None:
            self._awaiting_data.append(node_id)
            return

        def send() -> None:
            for body in packed.messages():
                runner.send_message(DATA_MESSAGE, body, node_id)
                gevent.sleep(0)
            self.data_shipping["sent_to"] = self.data_shipping.get("sent_to", 0) + 1

        gevent.spawn(send)

    def _on_master_data(self, environment: Environment, msg: Any, **_: Any) -> None:
        """Worker: a chunk of the master's data; the last one makes this worker's data."""
        try:
            data = self._assembler.add(msg.data)
        except TransferError as err:
            self._use_own_data(str(err))
            return
        if data is None:
            return
        ctx = self.context
        ctx.pool_data = data
        ctx.tally.data_sources[f"{os.getpid()}"] = data.describe()
        logger.info(
            "panacea-locust: running on the master's data (%s)",
            ", ".join(f"{k}={v}" for k, v in data.describe()["loaded"].items()) or "generated",
        )
        self.data_ready.set()

    def _use_own_data(self, why: str) -> None:
        """Worker: the master's data did not come whole; generate every kind, say why."""
        if self.data_ready.is_set():
            return
        logger.error("panacea-locust: generating this worker's data: %s", why)
        data = PoolData(fallbacks=dict.fromkeys(POOL_KINDS, why))
        self.context.pool_data = data
        self.context.tally.data_sources[f"{os.getpid()}"] = data.describe()
        self.data_ready.set()

    def _on_worker_leaving(self, environment: Environment, msg: Any, **_: Any) -> None:
        """Master: a worker of another run is leaving: forget it now, so the run neither
        waits for it nor gives it users (Locust would notice only when its heartbeats stop;
        its own quit message would make a headless master quit before the test)."""
        runner = environment.runner
        if not isinstance(runner, MasterRunner) or msg.node_id not in runner.clients:
            return
        clients = runner.clients
        client = clients[msg.node_id]
        del clients[msg.node_id]
        dispatcher = getattr(runner, "_users_dispatcher", None)
        if dispatcher is not None:
            dispatcher.remove_worker(client)
            if runner.state in (STATE_SPAWNING, STATE_RUNNING) and runner.worker_count > 0:
                runner.start(runner.target_user_count, runner.spawn_rate)
        logger.warning("panacea-locust: worker %s left: it is not of this run", msg.node_id)

    def _on_master_hello(self, environment: Environment, msg: Any, **_: Any) -> None:
        """Worker: check the master's proof (another run's master cannot make it), then give
        ours. Without a secret here a master with one refuses us."""
        data = msg.data or {}
        nonce = str(data.get("nonce", ""))
        runner = environment.runner
        if self.run_secret is None:
            if runner is not None:
                runner.send_message(PROOF, {"proof": None})
            return
        if not valid(self.run_secret, "master", nonce, data.get("proof")):
            self._leave("its master is not of this run (PANACEA_RUN_SECRET differs)")
            return
        if runner is not None:
            runner.send_message(PROOF, {"proof": proof(self.run_secret, "worker", nonce)})
        self.verified.set()

    def _on_refused(self, environment: Environment, msg: Any, **_: Any) -> None:
        self._leave("its master refused it (PANACEA_RUN_SECRET differs or is missing)")

    def _leave(self, why: str) -> None:
        """Worker: no user of this process runs, and the process exits (code 2) without the
        goodbye Locust's quit sends: a headless master that hears its last worker quit
        before the test quits too, which would end the run this worker was not part of."""
        logger.error("panacea-locust: this worker leaves: %s", why)
        self.refused = True
        self.verified.set()
        runner = self.environment.runner
        if runner is not None:
            with contextlib.suppress(Exception):  # best effort: the master may be gone
                runner.send_message(LEAVING, None)
                gevent.sleep(0.2)  # let the message leave before the process does
        logging.shutdown()
        os._exit(2)

    def may_run_users(self) -> bool:
        """Worker: wait (a user's ``on_start``) until the master has proved the run's secret
        (with one; False when it did not, or not within ``HANDSHAKE_WAIT_S``) and its pool
        data has arrived (``DATA_WAIT_S``; then the worker generates its own, and says so).
        False as well when the run stops meanwhile: Locust's graceful stop would otherwise
        wait out its whole grace for users that never started."""
        if self.run_secret is not None or self.refused:
            if not self.verified.wait(HANDSHAKE_WAIT_S):
                self._leave(f"no handshake with the master within {HANDSHAKE_WAIT_S:g} s")
            if self.refused:
                return False
        deadline = time.monotonic() + DATA_WAIT_S
        while not self.data_ready.wait(0.5):
            runner = self.environment.runner
            if runner is not None and runner.state in (STATE_STOPPING, STATE_CLEANUP):
                return False  # the run is over: a user that never started has nothing to do
            if time.monotonic() >= deadline:
                self._use_own_data(f"the master's data did not arrive within {DATA_WAIT_S:g} s")
        return True

    def _on_worker_connect(self, client_id: str, **_: Any) -> None:
        at = time.monotonic() - self.state.started_monotonic if self.state.started_at else 0.0
        self.workers_joined.append({"id": client_id, "at_s": round(max(0.0, at), 3)})

    def _watch_workers(self) -> None:
        """Master, during a test: a worker that goes missing (no heartbeat) or disappears is
        recorded as lost, with the users it ran, once a second."""
        runner = self.environment.runner
        users: dict[str, int] = {}
        lost = {w["id"] for w in self.workers_lost}
        while True:
            gevent.sleep(1.0)
            clients = {c.id: c for c in getattr(runner, "clients", {}).values()}
            at_s = round(time.monotonic() - self.state.started_monotonic, 3)
            for client_id, count in list(users.items()):
                client = clients.get(client_id)
                if client_id not in lost and (client is None or client.state == "missing"):
                    lost.add(client_id)
                    self.workers_lost.append({"id": client_id, "at_s": at_s, "users": count})
                    logger.warning(
                        "panacea-locust: worker %s lost %.0f s into the run with %d users",
                        client_id, at_s, count,
                    )  # fmt: skip
            for client_id, client in clients.items():
                if client.state != "missing":
                    users[client_id] = sum(client.user_classes_count.values())

    def _stop_worker_watch(self) -> None:
        if self._worker_watch is not None:
            self._worker_watch.kill(block=False)
            self._worker_watch = None

    def workers_record(self) -> dict[str, Any] | None:
        """``run.workers`` of a distributed run (None for a local one)."""
        if not isinstance(self.environment.runner, MasterRunner):
            return None
        options = self.environment.parsed_options
        return {
            "expected": getattr(options, "expect_workers", None) if options else None,
            "joined": list(self.workers_joined),
            "lost": list(self.workers_lost),
            "data": dict(self.data_shipping),
        }

    def _on_master_heartbeat(self, **_: Any) -> None:
        self._master_heard = time.monotonic()

    def _master_watchdog(self) -> None:
        """Worker: stop once the master has been silent for ``MASTER_LOST_S`` (a killed
        master's workers went on loading the target for a minute)."""
        while True:
            gevent.sleep(1.0)
            heard = self._master_heard
            if heard and time.monotonic() - heard > MASTER_LOST_S:
                logger.error(
                    "panacea-locust: no heartbeat from the master for %g s: stopping this worker",
                    MASTER_LOST_S,
                )
                runner = self.environment.runner
                if runner is not None:
                    runner.quit()
                return

    # --- the open model ----------------------------------------------------------------------
    def _open_model_set_up(self, open_user: type[User]) -> None:
        """Master or local process: only ``OpenUser`` runs, ``--max-users`` of them started
        at once (idle until an arrival), and the arrivals' listener is on."""
        plan, environment = self.open_plan, self.environment
        assert plan is not None
        environment.user_classes = [open_user]
        options = environment.parsed_options
        if options is not None:
            options.num_users = plan.max_users
            options.spawn_rate = float(plan.max_users)  # all of them within a second
        if not isinstance(environment.runner, MasterRunner):
            self.arrivals = ArrivalDispatcher(
                self.context.tally, self.context.settings.max_schedule_lag_s
            )
            environment.events.request.add_listener(self._note_service)
        logger.info(
            "panacea-locust: open model: %s arrivals, %s, served by up to %d users",
            plan.process, plan.describe(), plan.max_users,
        )  # fmt: skip

    def _arrivals_on(self) -> None:
        """This process generates arrivals: a dispatcher, and the service-time listener."""
        lag = self.context.settings.max_schedule_lag_s
        self.arrivals = ArrivalDispatcher(self.context.tally, lag)
        self.environment.events.request.add_listener(self._note_service)

    def _start_arrivals(self) -> None:
        """The schedule begins: here (a local run) or on the workers, each with its share."""
        plan, runner = self.open_plan, self.environment.runner
        if plan is None or self._schedule_started:
            return
        self._schedule_started = self._arrivals_counted_since = time.monotonic()
        self._schedule_epoch = time.time()  # the share loop tells the workers (a master)
        if self.arrivals is not None:
            seed = self.context.settings.seed
            self.arrivals.start(
                ArrivalSchedule(plan.stages, plan.process, seed=seed), perf_counter()
            )
        length = length_s(plan.stages)
        if runner is not None and math.isfinite(length):  # the stages' end is the run's end
            options = self.environment.parsed_options
            end = runner.quit if options is None or options.headless else runner.stop
            self._arrival_greenlets.append(gevent.spawn_later(length, end))

    def _assign_shares(self) -> None:
        """Master: give each worker a share of the run's rates in proportion to the users it
        runs (a worker without users gets none: its arrivals would only be dropped), again
        whenever that changes: a worker joins, leaves or is given users (checked each second),
        or the arrivals begin."""
        runner = self.environment.runner
        assigned: tuple[dict[str, float], float | None] = ({}, None)
        while True:
            users = {
                c.id: sum(c.user_classes_count.values())
                for c in getattr(runner, "clients", {}).values()
                if c.state not in ("missing", "stopped")
            }
            shares, t0_epoch = split_shares(users), self._schedule_epoch
            if shares and (shares, t0_epoch) != assigned:
                phase = 0.0
                for index, (client_id, share) in enumerate(sorted(shares.items())):
                    message = {"share": share, "phase": phase, "t0_epoch": t0_epoch,
                               "index": index}  # fmt: skip
                    runner.send_message(SHARE_MESSAGE, message, client_id)  # type: ignore[union-attr]
                    phase += share
                if assigned[0] and shares != assigned[0]:
                    logger.info("panacea-locust: the rates re-split over %d workers", len(shares))
                assigned = (shares, t0_epoch)
            gevent.sleep(1.0)

    def _worker_open_model(self) -> None:
        """Worker, as a test starts: the master's options (sent with the spawn message) say
        whether the run is open; its users need the dispatcher before the first arrival."""
        try:
            plan = open_plan(self.environment.parsed_options, self.context.settings)
        except ScheduleError as err:
            logger.error("panacea-locust: %s", err)
            return
        self.open_plan = plan
        if plan is not None and self.arrivals is None:
            self._arrivals_on()

    def _on_share(self, environment: Environment, msg: Any, **_: Any) -> None:
        """Worker: its share of the run's rates from the master: AI_MAX_RPS now, an open
        model's arrivals once they have begun (``t0_epoch``)."""
        share, phase = float(msg.data["share"]), float(msg.data["phase"])
        if self.cost_cap is not None:
            cap = self.context.settings.ai_max_rps or 0.0
            self.cost_cap.set_rate(cap * share, perf_counter())
        try:
            plan = open_plan(environment.parsed_options, self.context.settings)
        except ScheduleError as err:
            logger.error("panacea-locust: %s", err)
            return
        if plan is None or msg.data.get("t0_epoch") is None:
            return
        self.open_plan = plan
        if self.arrivals is None:
            self._arrivals_on()
        assert self.arrivals is not None
        if share <= 0:  # no users here: no arrivals either
            self.arrivals.stop_schedule()
            return
        index = int(msg.data.get("index", 0))
        since = max(0.0, time.time() - float(msg.data["t0_epoch"]))
        seed = self.context.settings.seed
        schedule = ArrivalSchedule(
            plan.stages, plan.process, share=min(1.0, share), phase=phase,
            seed=None if seed is None else seed + index,
        )  # fmt: skip
        self.arrivals.start(schedule, perf_counter() - since, from_s=since)

    def _note_service(
        self, name: str, response_time: float, exception: Any = None, context: Any = None,
        **_: Any,
    ) -> None:  # fmt: skip
        """Open model: an answered request's time from its actual send (``lag_ms`` less)."""
        lag = context.get("lag_ms") if context and not exception else None
        if lag is not None:
            self.context.tally.service.record(name, response_time - lag)

    def _stop_arrivals(self) -> None:
        if self._schedule_started and not self._schedule_ended:
            self._schedule_ended = time.monotonic()
        current = gevent.getcurrent()
        for greenlet in self._arrival_greenlets:
            if greenlet is not current:  # the stages' end is what stops the run: let it
                greenlet.kill(block=False)
        self._arrival_greenlets = []
        if self.arrivals is not None:
            self.arrivals.close()

    def workload(self) -> dict[str, Any]:
        """``run.workload``: the open model's figures, or the closed model's users; either
        with the users stalled at start."""
        return {**self._model_workload(), "stalled_starts": self.context.tally.stalled_starts}

    def _model_workload(self) -> dict[str, Any]:
        """The open model's figures, or the closed model's users. The rates cover the
        arrivals counted: from the schedule's start (or the last reset of the statistics) to
        its end (the test stopping), or to now during the run."""
        tally, plan = self.context.tally, self.open_plan
        if plan is None:
            return {"model": "closed", "users": sum(tally.users_by_type.values())}
        started, since = self._schedule_started, self._arrivals_counted_since
        elapsed, target = 0.0, 0.0
        if started:
            end = self._schedule_ended or time.monotonic()
            elapsed = max(0.0, end - since)
            due = expected_arrivals(plan.stages, end - started) - expected_arrivals(
                plan.stages, since - started
            )
            target = due / elapsed if elapsed > 0 else 0.0
        return workload_record(tally.arrivals, plan.process, target, elapsed, plan.max_users)

    def _arrival_stage_plan(self) -> list[dict[str, Any]]:
        """The rate stages as ``verdict/stages.py`` plans them, in seconds from the test start."""
        plan = self.open_plan
        if plan is None or not self._schedule_started or plan.unbounded:
            return []
        offset = self._schedule_started - self.state.started_monotonic
        return [
            {**stage, "start_s": round(stage["start_s"] + offset, 3),
             "end_s": round(stage["end_s"] + offset, 3)}
            for stage in arrival_plan(plan.stages)
        ]  # fmt: skip

    # --- interruptions ----------------------------------------------------------------------
    def _install_signal_handlers(self) -> None:
        """SIGINT and SIGTERM stop the test with its requests in flight given their grace,
        then Locust's own Ctrl-C path writes everything; a second signal stops at once.

        Installed when a test starts (after Locust's SIGTERM handler, which would quit without
        the report). A SIGINT ignored at start (a shell's background job) stays ignored.
        Only in a process Locust's command line started: never in a test's or a library's.
        """
        if self.environment.parsed_options is None:
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            if sig == signal.SIGINT and signal.getsignal(sig) == signal.SIG_IGN:
                continue
            try:
                signal.signal(sig, self._on_signal)
            except ValueError:  # not the main thread: leave signals to whoever owns them
                return

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        # runs between two bytecodes of whatever greenlet: only schedule work here
        self._signals += 1
        name = signal.Signals(signum).name
        gevent.spawn(self._interrupt if self._signals == 1 else self._stop_now, name)

    def _interrupt(self, name: str) -> None:
        """The first signal: stop the test (the grace applies), then quit as Ctrl-C does."""
        state, runner = self.state, self.environment.runner
        if self._quitting:
            return  # already shutting down: the results are on their way
        if runner is not None and runner.state in (STATE_CLEANUP, STATE_STOPPING):
            # already stopping: give it its grace, then make sure the process ends anyway
            logger.warning("panacea-locust: %s: the run is already stopping", name)
            gevent.spawn_later(self.environment.stop_timeout, self._stop_now, name)
            return
        if state.started_at is not None and not state.written:
            state.interrupted = {
                "signal": name,
                "at_s": round(time.monotonic() - state.started_monotonic, 3),
            }
            logger.warning(
                "panacea-locust: %s: stopping the run; requests in flight get %g s "
                "(%s again: stop now)", name, self.environment.stop_timeout, name,
            )  # fmt: skip
            if runner is not None and runner.state in (STATE_SPAWNING, STATE_RUNNING):
                runner.stop()
        if not self._quitting:
            gevent.get_hub().parent.throw(KeyboardInterrupt)  # Locust's own Ctrl-C path

    def _stop_now(self, name: str) -> None:
        """A second signal: the users stop at once (their requests in flight count as
        unfinished) and the first signal's shutdown goes on without the grace. Should that
        shutdown not end within ``FORCED_EXIT_S``, the summary is written and the process
        exits with the run's code all the same."""
        logger.warning("panacea-locust: %s again: stopping now", name)
        runner = self.environment.runner
        if runner is not None:
            runner.user_greenlets.kill(block=False)
        gevent.sleep(FORCED_EXIT_S)
        state = self.state
        if not state.written:
            state.ended_at = state.ended_at or datetime.now(timezone.utc)
            self.export_results()
        self._print_report()
        code = state.exit_code if state.exit_code is not None else 128 + signal.Signals[name]
        logger.error("panacea-locust: shutdown took over %g s: exiting now", FORCED_EXIT_S)
        logging.shutdown()
        os._exit(code)

    # --- the web UI -----------------------------------------------------------------------
    def web_ui_slo(self, slo_file: str, scenario: str) -> tuple[str | None, SLO | None]:
        """The thresholds of a run started from the web UI: the form's file, else the
        scenario's, else ``SLO_FILE``, else the shipped ``slo.toml`` when found. Raises
        ``SLOError`` or ``OSError`` (one line) for a file that cannot be used."""
        path = slo_file or None
        if path is None and scenario in SCENARIOS:
            found = scenario_slo(scenario_path(scenario))
            path = str(found) if found else None
        path = path or self.context.settings.slo_file or None
        if path is None:
            shipped = default_slo()
            path = str(shipped) if shipped else None
        if path is None:
            return None, None
        if not Path(path).is_file():
            raise OSError(f"SLO file {path}: no such file")
        return path, load_slo(path, endpoint_names(self.context.settings))

    def _configure_web_ui_run(self) -> None:
        """A test started from the web UI is a run of the form's values (Locust has put them
        into the options): its thresholds, scenario, analytics weight and, with an arrival
        rate, the open model (the form's number of users then serves the arrivals)."""
        environment, options = self.environment, self.environment.parsed_options
        if options is None or options.headless or self.web_ui is None:
            return
        scenario = (getattr(options, "scenario", "") or "").strip()
        try:
            self.state.slo_path, self.state.slo = self.web_ui_slo(
                (getattr(options, "slo_file", "") or "").strip(), scenario
            )
        except (SLOError, OSError) as err:  # checked with the form; changed on disk since
            logger.error("panacea-locust: no thresholds for this run: %s", err)
            self.state.slo_path, self.state.slo = None, None
        stages = ""
        if scenario in SCENARIOS and not getattr(options, "arrival_rate", None):
            stages = scenario_options(scenario_path(scenario)).get("arrival-stages", "")
        rate = getattr(options, "arrival_rate", None) or None
        try:
            plan = open_plan_of(
                float(rate) if rate else None, stages, options.arrival_process or "poisson",
                options.num_users or None, self.context.settings.locust_max_users,
            )  # fmt: skip
        except (ScheduleError, ValueError) as err:
            logger.error("panacea-locust: a closed run instead: %s", err)
            plan = None
        self.open_plan = plan
        if plan is None:  # the closed classes (an earlier test may have been open), weighted
            environment.user_classes[:] = self._closed_classes or environment.user_classes
            weight = getattr(options, "analytics_user_weight", -1)
            if isinstance(weight, int) and weight >= 0:
                _set_analytics_weight(environment, weight)
            return
        from panacea_locust.open_model.user import OpenUser

        environment.user_classes[:] = [OpenUser]
        if self.arrivals is None and not isinstance(environment.runner, MasterRunner):
            self._arrivals_on()

    def web_ui_snapshot(self) -> dict[str, Any]:
        """The run as the web UI's tab shows it: live while it runs, as written after."""
        state, runner = self.state, self.environment.runner
        live: dict[str, Any] = {
            "state": getattr(runner, "state", "") if runner is not None else "",
            "slo_file": state.slo_path,
            "worker_cpu": dict(self.worker_cpu),
        }
        if state.started_at is None:
            live["state"] = "ready: no run yet"
            return live
        summary = state.final
        if summary is None and not state.written:
            elapsed = time.monotonic() - state.started_monotonic
            windows = cached_windows({}, self.window_source(elapsed, final=False))
            summary = self.collect_summary(final=False, windows=windows)
        if summary is None:
            return live
        run = summary["run"]
        live.update(
            run_id=run.get("id"), thresholds=summary["thresholds"], users=run.get("users"),
            data_source=run.get("data_source"), load_generator=run.get("load_generator"),
            workload=run.get("workload"), connections=run.get("connections"),
        )  # fmt: skip
        if runner is not None and runner.user_classes_count:
            live["users"] = dict(runner.user_classes_count)
        tracker = self.abort_tracker
        if tracker is not None and state.final is None:
            live["countdowns"] = tracker.countdowns(time.monotonic())
        if state.final is not None and state.run_dir is not None:
            live["verdict"] = summary["verdict"]
            live["reports"] = [
                (name, f"/panacea/runs/{state.run_dir.name}/{name}")
                for name in REPORT_FILES if (state.run_dir / name).is_file()
            ]  # fmt: skip
            live["compare"] = state.compare
        return live

    def _compare_with_baseline(self, run_dir: Path) -> None:
        """``--baseline`` (the web UI's field): compare this run with that earlier one, the
        same judgement as ``panacea-locust compare``, written into this run's folder."""
        options = self.environment.parsed_options
        baseline = getattr(options, "baseline", NO_BASELINE) if options else NO_BASELINE
        if not baseline or baseline == NO_BASELINE:
            return
        from panacea_locust.cli.compare import write_comparison
        from panacea_locust.verdict.compare import CompareInputError

        base_dir = Path(self._results_root()) / baseline
        try:
            comparison = write_comparison(base_dir, run_dir, run_dir)
        except CompareInputError as err:
            self.state.compare = {"baseline": baseline, "result": str(err), "status": "error"}
            logger.error("panacea-locust: no comparison with %s: %s", baseline, err)
            return
        flagged = ", ".join(dict.fromkeys(scope for scope, _ in comparison.regressions))
        if not flagged:
            result = "no regression"
        elif comparison.inconclusive:
            result = f"inconclusive (an unfit load generator): latency up in {flagged}"
        else:
            result = f"regressions in {flagged}"
        self.state.compare = {
            "baseline": baseline,
            "result": result,
            "status": f"exit {comparison.exit_code}",
        }
        logger.info("panacea-locust: compared with %s: %s", baseline,
                    self.state.compare["result"])  # fmt: skip

    # --- building and writing the summary --------------------------------------------------
    def window_source(self, end_s: float, final: bool = True) -> WindowSource:
        """The windows rules with ``window_s`` judge, from the timeline up to ``end_s``
        seconds: every window at the end (``final``), only the most recent one during the
        run (what an abort rule watches, and cheap enough for once a second)."""
        slo = self.state.slo
        scopes = list(dict.fromkeys(r.scope for r in slo.rules if r.window_s)) if slo else []
        timeline = self.timeline
        if final:
            return lambda window_s: timeline.windows(window_s, end_s, scopes)
        return lambda window_s: [timeline.recent(window_s, end_s, scopes)]

    def collect_summary(
        self, final: bool = True, windows: WindowSource | None = None
    ) -> dict[str, Any]:
        """The results contract for the run so far, from Locust's stats and this run's tally;
        windowed rules judged on ``windows`` (default: ``window_source`` of the run so far)."""
        environment, state, ctx = self.environment, self.state, self.context
        stats = environment.stats
        counts: dict[str, EndpointCounts] = {}
        for (name, _method), entry in stats.entries.items():
            c = counts.setdefault(name, EndpointCounts())
            c.requests += entry.num_requests
            c.failures += entry.num_failures
            c.rps += entry.total_rps
        for error in stats.errors.values():
            c = counts.setdefault(error.name, EndpointCounts())
            reason = error_reason(str(error.error))
            c.failures_by_reason[reason] = c.failures_by_reason.get(reason, 0) + error.occurrences
        total = EndpointCounts(
            stats.total.num_requests, stats.total.num_failures, stats.total.total_rps
        )
        now = state.ended_at or datetime.now(timezone.utc)
        started = state.started_at or now
        duration_s = round((now - started).total_seconds(), 3)
        workload = self.workload()
        run = {
            "id": state.run_dir.name if state.run_dir else None,
            "label": run_label(environment),
            "host": environment.host or ctx.settings.panacea_host,
            "started_at": started.isoformat().replace("+00:00", "Z"),
            "ended_at": now.isoformat().replace("+00:00", "Z"),
            "duration_s": duration_s,
            "users": dict(ctx.tally.users_by_type),
            "data_source": ctx.tally.data_source(),
            "config": ctx.settings.masked(),
            "locust": _locust_options(environment),
            "shape": shape_record(environment.shape_class),
            "workload": workload,
            "workers": self.workers_record(),
            "cost_guard": cost_guard_record(ctx.settings.ai_max_rps, ctx.tally.costly_skipped),
            "connections": {"stale_resends": ctx.tally.stale_resends},
            **run_metadata(environment.parsed_options),
        }
        if state.aborted:
            run["aborted"] = state.aborted
        run["interrupted"] = state.interrupted
        health = self.load_generator_health(final).as_dict()
        late = generator_lag_warning(workload)
        if late:
            health["warnings"].append(late)
        for worker in self.workers_lost:
            text = lost_worker_text(worker["id"], worker["at_s"], worker["users"])
            health["warnings"].append(f"{text}: the run went on without them")
        run["load_generator"] = health
        histograms = ctx.tally.histograms
        summary = build_summary(
            run, counts, total, histograms, ctx.tally.acceptable,
            endpoint_names(ctx.settings), ctx.tally.failed, ctx.tally.slowest,
        )  # fmt: skip
        add_service_times(summary, ctx.tally.service if self.open_plan else None)
        for warning in (
            generator_failure_warning(summary["total"]),
            stalled_start_warning(ctx.tally.stalled_starts),
        ):
            if warning:
                health["warnings"].append(warning)
        # the same top-level keys for every run, whatever started it
        summary["thresholds"] = {"passed": None, "rules": []}
        if state.slo is not None:
            if windows is None:
                windows = self.window_source(duration_s, final)
            summary["thresholds"] = state.slo.evaluate(summary, windows)
            if state.aborted:
                summary["thresholds"] = mark_aborted(summary["thresholds"], state.aborted)
        # a step or spike run, stage by stage; skipped in the abort monitor's snapshots
        plan = (
            (describe_stages(environment.shape_class) or self._arrival_stage_plan())
            if final
            else []
        )
        summary["stages"] = (
            build_stages(plan, self.timeline.spans(duration_s), state.slo,
                         endpoint_names(ctx.settings))
            if plan else []
        )  # fmt: skip
        summary["capacity"] = capacity(summary["stages"])  # None without an SLO
        summary["verdict"] = decide(summary).as_dict()
        return summary

    def results_root(self) -> str:
        """Where run folders go: ``--results-dir``, else ``RESULTS_DIR``."""
        return self._results_root()

    def _results_root(self) -> str:
        options = self.environment.parsed_options
        from_option = getattr(options, "results_dir", "") if options else ""
        return from_option or self.context.settings.results_dir

    def export_results(self) -> Path | None:
        """Write this run's folder: the summary first (the verdict), then the optional files,
        each of which may fail alone. Never raises (a failed export must not hide the run's
        end); results that cannot be written give one line and exit code 6."""
        state = self.state
        if state.written:
            return state.run_dir
        state.written = True
        with self.descriptors.released():  # a process out of descriptors still writes them
            return self._export()

    def _export(self) -> Path | None:
        state, environment = self.state, self.environment
        try:
            where: object = os.environ.get(RUN_DIR_ENV) or self._results_root()
            failed: OSError | None = None
            try:
                state.run_dir = where = self._make_run_dir()
            except OSError as err:
                failed = err
            summary = self.collect_summary()  # names the run folder: made first
            state.exit_code = summary["verdict"]["exit_code"]
            try:
                if failed is not None:
                    raise failed
                assert state.run_dir is not None
                write_results(state.run_dir, summary, self.context.tally.histograms.to_payload())
            except OSError as err:
                logger.error("panacea-locust: %s", unwritable(where, err))
                state.exit_code = EXIT_RESULTS_UNWRITABLE
                state.report = self._report_text(summary, None)
                return None
            state.final = summary
            timeline = self._write_timeline(state.run_dir, summary)
            # the optional reports last: their failure can lose them, never the verdict
            if summary["thresholds"]["rules"]:  # a CI's test report of the rules
                self._optional(write_junit, state.run_dir, summary)
            self._optional(write_summary_html, state.run_dir, summary, timeline)
            self._optional(self._write_locust_csv)
            self._optional(self._write_locust_html)
            self._optional(self._compare_with_baseline, state.run_dir)
            state.report = self._report_text(summary, state.run_dir)
            options = environment.parsed_options
            if options is None or not options.headless:
                self._print_report()  # web UI: now; headless: after Locust's tables (quit event)
            return state.run_dir
        except Exception:  # pragma: no cover - logged, never fatal
            logger.exception("panacea-locust: could not write the results")
            return state.run_dir

    def _make_run_dir(self) -> Path:
        """The folder ``panacea-locust run`` made for this run, else a new one."""
        preset = os.environ.get(RUN_DIR_ENV)
        if preset and not any(Path(preset).glob("summary.json")):
            run_dir = Path(preset)
            run_dir.mkdir(parents=True, exist_ok=True)
            return run_dir
        started = self.state.started_at or datetime.now(timezone.utc)
        return create_run_dir(self._results_root(), run_label(self.environment), started)

    def _report_text(self, summary: dict[str, Any], run_dir: Path | None) -> str:
        """The table, the rules, the warnings, the verdict and where the results went."""
        thresholds = summary["thresholds"]
        report = ["", render_table(summary)]
        if thresholds["rules"]:
            report.append(render_thresholds_text(thresholds))
        workload = workload_line(summary)
        report += [workload] if workload else []
        report += [*generator_warnings(summary), verdict_line(summary)]
        report.append(f"Results: {run_dir}" if run_dir else "Results: NOT WRITTEN (exit code 6)")
        return "\n".join(report) + "\n"

    @staticmethod
    def _optional(write: Callable[..., object], *args: Any) -> None:
        """Write an optional file: a full or failing disk is one line, a bug a traceback."""
        try:
            write(*args)
        except OSError as err:
            logger.error("panacea-locust: could not write %s: %s", write.__name__, err)
        except Exception:  # pragma: no cover - logged, never fatal
            logger.exception("panacea-locust: %s failed", write.__name__)

    def _write_locust_csv(self) -> None:
        """Locust's ``--csv`` files as the run ended (its writer rewrites them once a second,
        so without this the last second's requests were missing from them)."""
        options = self.environment.parsed_options
        prefix = getattr(options, "csv_prefix", None) if options else None
        if not prefix:
            return
        from locust.stats import PERCENTILES_TO_REPORT, StatsCSV

        writer = StatsCSV(self.environment, PERCENTILES_TO_REPORT)
        tables = (("_stats.csv", writer.requests_csv), ("_failures.csv", writer.failures_csv),
                  ("_exceptions.csv", writer.exceptions_csv))  # fmt: skip
        for suffix, write in tables:
            path = Path(prefix + suffix)
            tmp = path.with_name(f".{path.name}.tmp")
            with tmp.open("w", newline="", encoding="utf-8") as file:
                write(csv.writer(file))
            os.replace(tmp, path)

    def _write_locust_html(self) -> None:
        """Locust's ``--html`` report, written as Locust writes it, after the summary."""
        if not self.html_file:
            return
        from locust.html import get_html_report, process_html_filename

        options = self.environment.parsed_options
        named = SimpleNamespace(
            html_file=self.html_file,
            num_users=getattr(options, "num_users", None),
            spawn_rate=getattr(options, "spawn_rate", None),
            run_time=getattr(options, "run_time", None),
        )
        process_html_filename(named)  # Locust's {u}, {r} and {t} in the name
        path = Path(named.html_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(get_html_report(self.environment, show_download_link=False), "utf-8")
        os.replace(tmp, path)

    def _write_timeline(self, run_dir: Path, summary: dict[str, Any]) -> dict[str, Any] | None:
        """``timeline.json`` and ``latency.hlog``; a failure is logged, never hides the verdict.
        Returns the timeline as written (for summary.html), None if it could not be built."""
        try:
            started = self.state.started_at or datetime.now(timezone.utc)
            order = endpoint_names(self.context.settings)
            end_s = summary["run"]["duration_s"]
            self.timeline.write(run_dir, end_s, started, order)
            return self.timeline.to_json(end_s, order)
        except OSError as err:
            logger.error("panacea-locust: could not write the timeline: %s", err)
            return None
        except Exception:  # pragma: no cover - logged, never fatal
            logger.exception("panacea-locust: could not write the timeline")
            return None

    def _print_report(self) -> None:
        if self.state.report:
            sys.stderr.write(self.state.report)
            sys.stderr.flush()
            self.state.report = ""

    # --- background greenlets --------------------------------------------------------------
    def _abort_monitor(self, slo: SLO) -> None:
        tracker = self.abort_tracker = AbortTracker(slo)
        while True:
            gevent.sleep(1.0)
            try:
                now = time.monotonic()
                # one most-recent window per window length, for the summary and the tracker
                windows = cached_windows(
                    {}, self.window_source(now - self.state.started_monotonic, final=False)
                )
                summary = self.collect_summary(final=False, windows=windows)
                reason = tracker.update(now, summary, windows)
            except Exception:  # pragma: no cover
                logger.exception("abort monitor failed")
                continue
            if reason:
                logger.error("panacea-locust: stopping the run early: %s", reason)
                self.state.aborted = reason
                self.state.ended_at = datetime.now(timezone.utc)
                if self.environment.runner is not None:
                    self.environment.runner.quit()
                return

    def _timeline_ticker(self) -> None:
        """Moves the timeline's current interval on at each interval's edge (where a local
        process records), and notes the users running at least once a second."""
        timeline, size = self.timeline, self.timeline.interval_s
        while True:
            elapsed = time.monotonic() - self.state.started_monotonic
            timeline.advance(elapsed)
            runner = self.environment.runner
            if runner is not None:
                timeline.note_users(elapsed, runner.user_count)
            to_edge = size - elapsed % size
            gevent.sleep(min(USERS_SAMPLE_S, to_edge + 0.001))

    def _loop_lag_probe(self) -> None:
        """Sleeps a fixed time and records how late it woke: the time a ready greenlet (a
        user whose answer has arrived) waits for this process's event loop, which every
        latency measured meanwhile includes."""
        while True:
            before = time.monotonic()
            gevent.sleep(LOOP_LAG_PERIOD_S)
            self.loop_lag.record((time.monotonic() - before - LOOP_LAG_PERIOD_S) * 1000.0)

    def _stop_lag_probe(self) -> None:
        if self._lag_probe is not None:
            self._lag_probe.kill(block=False)
            self._lag_probe = None

    def _cpu_sampler(self) -> None:
        # 5 s windows: long enough that a spawn burst or a collection does not read as overload
        while True:
            gevent.sleep(CPU_SAMPLE_S)
            self.note_cpu_sample()

    def _progress_enabled(self) -> bool:
        options = self.environment.parsed_options
        return bool(getattr(options, "progress", False)) or os.environ.get(PROGRESS_ENV) == "1"

    def _progress_printer(self) -> None:
        tty = sys.stderr.isatty()
        period = 1.0 if tty else 5.0
        while True:
            gevent.sleep(period)
            elapsed = time.monotonic() - self.state.started_monotonic
            line = progress_line(self.environment, elapsed)
            sys.stderr.write(f"\r{line}\x1b[K" if tty else f"{line}\n")
            sys.stderr.flush()


# --- pure helpers --------------------------------------------------------------------------
def _set_analytics_weight(environment: Environment, weight: int) -> None:
    """``--analytics-user-weight``: Locust drops weight-0 classes before ``init``, so the
    class goes back into (or out of) the environment's list, not just its weight changes."""
    found = (environment.available_user_classes or {}).get("AnalyticsUser")
    if not isinstance(found, type):
        return  # a custom locustfile without AnalyticsUser
    cls: type[User] = found
    cls.weight = weight
    classes = environment.user_classes
    if weight > 0 and cls not in classes:
        classes.append(cls)
    elif weight == 0 and cls in classes and len(classes) > 1:
        classes.remove(cls)


def _timeline_interval(options: Any) -> str | float:
    """``--timeline-interval`` (Locust reads ``TIMELINE_INTERVAL`` into it), else the variable
    (an environment built without Locust's parser), else the default."""
    value = getattr(options, "timeline_interval", None) if options else None
    if value is None:
        value = os.environ.get(TIMELINE_INTERVAL_ENV)
    return DEFAULT_INTERVAL_S if value is None else value


def failure_key(exception: Any) -> str:
    """A failed request's reason as ``summary.json`` has it (Locust's errors-table key, whose
    entries are scrubbed of the run's secrets: a target may echo the token into a reason)."""
    return SCRUBBER.scrub(error_reason(StatsError.parse_error(exception)))


def error_reason(error: str) -> str:
    """``CatchResponseError('HTTP 500')`` (how Locust stores a failure) becomes ``HTTP 500``."""
    for prefix in ("CatchResponseError(", "CatchResponseError:"):
        if error.startswith(prefix):
            return error[len(prefix) :].rstrip(")").strip("'\" ")
    return error


def run_label(environment: Environment) -> str:
    options = environment.parsed_options
    label = (getattr(options, "label", "") or getattr(options, "scenario", "")) if options else ""
    return label or "locust"


def _locust_options(environment: Environment) -> dict[str, Any]:
    options = environment.parsed_options
    if options is None:
        return {}
    keys = ("num_users", "spawn_rate", "run_time", "headless", "processes", "master", "scenario")
    out = {k: getattr(options, k, None) for k in keys}
    if environment.shape_class is not None:
        # a shape decides users and length; Locust's headless defaults (1 user at 1/s) and
        # its -t (which starts only after the shape) would misdescribe the run (run.shape)
        out.update(num_users=None, spawn_rate=None, run_time=None)
    return out


def cost_guard_record(cap: float | None, skipped: Mapping[str, int]) -> dict[str, Any] | None:
    """``run.cost_guard``: the AI cap and the requests it kept from being sent."""
    if cap is None:
        return None
    return {"ai_max_rps": cap, "skipped": dict(skipped), "skipped_total": sum(skipped.values())}


def open_plan(options: Any, settings: Settings) -> OpenPlan | None:
    """The open-model plan the options ask for (None: a closed run)."""
    get = (lambda key, default: getattr(options, key, default)) if options else (
        lambda key, default: default
    )  # fmt: skip
    return open_plan_of(
        get("arrival_rate", None), get("arrival_stages", "") or "",
        get("arrival_process", "poisson") or "poisson", get("max_users", None),
        settings.locust_max_users,
    )  # fmt: skip


def run_metadata(options: Any) -> dict[str, str | None]:
    """``target_version``, ``description`` and ``git_commit`` for ``summary.json`` ``run``: what
    ``compare`` and ``history`` need to say which build of the API each run tested."""
    version = getattr(options, "target_version", "") if options else ""
    description = getattr(options, "description", "") if options else ""
    return {
        "target_version": version or os.environ.get(TARGET_VERSION_ENV) or None,
        "description": description or None,
        "git_commit": git_commit(),
    }


@functools.cache
def git_commit() -> str | None:
    """The commit of the load-test code when it runs from a git checkout (``+dirty`` with
    uncommitted changes), else None; asked once per process."""
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}+dirty" if head and dirty else head or None


def _fmt_clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes:02d}:{secs:02d}"


def progress_line(environment: Environment, elapsed: float) -> str:
    """``[00:15/01:00] users 20 | 45.2 req/s | failures 0.00% | p95 120 ms``."""
    stats = environment.stats.total
    options = environment.parsed_options
    run_time = shape_length_s(environment)  # a shape's own length, else -t
    if run_time is None:
        run_time = getattr(options, "run_time", None) if options else None
    total = f"/{_fmt_clock(run_time)}" if run_time else ""
    users = environment.runner.user_count if environment.runner else 0
    ratio = stats.num_failures / stats.num_requests if stats.num_requests else 0.0
    p95 = stats.get_current_response_time_percentile(0.95) or 0
    return (
        f"[{_fmt_clock(elapsed)}{total}] users {users} | {stats.current_rps:.1f} req/s | "
        f"failures {ratio:.2%} | p95 {p95:.0f} ms"
    )


__all__ = ["PanaceaRun", "progress_line"]
