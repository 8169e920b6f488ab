"""Each fallback cause for real: a real server refusing, rejecting, lacking tables or data, or
silent. Every one leaves a usable PoolData, a reason per kind, and no password anywhere."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from clickhouse_data import seed_small, settings_for
from clickhouse_fixture import ClickHouseInfo, free_port, start_server_or_skip

from panacea_locust.clickhouse_dao import ClickHouseDAO, load_pool_data
from panacea_locust.config import load_settings
from panacea_locust.payload_generator import POOL_KINDS, PoolData, UserPool

pytestmark = pytest.mark.clickhouse


def assert_all_generated(data: PoolData, cause: str, password: str) -> None:
    assert data.source == "generated"
    assert set(data.fallbacks) == set(POOL_KINDS)
    for kind in POOL_KINDS:
        assert getattr(data, kind) == []
        assert cause in data.fallbacks[kind], data.fallbacks[kind]
        assert password not in data.fallbacks[kind]
    described = data.describe()
    assert described["mode"] == "generated" and set(described["fallbacks"]) == set(POOL_KINDS)


def assert_pools_still_build(data: PoolData, settings: Any) -> None:
    """The run goes on: every user still gets a full pool."""
    pool = UserPool.build(0, settings, data)
    assert len(pool.session_id) == 32 and pool.bundle_ids and pool.sfdc_cases


def test_connection_refused(caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()  # bound and released: nothing listens there
    settings = load_settings(
        {
            "USE_DATABASE_DATA": True,
            "CLICKHOUSE_PORT": port,
            "CLICKHOUSE_PASSWORD": "s3cret-pw",
            "CLICKHOUSE_CONNECT_TIMEOUT": 1,
        }
    )
    with caplog.at_level(logging.WARNING, logger="panacea_locust.clickhouse"):
        data = load_pool_data(settings)
    assert_all_generated(data, f"connection refused by 127.0.0.1:{port}", "s3cret-pw")
    assert_pools_still_build(data, settings)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings and "connection refused" in warnings[0] and "password ***" in warnings[0]
    assert all("s3cret-pw" not in w for w in caplog.messages)


def test_wrong_password(
    clickhouse_server: ClickHouseInfo, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "not-the-password'\""
    settings = load_settings(clickhouse_server.overrides(CLICKHOUSE_PASSWORD=wrong))
    with caplog.at_level(logging.WARNING):
        data = load_pool_data(settings)
    assert_all_generated(data, "authentication failed for user 'panacea_test'", wrong)
    assert all(wrong not in m and clickhouse_server.password not in m for m in caplog.messages)
    assert_pools_still_build(data, settings)


def test_unknown_database(clickhouse_db: ClickHouseInfo) -> None:
    settings = settings_for(clickhouse_db)  # the database is not created
    data = load_pool_data(settings)
    assert_all_generated(data, "unknown database", clickhouse_db.password)
    assert clickhouse_db.database in data.fallbacks["sessions"]


def test_missing_table_falls_back_alone(clickhouse_db: ClickHouseInfo,
                                        caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    seed_small(clickhouse_db)
    clickhouse_db.client().execute("DROP TABLE user_sessions")
    with caplog.at_level(logging.WARNING):
        data = load_pool_data(settings_for(clickhouse_db))
    assert list(data.fallbacks) == ["sessions"]
    assert "unknown table" in data.fallbacks["sessions"]
    assert f"{clickhouse_db.database}.user_sessions" in data.fallbacks["sessions"]
    assert data.source == "database" and data.bundle_ids and data.combo_ids and data.sfdc_cases
    assert data.describe()["generated"] == ["sessions"]
    assert any("generating sessions instead" in m for m in caplog.messages)
    assert all(clickhouse_db.password not in m for m in caplog.messages)


def test_missing_column_falls_back_alone(clickhouse_db: ClickHouseInfo) -> None:
    seed_small(clickhouse_db)
    data = load_pool_data(settings_for(clickhouse_db, CLICKHOUSE_COMBO_ID_COLUMN="no_such"))
    assert list(data.fallbacks) == ["combo_ids"]
    assert "unknown column" in data.fallbacks["combo_ids"]


def test_empty_tables(clickhouse_db: ClickHouseInfo) -> None:
    settings = settings_for(clickhouse_db)
    with ClickHouseDAO(settings, database="") as dao:
        dao.create_schema()
    data = load_pool_data(settings)
    db = clickhouse_db.database
    assert data.fallbacks == {
        "sessions": f"table {db}.user_sessions is empty",
        "bundle_ids": f"table {db}.log_bundles is empty",
        "combo_ids": f"table {db}.combo_bundles is empty",
        "sfdc_cases": f"table {db}.sfdc_cases is empty",
        "bundle_paths": f"table {db}.log_bundles is empty",
    }
    assert data.source == "generated"
    assert_pools_still_build(data, settings)


def test_one_empty_table_falls_back_alone(clickhouse_db: ClickHouseInfo) -> None:
    seed_small(clickhouse_db)
    clickhouse_db.client().execute("TRUNCATE TABLE sfdc_cases")
    data = load_pool_data(settings_for(clickhouse_db))
    assert data.fallbacks == {"sfdc_cases": f"table {clickhouse_db.database}.sfdc_cases is empty"}
    assert data.sessions and data.bundle_ids


@pytest.fixture()
def silent_port() -> Iterator[int]:
    """A loopback socket that accepts connections and never says a word."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


def test_timeout(silent_port: int) -> None:
    settings = load_settings({"USE_DATABASE_DATA": True, "CLICKHOUSE_PORT": silent_port,
                              "CLICKHOUSE_PASSWORD": "pw-123456", "CLICKHOUSE_CONNECT_TIMEOUT": 1,
                              "CLICKHOUSE_QUERY_TIMEOUT": 1})  # fmt: skip
    started = time.monotonic()
    data = load_pool_data(settings)
    assert time.monotonic() - started < 5
    assert_all_generated(data, f"timeout: 127.0.0.1:{silent_port} did not answer within 1s",
                         "pw-123456")  # fmt: skip


def test_server_stopped() -> None:
    """Loads from a running server; once it is stopped, the same settings fall back."""
    server = start_server_or_skip()  # a second, short-lived server of its own
    try:
        assert server.info is not None
        info = server.info
        info = ClickHouseInfo(info.host, info.port, info.http_port, info.user, info.password,
                              "panacea")  # fmt: skip
        seed_small(info)
        settings = settings_for(info)
        assert load_pool_data(settings).fallbacks == {}
    finally:
        server.stop()
    data = load_pool_data(settings)
    assert_all_generated(data, f"connection refused by 127.0.0.1:{info.port}", info.password)


def test_password_echoed_by_a_driver_is_masked() -> None:
    settings = load_settings({"CLICKHOUSE_PASSWORD": "hunter2-secret"})
    dao = ClickHouseDAO(settings)
    text = dao.explain(RuntimeError("login hunter2-secret rejected"))
    assert "hunter2-secret" not in text and "***" in text
    assert "hunter2-secret" not in dao.target
