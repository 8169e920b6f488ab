"""``panacea-locust run``: a headless Locust run whose every output lands in one results folder.

It only assembles a ``locust`` command line (the same one a user could type) and runs it in
a child process, so Locust's own behaviour, options and exit codes are untouched. Without a
host it starts the reference API on a free loopback port first and stops it afterwards.

With a load shape (``--shape``, ``--stages``, ``LOAD_SHAPE`` or ``-- --load-shape``) the shape
sets the users and the length: no default scenario file and no default ``-r``/``-t`` are
added, since Locust would only warn that it ignores them. Options the user gave are passed on.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType

from panacea_locust.config import ConfigError, load_settings
from panacea_locust.open_model.schedule import PROCESSES, ScheduleError, open_plan_of
from panacea_locust.reference_api.launcher import parent_death_hook
from panacea_locust.scenarios import (
    PACKAGE_DIR,
    SCENARIOS,
    default_slo,
    scenario_path,
    scenario_slo,
)
from panacea_locust.target_guard import TargetRefused, check_target
from panacea_locust.verdict.decision import EXIT_RESULTS_UNWRITABLE
from panacea_locust.verdict.results import create_run_dir, unwritable
from panacea_locust.verdict.stages import parse_stages
from panacea_locust.verdict.thresholds import SLOError, load_slo


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="panacea-locust run",
        description="Run a headless load test; results go to results/<UTC time>_<label>/. "
        "Arguments after '--' are passed to locust unchanged.",
    )
    parser.add_argument("--host", help="API base URL (default: PANACEA_HOST, else the "
                        "reference API started on loopback)")  # fmt: skip
    parser.add_argument("-u", "--users", type=int, help="peak number of users")
    parser.add_argument("-r", "--spawn-rate", type=float, help="users started per second")
    parser.add_argument("-t", "--run-time", help="run time, e.g. 60s, 10m, 1h30m")
    parser.add_argument(
        "--scenario",
        choices=SCENARIOS,
        help="scenario file from scenarios/ (default: smoke when -u is not given)",
    )
    parser.add_argument("--label", help="results folder label (default: the scenario or 'run')")
    parser.add_argument(
        "--slo",
        help="thresholds file (default: SLO_FILE, else the scenario's slo-file, else ./slo.toml)",
    )
    parser.add_argument(
        "--confirm-host",
        metavar="HOST[:PORT]",
        help="repeat the target's host to run against a PANACEA_PROTECTED_HOSTS host",
    )
    parser.add_argument(
        "--target-version", help="build or version of the API under test (TARGET_VERSION)"
    )
    parser.add_argument("--description", help="a note on this run, kept in summary.json")
    parser.add_argument(
        "--prometheus-port", type=int, metavar="P",
        help="serve live Prometheus metrics on 127.0.0.1:P; 0: a free port (PROMETHEUS_PORT)",
    )  # fmt: skip
    parser.add_argument("--no-slo", action="store_true", help="no pass/fail thresholds")
    parser.add_argument("--shape", choices=("step", "spike"), help="load shape (LOAD_SHAPE)")
    parser.add_argument(
        "--stages",
        metavar="USERS[@RATE]:DURATION,...",
        help="step stages, e.g. 5:30s,10:30s,25@5:1m (LOAD_SHAPE_STAGES); implies --shape step",
    )
    parser.add_argument(
        "--arrival-rate", type=float, metavar="R",
        help="open model: R requests a second over all endpoints, whatever the API's speed",
    )  # fmt: skip
    parser.add_argument(
        "--arrival-stages", metavar="RATE:DURATION,...",
        help="open model: rate stages, FROM..TO ramps linearly, e.g. 10:1m,10..50:2m,50:1m",
    )  # fmt: skip
    parser.add_argument(
        "--max-users", type=int, metavar="N",
        help="open model: virtual users serving the arrivals (default LOCUST_MAX_USERS)",
    )  # fmt: skip
    parser.add_argument(
        "--arrival-process", choices=PROCESSES, help="open model: poisson (default) or uniform"
    )
    parser.add_argument(
        "--processes", type=int, help="worker processes (Locust --processes; -1: one per core)"
    )
    parser.add_argument("--results-dir", help="parent of the run folders (RESULTS_DIR)")
    parser.add_argument(
        "--reference-api-args",
        default="",
        help="options for the embedded reference API, e.g. '--latency off'",
    )
    parser.add_argument(
        "--locustfile", default=str(PACKAGE_DIR / "locustfile.py"), help=argparse.SUPPRESS
    )
    parser.add_argument("--quiet", action="store_true", help="no live progress line")
    return parser


def _positive(value: float | None, flag: str) -> None:
    if value is not None and value <= 0:
        raise ValueError(f"{flag} must be above 0, got {value:g}")


def shape_name(
    shape: str | None, stages: str | None, extra: list[str], environ: dict[str, str]
) -> str | None:
    """The load shape the run will have: ``--stages`` (step), ``--shape``, a ``--load-shape``
    after ``--`` (the last one), else ``LOAD_SHAPE``; None for none (empty or ``none``)."""
    if stages is not None:
        return "step"
    if shape:
        return shape
    chosen = environ.get("LOAD_SHAPE")
    for i, arg in enumerate(extra):
        if arg == "--load-shape" and i + 1 < len(extra):
            chosen = extra[i + 1]
        elif arg.startswith("--load-shape="):
            chosen = arg.partition("=")[2]
    value = (chosen or "").strip().lower()
    return None if value in ("", "none") else value


def main(argv: list[str]) -> int:
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        _positive(args.users, "-u/--users")
        _positive(args.spawn_rate, "-r/--spawn-rate")
        if args.processes is not None and args.processes != -1:
            _positive(args.processes, "--processes")
        if args.users is not None and args.users > settings.locust_max_users:
            raise ValueError(
                f"-u {args.users} is above LOCUST_MAX_USERS ({settings.locust_max_users}); "
                "raise it to run more users"
            )
        if args.stages is not None:
            if args.shape == "spike":
                raise ValueError("--stages sets the stages of the step shape, not of --shape spike")
            peak = max(stage.users for stage in parse_stages(args.stages, source="--stages"))
            if peak > settings.locust_max_users:
                raise ValueError(
                    f"--stages: {peak} users is above LOCUST_MAX_USERS "
                    f"({settings.locust_max_users}); raise it to run more users"
                )
        shape = shape_name(args.shape, args.stages, extra, dict(os.environ))
        plan = open_plan_of(
            args.arrival_rate, args.arrival_stages or "", args.arrival_process or "poisson",
            args.max_users, settings.locust_max_users,
        )  # fmt: skip
        if plan is not None and (args.users is not None or shape):
            raise ValueError(
                "an open-model run (--arrival-rate/--arrival-stages) sets its own users: "
                "use --max-users, not -u or a load shape"
            )
        # a shape sets the users and the length: no default scenario (its users and run-time
        # would only be ignored, with Locust's warnings); nor does an open-model run
        scenario = args.scenario or (None if args.users or shape or plan else "smoke")
        conf = scenario_path(scenario) if scenario else None
        slo = (
            None
            if args.no_slo
            else (args.slo or settings.slo_file or scenario_slo(conf) or default_slo())
        )
        if slo is not None and not Path(slo).is_file():
            raise FileNotFoundError(f"--slo {slo}: no such file")
        if slo is not None:  # judged now: a bad file must leave nothing on disk
            load_slo(slo, settings.endpoint_names())
        host = args.host or settings.panacea_host
        if host:  # refused here, before any folder or process: the same check Locust makes
            stage_peak = (
                max(stage.users for stage in parse_stages(args.stages, source="--stages"))
                if args.stages else 0
            )  # fmt: skip
            peak = max(args.users or 0, stage_peak, plan.max_users if plan else 0, 1)
            check_target(
                host, settings.panacea_allowed_hosts, settings.panacea_protected_hosts,
                args.confirm_host, peak, settings.protected_max_users,
            )  # fmt: skip
    except (
        ConfigError, ValueError, FileNotFoundError, SLOError, ScheduleError, TargetRefused
    ) as err:  # fmt: skip
        print(f"panacea-locust run: {err}", file=sys.stderr)
        return 2

    label = args.label or scenario or shape or ("open" if plan else "run")
    results_root = args.results_dir or settings.results_dir
    try:
        run_dir = create_run_dir(results_root, label, datetime.now(timezone.utc))
    except OSError as err:
        print(f"panacea-locust run: {unwritable(results_root, err)}", file=sys.stderr)
        return EXIT_RESULTS_UNWRITABLE

    cmd = [sys.executable, "-m", "locust", "-f", args.locustfile]
    if conf is not None:
        cmd += ["--config", str(conf)]
    cmd += ["--headless", "--only-summary", "--label", label,
            "--csv", str(run_dir / "locust"), "--html", str(run_dir / "report.html")]  # fmt: skip
    if args.users is not None:
        cmd += ["-u", str(args.users)]
    cmd += ["-r", str(args.spawn_rate)] if args.spawn_rate else []
    cmd += ["-t", args.run_time] if args.run_time else []
    if args.users is not None and not args.spawn_rate and conf is None and shape is None:
        cmd += ["-r", str(settings.locust_spawn_rate)]
    if args.users is not None and not args.run_time and conf is None and shape is None:
        cmd += ["-t", "60s"]
    if plan is not None:
        cmd += [f"--arrival-rate={args.arrival_rate}"] if args.arrival_rate is not None else []
        cmd += [f"--arrival-stages={args.arrival_stages}"] if args.arrival_stages else []
        cmd += ["--max-users", str(plan.max_users), "--arrival-process", plan.process]
        if plan.unbounded and not args.run_time and conf is None:
            cmd += ["-t", "60s"]
    if args.stages is not None:
        cmd += ["--load-shape", "step", "--load-shape-stages", args.stages]
    elif args.shape:
        cmd += ["--load-shape", args.shape]
    cmd += [f"--slo-file={Path(slo).resolve()}" if slo else "--slo-file="]
    if args.processes:
        cmd += ["--processes", str(args.processes), *_master_port(extra)]
    cmd += ["--target-version", args.target_version] if args.target_version else []
    cmd += ["--confirm-host", args.confirm_host] if args.confirm_host else []
    cmd += ["--description", args.description] if args.description else []
    if args.prometheus_port is not None:
        cmd += ["--prometheus-port", str(args.prometheus_port)]
    cmd += [] if args.quiet else ["--progress"]
    env = dict(os.environ, PANACEA_RUN_DIR=str(run_dir))
    if args.processes:  # this run's master and workers prove it to each other
        env.setdefault("PANACEA_RUN_SECRET", secrets.token_hex(16))

    reference = None
    try:
        if host is None:
            from panacea_locust.reference_api.launcher import ReferenceAPIProcess

            # prewarmed: lazily built data would stall the first requests by a few ms each
            reference = ReferenceAPIProcess(["--prewarm", *args.reference_api_args.split()])
            host = reference.start()
            print(f"panacea-locust run: reference API on {host}", file=sys.stderr)
            if settings.panacea_allowed_hosts:  # the API we started ourselves, on loopback
                allowed = f"{settings.panacea_allowed_hosts},{host.split('://', 1)[1]}"
                env["PANACEA_ALLOWED_HOSTS"] = allowed
        print(f"panacea-locust run: target {host}", file=sys.stderr)
        cmd += ["--host", host, *extra]
        return _run_child(cmd, env)
    except RuntimeError as err:
        print(f"panacea-locust run: {err}", file=sys.stderr)
        return 2
    finally:
        if reference is not None:
            reference.stop()
        if not any(run_dir.iterdir()):
            run_dir.rmdir()  # locust never started: leave no empty run folder behind


def _free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _master_port(extra: list[str]) -> list[str]:
    """``--processes``: the master listens on loopback on a free port, not Locust's default
    ``*:5557``, which any host could reach and which a second run on this machine would
    share (its workers joining the first run). Options given after ``--`` win."""
    if any(a.startswith(("--master-bind-port", "--master-port", "--master-bind-host"))
           for a in extra):  # fmt: skip
        return []
    port = str(_free_loopback_port())
    return ["--master-bind-host", "127.0.0.1", "--master-bind-port", port, "--master-port", port]


def _run_child(cmd: list[str], env: dict[str, str]) -> int:
    """Run locust in its own session; each Ctrl-C and SIGTERM is passed on to it once (the
    first stops the run, a second stops it at once). Should this process die, Linux sends
    the child SIGTERM (``parent_death_hook``), so it never runs on orphaned.

    Its own session keeps a terminal's Ctrl-C from reaching it twice (once from the terminal,
    once from us). A SIGINT ignored at start (a shell's background job) stays ignored.
    """
    child = subprocess.Popen(
        cmd, env=env, stdin=subprocess.DEVNULL, start_new_session=True,
        preexec_fn=parent_death_hook(),
    )  # fmt: skip

    def forward(signum: int, _frame: FrameType | None) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    handled = [signal.SIGTERM]
    if signal.getsignal(signal.SIGINT) != signal.SIG_IGN:
        handled.append(signal.SIGINT)
    previous = {sig: signal.signal(sig, forward) for sig in handled}
    try:
        return child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
