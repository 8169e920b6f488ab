"""End to end: real headless Locust runs against the real reference API on loopback.

Everything is asserted from what the server says it received (``/__stats``) and from the
results folder the run leaves, never from the load side's own opinion of itself.
"""

from __future__ import annotations

import json
import math
import os
import re
import resource
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from conftest import ROOT, clean_env, run_dirs, run_panacea

# Locust at the top: imported inside a test, after threads exist, its gevent patching can
# deadlock the test process (it did, when this was the first test to import it)
from locust.argument_parser import get_parser

from panacea_locust.cli.run import _master_port
from panacea_locust.contract import ENDPOINTS
from panacea_locust.payload_generator import window_start
from panacea_locust.reference_api.launcher import ReferenceAPIProcess
from panacea_locust.verdict.health import LOOP_LAG_LIMIT_MS

ENDPOINT_NAMES = tuple(e.path for e in ENDPOINTS)

pytestmark = pytest.mark.e2e

#: plain ``locust -f locustfile.py``, as a user types it
LOCUST = [sys.executable, "-m", "locust", "-f", str(ROOT / "locustfile.py")]

USERS = 20
FAST_WAITS = {
    "HEAVY_WAIT_MIN": "0.05",
    "HEAVY_WAIT_MAX": "0.1",
    "LIGHT_WAIT_MIN": "0.2",
    "LIGHT_WAIT_MAX": "0.4",
}
CONTRACT_KEYS = {
    "requests",
    "failures",
    "failure_ratio",
    "acceptable",
    "rps",
    "min_ms",
    "mean_ms",
    "p50_ms",
    "p90_ms",
    "p95_ms",
    "p99_ms",
    "p999_ms",
    "max_ms",
}


def _index(user_id: str) -> int:
    match = re.fullmatch(r"loadtest_user_(\d+)", user_id)
    assert match, user_id
    return int(match.group(1))


def check_sessions_and_windows(stats: dict, users: int) -> None:
    sessions = stats["sessions"]
    assert stats["distinct_sessions"] == len(sessions) == users
    user_ids = [s["user_id"] for s in sessions.values()]
    assert len(set(user_ids)) == users, "a user id was shared"
    assert sorted(_index(u) for u in user_ids) == list(range(users)), "global index not 0..n-1"
    for sid, session in sessions.items():
        assert re.fullmatch(r"[0-9a-f]{32}", sid)
        g = _index(session["user_id"])
        start = 800 + window_start(g, 201, 50, 0.3)
        named = set(session["bundle_ids"])
        assert named, f"session {sid} named no bundle"
        assert named <= set(range(start, start + 50)), f"user {g} left its window"
        combos = set(session.get("combo_ids", []))
        c_start = 1 + window_start(g, 200, 20, 0.3)
        assert combos <= set(range(c_start, c_start + 20)), f"user {g} left its combo window"


def check_results_folder(run_dir: Path, summary: dict) -> None:
    for name in ("summary.json", "summary.md", "locust_stats.csv", "report.html"):
        assert (run_dir / name).is_file(), f"{name} missing from {run_dir}"
    assert set(summary) >= {"run", "total", "endpoints"}
    assert set(summary["total"]) >= CONTRACT_KEYS
    for name, block in summary["endpoints"].items():
        assert name in ENDPOINT_NAMES
        assert CONTRACT_KEYS | {"failures_by_reason"} <= set(block)
        assert block["min_ms"] <= block["p50_ms"] <= block["p95_ms"] <= block["p99_ms"]
        assert block["p99_ms"] <= block["max_ms"] * 1.001
    run = summary["run"]
    assert run["id"] == run_dir.name
    assert "***" not in str(run["config"].get("PANACEA_HOST"))
    assert "| `/api/v1/logs/search` |" in (run_dir / "summary.md").read_text()
    health = run["load_generator"]  # was the load generator fit to measure?
    assert set(health) >= {"cpu_percent_max", "cpu_warning", "steal_percent", "warnings"}
    if Path("/proc/stat").exists():
        assert 0 <= health["steal_percent"] < 100
    assert "- Load generator: CPU" in (run_dir / "summary.md").read_text()


