"""The reference server's behaviour over HTTP: /__stats exactly as sent, fault injection and
latency (rates within stated tolerances), live /__config, determinism, the command line and
the launcher."""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from panacea_locust.reference_api import server as server_module
from panacea_locust.reference_api.behaviour import load_faults_file
from panacea_locust.reference_api.dataset import build_dataset
from panacea_locust.reference_api.launcher import (
    ReferenceAPIError,
    ReferenceAPIProcess,
    contract_headers,
)

DS = build_dataset(seed=42)
KNOWN = [b.bundle_id for b in DS.bundles]
B1, B2, B3 = KNOWN[:3]
UNKNOWN = min(set(range(800, 1001)) - set(DS.bundle_by_id))
COMBO = DS.combos[0].combo_id
INFO = "/api/v1/logs/info"
SEARCH = "/api/v1/logs/search"


@pytest.fixture(scope="module")
def api() -> Iterator[ReferenceAPIProcess]:
    with ReferenceAPIProcess(["--latency", "off"]) as proc:
        yield proc


@pytest.fixture
def fresh(api: ReferenceAPIProcess) -> ReferenceAPIProcess:
    """The module's server with default behaviour (latency off, no faults) and empty stats."""
    api.configure(
        latency="off",
        latency_scale=1.0,
        error_rate=0.0,
        slow_rate=0.0,
        slow_ms=2000,
        endpoints={"info": None, "search": None, "ask-ai": None},
    )
    api.reset_stats()
    return api


def _timed(api: ReferenceAPIProcess, path: str, headers: dict[str, str]) -> tuple[int, float]:
    t0 = time.perf_counter()
    status, _ = api.request("GET", path, None, headers)
    return status, time.perf_counter() - t0


def test_stats_agree_exactly_with_what_was_sent(fresh: ReferenceAPIProcess) -> None:
    alice = contract_headers("alice")
    bob = contract_headers("bob", session_id="b" * 32)
    sent: list[tuple[str, str, object, dict[str, str]]] = [
        *[("GET", f"{INFO}?bundle_id={B1}", None, alice)] * 3,
        ("POST", "/api/v1/logs/severity-count", {"bundle_ids": [B2, B1]}, alice),
        ("POST", SEARCH, {"bundle_ids": [UNKNOWN], "page_size": 5, "page_no": 1}, alice),
        ("POST", SEARCH, {"bundle_ids": [B3], "page_size": 500, "page_no": 1}, alice),
        (
            "GET",
            f"{INFO}?bundle_id={B1}",
            None,
            {k: v for k, v in alice.items() if k != "Authorization"},
        ),
        ("GET", f"/api/v1/events?combo_id={COMBO}", None, bob),
        (
            "POST",
            "/api/v1/reports",
            {"page_no": 1, "page_size": 5, "filters": {"bundle_ids": [B3]}},
            bob,
        ),
        (
            "GET",
            f"/api/v1/log-bundle-paths/by-sfdc-case/{DS.sfdc_cases[0].sfdc_case_no}",
            None,
            bob,
        ),
        (
            "POST",
            "/api/v1/logs/analyze",
            {
                "remote_log_bundle_path": DS.bundles[0].remote_log_bundle_path,
                "sfdc_case_no": DS.bundles[0].sfdc_case_no,
                "is_retry": False,
            },
            bob,
        ),
        *[("GET", f"{INFO}?bundle_id={B2}", None, {**bob, "X-Session-Id": "nope"})] * 2,
    ]
    statuses = [fresh.request(m, p, b, h)[0] for m, p, b, h in sent]
    assert statuses == [200, 200, 200, 200, 404, 400, 401, 200, 200, 200, 200, 400, 400]
    for path in ("/__config", "/__health", "/openapi.json", "/__stats"):  # not counted
        assert fresh.request("GET", path)[0] == 200

    st = fresh.stats()
    page_size_reason = "body.page_size: Input should be less than or equal to 100"
    assert st["total"] == 13
    assert st["by_status"] == {"200": 8, "400": 3, "401": 1, "404": 1}
    assert st["endpoints"] == {
        INFO: {"count": 6, "by_status": {"200": 3, "400": 2, "401": 1}},
        "/api/v1/logs/severity-count": {"count": 1, "by_status": {"200": 1}},
        SEARCH: {"count": 2, "by_status": {"400": 1, "404": 1}},
        "/api/v1/events": {"count": 1, "by_status": {"200": 1}},
        "/api/v1/reports": {"count": 1, "by_status": {"200": 1}},
        "/api/v1/log-bundle-paths/by-sfdc-case/{sfdc_case_no}": {
            "count": 1,
            "by_status": {"200": 1},
        },
        "/api/v1/logs/analyze": {"count": 1, "by_status": {"200": 1}},
    }
    assert st["distinct_sessions"] == 2
    assert st["sessions"] == {
        alice["X-Session-Id"]: {
            "requests": 7,
            "user_id": "alice",
            "user_ids": ["alice"],
            "bundle_ids": sorted([B1, B2, UNKNOWN]),
            "combo_ids": [],
        },
        "b" * 32: {
            "requests": 4,
            "user_id": "bob",
            "user_ids": ["bob"],
            "bundle_ids": [B3],
            "combo_ids": [COMBO],
        },
    }
    assert st["violations"] == {
        page_size_reason: 1,
        "header Authorization: missing bearer token": 1,
        "header X-Session-Id: must be 32 lowercase hex characters": 2,
    }
    assert st["violations_total"] == 4
    assert st["sessions_with_several_users"] == 0

    fresh.request(
        "GET",
        f"{INFO}?bundle_id={B1}",
        None,
        contract_headers("mallory", session_id=alice["X-Session-Id"]),
    )
    assert fresh.stats()["sessions"][alice["X-Session-Id"]]["user_ids"] == ["alice", "mallory"]
    assert fresh.stats()["sessions_with_several_users"] == 1

    fresh.reset_stats()
    st = fresh.stats()
    assert (
        st["total"],
        st["by_status"],
        st["endpoints"],
        st["sessions"],
        st["violations"],
        st["violations_total"],
        st["distinct_sessions"],
    ) == (0, {}, {}, {}, {}, 0, 0)


