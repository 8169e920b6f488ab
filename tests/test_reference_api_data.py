"""The data set, and that the server's answers are computed from it: random queries over HTTP
checked against a naive line-by-line evaluation of the same synthetic lines."""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest

from panacea_locust.contract import COMPONENTS, LOG_LEVELS, resolve_endpoint
from panacea_locust.reference_api.behaviour import Behaviour
from panacea_locust.reference_api.dataset import (
    BundleRecord,
    ComboRecord,
    Dataset,
    SfdcCaseRecord,
    build_dataset,
)
from panacea_locust.reference_api.engine import Engine
from panacea_locust.reference_api.launcher import ReferenceAPIProcess, contract_headers
from panacea_locust.reference_api.models import bundle_path_problem, parse_utc
from panacea_locust.reference_api.synth import _TEMPLATES, BundleLogs

DS = build_dataset(seed=42)
H = contract_headers("checker")
INTERVALS = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600}


# --- the data set ---------------------------------------------------------------------------


def test_build_is_deterministic_and_has_the_documented_shape() -> None:
    again = build_dataset(seed=42)
    assert DS.bundles == again.bundles and DS.combos == again.combos
    assert DS.sfdc_cases == again.sfdc_cases
    assert build_dataset(seed=43).bundles != DS.bundles

    ids = {b.bundle_id for b in DS.bundles}
    assert ids <= set(range(800, 1001)) and 3 <= 201 - len(ids) <= 20  # about 5% unknown
    combo_ids = {c.combo_id for c in DS.combos}
    assert combo_ids <= set(range(1, 201)) and 3 <= 200 - len(combo_ids) <= 20
    for b in DS.bundles:
        assert re.fullmatch(r"[0-9]{9}", b.sfdc_case_no)
        assert b.sfdc_case_no == f"{12_340_000 + b.bundle_id:09d}"
        assert bundle_path_problem(b.remote_log_bundle_path) is None
        assert b.created_at.tzinfo is not None and b.created_at.utcoffset().total_seconds() == 0
        assert datetime(2024, 1, 1, tzinfo=timezone.utc) <= b.created_at
    statuses = Counter(b.status for b in DS.bundles)
    assert set(statuses) <= {"queued", "processing", "completed"}
    assert statuses["completed"] > 0.8 * len(DS.bundles)
    for c in DS.combos:
        assert 2 <= len(c.bundle_ids) <= 6 and set(c.bundle_ids) <= ids
        assert c.bundle_ids == sorted(set(c.bundle_ids))
    assert {c.sfdc_case_no for c in DS.sfdc_cases} == {b.sfdc_case_no for b in DS.bundles}


def test_unknown_ratio_and_ranges_are_configurable() -> None:
    ds = build_dataset(
        seed=1, bundle_min=10, bundle_max=1009, unknown_ratio=0.2, combo_min=5, combo_max=14
    )
    assert 700 <= len(ds.bundles) <= 900  # binomial(1000, 0.8): mean 800, sd 13
    assert min(ds.bundle_by_id) >= 10 and max(ds.bundle_by_id) <= 1009
    assert {c.combo_id for c in ds.combos} <= set(range(5, 15))
    assert len(build_dataset(unknown_ratio=0).bundles) == 201
    with pytest.raises(ValueError):
        build_dataset(bundle_min=5, bundle_max=4)


def test_log_lines_derive_from_seed_and_bundle_only() -> None:
    a, b = build_dataset(seed=42), build_dataset(seed=42, bundle_min=900, bundle_max=5000)
    bid = max(a.bundle_by_id)
    assert a.bundle_by_id[bid] == b.bundle_by_id[bid]  # a bundle does not depend on the range
    la, lb = a.logs(bid), b.logs(bid)
    assert (la.ts, la.msg, la.cvm_ips, la.events) == (lb.ts, lb.msg, lb.cvm_ips, lb.events)
    assert la is a.logs(bid)  # cached
    assert (
        build_dataset(seed=41).logs(DS.bundles[0].bundle_id).msg
        != DS.logs(DS.bundles[0].bundle_id).msg
    )
    for rec in DS.bundles[:20]:
        logs = DS.logs(rec.bundle_id)
        assert logs.ts == sorted(logs.ts) and 300 <= logs.n <= 1200
        assert rec.remote_log_bundle_path.rsplit("-PE-", 1)[1][:-4] == logs.cvm_ips[0]
        assert logs.ts[-1] < logs.created_ts
        assert {COMPONENTS[c] for c in logs.comp} == set(logs.components)