def test_headless_run_drives_all_endpoints_by_the_rules(
    api: ReferenceAPIProcess, tmp_path: Path
) -> None:
    run = run_panacea(
        ["--host", api.url, "-u", str(USERS), "-r", str(USERS), "-t", "15s", "--no-slo"],
        cwd=tmp_path,
        env=clean_env(**FAST_WAITS),
    )
    assert run.returncode == 0, run.stderr[-3000:]
    stats = api.stats()
    summary = run.summary()

    # every endpoint hit, nothing broke the contract, nothing failed
    assert set(stats["endpoints"]) == set(ENDPOINT_NAMES)
    assert stats["violations_total"] == 0, stats["violations"]
    assert summary["total"]["failures"] == 0, summary["total"]

    check_sessions_and_windows(stats, USERS)
    assert summary["run"]["users"] == {"HeavyUser": 5, "LightUser": 15}
    assert summary["run"]["load_generator"]["cpu_percent_max"] > 0  # sampled at 10 s

    # the endpoint mix follows the weights: each count within 4 sigma of its expectation
    total = stats["total"]
    weights = {e.path: e.weight for e in ENDPOINTS}
    assert total > 800
    for name, weight in weights.items():
        expected = total * weight / sum(weights.values())
        observed = stats["endpoints"][name]["count"]
        assert abs(observed - expected) <= 4 * math.sqrt(expected) + 3, (name, observed, expected)

    # the load side counted what the server answered (a request cut off by the stop is
    # seen by the server only: at most one per user)
    assert 0 <= total - summary["total"]["requests"] <= USERS
    server_404 = stats["by_status"].get("404", 0)
    assert 0 <= server_404 - summary["total"]["acceptable"].get("404", 0) <= USERS
    check_results_folder(run.run_dir, summary)  # type: ignore[arg-type]


def test_two_processes_share_no_identity(api: ReferenceAPIProcess, tmp_path: Path) -> None:
    run = run_panacea(
        [
            "--host",
            api.url,
            "-u",
            str(USERS),
            "-r",
            str(USERS),
            "-t",
            "10s",
            "--processes",
            "-1",  # one per core, as Locust does it
            "--no-slo",
        ],
        cwd=tmp_path,
        env=clean_env(**FAST_WAITS),
    )
    assert run.returncode == 0, run.stderr[-3000:]
    stats = api.stats()
    check_sessions_and_windows(stats, USERS)
    summary = run.summary()
    assert summary["run"]["users"] == {"HeavyUser": 5, "LightUser": 15}
    # one merged summary: the master's totals are what the server received from the workers
    # (requests in flight at the stop included: they finish in the grace, or count as failures)
    assert stats["total"] == summary["total"]["requests"]
    assert summary["run"]["locust"]["processes"] == (os.cpu_count() or 1)
    assert summary["total"]["requests"] > 500
    assert len(run_dirs(tmp_path / "results")) == 1


def test_processes_listen_on_loopback_on_a_free_port() -> None:
    """``panacea-locust run --processes``: the master on 127.0.0.1 and a free port, never
    Locust's default master port on every interface (reachable from the network, and shared
    by a second run)."""
    chosen = _master_port([])
    assert chosen[:3] == ["--master-bind-host", "127.0.0.1", "--master-bind-port"]
    default_port = get_parser(default_config_files=[]).get_default("master_bind_port")
    assert chosen[3] == chosen[5] and chosen[4] == "--master-port"
    assert chosen[3] != str(default_port)
    assert _master_port(["--master-bind-port", "6001"]) == []  # the user's own choice stands


def _start_plain_locust(api: ReferenceAPIProcess, cwd: Path, *extra: str) -> subprocess.Popen:
    cmd = [
        *LOCUST,
        "--headless",
        "--host",
        api.url,
        "-u",
        "10",
        "-r",
        "10",
        *extra,
    ]
    return subprocess.Popen(
        cmd,
        cwd=cwd,
        env=clean_env(**FAST_WAITS),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_sigint_half_way_still_writes_the_summary(api: ReferenceAPIProcess, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "panacea_locust.cli",
            "run",
            "--host",
            api.url,
            "-u",
            "10",
            "-r",
            "10",
            "-t",
            "60s",
            "--no-slo",
        ],
        cwd=tmp_path,
        env=clean_env(**FAST_WAITS),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(6)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    dirs = run_dirs(tmp_path / "results")
    assert len(dirs) == 1, err[-3000:]
    import json

    summary = json.loads((dirs[0] / "summary.json").read_text())
    assert summary["total"]["requests"] > 0
    assert summary["run"]["duration_s"] < 30
    assert summary["total"]["requests"] <= api.stats()["total"]


def test_sigterm_on_plain_locust_writes_the_summary(
    api: ReferenceAPIProcess, tmp_path: Path
) -> None:
    proc = _start_plain_locust(api, tmp_path, "-t", "60s")
    time.sleep(6)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    dirs = run_dirs(tmp_path / "results")
    assert len(dirs) == 1 and (dirs[0] / "summary.json").is_file()
    assert dirs[0].name.endswith("_locust")


def test_plain_locust_command_of_the_original_readme(
    api: ReferenceAPIProcess, tmp_path: Path
) -> None:
    proc = _start_plain_locust(api, tmp_path, "-t", "5s", "--csv=results", "--html=report.html")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-3000:]
    assert (tmp_path / "results_stats.csv").is_file() and (tmp_path / "report.html").is_file()
    assert len(run_dirs(tmp_path / "results")) == 1
    assert api.stats()["distinct_sessions"] == 10