def test_error_rate_within_tolerance(fresh: ReferenceAPIProcess) -> None:
    n, rate = 400, 0.2
    assert fresh.configure(error_rate=rate)["error_rate"] == rate
    h = contract_headers("faulty")
    results = [fresh.request("GET", f"{INFO}?bundle_id={B1}", None, h) for _ in range(n)]
    errors = [doc for status, doc in results if status == 500]
    assert all(status in (200, 500) for status, _ in results)
    # binomial(400, 0.2): mean 80, sd 8; accept +-4 sd
    assert 48 <= len(errors) <= 112, len(errors)
    assert errors[0] == {"detail": "injected fault: internal server error"}
    st = fresh.stats()
    assert st["by_status"]["500"] == len(errors) == st["injected"]["error"]
    assert st["violations_total"] == 0  # injected faults are not contract violations


def test_fault_per_endpoint_overrides_global(fresh: ReferenceAPIProcess) -> None:
    cfg = fresh.configure(endpoints={"/api/v1/logs/info": {"error_rate": 1.0}})
    assert cfg["endpoints"][INFO]["error_rate"] == 1.0
    assert cfg["endpoints"][SEARCH]["error_rate"] == 0.0
    h = contract_headers("faulty")
    body = {"bundle_ids": [B1], "page_size": 1, "page_no": 1}
    for _ in range(20):
        assert fresh.request("GET", f"{INFO}?bundle_id={B1}", None, h)[0] == 500
        assert fresh.request("POST", SEARCH, body, h)[0] == 200
    fresh.configure(endpoints={"info": None})
    assert fresh.request("GET", f"{INFO}?bundle_id={B1}", None, h)[0] == 200


def test_slow_rate_within_tolerance(fresh: ReferenceAPIProcess) -> None:
    n, slow_ms = 40, 200
    fresh.configure(slow_rate=0.25, slow_ms=slow_ms)
    h = contract_headers("slow")
    times = [_timed(fresh, f"{INFO}?bundle_id={B1}", h) for _ in range(n)]
    assert all(status == 200 for status, _ in times)
    slow = sum(1 for _, d in times if d >= slow_ms / 1000)
    # binomial(40, 0.25): mean 10, sd 2.7; accept +-3 sd
    assert 2 <= slow <= 18, slow
    assert fresh.stats()["injected"]["slow"] == slow


