"""A small hand-made data set for the ClickHouse tests, whose expected loads are easy to state."""

from __future__ import annotations

from typing import Any

from clickhouse_fixture import ClickHouseInfo

from panacea_locust.clickhouse_dao import ClickHouseDAO
from panacea_locust.config import Settings, load_settings

BASE_TS = 1_704_067_200  # 2024-01-01T00:00:00Z
N_SESSIONS, N_BUNDLES, N_COMBOS, N_CASES = 30, 40, 12, 25
QUOTED_USER = 'o\'brien\\ "x"'


def settings_for(info: ClickHouseInfo, **extra: Any) -> Settings:
    return load_settings(info.overrides(**extra))


def seed_small(info: ClickHouseInfo, **extra: Any) -> dict[str, list[Any]]:
    """A hand-made data set whose expected loads are easy to state; returns what was written.

    Sessions: user i has session f"{i:032x}", newer for larger i, plus an older duplicate row
    of the newest session under another user. Bundles: ids 101..140, newer for larger ids,
    even ids 'completed', odd 'failed'. Combos 1..12 and cases, newer for larger numbers.
    """
    with ClickHouseDAO(settings_for(info, **extra), database="") as dao:
        dao.create_schema()
        sessions = [(f"user_{i}", f"{i:032x}", BASE_TS + 60 * i) for i in range(N_SESSIONS)]
        sessions[0] = (QUOTED_USER, sessions[0][1], sessions[0][2])
        dupe = ("someone_else", f"{N_SESSIONS - 1:032x}", BASE_TS - 3600)
        dao.insert("user_sessions", [*sessions, dupe])
        bundles = [
            (b, f"{10_000_000 + b:09d}", f"/users/jane.doe/NTNX-Log-2024-01-01-{b:05d}-"
             f"{BASE_TS + b}-PE-10.0.0.{b % 250 + 1}.zip", "completed" if b % 2 == 0 else "failed",
             BASE_TS + 10 * b)
            for b in range(101, 101 + N_BUNDLES)
        ]  # fmt: skip
        dao.insert("log_bundles", bundles)
        combos = [(c, [100 + c, 101 + c], BASE_TS + c) for c in range(1, N_COMBOS + 1)]
        dao.insert("combo_bundles", combos)
        cases = [(f"{20_000_000 + c:09d}", BASE_TS + c) for c in range(N_CASES)]
        dao.insert("sfdc_cases", cases)
    return {"sessions": sessions, "bundles": bundles, "combos": combos, "cases": cases}