def test_plain_locust_takes_its_target_from_panacea_host(
    api: ReferenceAPIProcess, tmp_path: Path
) -> None:
    """The original design's ``export PANACEA_HOST=...`` then ``locust -f locustfile.py``."""
    before = api.stats()["total"]
    proc = subprocess.Popen(
        [*LOCUST, "--headless", "-u", "2", "-r", "2", "-t", "4s"],
        cwd=tmp_path,
        env=clean_env(PANACEA_HOST=api.url, **FAST_WAITS),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-3000:]
    assert api.stats()["total"] > before
    (run_dir,) = run_dirs(tmp_path / "results")
    import json

    assert json.loads((run_dir / "summary.json").read_text())["run"]["host"] == api.url


@pytest.mark.parametrize("runner", ["panacea", "locust"])
def test_bad_setting_stops_before_any_request(
    api: ReferenceAPIProcess, tmp_path: Path, runner: str
) -> None:
    env = clean_env(BUNDLE_ID_MIN="1000", BUNDLE_ID_MAX="800")
    if runner == "panacea":
        cmd = [
            sys.executable,
            "-m",
            "panacea_locust.cli",
            "run",
            "--host",
            api.url,
            "-u",
            "5",
            "-t",
            "5s",
        ]
    else:
        cmd = [
            *LOCUST,
            "--headless",
            "--host",
            api.url,
            "-u",
            "5",
            "-t",
            "5s",
        ]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines[-1].endswith(
        "invalid setting BUNDLE_ID_MIN='1000': must not exceed BUNDLE_ID_MAX (800)"
    ), proc.stderr
    assert "Traceback" not in proc.stderr
    assert api.stats()["total"] == 0
    assert not run_dirs(tmp_path / "results")