def test_latency_model_is_per_endpoint_scaled_and_non_blocking(fresh: ReferenceAPIProcess) -> None:
    h = contract_headers("patient")
    cfg = fresh.configure(latency="on")
    assert cfg["endpoints"][INFO]["latency_ms"] == [5.0, 20.0]
    assert cfg["endpoints"]["/api/v1/ai/ask-ai"]["latency_ms"] == [300.0, 1500.0]
    info = [_timed(fresh, f"{INFO}?bundle_id={B1}", h)[1] for _ in range(15)]
    assert min(info) >= 0.005 and statistics.median(info) < 0.060
    fresh.configure(latency_scale=3.0)
    assert min(_timed(fresh, f"{INFO}?bundle_id={B1}", h)[1] for _ in range(5)) >= 0.015
    fresh.configure(latency_scale=1.0)
    t0 = time.perf_counter()
    status, _ = fresh.request("POST", "/api/v1/ai/ask-ai", {"bundle_id": B1, "question": "why?"}, h)
    assert status == 200 and time.perf_counter() - t0 >= 0.3

    # a slow ask-ai does not hold up other requests: the delay is an await, not a sleep
    fresh.configure(
        endpoints={"ask-ai": {"latency_ms": [1500, 1500]}, "info": {"latency_ms": [0, 0]}}
    )
    worker = threading.Thread(
        target=fresh.request,
        args=("POST", "/api/v1/ai/ask-ai", {"bundle_id": B1, "question": "slow?"}, h),
    )
    worker.start()
    time.sleep(0.2)
    quick = [_timed(fresh, f"{INFO}?bundle_id={B1}", h)[1] for _ in range(5)]
    assert worker.is_alive() and max(quick) < 0.5
    worker.join()
    fresh.configure(latency="off")
    off = [_timed(fresh, f"{INFO}?bundle_id={B1}", h)[1] for _ in range(5)]
    assert statistics.median(off) < 0.015


def test_config_endpoint_validates(fresh: ReferenceAPIProcess) -> None:
    for body, field in (
        ({"error_rate": 2}, "body.error_rate"),
        ({"latency": "maybe"}, "body.latency"),
        ({"colour": "red"}, "body.colour"),
        ({"endpoints": {"nope": {"error_rate": 0.1}}}, "body.endpoints"),
    ):
        status, doc = fresh.request("POST", "/__config", body, {"Content-Type": "application/json"})
        assert status == 400 and doc["detail"].startswith(field), doc
    cfg = fresh.request("GET", "/__config")[1]
    assert cfg["error_rate"] == 0.0 and cfg["latency"] == "off" and len(cfg["endpoints"]) == 12


DETERMINISM_REQUESTS = [
    ("GET", f"{INFO}?bundle_id={B1}", None),
    (
        "POST",
        SEARCH,
        {
            "bundle_ids": [B1, B2],
            "page_size": 50,
            "page_no": 2,
            "filters": {"search_log_string": "stargate"},
        },
    ),
    ("POST", "/api/v1/logs/histogram", {"bundle_ids": [B1, B3], "interval": "5m"}),
    ("POST", "/api/v1/logs/heatmap", {"bundle_ids": [B2], "group_by": "cvm_ip"}),
    ("GET", f"/api/v1/events?combo_id={COMBO}", None),
    ("POST", "/api/v1/ai/ask-ai", {"bundle_id": B2, "question": "what failed in cassandra?"}),
    ("GET", f"/api/v1/ai/report_summary?bundle_id={B3}", None),
    ("POST", "/api/v1/reports", {"page_no": 2, "page_size": 10}),
    ("POST", "/api/v1/logs/severity-count", {"bundle_ids": list(range(800, 810))}),
]


def _answers(seed: int) -> list[tuple[int, object]]:
    h = contract_headers("same")
    with ReferenceAPIProcess(["--latency", "off", "--seed", str(seed)]) as proc:
        return [proc.request(m, p, b, h) for m, p, b in DETERMINISM_REQUESTS]


def test_same_seed_same_answers_other_seed_other_answers() -> None:
    first, second, other = _answers(7), _answers(7), _answers(8)
    assert first == second
    assert sum(a != b for a, b in zip(first, other, strict=True)) >= len(first) - 1
    ds7 = build_dataset(seed=7)
    status, info = first[0]
    if B1 in ds7.bundle_by_id:
        assert (
            status == 200
            and info["remote_log_bundle_path"] == ds7.bundle_by_id[B1].remote_log_bundle_path
        )
        assert info["total_lines"] == ds7.logs(B1).n
    else:
        assert status == 404


