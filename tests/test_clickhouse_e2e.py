"""Database mode end to end: ``db init``, ``db seed``, the reference API serving the same
ClickHouse (``--data-from-clickhouse``), and real headless runs, asserted from what the server
received (``/__stats``) and from each run's ``summary.json``; and every fallback cause leaving
a run that completes with its reason recorded."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from clickhouse_data import seed_small
from clickhouse_fixture import ClickHouseInfo, free_port
from conftest import ROOT, clean_env, run_dirs, run_panacea

from panacea_locust.clickhouse_dao import ClickHouseDAO
from panacea_locust.config import load_settings
from panacea_locust.reference_api.launcher import ReferenceAPIProcess

pytestmark = [pytest.mark.clickhouse, pytest.mark.e2e]

FAST_WAITS = {"HEAVY_WAIT_MIN": "0.05", "HEAVY_WAIT_MAX": "0.1",
              "LIGHT_WAIT_MIN": "0.2", "LIGHT_WAIT_MAX": "0.4"}  # fmt: skip
#: endpoints that name bundle (or combo) ids: an id unknown to the API would be a 404 there
BUNDLE_ENDPOINTS = (
    "/api/v1/logs/info", "/api/v1/logs/severity-count", "/api/v1/logs/histogram",
    "/api/v1/logs/heatmap", "/api/v1/logs/search", "/api/v1/logs/filter-options",
    "/api/v1/events", "/api/v1/ai/report_summary", "/api/v1/ai/ask-ai",
)  # fmt: skip


def panacea_db(info: ClickHouseInfo, *args: str) -> str:
    """``panacea-locust db ...`` as a user types it, pointed at ``info`` by the environment."""
    proc = subprocess.run(
        [sys.executable, "-m", "panacea_locust.cli", "db", *args], cwd=ROOT,
        env=clean_env(**info.env()), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert info.password not in proc.stdout + proc.stderr
    return proc.stdout


def test_database_mode_run_meets_only_known_ids(clickhouse_db: ClickHouseInfo,
                                                tmp_path: Path) -> None:  # fmt: skip
    users = 12
    panacea_db(clickhouse_db, "init")
    assert "seeded with seed 42" in panacea_db(clickhouse_db, "seed", "--seed", "42",
                                               "--users", "40")  # fmt: skip
    with ClickHouseDAO(load_settings(clickhouse_db.overrides())) as dao:
        db_sessions = dict((s, u) for u, s in dao.get_users_and_sessions(1000))
        db_bundles = {
            b
            for (b,) in dao.execute(
                f"SELECT {dao.names.q('bundle_id')} FROM {dao.names.table('log_bundles')}"
            )
        }
        db_completed = set(dao.get_active_bundle_ids(10_000))
        db_combos = set(dao.get_active_combo_ids(10_000))  # fmt: skip

    api_args = ["--latency-scale", "0.05", "--seed", "42", "--data-from-clickhouse",
                "--clickhouse-host", clickhouse_db.host,
                "--clickhouse-port", str(clickhouse_db.port),
                "--clickhouse-database", clickhouse_db.database,
                "--clickhouse-user", clickhouse_db.user]  # fmt: skip
    api_env = clean_env(CLICKHOUSE_PASSWORD=clickhouse_db.password)
    with ReferenceAPIProcess(api_args, env=api_env) as api:
        run = run_panacea(
            ["--host", api.url, "-u", str(users), "-r", str(users), "-t", "8s", "--no-slo"],
            cwd=tmp_path,
            env=clean_env(**clickhouse_db.env(), USE_DATABASE_DATA="true", **FAST_WAITS),
        )
        stats = api.stats()
    assert run.returncode == 0, run.stderr[-3000:]

    # sessions: the first `users` sessions of the database, newest first, each with its user
    sessions = stats["sessions"]
    assert len(sessions) == users
    assert set(sessions) <= set(db_sessions)
    for sid, seen in sessions.items():
        assert seen["user_ids"] == [db_sessions[sid]]
        assert set(seen["bundle_ids"]) <= db_completed, "a bundle id not active in the database"
        assert set(seen["combo_ids"]) <= db_combos
    named = set().union(*(set(s["bundle_ids"]) for s in sessions.values()))
    assert named and named <= db_completed <= db_bundles

    # the reference API knew every id: no 404 on the bundle endpoints, nothing failed
    for endpoint in BUNDLE_ENDPOINTS:
        by_status = stats["endpoints"][endpoint]["by_status"]
        assert by_status.get("200", 0) > 0 and "404" not in by_status, (endpoint, by_status)
    assert stats["violations_total"] == 0, stats["violations"]
    assert stats["by_status"] == {"200": stats["total"]}, stats["by_status"]  # 200s only

    summary = run.summary()
    assert summary["total"]["failures"] == 0
    source = summary["run"]["data_source"]
    assert source["mode"] == "database" and source["fallbacks"] == {}
    assert source["loaded"]["sessions"] == 40
    assert source["loaded"]["bundle_ids"] == len(db_completed)
    assert clickhouse_db.password not in (run.run_dir / "summary.json").read_text()  # type: ignore[operator]
    assert clickhouse_db.password not in run.stdout + run.stderr


@pytest.fixture()
def silent_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


@pytest.mark.parametrize("cause", ["refused", "wrong password", "missing table", "empty table",
                                   "timeout"])  # fmt: skip
def test_fallback_run_completes_with_its_reason(
    cause: str, clickhouse_db: ClickHouseInfo, silent_port: int,
    api: ReferenceAPIProcess, tmp_path: Path,
) -> None:  # fmt: skip
    env = clean_env(**clickhouse_db.env(), USE_DATABASE_DATA="true",
                    CLICKHOUSE_CONNECT_TIMEOUT="1", **FAST_WAITS)  # fmt: skip
    secret = clickhouse_db.password
    if cause == "refused":
        env["CLICKHOUSE_PORT"], expected = str(free_port()), {"*": "connection refused"}
    elif cause == "wrong password":
        secret = env["CLICKHOUSE_PASSWORD"] = "wrong-pw'x"
        expected = {"*": "authentication failed"}
    elif cause == "missing table":
        seed_small(clickhouse_db)
        clickhouse_db.client().execute("DROP TABLE combo_bundles")
        expected = {"combo_ids": "unknown table"}
    elif cause == "empty table":
        seed_small(clickhouse_db)
        clickhouse_db.client().execute("TRUNCATE TABLE user_sessions")
        expected = {"sessions": "user_sessions is empty"}
    else:
        env["CLICKHOUSE_PORT"], env["CLICKHOUSE_QUERY_TIMEOUT"] = str(silent_port), "1"
        expected = {"*": "timeout"}

    run = run_panacea(["--host", api.url, "-u", "2", "-r", "2", "-t", "2s", "--no-slo"],
                      cwd=tmp_path, env=env)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    summary = run.summary()
    assert summary["total"]["requests"] > 0 and summary["total"]["failures"] == 0
    source = summary["run"]["data_source"]
    if "*" in expected:
        assert source["mode"] == "generated"
        assert set(source["fallbacks"]) == {"sessions", "bundle_ids", "combo_ids", "sfdc_cases",
                                            "bundle_paths"}  # fmt: skip
        assert all(expected["*"] in why for why in source["fallbacks"].values()), source
    else:
        assert source["mode"] == "database"
        assert set(source["fallbacks"]) == set(expected), source
        for kind, why in expected.items():
            assert why in source["fallbacks"][kind]
    assert any("generating" in line for line in run.stderr.splitlines()), run.stderr[-2000:]
    text = json.dumps(summary) + run.stdout + run.stderr
    assert secret not in text and clickhouse_db.password not in text


@pytest.mark.parametrize("locustfile", ["locustfile.py", "tests/locustfiles/slow_database.py"])
def test_workers_without_database_access_run_on_the_masters_data(
    clickhouse_db: ClickHouseInfo, tmp_path: Path, locustfile: str
) -> None:
    """Only the master reads ClickHouse; its workers, whose database settings lead nowhere
    (a closed port, a wrong password), run on the ids it loaded and ship nothing of their own:
    every session and bundle id the API saw is the database's, and nothing was a 404. With
    ``slow_database.py`` the workers are connected and ready before the master has its data
    (CI saw that by chance: one worker's users waited for data that never came)."""
    users = 10
    panacea_db(clickhouse_db, "init")
    panacea_db(clickhouse_db, "seed", "--seed", "42", "--users", "30")
    with ClickHouseDAO(load_settings(clickhouse_db.overrides())) as dao:
        db_sessions = {s for _, s in dao.get_users_and_sessions(1000)}
        db_completed = set(dao.get_active_bundle_ids(10_000))
    api_args = ["--latency-scale", "0.05", "--seed", "42", "--data-from-clickhouse",
                "--clickhouse-host", clickhouse_db.host,
                "--clickhouse-port", str(clickhouse_db.port),
                "--clickhouse-database", clickhouse_db.database,
                "--clickhouse-user", clickhouse_db.user]  # fmt: skip
    locust = [sys.executable, "-m", "locust", "-f", str(ROOT / locustfile)]
    port = free_port()
    master_env = clean_env(**clickhouse_db.env(), USE_DATABASE_DATA="true", **FAST_WAITS)
    worker_env = clean_env(**clickhouse_db.env(), USE_DATABASE_DATA="true",
                           CLICKHOUSE_CONNECT_TIMEOUT="1", **FAST_WAITS)  # fmt: skip
    worker_env["CLICKHOUSE_PORT"] = str(free_port())  # nothing listens there
    worker_env["CLICKHOUSE_PASSWORD"] = "not-the-password"
    with ReferenceAPIProcess(
        api_args, env=clean_env(CLICKHOUSE_PASSWORD=clickhouse_db.password)
    ) as api:
        master = subprocess.Popen(
            [*locust, "--master", "--headless", "--host", api.url, "-u", str(users),
             "-r", str(users), "-t", "8s", "--expect-workers", "2",
             "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port)],
            cwd=tmp_path, env=master_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        logs = [tmp_path / f"worker{i}.log" for i in range(2)]
        workers = [
            subprocess.Popen(
                [*locust, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)],
                cwd=tmp_path,
                env=worker_env,
                stdout=subprocess.DEVNULL,
                stderr=log.open("w"),
            )  # fmt: skip
            for log in logs
        ]
        try:
            _, err = master.communicate(timeout=120)
            for w in workers:
                w.wait(timeout=30)
        finally:
            for p in (master, *workers):
                if p.poll() is None:
                    p.kill()
        stats = api.stats()
    assert master.returncode == 0, err[-3000:]
    sessions = stats["sessions"]
    assert len(sessions) == users and set(sessions) <= db_sessions
    named = set().union(*(set(s["bundle_ids"]) for s in sessions.values()))
    assert named and named <= db_completed, "a worker sent a bundle id not from the database"
    for endpoint in BUNDLE_ENDPOINTS:
        assert "404" not in stats["endpoints"][endpoint]["by_status"], endpoint
    for log in logs:
        text = log.read_text()
        assert "running on the master's data (sessions=30" in text, text[-2000:]
        assert "ClickHouse" not in text and "Traceback" not in text, text[-2000:]
    (run_dir,) = run_dirs(tmp_path / "results")
    summary = json.loads((run_dir / "summary.json").read_text())
    source = summary["run"]["data_source"]
    assert source["mode"] == "database" and source["fallbacks"] == {}, source
    assert "per_process" not in source, source  # every process ran on the same data
    assert source["loaded"]["bundle_ids"] == len(db_completed)
    shipped = summary["run"]["workers"]["data"]
    assert shipped["sent_to"] == 2 and shipped["chunks"] >= 1 and shipped["bytes"] > 0, shipped
    assert clickhouse_db.password not in (run_dir / "summary.json").read_text()