def test_run_without_host_starts_the_reference_api(tmp_path: Path) -> None:
    run = run_panacea(
        [
            "-u",
            "4",
            "-r",
            "4",
            "-t",
            "4s",
            "--no-slo",
            "--reference-api-args",
            "--latency-scale 0.1",
        ],
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    summary = run.summary()
    assert summary["run"]["host"].startswith("http://127.0.0.1:")
    assert summary["total"]["requests"] > 0
    assert "reference API on http://127.0.0.1:" in run.stderr


def test_live_progress_line(api: ReferenceAPIProcess, tmp_path: Path) -> None:
    run = run_panacea(
        ["--host", api.url, "-u", "3", "-r", "3", "-t", "7s", "--no-slo"], cwd=tmp_path
    )
    assert re.search(
        r"\[00:0\d/00:07\] users 3 \| [\d.]+ req/s \| failures [\d.]+% \| p95 \d+ ms", run.stderr
    ), run.stderr[-2000:]
    assert "Results: " in run.stderr


if os.environ.get("PANACEA_E2E_DEBUG"):  # pragma: no cover
    print(ROOT)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_master_and_two_workers_share_no_identity(api: ReferenceAPIProcess, tmp_path: Path) -> None:
    port = _free_port()
    base = LOCUST
    env = clean_env(**FAST_WAITS)
    master = subprocess.Popen(
        [
            *base,
            "--master",
            "--headless",
            "--host",
            api.url,
            "-u",
            str(USERS),
            "-r",
            str(USERS),
            "-t",
            "10s",
            "--expect-workers",
            "2",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(port),
            "--label",
            "distributed",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    worker_dirs = [tmp_path / "w0", tmp_path / "w1"]
    for folder in worker_dirs:
        folder.mkdir()
    workers = [  # output to files: an unread pipe that fills up would block a worker
        subprocess.Popen(
            [*base, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)],
            cwd=folder,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(folder / "worker.log").open("w"),
        )
        for folder in worker_dirs
    ]
    try:
        _, err = master.communicate(timeout=90)
        for w, folder in zip(workers, worker_dirs, strict=True):
            try:
                w.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pytest.fail(f"worker did not quit: {(folder / 'worker.log').read_text()[-3000:]}")
    finally:
        for p in (master, *workers):
            if p.poll() is None:
                p.kill()
    assert master.returncode == 0, err[-3000:]
    stats = api.stats()
    check_sessions_and_windows(stats, USERS)
    (run_dir,) = run_dirs(tmp_path / "results")  # the master wrote one summary
    assert run_dir.name.endswith("_distributed")
    for folder in worker_dirs:  # and the workers none
        assert not (folder / "results").exists()
        assert "Traceback" not in (folder / "worker.log").read_text()
    import json

    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["run"]["users"] == {"HeavyUser": 5, "LightUser": 15}
    assert 0 <= stats["total"] - summary["total"]["requests"] <= USERS
    assert summary["total"]["p95_ms"] is not None  # histograms merged from the workers
    health = summary["run"]["load_generator"]  # each worker sent its own CPU share
    assert health["workers_sampled"] == 2 and health["cpu_percent_max"] > 0, health


def test_web_ui_mode_serves_the_ui_and_writes_the_run(
    api: ReferenceAPIProcess, tmp_path: Path
) -> None:
    import urllib.request

    port = _free_port()
    proc = subprocess.Popen(
        [
            *LOCUST,
            "--host",
            api.url,
            "--web-host",
            "127.0.0.1",
            "--web-port",
            str(port),
            "--autostart",
            "-u",
            "5",
            "-r",
            "5",
            "-t",
            "6s",
            "--autoquit",
            "3",
        ],
        cwd=tmp_path,
        env=clean_env(**FAST_WAITS),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        page = ""
        for _ in range(50):
            time.sleep(0.2)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    page = response.read().decode()
                    break
            except OSError:
                continue
        assert "Locust" in page
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    (run_dir,) = run_dirs(tmp_path / "results")
    import json

    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["total"]["requests"] > 0
    assert summary["run"]["users"] == {"HeavyUser": 1, "LightUser": 4}
    # a web UI run without an SLO file is judged on the shipped slo.toml (6 s: too short)
    assert summary["thresholds"]["rules"], "no thresholds for a web UI run"
    assert proc.returncode == summary["verdict"]["exit_code"] == 4, err[-3000:]


def test_a_load_shape_above_the_configured_maximum_is_refused(
    api: ReferenceAPIProcess, tmp_path: Path
) -> None:
    """The finding: a load shape ran 20 users with LOCUST_MAX_USERS=5."""
    proc = subprocess.run(
        [*LOCUST, "--headless", "--host", api.url],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env=clean_env(LOAD_SHAPE="step", LOAD_SHAPE_STAGES="2:2s,20:3s", LOCUST_MAX_USERS="5"),
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert (
        proc.stderr.strip()
        .splitlines()[-1]
        .endswith(
            "the load shape peaks at 20 users, above LOCUST_MAX_USERS (5); raise LOCUST_MAX_USERS "
            "to run more users"
        )
    )
    assert api.stats()["total"] == 0


def test_more_users_than_the_configured_maximum_is_refused(
    api: ReferenceAPIProcess, tmp_path: Path
) -> None:
    proc = subprocess.run(
        [
            *LOCUST,
            "--headless",
            "--host",
            api.url,
            "-u",
            "101",
            "-t",
            "3s",
        ],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert (
        proc.stderr.strip()
        .splitlines()[-1]
        .endswith(
            "-u 101 is above LOCUST_MAX_USERS (100); raise LOCUST_MAX_USERS (and USER_POOL_SIZE) "
            "to run more users"
        )
    )
    assert api.stats()["total"] == 0


def test_a_saturated_load_generator_is_flagged_in_the_result(
    api: ReferenceAPIProcess, tmp_path: Path
) -> None:
    if (os.cpu_count() or 1) < 2:
        pytest.skip("needs two cores: Locust saturating one while the API answers on another")
    api.configure(latency="off")  # the API answers at once
    no_waits = {f"{kind}_WAIT_{end}": "0" for kind in ("HEAVY", "LIGHT") for end in ("MIN", "MAX")}
    # 2 ms of CPU per request in Locust: it is the bottleneck at a few hundred requests a
    # second, which the API serves even on a busy host (with the API as the bottleneck, as
    # happened while benchmarks ran, Locust was not saturated and rightly not flagged)
    busy = ROOT / "tests" / "locustfiles" / "busy_generator.py"
    run = run_panacea(
        ["--host", api.url, "-u", "40", "-r", "40", "-t", "12s", "--no-slo",
         "--locustfile", str(busy)],
        cwd=tmp_path,
        env=clean_env(**no_waits),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    health = run.summary()["run"]["load_generator"]
    # Saturated, the process either gets its core (CPU over 85 %) or, on a host shared with
    # other work, cannot (its event loop then wakes late): flagged either way.
    assert health["warnings"], health
    if health["cpu_percent_max"] > 85:
        assert "WARNING (load generator): a Locust process reached" in run.stderr
    else:
        assert health["loop_lag_p99_ms"] > LOOP_LAG_LIMIT_MS, health
    assert "WARNING (load generator)" in run.stderr
    assert "> WARNING (load generator)" in (run.run_dir / "summary.md").read_text()  # type: ignore[operator]


def _descriptor_limit(n: int) -> None:
    """In the child: at most ``n`` open files (Locust cannot raise a hard limit)."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))


@pytest.mark.parametrize("window", ["", "window_s = 2\n"], ids=["whole run", "windowed"])
def test_a_load_generator_out_of_descriptors_is_inconclusive_not_a_failing_api(
    api: ReferenceAPIProcess, tmp_path: Path, window: str
) -> None:
    """80 users in a process allowed 60 open files: the connections it cannot open fail in
    the load generator itself. Found: they were counted as the API's failures (FAIL on a
    healthy API, ``connection error (OSError)``), and the results could not even be written
    at the end (exit 6: no descriptor left for the files). Then found: a windowed failure
    ratio still counted them (its windows did not know the failures' reasons)."""
    slo = tmp_path / "slo.toml"
    slo.write_text("[total]\nmax_failure_ratio = 0.01\n" + window)
    proc = subprocess.run(
        [sys.executable, "-m", "panacea_locust.cli", "run", "--host", api.url,
         "-u", "80", "-r", "80", "-t", "5s", "--slo", str(slo)],
        cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=120,
        preexec_fn=lambda: _descriptor_limit(60),
    )  # fmt: skip
    (run_dir,) = run_dirs(tmp_path / "results")
    assert proc.returncode == 4, proc.stderr[-3000:]  # INCONCLUSIVE, results written
    summary = json.loads((run_dir / "summary.json").read_text())
    total = summary["total"]
    mine = total["failures_by_reason"].get("load generator: too many open files (EMFILE)", 0)
    assert mine > 0 and mine == total["failures"], total["failures_by_reason"]
    # every request the API got is one the results counted; the others never left
    assert api.stats()["total"] == total["requests"] - mine
    warnings = summary["run"]["load_generator"]["warnings"]
    assert any("failed in the load generator itself" in w for w in warnings), warnings
    assert summary["verdict"]["outcome"] == "INCONCLUSIVE"
    assert "VERDICT: INCONCLUSIVE" in proc.stderr and "ulimit -n" in proc.stderr
    (rule,) = summary["thresholds"]["rules"]
    assert rule["status"] != "fail", rule  # the target failed nothing it was sent
    # the timeline tells the reasons apart, interval by interval
    intervals = json.loads((run_dir / "timeline.json").read_text())["intervals"]
    by_reason: Counter[str] = Counter()
    for interval in intervals:
        by_reason.update(interval["total"]["failures_by_reason"])
    assert by_reason == Counter(total["failures_by_reason"]), (by_reason, total)


def test_run_metadata_names_the_build_tested_and_the_code_that_tested_it(
    api: ReferenceAPIProcess, tmp_path: Path
) -> None:
    """--target-version, --description and the load-test code's commit reach summary.json,
    summary.md and compare's titles: which build of the API each run measured."""
    run = run_panacea(
        ["--host", api.url, "-u", "2", "-r", "2", "-t", "3s", "--no-slo",
         "--target-version", "panacea-2026.12.1", "--description", "before the index change"],
        cwd=tmp_path, env=clean_env(**FAST_WAITS),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    meta = run.summary()["run"]
    assert meta["target_version"] == "panacea-2026.12.1"
    assert meta["description"] == "before the index change"
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    if head:  # a git checkout (CI's clean clone is one)
        assert meta["git_commit"].split("+")[0] == head
    md = (run.run_dir / "summary.md").read_text()
    assert "(version panacea-2026.12.1)" in md and "- Description: before the index change" in md
    # TARGET_VERSION does the same for plain locust runs and for run without the flag
    again = run_panacea(
        ["--host", api.url, "-u", "1", "-r", "1", "-t", "2s", "--no-slo"],
        cwd=tmp_path, env=clean_env(TARGET_VERSION="panacea-2026.12.2", **FAST_WAITS),
    )  # fmt: skip
    assert again.summary()["run"]["target_version"] == "panacea-2026.12.2"
    compared = subprocess.run(
        [sys.executable, "-m", "panacea_locust.cli", "compare", str(run.run_dir),
         str(again.run_dir), "--min-tail-samples", "0"],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert "target version panacea-2026.12.1" in compared.stdout
    assert "target version panacea-2026.12.2" in compared.stdout


def _start_distributed(
    api: ReferenceAPIProcess,
    tmp_path: Path,
    seconds: int,
    *extra: str,
    locust: Sequence[str] = LOCUST,
) -> tuple:
    """A master (results in tmp_path; ``extra``: its further options) and two workers on a
    free loopback port, all running ``locust``."""
    port = _free_port()
    env = clean_env(**FAST_WAITS)
    master = subprocess.Popen(
        [*locust, "--master", "--headless", "--host", api.url, "-u", "10", "-r", "10",
         "-t", f"{seconds}s", "--expect-workers", "2", "--master-bind-host", "127.0.0.1",
         "--master-bind-port", str(port), *extra],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    workers = []
    for i in range(2):
        folder = tmp_path / f"w{i}"
        folder.mkdir()
        workers.append(subprocess.Popen(
            [*locust, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)],
            cwd=folder, env=env, stdout=subprocess.DEVNULL,
            stderr=(folder / "worker.log").open("w"),
        ))  # fmt: skip
    return master, workers


def _finish_distributed(
    master: subprocess.Popen,
    workers: list[subprocess.Popen],
    tmp_path: Path,
    meanwhile: Callable[[], None] | None = None,
) -> tuple[str, dict]:
    """Wait for the master (after ``meanwhile``), kill what is left; its stderr and summary."""
    try:
        if meanwhile is not None:
            meanwhile()
        _, err = master.communicate(timeout=90)
    finally:
        for p in (master, *workers):
            if p.poll() is None:
                p.kill()
    (run_dir,) = run_dirs(tmp_path / "results")
    return err, json.loads((run_dir / "summary.json").read_text())


def _assert_less_load_than_planned(master: subprocess.Popen, summary: dict, err: str) -> None:
    """Its one rule passed, yet the run is INCONCLUSIVE (exit 4): less load than planned."""
    (rule,) = summary["thresholds"]["rules"]
    assert rule["status"] == "pass", rule
    assert master.returncode == 4 and summary["verdict"]["outcome"] == "INCONCLUSIVE", err[-2000:]
    assert any("the load applied was less than planned" in r for r in summary["verdict"]["reasons"])


def test_a_lost_worker_is_recorded_with_its_users(api: ReferenceAPIProcess, tmp_path: Path) -> None:
    """The finding: SIGKILL of one of two workers halved the users for the rest of the run,
    and summary.json still said 10 users with nothing about a lost worker. Then: its rules
    passing made a PASS, though the load applied was less than planned."""
    slo = tmp_path / "slo.toml"
    slo.write_text("[total]\nmax_failure_ratio = 0.5\n")  # a healthy API passes it
    master, workers = _start_distributed(api, tmp_path, 14, "--slo-file", str(slo))

    def kill_a_worker() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and api.stats()["total"] < 20:
            time.sleep(0.2)
        workers[0].kill()

    err, summary = _finish_distributed(master, workers, tmp_path, kill_a_worker)
    record = summary["run"]["workers"]
    assert record["expected"] == 2 and len(record["joined"]) == 2, record
    (lost,) = record["lost"]
    assert lost["users"] == 5 and 0 < lost["at_s"] < 14, record
    warnings = summary["run"]["load_generator"]["warnings"]
    assert any(f"worker {lost['id']} was lost" in w for w in warnings), warnings
    assert f"worker {lost['id']} was lost" in err
    _assert_less_load_than_planned(master, summary, err)


def test_users_that_never_got_going_make_no_pass(api: ReferenceAPIProcess, tmp_path: Path) -> None:
    """A worker whose master's data never came: its users wait in ``on_start`` for the whole
    run and send nothing. Found (CI, by chance): with 5 of 10 users sending, the API healthy,
    the rules passed and so did the run. Now the stalled users are counted and the run is
    INCONCLUSIVE: the load applied was less than planned."""
    slo = tmp_path / "slo.toml"
    slo.write_text("[total]\nmax_failure_ratio = 0.5\n")
    locust = [sys.executable, "-m", "locust", "-f",
              str(ROOT / "tests" / "locustfiles" / "data_for_one_worker.py")]  # fmt: skip
    master, workers = _start_distributed(api, tmp_path, 10, "--slo-file", str(slo), locust=locust)
    err, summary = _finish_distributed(master, workers, tmp_path)
    assert len(api.stats()["sessions"]) == 5  # one worker's users sent, the other's not
    assert summary["run"]["workload"]["stalled_starts"] == 5, summary["run"]["workload"]
    warnings = summary["run"]["load_generator"]["warnings"]
    assert any("5 users waited" in w for w in warnings), warnings
    _assert_less_load_than_planned(master, summary, err)
    assert any("5 users waited" in r for r in summary["verdict"]["reasons"])


def test_workers_stop_soon_after_losing_their_master(
    api: ReferenceAPIProcess, tmp_path: Path
) -> None:
    """The finding: SIGKILL of the master left its workers loading the target for 60 s."""
    master, workers = _start_distributed(api, tmp_path, 60)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and api.stats()["total"] < 20:
            time.sleep(0.2)
        master.kill()
        killed = time.monotonic()
        for w in workers:
            w.wait(timeout=30)
        took = time.monotonic() - killed
    finally:
        for p in (master, *workers):
            if p.poll() is None:
                p.kill()
    assert took < 15, f"workers went on for {took:.0f} s without their master"
    before = api.stats()["total"]
    time.sleep(1.0)
    assert api.stats()["total"] == before  # nothing more reached the target


def test_a_worker_of_another_run_is_refused_and_sends_nothing(
    api: ReferenceAPIProcess, tmp_path: Path
) -> None:
    """The finding: a second run's workers joined the first run's master and sent their own
    token to its target. Here the other run's worker connects first: it learns that the
    master is not of its run and leaves before any user starts; the run goes on with its own
    worker."""
    port = _free_port()
    own = clean_env(PANACEA_RUN_SECRET="run-a-secret-0123456789", **FAST_WAITS)
    other = clean_env(PANACEA_RUN_SECRET="run-b-secret-0123456789", **FAST_WAITS)
    master = subprocess.Popen(
        [*LOCUST, "--master", "--headless", "--host", api.url, "-u", "4", "-r", "4", "-t", "4s",
         "--expect-workers", "1", "--master-bind-host", "127.0.0.1",
         "--master-bind-port", str(port)],
        cwd=tmp_path, env=own, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    worker_cmd = [*LOCUST, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)]
    (tmp_path / "b").mkdir()
    (tmp_path / "a").mkdir()
    foreign = subprocess.Popen(worker_cmd, cwd=tmp_path / "b", env=other, text=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    try:
        _, foreign_err = foreign.communicate(timeout=30)
        assert "this worker leaves: its master is not of this run" in foreign_err
        assert foreign.returncode == 2
        ours = subprocess.Popen(worker_cmd, cwd=tmp_path / "a", env=own, text=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        _, err = master.communicate(timeout=90)
        ours.wait(timeout=30)
    finally:
        for p in (master, foreign):
            if p.poll() is None:
                p.kill()
    assert master.returncode == 0, err[-3000:]
    assert "left: it is not of this run" in err
    stats = api.stats()
    assert stats["distinct_sessions"] == 4  # only this run's four users ever sent anything
    (run_dir,) = run_dirs(tmp_path / "results")
    import json

    summary = json.loads((run_dir / "summary.json").read_text())
    assert sum(summary["run"]["users"].values()) == 4
    assert summary["total"]["requests"] == stats["total"]
