"""``panacea-locust reference-api`` / ``python -m panacea_locust.reference_api``: serve the
reference Panacea API on loopback with uvicorn (httptools + uvloop when installed)."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import resource
import socket
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any, NoReturn

from .behaviour import (
    Behaviour,
    ConfigChange,
    EndpointOverride,
    load_faults_file,
    parse_fault_spec,
)
from .capacity import DEFAULT_MAX_BODY_BYTES
from .dataset import DEFAULT_CASE_BASE, Dataset, build_dataset
from .models import MAX_INT

try:  # optional data source, kept in its own module
    from . import clickhouse_source
except ImportError:  # pragma: no cover
    clickhouse_source = None  # type: ignore[assignment]

PROG = "panacea-locust reference-api"
log = logging.getLogger("panacea_locust.reference_api")
#: descriptors kept back from connections for everything else (log files, ClickHouse, ...)
RESERVED_FDS = 64
#: a request line and headers larger than this are refused (431)
MAX_HEADER_BYTES = 1 << 16


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad option in one line (no usage dump) and exits 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _rate(raw: str) -> float:
    try:
        v = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {raw!r}") from None
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {raw}")
    return v


def _non_negative(raw: str) -> float:
    try:
        v = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {raw!r}") from None
    if not v >= 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {raw}")
    return v


def _port(raw: str) -> int:
    if not raw.isdigit() or not 0 <= int(raw) <= 65535:
        raise argparse.ArgumentTypeError(
            f"must be a port number 0..65535 (0: any free port), got {raw!r}"
        )
    return int(raw)


def _non_negative_int(raw: str) -> int:
    if not raw.isdigit():
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {raw!r}")
    return int(raw)


def _positive_int(raw: str) -> int:
    if not raw.isdigit() or int(raw) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {raw!r}")
    return int(raw)


def _range_id(raw: str) -> int:
    """An id of the data set: no more than a request may name (``MAX_INT``)."""
    v = _positive_int(raw)
    if v > MAX_INT:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_INT}, got {raw}")
    return v


def _seconds(raw: str) -> int:
    v = _non_negative_int(raw)
    if v > 3600:
        raise argparse.ArgumentTypeError(f"must be at most 3600 seconds, got {raw}")
    return v


def fd_budget() -> tuple[int, int]:
    """(connections the descriptor limit allows, that soft limit): the soft RLIMIT_NOFILE
    minus a reserve for the process's other files (a quarter of it when the limit is small)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft > 1 << 20:
        soft = 1 << 20
    return soft - min(RESERVED_FDS, soft // 4), soft


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog=PROG,
        description="Serve the reference Panacea API (the contract in "
        "docs/api-contract.md) with a deterministic synthetic data set.",
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1; loopback unless told otherwise)",
    )
    p.add_argument(
        "--port",
        type=_port,
        default=8000,
        help="port to bind (default 8000; 0 picks a free port, logged at start)",
    )
    p.add_argument("--seed", type=int, default=42, help="data set and fault seed (default 42)")
    p.add_argument(
        "--latency",
        choices=("on", "off"),
        default="on",
        help="per-endpoint latency model on or off (default on)",
    )
    p.add_argument(
        "--latency-scale",
        type=_non_negative,
        default=1.0,
        metavar="FLOAT",
        help="multiply every endpoint's latency (default 1.0)",
    )
    p.add_argument(
        "--error-rate",
        type=_rate,
        default=0.0,
        metavar="F",
        help="share of requests answered 500 (default 0)",
    )
    p.add_argument(
        "--slow-rate",
        type=_rate,
        default=0.0,
        metavar="F",
        help="share of requests delayed by --slow-ms more (default 0)",
    )
    p.add_argument(
        "--slow-ms",
        type=_non_negative,
        default=2000.0,
        metavar="MS",
        help="extra delay of a slow response (default 2000)",
    )
    p.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="PATH=SPEC",
        help="per-endpoint override, repeatable: PATH=error:0.1,slow:0.2,slow_ms:500,"
        "latency:10-50 (PATH: contract path or short name, e.g. search)",
    )
    p.add_argument(
        "--faults",
        metavar="FILE",
        help="JSON or TOML file with the keys of POST /__config (see docs)",
    )
    p.add_argument("--bundle-min", type=_range_id, default=800)
    p.add_argument("--bundle-max", type=_range_id, default=1000)
    p.add_argument(
        "--unknown-ratio",
        type=_rate,
        default=0.05,
        metavar="F",
        help="share of bundle and combo ids in range that are unknown (404)",
    )
    p.add_argument("--combo-min", type=_range_id, default=1)
    p.add_argument("--combo-max", type=_range_id, default=200)
    p.add_argument(
        "--sfdc-case-base",
        type=_non_negative_int,
        default=DEFAULT_CASE_BASE,
        metavar="N",
        help="bundle b belongs to SFDC case N + b (default %(default)s, "
        "as the load side's SFDC_CASE_BASE)",
    )
    p.add_argument(
        "--prewarm",
        action="store_true",
        help="generate every bundle's log lines before serving (about 6 ms each)",
    )
    p.add_argument(
        "--fast-path",
        choices=("on", "off"),
        default="on",
        help="serve contract endpoints through the lean ASGI path (default on) or "
        "through FastAPI routing (off; same answers, slower)",
    )
    p.add_argument(
        "--max-concurrency",
        type=_positive_int,
        default=None,
        metavar="N",
        help="work on at most N requests at once; the others queue in arrival order "
        "(default: no limit)",
    )
    p.add_argument(
        "--max-body-bytes",
        type=_positive_int,
        default=DEFAULT_MAX_BODY_BYTES,
        metavar="N",
        help="largest request body read; beyond it 413 (default %(default)s, 1 MiB)",
    )
    p.add_argument(
        "--max-connections",
        type=_positive_int,
        default=None,
        metavar="N",
        help="open connections at most; one more closes the longest idle, else gets 503 "
        f"(default: the descriptor limit, ulimit -n, minus {RESERVED_FDS})",
    )
    p.add_argument(
        "--keep-alive-timeout",
        type=_seconds,
        default=5,
        metavar="S",
        help="close a connection that sends no request for S seconds, before its first "
        "request or after an answer (default %(default)s)",
    )
    p.add_argument(
        "--shutdown-grace",
        type=_seconds,
        default=3,
        metavar="S",
        help="on SIGTERM or Ctrl-C, let requests in flight finish for at most S seconds, "
        "then answer them 503 (default %(default)s)",
    )
    p.add_argument(
        "--backlog",
        type=_positive_int,
        default=2048,
        metavar="N",
        help="connections the kernel queues before the server accepts them (default "
        "%(default)s; capped by net.core.somaxconn)",
    )
    p.add_argument(
        "--exit-with-parent",
        action="store_true",
        help="stop when the process that started this one dies (used by the launcher)",
    )
    p.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="info")
    if clickhouse_source is not None:
        clickhouse_source.add_arguments(p)
    return p


