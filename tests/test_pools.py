"""The data-distribution rules (docs/configuration.md), checked on the pools directly."""

from __future__ import annotations

import re

import pytest

from panacea_locust.config import load_settings
from panacea_locust.payload_generator import (
    PayloadGenerator,
    PoolData,
    UserPool,
    window,
    window_start,
    window_step,
)

PATH_RE = re.compile(
    r"^/users/[a-z]+\.[a-z]+/NTNX-Log-\d{4}-\d{2}-\d{2}-\d{5}-\d{10}-PE-"
    r"(10\.\d+\.\d+\.\d+|172\.(1[6-9]|2\d|3[01])\.\d+\.\d+|192\.168\.\d+\.\d+)\.zip$"
)


def test_step_is_rounded_range_times_one_minus_overlap() -> None:
    assert window_step(50, 0.3) == 35
    assert window_step(20, 0.3) == 14
    assert window_step(10, 0.95) == 1  # never 0
    assert window_step(5, 0.5) == 3  # half rounds up


def test_consecutive_users_share_exactly_r_minus_s_ids() -> None:
    s = load_settings()
    pools = [UserPool.build(g, s) for g in range(4)]
    for a, b in zip(pools, pools[1:], strict=False):
        shared = set(a.bundle_ids) & set(b.bundle_ids)
        if b.bundle_ids[0] > a.bundle_ids[0]:  # not wrapped
            assert len(shared) == 50 - 35 == 15


@pytest.mark.parametrize(
    ("n", "r", "o"), [(201, 50, 0.3), (100, 10, 0.0), (37, 37, 0.5), (1000, 7, 0.9), (5, 1, 0.0)]
)
def test_windows_stay_inside_the_space_and_cover_it(n: int, r: int, o: float) -> None:
    candidates = list(range(n))
    seen: set[int] = set()
    for g in range(5 * n):
        w = window(g, candidates, r, o)
        assert len(w) == r and w == list(range(w[0], w[0] + r))
        assert w[0] >= 0 and w[-1] < n
        seen.update(w)
    assert seen == set(candidates)


def test_window_start_formula() -> None:
    # (g * s) mod (N - R + 1) with N = 201, R = 50, s = 35
    assert [window_start(g, 201, 50, 0.3) for g in range(6)] == [0, 35, 70, 105, 140, 23]
    with pytest.raises(ValueError):
        window_start(0, 10, 11, 0.3)


def test_pools_are_deterministic_with_a_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOADTEST_SEED", "7")
    s = load_settings()
    a, b = UserPool.build(3, s), UserPool.build(3, s)
    assert (a.session_id, a.bundle_paths, a.sfdc_cases) == (
        b.session_id,
        b.bundle_paths,
        b.sfdc_cases,
    )
    gen = PayloadGenerator(s)
    seq_a = [gen.build("LOGS_SEARCH", a) for _ in range(20)]
    seq_b = [gen.build("LOGS_SEARCH", b) for _ in range(20)]
    assert seq_a == seq_b
    monkeypatch.setenv("LOADTEST_SEED", "8")
    c = UserPool.build(3, load_settings())
    assert c.session_id != a.session_id


def test_identities_are_unique_and_well_formed() -> None:
    s = load_settings()
    pools = [UserPool.build(g, s) for g in range(500)]
    assert len({p.session_id for p in pools}) == 500
    assert len({p.user_id for p in pools}) == 500
    for p in pools[:20]:
        assert re.fullmatch(r"[0-9a-f]{32}", p.session_id)
        assert p.user_id.startswith("loadtest_user_")
        assert len(p.sfdc_cases) == 10 and all(re.fullmatch(r"\d{9}", c) for c in p.sfdc_cases)
        assert len(p.bundle_paths) == 15 and all(PATH_RE.match(x) for x in p.bundle_paths)
        assert len(p.combo_ids) == 20
        # generated cases belong to the user's own bundles
        assert {int(c) - s.sfdc_case_base for c in p.sfdc_cases} <= set(p.bundle_ids)


def test_database_data_is_windowed_the_same_way() -> None:
    s = load_settings()
    data = PoolData(
        sessions=[(f"user{i}", f"{i:032x}") for i in range(3)],
        bundle_ids=list(range(5000, 5100)),
        combo_ids=list(range(1, 11)),  # fewer than COMBO_ID_RANGE_PER_USER: clamped
        sfdc_cases=[f"{i:09d}" for i in range(30)],
        bundle_paths=[
            f"/users/a.b/NTNX-Log-2024-01-01-12345-{i:010d}-PE-10.0.0.1.zip" for i in range(40)
        ],
    )
    pools = [UserPool.build(g, s, data) for g in range(5)]
    assert pools[1].bundle_ids == list(range(5035, 5085))
    assert pools[0].combo_ids == list(range(1, 11))
    assert pools[1].sfdc_cases == data.sfdc_cases[7:17]  # s = round(10 * 0.7) = 7
    assert pools[2].user_id == "user2" and pools[2].session_from_database
    assert not pools[3].session_from_database and pools[3].session_id != pools[2].session_id
    assert pools[0].cvm_ips == ["10.0.0.1"]
    assert data.describe()["mode"] == "database"


def test_payloads_only_name_the_users_own_ids() -> None:
    s = load_settings()
    gen = PayloadGenerator(s)
    pool = UserPool.build(11, s)
    for _ in range(300):
        for key in ("LOGS_SEVERITY_COUNT", "LOGS_HISTOGRAM", "LOGS_HEATMAP", "LOGS_SEARCH"):
            body = gen.build(key, pool).json
            assert body is not None
            assert set(body["bundle_ids"]) <= set(pool.bundle_ids)
            assert 1 <= len(body["bundle_ids"]) <= 10
            assert len(set(body["bundle_ids"])) == len(body["bundle_ids"])
        spec = gen.build("EVENTS", pool)
        kind, value = spec.url.split("?")[1].split("=")
        assert int(value) in (pool.bundle_ids if kind == "bundle_id" else pool.combo_ids)
        spec = gen.build("BUNDLE_PATHS_BY_CASE", pool)
        assert spec.url.rsplit("/", 1)[1] in pool.sfdc_cases
        assert spec.name == "/api/v1/log-bundle-paths/by-sfdc-case/{sfdc_case_no}"
        analyze = gen.build("LOGS_ANALYZE", pool).json
        assert analyze is not None and analyze["remote_log_bundle_path"] in pool.bundle_paths
