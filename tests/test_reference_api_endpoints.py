"""Every contract endpoint of the real reference server, over HTTP: success and its exact shape,
contract violations (400 naming the field), 401, 404 for unknown ids, header rules."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from panacea_locust.contract import PATH_PARAM_PREFIX, resolve_endpoint
from panacea_locust.reference_api.behaviour import Behaviour
from panacea_locust.reference_api.dataset import build_dataset
from panacea_locust.reference_api.engine import Engine
from panacea_locust.reference_api.launcher import ReferenceAPIProcess, contract_headers

DS = build_dataset(seed=42)
KNOWN = [b.bundle_id for b in DS.bundles]
B1, B2, B3 = KNOWN[0], KNOWN[1], KNOWN[2]
UNKNOWN = min(set(range(800, 1001)) - set(DS.bundle_by_id))
COMBO = DS.combos[0].combo_id
UNKNOWN_COMBO = min(set(range(1, 201)) - set(DS.combo_by_id))
CASE = DS.bundle_by_id[B1].sfdc_case_no
UNKNOWN_CASE = "999999999"
PATH = DS.bundle_by_id[B1].remote_log_bundle_path
NEW_PATH = "/users/john.doe/NTNX-Log-2024-01-15-12345-1705123456-PE-10.1.1.100.zip"
H = contract_headers("tester")

E = {
    "analyze": "/api/v1/logs/analyze",
    "info": "/api/v1/logs/info",
    "severity-count": "/api/v1/logs/severity-count",
    "histogram": "/api/v1/logs/histogram",
    "heatmap": "/api/v1/logs/heatmap",
    "search": "/api/v1/logs/search",
    "filter-options": "/api/v1/logs/filter-options",
    "events": "/api/v1/events",
    "report_summary": "/api/v1/ai/report_summary",
    "ask-ai": "/api/v1/ai/ask-ai",
    "reports": "/api/v1/reports",
    "by-sfdc-case": "/api/v1/log-bundle-paths/by-sfdc-case/",
}
FILTERS = {
    "components": ["stargate", "cassandra"],
    "log_levels": ["error", "warn"],
    "start_time": "2024-01-01T00:00:00Z",
    "end_time": "2024-12-31T00:00:00Z",
    "search_log_string": "a",
    "is_curated": False,
}

#: name -> (method, path, body) of a valid request
OK: dict[str, tuple[str, str, Any]] = {
    "analyze": (
        "POST",
        E["analyze"],
        {"remote_log_bundle_path": PATH, "sfdc_case_no": CASE, "is_retry": False},
    ),
    "info": ("GET", f"{E['info']}?bundle_id={B1}", None),
    "severity-count": ("POST", E["severity-count"], {"bundle_ids": [B1, B2], "filters": FILTERS}),
    "histogram": ("POST", E["histogram"], {"bundle_ids": [B1, B2], "interval": "15m"}),
    "heatmap": ("POST", E["heatmap"], {"bundle_ids": [B1, B2], "group_by": "component"}),
    "search": (
        "POST",
        E["search"],
        {
            "bundle_ids": [B1, B2],
            "page_size": 20,
            "page_no": 1,
            "filters": {"log_levels": ["info"]},
        },
    ),
    "filter-options": ("GET", f"{E['filter-options']}?bundle_ids={B1}&bundle_ids={B2}", None),
    "events": ("GET", f"{E['events']}?bundle_id={B1}", None),
    "report_summary": ("GET", f"{E['report_summary']}?bundle_id={B1}", None),
    "ask-ai": ("POST", E["ask-ai"], {"bundle_id": B1, "question": "Why is stargate failing?"}),
    "reports": (
        "POST",
        E["reports"],
        {
            "page_no": 1,
            "page_size": 5,
            "filters": {"status": ["completed"]},
            "sort_by": "bundle_id",
            "sort_order": "asc",
        },
    ),
    "by-sfdc-case": ("GET", E["by-sfdc-case"] + CASE, None),
}

#: name -> [(path, body, field the 400 must name)], at least two per endpoint
BAD: dict[str, list[tuple[str, Any, str]]] = {
    "analyze": [
        (E["analyze"], {"remote_log_bundle_path": PATH, "is_retry": False}, "body.sfdc_case_no"),
        (
            E["analyze"],
            {"remote_log_bundle_path": "/tmp/x.zip", "sfdc_case_no": CASE, "is_retry": False},
            "body.remote_log_bundle_path",
        ),
        (
            E["analyze"],
            {"remote_log_bundle_path": PATH, "sfdc_case_no": "12345", "is_retry": False},
            "body.sfdc_case_no",
        ),
        (
            E["analyze"],
            {"remote_log_bundle_path": PATH, "sfdc_case_no": CASE, "is_retry": "no"},
            "body.is_retry",
        ),
        (
            E["analyze"],
            {
                "remote_log_bundle_path": PATH,
                "sfdc_case_no": CASE,
                "is_retry": False,
                "priority": 1,
            },
            "body.priority",
        ),
    ],
    "info": [
        (E["info"], None, "query.bundle_id"),
        (f"{E['info']}?bundle_id=abc", None, "query.bundle_id"),
        (f"{E['info']}?bundle_id=0", None, "query.bundle_id"),
        (f"{E['info']}?bundle_id={B1}&verbose=1", None, "query.verbose"),
    ],
    "severity-count": [
        (E["severity-count"], {"bundle_ids": []}, "body.bundle_ids"),
        (E["severity-count"], {"bundle_ids": list(range(800, 811))}, "body.bundle_ids"),
        (E["severity-count"], {"bundle_ids": [B1, B1]}, "body.bundle_ids"),
        (
            E["severity-count"],
            {"bundle_ids": [B1], "filters": {"log_levels": ["verbose"]}},
            "body.filters.log_levels",
        ),
        (
            E["severity-count"],
            {"bundle_ids": [B1], "filters": {"cvm_ips": ["8.8.8.8"]}},
            "body.filters.cvm_ips",
        ),
    ],
    "histogram": [
        (E["histogram"], {"bundle_ids": [B1], "interval": "2m"}, "body.interval"),
        (
            E["histogram"],
            {
                "bundle_ids": [B1],
                "interval": "1h",
                "filters": {
                    "start_time": "2024-01-15T10:00:00Z",
                    "end_time": "2024-01-15T09:00:00Z",
                },
            },
            "body.filters.end_time",
        ),
        (E["histogram"], {"bundle_ids": [-3], "interval": "1h"}, "body.bundle_ids"),
    ],
    "heatmap": [
        (E["heatmap"], {"bundle_ids": [B1], "group_by": "host"}, "body.group_by"),
        (E["heatmap"], {"group_by": "component"}, "body.bundle_ids"),
        (
            E["heatmap"],
            {"bundle_ids": [B1], "group_by": "cvm_ip", "filters": {"components": ["nginx"]}},
            "body.filters.components",
        ),
    ],
    "search": [
        (E["search"], {"bundle_ids": [B1], "page_size": 101, "page_no": 1}, "body.page_size"),
        (E["search"], {"bundle_ids": [B1], "page_size": 10, "page_no": 0}, "body.page_no"),
        (
            E["search"],
            {
                "bundle_ids": [B1],
                "page_size": 10,
                "page_no": 1,
                "filters": {"start_time": "2024-01-15T10:00:00+01:00"},
            },
            "body.filters.start_time",
        ),
        (E["search"], {"bundle_ids": [B1], "page_size": "10", "page_no": 1}, "body.page_size"),
        (
            E["search"],
            {"bundle_ids": [B1], "page_size": 10, "page_no": 1, "filters": {"is_curated": "yes"}},
            "body.filters.is_curated",
        ),
        (
            E["search"] + "?page_no=2",
            {"bundle_ids": [B1], "page_size": 10, "page_no": 1},
            "query.page_no",
        ),
    ],
    "filter-options": [
        (E["filter-options"], None, "query.bundle_ids"),
        (
            E["filter-options"] + "?" + "&".join(f"bundle_ids={i}" for i in range(800, 811)),
            None,
            "query.bundle_ids",
        ),
        (f"{E['filter-options']}?bundle_ids={B1}&bundle_ids={B1}", None, "query.bundle_ids"),
        (f"{E['filter-options']}?bundle_ids={B1},{B2}", None, "query.bundle_ids"),
    ],
    "events": [
        (f"{E['events']}?bundle_id={B1}&combo_id={COMBO}", None, "query.bundle_id|combo_id"),
        (E["events"], None, "query.bundle_id|combo_id"),
        (f"{E['events']}?combo_id=x", None, "query.combo_id"),
    ],
    "report_summary": [
        (E["report_summary"], None, "query.bundle_id"),
        (f"{E['report_summary']}?bundle_id=-1", None, "query.bundle_id"),
        (f"{E['report_summary']}?bundle_id={B1}&bundle_id={B2}", None, "query.bundle_id"),
    ],
    "ask-ai": [
        (E["ask-ai"], {"bundle_id": B1, "question": ""}, "body.question"),
        (E["ask-ai"], {"bundle_id": B1, "question": "x" * 2001}, "body.question"),
        (E["ask-ai"], {"bundle_id": str(B1), "question": "why?"}, "body.bundle_id"),
    ],
    "reports": [
        (E["reports"], {"page_no": 1, "page_size": 5, "sort_by": "name"}, "body.sort_by"),
        (
            E["reports"],
            {"page_no": 1, "page_size": 5, "filters": {"status": ["done"]}},
            "body.filters.status",
        ),
        (E["reports"], {"page_no": 1, "page_size": 0}, "body.page_size"),
        (E["reports"], {"page_no": 1, "page_size": 5, "sort_order": "up"}, "body.sort_order"),
        (E["reports"], {"page_size": 5}, "body.page_no"),
    ],
    "by-sfdc-case": [
        (E["by-sfdc-case"] + "12345", None, "path.sfdc_case_no"),
        (E["by-sfdc-case"] + "abcdefghi", None, "path.sfdc_case_no"),
        (E["by-sfdc-case"] + "0123456789", None, "path.sfdc_case_no"),
        (E["by-sfdc-case"] + CASE + "?limit=3", None, "query.limit"),
    ],
}

#: name -> (path, body) of a request naming an unknown id
MISSING: dict[str, tuple[str, Any]] = {
    "info": (f"{E['info']}?bundle_id={UNKNOWN}", None),
    "severity-count": (E["severity-count"], {"bundle_ids": [B1, UNKNOWN]}),
    "histogram": (E["histogram"], {"bundle_ids": [UNKNOWN], "interval": "1h"}),
    "heatmap": (E["heatmap"], {"bundle_ids": [B2, UNKNOWN], "group_by": "log_level"}),
    "search": (E["search"], {"bundle_ids": [UNKNOWN], "page_size": 5, "page_no": 1}),
    "filter-options": (f"{E['filter-options']}?bundle_ids={UNKNOWN}&bundle_ids={B1}", None),
    "events": (f"{E['events']}?combo_id={UNKNOWN_COMBO}", None),
    "report_summary": (f"{E['report_summary']}?bundle_id={UNKNOWN}", None),
    "ask-ai": (E["ask-ai"], {"bundle_id": UNKNOWN, "question": "anything wrong?"}),
    "by-sfdc-case": (E["by-sfdc-case"] + UNKNOWN_CASE, None),
}

SHAPES = {
    "analyze": {"bundle_id", "status", "sfdc_case_no"},
    "info": {
        "bundle_id",
        "sfdc_case_no",
        "remote_log_bundle_path",
        "cvm_ips",
        "components",
        "start_time",
        "end_time",
        "total_lines",
    },
    "severity-count": {"counts"},
    "histogram": {"interval", "buckets"},
    "heatmap": {"rows", "columns", "values"},
    "search": {"total", "page_no", "page_size", "results"},
    "filter-options": {"components", "log_levels", "cvm_ips"},
    "events": {"total", "events"},
    "report_summary": {"bundle_id", "summary", "generated_at"},
    "ask-ai": {"bundle_id", "answer", "sources"},
    "reports": {"total", "page_no", "page_size", "reports"},
    "by-sfdc-case": {"sfdc_case_no", "paths"},
}
METHOD = {name: method for name, (method, _, _) in OK.items()}


@pytest.fixture(scope="module")
def server() -> Iterator[ReferenceAPIProcess]:
    with ReferenceAPIProcess(["--latency", "off"]) as api:
        yield api


def _is_utc(value: str) -> bool:
    return isinstance(value, str) and len(value) == 20 and value.endswith("Z") and "T" in value


@pytest.mark.parametrize("name", list(OK))
def test_success_has_the_contract_shape(server: ReferenceAPIProcess, name: str) -> None:
    method, path, body = OK[name]
    status, doc = server.request(method, path, body, H)
    assert status == 200, doc
    assert set(doc) == SHAPES[name]
    if name == "severity-count":
        assert set(doc["counts"]) == {"fatal", "error", "warn", "info", "debug"}
        assert all(isinstance(v, int) and v >= 0 for v in doc["counts"].values())
    elif name == "histogram":
        assert doc["interval"] == "15m" and doc["buckets"]
        assert all(
            set(b) == {"time", "count"} and _is_utc(b["time"]) and b["count"] > 0
            for b in doc["buckets"]
        )
        times = [b["time"] for b in doc["buckets"]]
        assert times == sorted(times) and len(set(times)) == len(times)
        assert all(t[14:16] in ("00", "15", "30", "45") and t[17:19] == "00" for t in times)
    elif name == "heatmap":
        assert len(doc["values"]) == len(doc["rows"]) > 0
        assert doc["columns"] == ["fatal", "error", "warn", "info", "debug"]
        assert all(len(row) == len(doc["columns"]) for row in doc["values"])
    elif name == "search":
        assert doc["page_no"] == 1 and doc["page_size"] == 20 and doc["total"] >= 20
        assert len(doc["results"]) == 20
        for line in doc["results"]:
            assert set(line) == {
                "bundle_id",
                "timestamp",
                "component",
                "log_level",
                "cvm_ip",
                "message",
            }
            assert line["log_level"] == "info" and line["bundle_id"] in (B1, B2)
            assert _is_utc(line["timestamp"])
    elif name == "info":
        assert doc["bundle_id"] == B1 and doc["sfdc_case_no"] == CASE
        assert doc["remote_log_bundle_path"] == PATH and doc["total_lines"] > 0
        assert _is_utc(doc["start_time"]) and doc["start_time"] < doc["end_time"]
        assert PATH.rsplit("-PE-", 1)[1][:-4] in doc["cvm_ips"]
    elif name == "events":
        assert doc["total"] == len(doc["events"]) > 0
        assert all(
            set(e) == {"timestamp", "type", "severity", "component", "description"}
            for e in doc["events"]
        )
    elif name == "reports":
        assert doc["total"] > 5 and len(doc["reports"]) == 5
        ids = [r["bundle_id"] for r in doc["reports"]]
        assert ids == sorted(ids)
        assert all(r["status"] == "completed" for r in doc["reports"])
    elif name == "by-sfdc-case":
        assert doc == {"sfdc_case_no": CASE, "paths": [PATH]}
    elif name == "filter-options":
        assert doc["log_levels"] == [
            lvl for lvl in ("fatal", "error", "warn", "info", "debug") if lvl in doc["log_levels"]
        ]
    elif name in ("ask-ai", "report_summary"):
        assert doc["bundle_id"] == B1
        text = doc.get("answer") or doc.get("summary")
        assert isinstance(text, str) and str(B1) in text


@pytest.mark.parametrize(
    ("name", "index"), [(n, i) for n, cases in BAD.items() for i in range(len(cases))]
)
def test_contract_violation_is_400_naming_the_field(
    server: ReferenceAPIProcess, name: str, index: int
) -> None:
    path, body, field = BAD[name][index]
    status, doc = server.request(METHOD[name], path, body, H)
    assert status == 400, doc
    assert set(doc) == {"detail"}
    assert doc["detail"].startswith(field + ":"), doc["detail"]


@pytest.mark.parametrize("name", list(OK))
def test_without_bearer_token_is_401(server: ReferenceAPIProcess, name: str) -> None:
    method, path, body = OK[name]
    headers = {k: v for k, v in H.items() if k != "Authorization"}
    status, doc = server.request(method, path, body, headers)
    assert (status, doc) == (401, {"detail": "header Authorization: missing bearer token"})
    for bad in ("Basic dXNlcjpwdw==", "Bearer ", "Bearer", "Token abc"):
        status, doc = server.request(method, path, body, {**headers, "Authorization": bad})
        assert status == 401 and doc["detail"].startswith("header Authorization:")


@pytest.mark.parametrize("name", list(OK))
def test_session_id_must_be_32_lowercase_hex(server: ReferenceAPIProcess, name: str) -> None:
    method, path, body = OK[name]
    headers = {k: v for k, v in H.items() if k != "X-Session-Id"}
    status, doc = server.request(method, path, body, headers)
    assert (status, doc) == (400, {"detail": "header X-Session-Id: missing"})
    for bad in ("0123456789ABCDEF0123456789ABCDEF", "abc", "g" * 32, "0" * 33):
        status, doc = server.request(method, path, body, {**headers, "X-Session-Id": bad})
        assert status == 400 and doc["detail"].startswith("header X-Session-Id:")


@pytest.mark.parametrize("name", list(MISSING))
def test_unknown_ids_are_404(server: ReferenceAPIProcess, name: str) -> None:
    path, body = MISSING[name]
    violations = server.stats()["violations_total"]
    status, doc = server.request(METHOD[name], path, body, H)
    assert status == 404, doc
    assert set(doc) == {"detail"} and "not found" in doc["detail"]
    assert server.stats()["violations_total"] == violations  # an answer, not a violation


def _handle(engine: Engine, name: str, path: str, body: Any) -> tuple[int, dict[str, Any]]:
    """One request straight through ``Engine.handle`` (no server): (status, JSON document)."""
    ep = resolve_endpoint(name)
    path, _, query = path.partition("?")
    param = path.removeprefix(PATH_PARAM_PREFIX) if path.startswith(PATH_PARAM_PREFIX) else None
    raw = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
    headers = [(k.lower().encode(), v.encode()) for k, v in H.items()]
    status, payload, _ = engine.handle(ep, headers, query.encode(), param, raw)
    return status, json.loads(payload)


def test_a_404_is_not_counted_as_a_violation_but_a_malformed_body_is() -> None:
    engine = Engine(DS, Behaviour(latency_on=False))
    for name, (path, body) in MISSING.items():
        status, doc = _handle(engine, name, path, body)
        assert status == 404 and doc["detail"].endswith("not found"), (name, doc)
    st = engine.stats.snapshot()
    assert st["by_status"] == {"404": len(MISSING)}
    assert (st["violations"], st["violations_total"]) == ({}, 0)

    assert _handle(engine, "search", E["search"], b"{not json") == (
        400,
        {"detail": "body: invalid JSON"},
    )
    status, _ = _handle(engine, "info", f"{E['info']}?bundle_id=abc", None)
    assert status == 400
    st = engine.stats.snapshot()
    assert st["violations"] == {
        "body: invalid JSON": 1,
        "query.bundle_id: must be a positive integer": 1,
    }
    assert st["violations_total"] == 2 and st["by_status"]["404"] == len(MISSING)


def test_a_404_still_gets_the_latency_model_and_faults() -> None:
    """Unknown ids are ordinary answers: an injected fault turns them into a 500 like a 200."""
    engine = Engine(DS, Behaviour(latency_on=False, error_rate=1.0))
    path, body = MISSING["info"]
    assert _handle(engine, "info", path, body)[0] == 500
    st = engine.stats.snapshot()
    assert (st["injected"]["error"], st["violations_total"]) == (1, 0)


def test_events_of_a_combo_merge_its_bundles(server: ReferenceAPIProcess) -> None:
    status, doc = server.request("GET", f"{E['events']}?combo_id={COMBO}", None, H)
    assert status == 200
    expected = sum(
        server.request("GET", f"{E['events']}?bundle_id={b}", None, H)[1]["total"]
        for b in DS.combo_by_id[COMBO].bundle_ids
    )
    assert doc["total"] == len(doc["events"]) == expected
    times = [e["timestamp"] for e in doc["events"]]
    assert times == sorted(times)
    assert server.request("GET", f"{E['events']}?bundle_id={UNKNOWN}", None, H)[0] == 404


def test_analyze_known_path_new_path_and_retry(server: ReferenceAPIProcess) -> None:
    rec = DS.bundle_by_id[B1]
    _, doc = server.request("POST", E["analyze"], OK["analyze"][2], H)
    assert doc == {"bundle_id": B1, "status": rec.status, "sfdc_case_no": CASE}
    retry = {**OK["analyze"][2], "is_retry": True}
    assert server.request("POST", E["analyze"], retry, H)[1]["status"] == "queued"
    new = {"remote_log_bundle_path": NEW_PATH, "sfdc_case_no": "012345678", "is_retry": False}
    status, first = server.request("POST", E["analyze"], new, H)
    assert status == 200 and first["status"] == "queued" and first["bundle_id"] > max(KNOWN)
    assert server.request("POST", E["analyze"], new, H)[1] == first  # stable id
    assert first["sfdc_case_no"] == "012345678"


def test_search_pages_are_consecutive(server: ReferenceAPIProcess) -> None:
    body = {
        "bundle_ids": [B1, B2, B3],
        "page_size": 7,
        "page_no": 1,
        "filters": {"log_levels": ["warn", "error"]},
    }
    pages = [server.request("POST", E["search"], {**body, "page_no": n}, H)[1] for n in (1, 2, 3)]
    assert len({p["total"] for p in pages}) == 1
    everything = server.request("POST", E["search"], {**body, "page_size": 21}, H)[1]
    assert [r for p in pages for r in p["results"]] == everything["results"]
    beyond = server.request("POST", E["search"], {**body, "page_no": 10_000}, H)[1]
    assert beyond["results"] == [] and beyond["total"] == pages[0]["total"]


def test_post_requires_json_content_type(server: ReferenceAPIProcess) -> None:
    method, path, body = OK["search"]
    for ctype in ("text/plain", None):
        headers = {k: v for k, v in H.items() if k != "Content-Type"}
        if ctype:
            headers["Content-Type"] = ctype
        status, doc = server.request(method, path, body, headers)
        assert (status, doc) == (400, {"detail": "header Content-Type: must be application/json"})
    status, doc = server.request(method, path, b"{not json", H)
    assert (status, doc) == (400, {"detail": "body: invalid JSON"})
    status, doc = server.request(method, path, b"[1, 2]", H)
    assert (status, doc) == (400, {"detail": "body: must be a JSON object"})
    status, doc = server.request(method, path, None, H)
    assert (status, doc) == (400, {"detail": "body: missing JSON body"})


def test_no_fastapi_422_and_docs_are_served(server: ReferenceAPIProcess) -> None:
    status, doc = server.request("GET", "/openapi.json")
    assert status == 200
    paths = doc["paths"]
    for name, (method, _, _) in OK.items():
        template = E[name] + ("{sfdc_case_no}" if name == "by-sfdc-case" else "")
        assert method.lower() in paths[template]
        assert "422" not in paths[template][method.lower()]["responses"]
    assert doc["components"]["schemas"]["SearchRequest"]["additionalProperties"] is False
    status, html = server.request("GET", "/docs")
    assert status == 200 and "swagger" in html.lower()