def load_dataset(opts: argparse.Namespace) -> Dataset:
    """The data set to serve: records from ClickHouse with ``--data-from-clickhouse``, else the
    synthetic set. Another source plugs in here by returning ``Dataset.from_records(...)``."""
    if clickhouse_source is not None:
        loaded = clickhouse_source.dataset_from_args(opts, opts.seed)
        if loaded is not None:
            return loaded
    return build_dataset(
        seed=opts.seed,
        bundle_min=opts.bundle_min,
        bundle_max=opts.bundle_max,
        unknown_ratio=opts.unknown_ratio,
        combo_min=opts.combo_min,
        combo_max=opts.combo_max,
        sfdc_case_base=opts.sfdc_case_base,
    )


class OptionError(ValueError):
    """A bad option value; ``main`` turns it into one line naming the option, exit 2."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(message)
        self.option = option


def build_behaviour(opts: argparse.Namespace) -> Behaviour:
    """Latency and faults from the options; ``--fault`` wins over ``--faults`` file entries."""
    b = Behaviour(
        latency_on=opts.latency == "on",
        latency_scale=opts.latency_scale,
        error_rate=opts.error_rate,
        slow_rate=opts.slow_rate,
        slow_ms=opts.slow_ms,
        seed=opts.seed,
    )
    if opts.faults:
        try:
            b.apply(load_faults_file(opts.faults))
        except OSError as exc:
            raise OptionError(
                "--faults", f"cannot read {opts.faults}: {exc.strerror or exc}"
            ) from None
        except ValueError as exc:
            raise OptionError("--faults", f"{opts.faults}: {exc}") from None
    overrides: dict[str, EndpointOverride | None] = {}
    for spec in opts.fault:
        try:
            ep, override = parse_fault_spec(spec)
        except ValueError as exc:
            raise OptionError("--fault", str(exc)) from None
        overrides[ep.path] = override
    if overrides:
        b.apply(ConfigChange(endpoints=overrides))
    return b


def _bind(host: str, port: int, backlog: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def _watch_parent() -> None:
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        log.warning("parent process %d is gone, stopping", parent)
        os.kill(os.getpid(), 15)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main(argv: Sequence[str] | None = None) -> int:
    """Parse options, build the data set, bind, log the URL and serve until SIGINT/SIGTERM."""
    parser = build_parser()
    opts = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if opts.bundle_max < opts.bundle_min:
        parser.error(
            f"--bundle-max ({opts.bundle_max}) must be >= --bundle-min ({opts.bundle_min})"
        )
    if opts.combo_max < opts.combo_min:
        parser.error(f"--combo-max ({opts.combo_max}) must be >= --combo-min ({opts.combo_min})")
    if opts.unknown_ratio >= 1:
        parser.error("argument --unknown-ratio: must be below 1")
    if opts.sfdc_case_base + opts.bundle_max > 999_999_999:
        parser.error("argument --sfdc-case-base: plus --bundle-max must stay within 9 digits")
    allowed, soft = fd_budget()
    if opts.max_connections is None:
        opts.max_connections = allowed
    elif opts.max_connections > allowed:
        parser.error(
            f"argument --max-connections: at most {allowed} with a descriptor limit of {soft} "
            f"(ulimit -n), got {opts.max_connections}"
        )
    try:
        behaviour = build_behaviour(opts)
    except OptionError as exc:
        parser.error(f"argument {exc.option}: {exc}")

    level = getattr(logging, opts.log_level.upper())
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        import uvicorn
    except ImportError:  # pragma: no cover - a dependency of the package
        print(f"{PROG}: error: uvicorn is not installed", file=sys.stderr)
        return 1
    from .app import Limits, ReferenceAPI
    from .engine import Engine

    try:
        dataset = load_dataset(opts)
    except Exception as exc:  # e.g. ClickHouseSourceError: one line, no traceback
        print(f"{PROG}: error: cannot load the data set: {exc}", file=sys.stderr)
        return 1
    if opts.prewarm:
        for rec in dataset.bundles:
            dataset.logs(rec.bundle_id)
    limits = Limits(max_body_bytes=opts.max_body_bytes, max_concurrency=opts.max_concurrency)
    app = ReferenceAPI(Engine(dataset, behaviour), fast_path=opts.fast_path == "on", limits=limits)
    try:
        sock = _bind(opts.host, opts.port, opts.backlog)
    except OSError as exc:
        print(
            f"{PROG}: error: cannot bind {opts.host}:{opts.port}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return 1
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    if opts.exit_with_parent:
        _watch_parent()

    loop = "uvloop" if _has("uvloop") else "auto"
    http_name = "httptools" if _has("httptools") else "h11"
    http: Any = http_name
    if http_name == "httptools":
        try:  # subclasses uvicorn's protocol: if a uvicorn release moves it, use the stock one
            from .protocol import guarded_protocol

            http = guarded_protocol(opts.max_connections, MAX_HEADER_BYTES)
        except ImportError:  # pragma: no cover
            log.warning(
                "uvicorn's HttpToolsProtocol not found; using the stock protocol, without "
                "the connection limit and the first request's timeout"
            )
    config = uvicorn.Config(
        app,
        loop=loop,
        http=http,
        ws="none",
        lifespan="off",
        access_log=False,
        log_config=None,
        log_level=level,
        server_header=False,
        proxy_headers=False,
        # uvicorn's own limits: idle keep-alive connections closed after this many seconds;
        # SIGTERM drains requests in flight for at most this long, then cancels them (503);
        # past this many connections and running requests, uvicorn answers 503 itself (the
        # protocol keeps connections below it: only requests left running by clients that
        # went away can reach it); the listen backlog; the header limit of the h11 fallback.
        timeout_keep_alive=opts.keep_alive_timeout,
        timeout_graceful_shutdown=opts.shutdown_grace,
        limit_concurrency=opts.max_connections + 1,
        backlog=opts.backlog,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
    )
    for name in ("uvicorn", "uvicorn.error"):  # our start line replaces uvicorn's chatter
        logging.getLogger(name).setLevel(level if level <= logging.DEBUG else logging.WARNING)
    capacity = f", max concurrency {opts.max_concurrency}" if opts.max_concurrency else ""
    # the one start line (launchers parse it), whatever the log level
    print(
        f"{time.strftime('%Y-%m-%d %H:%M:%S')} panacea_locust.reference_api: reference Panacea "
        f"API listening on http://{shown}:{port} (seed {dataset.seed}, {len(dataset.bundles)} "
        f"bundles, {len(dataset.combos)} combos, latency {opts.latency}, {http_name}/{loop}"
        f"{capacity})",
        file=sys.stderr,
        flush=True,
    )
    gc.collect()
    gc.freeze()  # the data set is long-lived: keep it out of every later collection
    _draining_server_class()(config).run(sockets=[sock])
    return 0


def _draining_server_class() -> type:
    import uvicorn

    class DrainingServer(uvicorn.Server):
        """uvicorn's server, but requests it cancels when ``--shutdown-grace`` is up get to send
        their 503 before the process ends (uvicorn re-raises SIGTERM straight after)."""

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            await super().shutdown(sockets)
            left = list(self.server_state.tasks)
            if left:
                await asyncio.wait(left, timeout=1.0)

    return DrainingServer


def _has(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True
