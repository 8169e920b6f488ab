"""The DAO and the pool loader against a real ClickHouse (the Debian 18.16 server in CI)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from clickhouse_data import (
    BASE_TS,
    N_BUNDLES,
    N_CASES,
    N_COMBOS,
    N_SESSIONS,
    QUOTED_USER,
    seed_small,
    settings_for,
)
from clickhouse_fixture import ClickHouseInfo

from panacea_locust import clickhouse_dao
from panacea_locust.clickhouse_dao import ClickHouseDAO, load_pool_data
from panacea_locust.config import ConfigError, get_settings, load_settings
from panacea_locust.contract import SchemaNames, quote_identifier
from panacea_locust.payload_generator import UserPool

pytestmark = pytest.mark.clickhouse


@pytest.fixture()
def seeded(clickhouse_db: ClickHouseInfo) -> Iterator[ClickHouseInfo]:
    seed_small(clickhouse_db)
    yield clickhouse_db


def test_init_creates_the_reference_schema(clickhouse_db: ClickHouseInfo) -> None:
    settings = settings_for(clickhouse_db)
    with ClickHouseDAO(settings, database="") as dao:
        version = dao.ping()
        assert dao.create_schema() == [
            f"{clickhouse_db.database}.{t}"
            for t in ("user_sessions", "log_bundles", "combo_bundles", "sfdc_cases")
        ]
        dao.create_schema()  # idempotent
        rows = dao.execute(
            "SELECT table, name, type FROM system.columns WHERE database = %(db)s "
            "ORDER BY table, name",
            {"db": clickhouse_db.database},
        )
        engines = dict(dao.execute(
            "SELECT name, engine FROM system.tables WHERE database = %(db)s",
            {"db": clickhouse_db.database},
        ))  # fmt: skip
    assert version  # "18.16.1" on Debian's package, any release elsewhere
    columns: dict[str, dict[str, str]] = {}
    for table, name, type_ in rows:
        columns.setdefault(table, {})[name] = type_
    assert columns == {
        "user_sessions": {"user_id": "String", "session_id": "String", "created_at": "DateTime"},
        "log_bundles": {"bundle_id": "UInt32", "sfdc_case_no": "String",
                        "remote_log_bundle_path": "String", "status": "String",
                        "created_at": "DateTime"},
        "combo_bundles": {"combo_id": "UInt32", "bundle_ids": "Array(UInt32)",
                          "created_at": "DateTime"},
        "sfdc_cases": {"sfdc_case_no": "String", "created_at": "DateTime"},
    }  # fmt: skip
    assert set(engines.values()) == {"MergeTree"}


def test_drop_recreates_empty_tables(seeded: ClickHouseInfo) -> None:
    with ClickHouseDAO(settings_for(seeded)) as dao:
        assert dao.count_rows("log_bundles") == N_BUNDLES
        dao.create_schema(drop=True)
        assert [dao.count_rows(t) for t in clickhouse_dao.TABLES] == [0, 0, 0, 0]


@pytest.mark.parametrize("limit", [1, 7, 1000])
def test_each_kind_loads_up_to_its_limit(seeded: ClickHouseInfo, limit: int) -> None:
    settings = settings_for(seeded, DB_USERS_LIMIT=limit, DB_BUNDLE_IDS_LIMIT=limit,
                            DB_COMBO_IDS_LIMIT=limit, DB_SFDC_CASES_LIMIT=limit)  # fmt: skip
    data = load_pool_data(settings)
    assert data.fallbacks == {}
    assert data.source == "database"
    # sessions: newest first, one per session id (the older duplicate row is not a second user)
    expected_sessions = [(f"user_{i}", f"{i:032x}") for i in range(N_SESSIONS - 1, -1, -1)]
    expected_sessions[-1] = (QUOTED_USER, f"{0:032x}")
    assert data.sessions == expected_sessions[:limit]
    # active bundles: the newest `limit` completed ids, then sorted ascending for the windows
    completed_newest_first = [b for b in range(140, 100, -1) if b % 2 == 0]
    assert data.bundle_ids == sorted(completed_newest_first[:limit])
    assert len(data.bundle_paths) == min(limit, 20)
    assert all(
        f"-{b:05d}-" in p for b, p in zip(completed_newest_first, data.bundle_paths, strict=False)
    )
    assert data.combo_ids == list(range(max(1, N_COMBOS - limit + 1), N_COMBOS + 1))
    assert data.sfdc_cases == [f"{20_000_000 + c:09d}" for c in range(N_CASES - 1, -1, -1)][:limit]
    assert data.describe()["loaded"] == {
        "sessions": min(limit, N_SESSIONS), "bundle_ids": min(limit, 20),
        "combo_ids": min(limit, N_COMBOS), "sfdc_cases": min(limit, N_CASES),
        "bundle_paths": min(limit, 20),
    }  # fmt: skip


def test_pools_follow_the_windowing_rule_over_loaded_ids(seeded: ClickHouseInfo) -> None:
    settings = settings_for(seeded, BUNDLE_ID_RANGE_PER_USER=4, COMBO_ID_RANGE_PER_USER=3,
                            SFDC_CASES_PER_USER=2, BUNDLE_ID_OVERLAP_PERCENTAGE=0.5)  # fmt: skip
    data = load_pool_data(settings)
    ids = data.bundle_ids  # 20 completed ids, ascending
    for g in range(12):
        pool = UserPool.build(g, settings, data)
        start = (g * 2) % (len(ids) - 4 + 1)  # s = round(4 * 0.5) = 2
        assert pool.bundle_ids == ids[start : start + 4]
        assert set(pool.combo_ids) <= set(data.combo_ids)
        assert set(pool.sfdc_cases) <= set(data.sfdc_cases)
        assert set(pool.bundle_paths) <= set(data.bundle_paths)
        assert (pool.user_id, pool.session_id) == data.sessions[g]
        assert pool.session_from_database
    beyond = UserPool.build(N_SESSIONS, settings, data)  # sessions ran out: generated
    assert not beyond.session_from_database
    assert beyond.session_id not in {s for _, s in data.sessions}


def test_values_with_quotes_are_parameters_not_sql(seeded: ClickHouseInfo) -> None:
    settings = settings_for(seeded)
    with ClickHouseDAO(settings) as dao:
        assert (QUOTED_USER, f"{0:032x}") in dao.get_users_and_sessions(1000)
        assert dao.get_bundle_paths_by_sfdc_case("x' OR 1=1 --") == []
        assert dao.get_bundle_paths_by_sfdc_case("x' OR '1'='1") == []
        assert len(dao.get_bundle_paths_by_sfdc_case(f"{10_000_000 + 102:09d}")) == 1
        rows = dao.execute(
            f"SELECT count() FROM {dao.names.table('user_sessions')} "
            f"WHERE {dao.names.q('user_id')} = %(u)s",
            {"u": QUOTED_USER},
        )
        assert rows == [(1,)]
    # an injection attempt in a setting that becomes a value matches nothing, harms nothing
    hostile = settings_for(seeded, CLICKHOUSE_ACTIVE_STATUS="completed' OR '1'='1")
    data = load_pool_data(hostile)
    assert data.bundle_ids == [] and data.bundle_paths == []
    assert "no rows with status = \"completed' OR '1'='1\"" in data.fallbacks["bundle_ids"]
    assert data.sessions  # the other kinds are unaffected
    with ClickHouseDAO(settings) as dao:
        assert dao.count_rows("log_bundles") == N_BUNDLES


def test_names_are_checked_and_backquoted() -> None:
    assert quote_identifier("log_bundles") == "`log_bundles`"
    for bad in ("a`b", "x; DROP TABLE t", "", "1abc", "a.b", "a b", "t'"):
        with pytest.raises(ValueError):
            quote_identifier(bad)
        with pytest.raises(ValueError):
            SchemaNames(log_bundles=bad)
    with pytest.raises(ConfigError, match="CLICKHOUSE_LOG_BUNDLES_TABLE"):
        load_settings({"CLICKHOUSE_LOG_BUNDLES_TABLE": "x`; DROP DATABASE panacea; --"})
    with pytest.raises(ConfigError, match="CLICKHOUSE_DATABASE"):
        load_settings({"CLICKHOUSE_DATABASE": "panacea.prod"})


def test_table_and_column_names_are_configurable(clickhouse_db: ClickHouseInfo) -> None:
    custom = {
        "CLICKHOUSE_USER_SESSIONS_TABLE": "sessions_v2", "CLICKHOUSE_LOG_BUNDLES_TABLE": "bundles",
        "CLICKHOUSE_COMBO_BUNDLES_TABLE": "combos", "CLICKHOUSE_SFDC_CASES_TABLE": "cases",
        "CLICKHOUSE_USER_ID_COLUMN": "uid", "CLICKHOUSE_SESSION_ID_COLUMN": "sid",
        "CLICKHOUSE_CREATED_AT_COLUMN": "ts", "CLICKHOUSE_BUNDLE_ID_COLUMN": "id",
        "CLICKHOUSE_SFDC_CASE_COLUMN": "case_number", "CLICKHOUSE_BUNDLE_PATH_COLUMN": "path",
        "CLICKHOUSE_STATUS_COLUMN": "state", "CLICKHOUSE_COMBO_ID_COLUMN": "cid",
        "CLICKHOUSE_COMBO_BUNDLE_IDS_COLUMN": "members", "CLICKHOUSE_ACTIVE_STATUS": "done",
    }  # fmt: skip
    settings = settings_for(clickhouse_db, **custom)
    with ClickHouseDAO(settings, database="") as dao:
        dao.create_schema()
        assert set(dao.existing_tables()) == {"sessions_v2", "bundles", "combos", "cases"}
        dao.insert("user_sessions", [("u1", "a" * 32, BASE_TS)])
        dao.insert(
            "log_bundles",
            [
                (7, "000000007", "/p/7.zip", "done", BASE_TS),
                (8, "000000008", "/p/8.zip", "completed", BASE_TS),
            ],
        )
        dao.insert("combo_bundles", [(3, [7], BASE_TS)])
        dao.insert("sfdc_cases", [("000000007", BASE_TS)])
    data = load_pool_data(settings)
    assert data.fallbacks == {}
    assert (data.sessions, data.bundle_ids, data.combo_ids, data.sfdc_cases, data.bundle_paths) \
        == ([("u1", "a" * 32)], [7], [3], ["000000007"], ["/p/7.zip"])  # fmt: skip


def test_malformed_ids_are_dropped_or_fall_back(clickhouse_db: ClickHouseInfo) -> None:
    settings = settings_for(clickhouse_db)
    with ClickHouseDAO(settings, database="") as dao:
        dao.create_schema()
        dao.insert(
            "user_sessions",
            [("u1", "not-a-hex-session", BASE_TS), ("u2", "ABCDEF" + "0" * 26, BASE_TS + 1)],
        )
        dao.insert("log_bundles", [(5, "000000005", "/p.zip", "completed", BASE_TS)])
        dao.insert("combo_bundles", [(1, [5], BASE_TS)])
        dao.insert("sfdc_cases", [("12345", BASE_TS), ("000000005", BASE_TS + 1)])
    data = load_pool_data(settings)
    assert data.sessions == []
    assert "32-lowercase-hex" in data.fallbacks["sessions"]
    assert data.sfdc_cases == ["000000005"]  # the short one dropped, the valid one kept
    assert "sfdc_cases" not in data.fallbacks


def test_database_mode_off_loads_nothing(seeded: ClickHouseInfo) -> None:
    data = load_pool_data(settings_for(seeded, USE_DATABASE_DATA=False))
    assert (data.source, data.fallbacks, data.sessions, data.bundle_ids) == (
        "generated",
        {},
        [],
        [],
    )


def test_original_module_functions(seeded: ClickHouseInfo, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in seeded.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("DB_BUNDLE_IDS_LIMIT", "3")
    get_settings.cache_clear()
    try:
        assert clickhouse_dao.test_connection() is True
        assert len(clickhouse_dao.get_users_and_sessions()) == N_SESSIONS
        assert clickhouse_dao.get_users_and_sessions(limit=2)[0] == ("user_29", f"{29:032x}")
        assert clickhouse_dao.get_active_bundle_ids() == [140, 138, 136]
        assert clickhouse_dao.get_active_combo_ids(2) == [12, 11]
        assert clickhouse_dao.get_recent_sfdc_cases(1) == [f"{20_000_000 + 24:09d}"]
        assert len(clickhouse_dao.get_bundle_paths()) == 3
        monkeypatch.setenv("CLICKHOUSE_PASSWORD", "wrong")
        get_settings.cache_clear()
        assert clickhouse_dao.test_connection() is False
    finally:
        get_settings.cache_clear()