def test_from_records_is_the_seam_for_other_sources() -> None:
    at = datetime(2024, 5, 1, tzinfo=timezone.utc)
    path = "/users/ann.lee/NTNX-Log-2024-05-01-11111-1714521600-PE-192.168.7.20.zip"
    ds = Dataset.from_records(
        5,
        [BundleRecord(123456, "000000001", path, "completed", at)],
        [ComboRecord(77, [123456], at)],
        [SfdcCaseRecord("000000001", at), SfdcCaseRecord("000000002", at)],
    )
    engine = Engine(ds, Behaviour(latency_on=False))
    hdrs = [(k.lower().encode(), v.encode()) for k, v in H.items()]
    status, body, _ = engine.handle(resolve_endpoint("info"), hdrs, b"bundle_id=123456", None, b"")
    assert status == 200 and b"192.168.7.20" in body
    assert engine.handle(resolve_endpoint("info"), hdrs, b"bundle_id=800", None, b"")[0] == 404
    assert engine.handle(resolve_endpoint("events"), hdrs, b"combo_id=77", None, b"")[0] == 200
    paths = resolve_endpoint("by-sfdc-case")
    assert engine.handle(paths, hdrs, b"", "000000002", b"")[:2] == (
        200,
        b'{"sfdc_case_no":"000000002","paths":[]}',
    )


# --- answers over HTTP against a naive evaluation ---------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[ReferenceAPIProcess]:
    with ReferenceAPIProcess(["--latency", "off"]) as api:
        yield api


def _matches(b: BundleLogs, i: int, f: dict[str, Any]) -> bool:
    if f.get("components") and COMPONENTS[b.comp[i]] not in f["components"]:
        return False
    if f.get("log_levels") and LOG_LEVELS[b.lvl[i]] not in f["log_levels"]:
        return False
    if f.get("cvm_ips") and b.cvm_ips[b.ip[i]] not in f["cvm_ips"]:
        return False
    if f.get("start_time") and b.ts[i] < (parse_utc(f["start_time"]) or 0):
        return False
    if f.get("end_time") and b.ts[i] > (parse_utc(f["end_time"]) or 0):
        return False
    if f.get("search_log_string") and f["search_log_string"].lower() not in b.msg[i].lower():
        return False
    curated = _TEMPLATES[b.tmpl[i]][3] or b.lvl[i] == 0
    return not (f.get("is_curated") and not curated)


def _random_filters(rng: random.Random, ids: list[int]) -> dict[str, Any]:
    f: dict[str, Any] = {}
    if rng.random() < 0.5:
        f["components"] = rng.sample(COMPONENTS, rng.randint(1, 4))
    if rng.random() < 0.5:
        f["log_levels"] = rng.sample(LOG_LEVELS, rng.randint(1, 3))
    if rng.random() < 0.3:
        f["cvm_ips"] = rng.sample(DS.logs(ids[0]).cvm_ips, 2)
    if rng.random() < 0.4:
        ts = DS.logs(rng.choice(ids)).ts
        start = rng.randint(ts[0] - 600, ts[-1])
        f["start_time"] = time_iso(start)
        if rng.random() < 0.7:
            f["end_time"] = time_iso(start + rng.choice((60, 1800, 7200, 86400)))
    if rng.random() < 0.3:
        f["search_log_string"] = rng.choice(("cassandra", "Stargate", "failed", "vdisk", "e"))
    if rng.random() < 0.2:
        f["is_curated"] = rng.random() < 0.7
    return f