# --- command line and launcher -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["--error-rate", "1.5"], "--error-rate"),
        (["--slow-rate", "x"], "--slow-rate"),
        (["--port", "70000"], "--port"),
        (["--latency", "sometimes"], "--latency"),
        (["--latency-scale", "-1"], "--latency-scale"),
        (["--fault", "nowhere=error:0.1"], "--fault"),
        (["--fault", "search=error:2"], "--fault"),
        (["--fault", "search=boom:1"], "--fault"),
        (["--faults", "/nonexistent/faults.toml"], "--faults"),
        (["--bundle-min", "900", "--bundle-max", "800"], "--bundle-max"),
        (["--unknown-ratio", "1"], "--unknown-ratio"),
        (["--sfdc-case-base", "999999999"], "--sfdc-case-base"),
    ],
)
def test_bad_option_is_one_line_and_exit_2(
    argv: list[str], option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        server_module.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and option in err and "error" in err


def test_faults_file_toml_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    toml = tmp_path / "faults.toml"
    toml.write_text(
        'error_rate = 0.01\nslow_ms = 500\n[endpoints."/api/v1/logs/search"]\n'
        "error_rate = 0.5\nlatency_ms = [1, 2]\n[endpoints.ask-ai]\nslow_rate = 1\n"
    )
    change = load_faults_file(str(toml))
    assert change.error_rate == 0.01 and change.endpoints is not None
    assert change.endpoints["/api/v1/logs/search"].error_rate == 0.5  # type: ignore[union-attr]
    bad = tmp_path / "faults.json"
    bad.write_text(json.dumps({"endpoints": {"search": {"error_rate": 3}}}))
    with pytest.raises(SystemExit):
        server_module.main(["--faults", str(bad)])
    assert "--faults" in capsys.readouterr().err
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"endpoints": {"info": {"error_rate": 1.0}}}))
    with ReferenceAPIProcess(
        ["--latency", "off", "--faults", str(good), "--fault", "search=slow:1,slow_ms:1"]
    ) as proc:
        cfg = proc.config()
        assert cfg["endpoints"][INFO]["error_rate"] == 1.0
        assert cfg["endpoints"][SEARCH]["slow_rate"] == 1.0
        assert proc.request("GET", f"{INFO}?bundle_id={B1}", None, contract_headers())[0] == 500


def test_console_script_starts_on_loopback_and_logs_its_url() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "panacea_locust.cli",
            "reference-api",
            "--port",
            "0",
            "--latency",
            "off",
            "--seed",
            "3",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on http://127.0.0.1:" in line and "seed 3" in line
        url = line.split("listening on ", 1)[1].split()[0]
        client = ReferenceAPIProcess()
        client.url = url
        assert client.request("GET", "/__health")[1]["seed"] == 3
    finally:
        proc.terminate()
        proc.wait(10)
    assert proc.returncode in (0, -signal.SIGTERM)


def test_launcher_reports_a_server_that_dies_at_start() -> None:
    t0 = time.perf_counter()
    with pytest.raises(ReferenceAPIError) as exc:
        ReferenceAPIProcess(["--error-rate", "7"]).start()
    assert "exited with code 2" in str(exc.value) and "--error-rate" in str(exc.value)
    assert time.perf_counter() - t0 < 15


def test_launcher_lifecycle_and_server_exits_with_its_parent(tmp_path: Path) -> None:
    api = ReferenceAPIProcess(["--latency", "off"], startup_timeout=20)
    url = api.start()
    assert url == api.url == f"http://127.0.0.1:{api.port}" and api.port > 0
    assert api.proc is not None
    pid = api.proc.pid
    api.stop()
    api.stop()  # idempotent
    assert not Path(f"/proc/{pid}").exists() or _zombie(pid)

    script = tmp_path / "parent.py"
    script.write_text(
        "import time\n"
        "from panacea_locust.reference_api.launcher import ReferenceAPIProcess\n"
        "api = ReferenceAPIProcess(['--latency', 'off'])\n"
        "api.start()\n"
        "print(api.proc.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{child}").exists() and not _zombie(child):
        assert time.monotonic() < deadline, "server outlived its parent"
        time.sleep(0.1)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return False
