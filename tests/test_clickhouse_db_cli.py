"""``panacea-locust db init|seed|check``, the reference API's ClickHouse source and the root
scripts, against a real ClickHouse."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from argparse import Namespace
from pathlib import Path

import pytest
from clickhouse_data import settings_for
from clickhouse_fixture import ClickHouseInfo, free_port

from panacea_locust.cli import db as db_cli
from panacea_locust.clickhouse_dao import ClickHouseDAO, load_pool_data
from panacea_locust.contract import SchemaNames
from panacea_locust.reference_api.clickhouse_source import (
    ClickHouseSource,
    ClickHouseSourceError,
    load_dataset,
)
from panacea_locust.reference_api.dataset import build_dataset

pytestmark = pytest.mark.clickhouse
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture()
def db_env(clickhouse_db: ClickHouseInfo, monkeypatch: pytest.MonkeyPatch) -> ClickHouseInfo:
    """The CLICKHOUSE_* variables point at a fresh database of the test server."""
    for key, value in clickhouse_db.env().items():
        monkeypatch.setenv(key, value)
    return clickhouse_db


def counts(info: ClickHouseInfo) -> dict[str, int]:
    with ClickHouseDAO(settings_for(info)) as dao:
        return {t: dao.count_rows(t) for t in ("user_sessions", "log_bundles", "combo_bundles",
                                               "sfdc_cases")}  # fmt: skip


def source_for(info: ClickHouseInfo, **kw: object) -> ClickHouseSource:
    args = {"host": info.host, "port": info.port, "names": SchemaNames(database=info.database),
            "user": info.user, "password": info.password, "connect_timeout": 2.0} | kw  # fmt: skip
    return ClickHouseSource(**args)  # type: ignore[arg-type]


def test_print_sql_needs_no_server(capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("CLICKHOUSE_PORT", str(free_port()))
    assert db_cli.main(["init", "--print-sql", "--drop"]) == 0
    sql = capsys.readouterr().out
    assert "CREATE DATABASE IF NOT EXISTS `panacea`" in sql
    assert sql.count("ENGINE = MergeTree() ORDER BY") == 4
    assert sql.count("DROP TABLE IF EXISTS") == 4


def test_init_seed_check(db_env: ClickHouseInfo, capsys: pytest.CaptureFixture[str]) -> None:
    assert db_cli.main(["init"]) == 0
    assert "schema ready" in capsys.readouterr().out
    assert db_cli.main(["check"]) == 1  # tables exist but hold nothing yet
    out = capsys.readouterr().out
    assert "GENERATED instead: table" in out and "is empty" in out

    assert db_cli.main(["seed", "--seed", "7"]) == 0
    out = capsys.readouterr().out
    assert "seeded with seed 7" in out and db_env.password not in out
    dataset = build_dataset(seed=7)
    expected = {
        "user_sessions": 1000,
        "log_bundles": len(dataset.bundles),
        "combo_bundles": len(dataset.combos),
        "sfdc_cases": len(dataset.sfdc_cases),
    }
    assert counts(db_env) == expected
    assert db_cli.main(["seed", "--seed", "7"]) == 0  # re-seeding replaces, never doubles
    assert counts(db_env) == expected
    capsys.readouterr()

    assert db_cli.main(["check"]) == 0
    out = capsys.readouterr().out
    assert "connected: ClickHouse" in out and "every kind would come from the database" in out
    assert re.search(r"sessions +1000 \(limit 1000\)", out)
    assert db_cli.main(["check", "--json", "--samples", "2"]) == 0
    report = json.loads(capsys.readouterr().out)
    completed = sum(b.status == "completed" for b in dataset.bundles)
    assert report["complete"] and report["kinds"]["bundle_ids"]["loaded"] == min(500, completed)
    assert len(report["kinds"]["sessions"]["sample"]) == 2
    assert db_env.password not in json.dumps(report)


def test_seeded_ids_are_the_reference_datasets(db_env: ClickHouseInfo) -> None:
    """What database mode loads after `db seed` is exactly what the reference API knows."""
    assert db_cli.main(["init"]) == 0
    assert db_cli.main(["seed", "--seed", "42", "--users", "300"]) == 0
    data = load_pool_data(settings_for(db_env, DB_BUNDLE_IDS_LIMIT=10_000,
                                       DB_COMBO_IDS_LIMIT=10_000))  # fmt: skip
    dataset = build_dataset(seed=42)
    completed = {b.bundle_id for b in dataset.bundles if b.status == "completed"}
    assert set(data.bundle_ids) == completed
    assert set(data.combo_ids) == set(dataset.combo_by_id)
    assert set(data.sfdc_cases) <= {c.sfdc_case_no for c in dataset.sfdc_cases}
    assert len(data.sfdc_cases) == min(200, len(dataset.sfdc_cases))  # DB_SFDC_CASES_LIMIT
    paths = {b.remote_log_bundle_path for b in dataset.bundles if b.status == "completed"}
    assert set(data.bundle_paths) <= paths
    assert data.sessions == [(u, s) for u, s, _ in db_cli.seed_sessions(42, 300)]
    assert len({s for _, s in data.sessions}) == 300

    # the reference API's --data-from-clickhouse reads back the very same records
    loaded = load_dataset(source_for(db_env), seed=42)
    assert loaded.bundles == dataset.bundles
    assert loaded.combos == dataset.combos
    assert loaded.sfdc_cases == dataset.sfdc_cases


def test_seed_writes_thousands_of_rows_in_seconds(
    db_env: ClickHouseInfo, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    code = db_cli.main(["seed", "--users", "5000", "--bundle-min", "1", "--bundle-max", "5000",
                        "--combo-max", "2000"])  # fmt: skip
    elapsed = time.monotonic() - started
    assert code == 0, capsys.readouterr().err
    rows = counts(db_env)
    assert rows["user_sessions"] == 5000 and rows["log_bundles"] >= 4500
    assert sum(rows.values()) > 10_000
    assert elapsed < 10, f"seeding {sum(rows.values())} rows took {elapsed:.1f}s"
    print(f"seeded {sum(rows.values())} rows in {elapsed:.2f}s")


def test_db_commands_report_failures(clickhouse_server: ClickHouseInfo,
                                     monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    for key, value in clickhouse_server.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("CLICKHOUSE_PASSWORD", "wrong'pw")
    assert db_cli.main(["init"]) == 1
    assert "authentication failed" in capsys.readouterr().err
    assert db_cli.main(["check"]) == 1
    out = capsys.readouterr().out
    assert "connection FAILED: authentication failed" in out and "wrong'pw" not in out
    monkeypatch.setenv("CLICKHOUSE_PORT", "0")
    assert db_cli.main(["check"]) == 2
    assert "CLICKHOUSE_PORT" in capsys.readouterr().err
    assert db_cli.main(["seed", "--unknown-ratio", "1.5"]) == 2


def test_reference_api_source_errors(clickhouse_db: ClickHouseInfo) -> None:
    with pytest.raises(ClickHouseSourceError) as wrong:
        load_dataset(source_for(clickhouse_db, password="bad'one"))
    assert "bad'one" not in str(wrong.value) and "password ***" in str(wrong.value)
    with ClickHouseDAO(settings_for(clickhouse_db), database="") as dao:
        dao.create_schema()
    with pytest.raises(ClickHouseSourceError, match="no bundles in .*db seed"):
        load_dataset(source_for(clickhouse_db))


def test_reference_api_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    from panacea_locust.reference_api import clickhouse_source

    parser = __import__("argparse").ArgumentParser()
    clickhouse_source.add_arguments(parser)
    monkeypatch.setenv("CLICKHOUSE_PASSWORD", "from-env")
    monkeypatch.setenv("CLICKHOUSE_LOG_BUNDLES_TABLE", "bundles_v2")
    args = parser.parse_args(["--data-from-clickhouse", "--clickhouse-port", "9440",
                              "--clickhouse-user", "reader"])  # fmt: skip
    source = clickhouse_source.source_from_args(args)
    assert (source.host, source.port, source.database, source.user, source.password) == (
        "127.0.0.1",
        9440,
        "panacea",
        "reader",
        "from-env",
    )
    assert source.names.log_bundles == "bundles_v2"
    assert "from-env" not in source.where()
    assert clickhouse_source.dataset_from_args(Namespace(data_from_clickhouse=False), 1) is None


def _script_env(info: ClickHouseInfo) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("CLICKHOUSE_", "DB_"))}
    return keep | info.env() | {"USE_DATABASE_DATA": "true"}


def test_root_scripts(db_env: ClickHouseInfo) -> None:
    env = _script_env(db_env)
    first = subprocess.run([sys.executable, "setup_and_test.py"], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert first.returncode == 1 and "FAILED: unknown database" in first.stdout
    assert db_cli.main(["init"]) == 0 and db_cli.main(["seed", "--users", "50"]) == 0
    ready = subprocess.run([sys.executable, "setup_and_test.py"], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert ready.returncode == 0, ready.stdout + ready.stderr
    assert "CLICKHOUSE_PASSWORD          ***" in ready.stdout
    assert re.search(r"sessions +50 \(limit 1000\)", ready.stdout)
    detail = subprocess.run([sys.executable, "test_clickhouse.py"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert detail.returncode == 0, detail.stdout + detail.stderr
    assert f"{db_env.database}.log_bundles:" in detail.stdout
    assert "active bundle ids (DB_BUNDLE_IDS_LIMIT=500)" in detail.stdout
    for out in (ready.stdout, detail.stdout):
        assert db_env.password not in out


def test_setup_env_defaults_to_loopback() -> None:
    script = "source ./setup_env.sh >/dev/null && env"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLICKHOUSE_", "DB_"))}
    out = subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=30, check=True).stdout  # fmt: skip
    got = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    assert got["CLICKHOUSE_HOST"] == "127.0.0.1" and got["CLICKHOUSE_PORT"] == "9000"
    assert got["CLICKHOUSE_PASSWORD"] == "" and got["USE_DATABASE_DATA"] == "true"
    assert got["DB_USERS_LIMIT"] == "1000" and got["DB_SFDC_CASES_LIMIT"] == "200"
    kept = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True,
                          env=env | {"CLICKHOUSE_HOST": "db.internal", "DB_USERS_LIMIT": "5"},
                          timeout=30, check=True).stdout  # fmt: skip
    assert "CLICKHOUSE_HOST=db.internal" in kept and "DB_USERS_LIMIT=5" in kept