def time_iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cases(n: int, seed: int) -> Iterator[tuple[list[int], dict[str, Any]]]:
    rng = random.Random(seed)
    known = [b.bundle_id for b in DS.bundles]
    for k in range(n):
        if k % 3 == 0:  # bundles of one cluster: their time windows may overlap
            start = rng.randrange(len(known) - 4)
            ids = known[start : start + rng.randint(2, 4)]
        else:
            ids = rng.sample(known, rng.randint(1, 6))
        yield ids, (_random_filters(rng, ids) if k % 4 else {})


def _selected(ids: list[int], f: dict[str, Any]) -> list[tuple[BundleLogs, int]]:
    return [(DS.logs(b), i) for b in ids for i in range(DS.logs(b).n) if _matches(DS.logs(b), i, f)]


def test_severity_count_counts_matching_lines(server: ReferenceAPIProcess) -> None:
    for ids, f in _cases(40, 1):
        body: dict[str, Any] = {"bundle_ids": ids, **({"filters": f} if f else {})}
        status, doc = server.request("POST", "/api/v1/logs/severity-count", body, H)
        expected = Counter(LOG_LEVELS[b.lvl[i]] for b, i in _selected(ids, f))
        assert status == 200 and doc["counts"] == {lvl: expected[lvl] for lvl in LOG_LEVELS}


def test_search_filters_and_pages_for_real(server: ReferenceAPIProcess) -> None:
    rng = random.Random(2)
    for ids, f in _cases(40, 2):
        size, page = rng.choice((1, 5, 20, 100)), rng.choice((1, 1, 2, 3, 7))
        body: dict[str, Any] = {"bundle_ids": ids, "page_size": size, "page_no": page}
        if f:
            body["filters"] = f
        status, doc = server.request("POST", "/api/v1/logs/search", body, H)
        sel = _selected(ids, f)
        sel.sort(key=lambda bi: (bi[0].ts[bi[1]], bi[0].ts[0], bi[0].bundle_id, bi[1]))
        want = [
            {
                "bundle_id": b.bundle_id,
                "timestamp": time_iso(b.ts[i]),
                "component": COMPONENTS[b.comp[i]],
                "log_level": LOG_LEVELS[b.lvl[i]],
                "cvm_ip": b.cvm_ips[b.ip[i]],
                "message": b.msg[i],
            }
            for b, i in sel[(page - 1) * size : page * size]
        ]
        assert status == 200 and doc["total"] == len(sel)
        assert doc["results"] == want, (ids, f, size, page)


def test_histogram_buckets_by_the_interval(server: ReferenceAPIProcess) -> None:
    rng = random.Random(3)
    for ids, f in _cases(40, 3):
        interval = rng.choice(list(INTERVALS))
        body: dict[str, Any] = {"bundle_ids": ids, "interval": interval}
        if f:
            body["filters"] = f
        status, doc = server.request("POST", "/api/v1/logs/histogram", body, H)
        step = INTERVALS[interval]
        expected = Counter(b.ts[i] - b.ts[i] % step for b, i in _selected(ids, f))
        want = [{"time": time_iso(t), "count": expected[t]} for t in sorted(expected)]
        assert status == 200 and doc == {"interval": interval, "buckets": want}, (ids, f)


def test_heatmap_groups(server: ReferenceAPIProcess) -> None:
    rng = random.Random(4)
    for ids, f in _cases(40, 4):
        group_by = rng.choice(("component", "cvm_ip", "log_level"))
        body: dict[str, Any] = {"bundle_ids": ids, "group_by": group_by}
        if f:
            body["filters"] = f
        status, doc = server.request("POST", "/api/v1/logs/heatmap", body, H)
        sel = _selected(ids, f)
        comp = [COMPONENTS[b.comp[i]] for b, i in sel]
        lvl = [LOG_LEVELS[b.lvl[i]] for b, i in sel]
        if group_by == "log_level":
            rows = [x for x in LOG_LEVELS if x in lvl]
            cols = sorted(set(comp))
            cells = Counter(zip(lvl, comp, strict=True))
        else:
            keys = comp if group_by == "component" else [b.cvm_ips[b.ip[i]] for b, i in sel]
            rows = sorted(
                set(keys),
                key=(lambda ip: tuple(map(int, ip.split(".")))) if group_by == "cvm_ip" else None,
            )
            cols = list(LOG_LEVELS)
            cells = Counter(zip(keys, lvl, strict=True))
        want = {
            "rows": rows,
            "columns": cols,
            "values": [[cells[(r, c)] for c in cols] for r in rows],
        }
        assert status == 200 and doc == want, (ids, f, group_by)


def test_filter_options_list_what_the_bundles_hold(server: ReferenceAPIProcess) -> None:
    rng = random.Random(5)
    known = [b.bundle_id for b in DS.bundles]
    for _ in range(20):
        ids = rng.sample(known, rng.randint(1, 10))
        query = "&".join(f"bundle_ids={i}" for i in ids)
        status, doc = server.request("GET", f"/api/v1/logs/filter-options?{query}", None, H)
        logs = [DS.logs(i) for i in ids]
        assert status == 200
        assert doc["components"] == sorted({COMPONENTS[c] for b in logs for c in b.comp})
        assert doc["log_levels"] == [
            x for x in LOG_LEVELS if any(LOG_LEVELS[v] == x for b in logs for v in b.lvl)
        ]
        assert set(doc["cvm_ips"]) == {ip for b in logs for ip in b.cvm_ips}


def test_reports_filter_sort_and_page(server: ReferenceAPIProcess) -> None:
    rng = random.Random(6)
    for _ in range(40):
        body: dict[str, Any] = {"page_no": rng.randint(1, 3), "page_size": rng.choice((5, 20))}
        f: dict[str, Any] = {}
        if rng.random() < 0.3:
            f["status"] = rng.sample(["queued", "processing", "completed"], rng.randint(1, 2))
        if rng.random() < 0.3:
            f["bundle_ids"] = rng.sample(range(800, 1001), rng.randint(1, 10))
        if rng.random() < 0.2:
            f["sfdc_case_no"] = rng.choice(DS.bundles).sfdc_case_no
        if rng.random() < 0.4:
            day = 1704067200 + rng.randrange(150) * 86400
            f["start_time"], f["end_time"] = time_iso(day), time_iso(day + 30 * 86400)
        if f:
            body["filters"] = f
        if rng.random() < 0.6:
            body["sort_by"] = rng.choice(("created_at", "bundle_id"))
        if rng.random() < 0.6:
            body["sort_order"] = rng.choice(("asc", "desc"))
        status, doc = server.request("POST", "/api/v1/reports", body, H)
        rows = [
            b
            for b in DS.bundles
            if ("status" not in f or b.status in f["status"])
            and ("bundle_ids" not in f or b.bundle_id in f["bundle_ids"])
            and ("sfdc_case_no" not in f or b.sfdc_case_no == f["sfdc_case_no"])
            and (
                "start_time" not in f or time_iso(int(b.created_at.timestamp())) >= f["start_time"]
            )
            and ("end_time" not in f or time_iso(int(b.created_at.timestamp())) <= f["end_time"])
        ]
        if body.get("sort_by") == "bundle_id":
            rows.sort(key=lambda b: b.bundle_id)
        else:
            rows.sort(key=lambda b: (b.created_at, b.bundle_id))
        if body.get("sort_order", "desc") == "desc":
            rows.reverse()
        start = (body["page_no"] - 1) * body["page_size"]
        page = rows[start : start + body["page_size"]]
        assert status == 200 and doc["total"] == len(rows), body
        assert [r["bundle_id"] for r in doc["reports"]] == [b.bundle_id for b in page], body
        for r, b in zip(doc["reports"], page, strict=True):
            assert r == {
                "bundle_id": b.bundle_id,
                "sfdc_case_no": b.sfdc_case_no,
                "remote_log_bundle_path": b.remote_log_bundle_path,
                "status": b.status,
                "created_at": time_iso(int(b.created_at.timestamp())),
            }
