"""Panacea in Locust's web UI, in a real headless Chromium (Debian's ``/usr/bin/chromium``
driven by Playwright): the start form's fields and their checks, the Panacea tab while a run
lasts and after it, the links to the run's reports, and a comparison with an earlier run.

Screenshots go to the test's temporary folder; with ``PANACEA_DOCS_SCREENSHOT=1`` the tab's
is also saved as ``docs/images/web-ui-panacea-tab.png`` (the one the docs show).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, clean_env, run_dirs, run_panacea

from panacea_locust.reference_api.launcher import ReferenceAPIProcess
from panacea_locust.verdict.results import STABLE_KEYS

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

LOCUST = [sys.executable, "-m", "locust", "-f", str(ROOT / "locustfile.py")]
FAST_WAITS = {"HEAVY_WAIT_MIN": "0.05", "HEAVY_WAIT_MAX": "0.1",
              "LIGHT_WAIT_MIN": "0.2", "LIGHT_WAIT_MAX": "0.4"}  # fmt: skip
SCREENSHOT = ROOT / "docs" / "images" / "web-ui-panacea-tab.png"
# read at import: the suite's autouse fixture clears PANACEA_* variables before each test
SAVE_SCREENSHOT = os.environ.get("PANACEA_DOCS_SCREENSHOT") == "1"
SLO = """
[total]
max_failure_ratio = 0.01
p95_ms = 2000
min_rps = 1
"""


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, b""
    except OSError:
        return 0, b""


@pytest.fixture()
def earlier_run(api: ReferenceAPIProcess, tmp_path: Path) -> Path:
    """A run in ``tmp_path``'s results folder before Locust starts: a baseline to pick."""
    earlier = run_panacea(
        ["--host", api.url, "-u", "4", "-r", "4", "-t", "3s", "--no-slo", "--label", "before"],
        cwd=tmp_path, env=clean_env(**FAST_WAITS),
    )  # fmt: skip
    assert earlier.returncode == 0 and earlier.run_dir, earlier.stderr[-2000:]
    return earlier.run_dir


@pytest.fixture()
def web_locust(
    api: ReferenceAPIProcess, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[str, Path]]:
    """Locust's web UI on a free loopback port, in ``tmp_path`` (its results folder); after
    ``earlier_run`` when the test asks for it (the form lists the runs there at start)."""
    if "earlier_run" in request.fixturenames:
        request.getfixturevalue("earlier_run")
    port = _free_port()
    log = (tmp_path / "locust.log").open("w")
    proc = subprocess.Popen(
        [*LOCUST, "--host", api.url, "--web-host", "127.0.0.1", "--web-port", str(port)],
        cwd=tmp_path, env=clean_env(**FAST_WAITS), stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while _get(base + "/stats/requests")[0] != 200:
            assert proc.poll() is None and time.monotonic() < deadline, (
                tmp_path / "locust.log"
            ).read_text()[-3000:]
            time.sleep(0.2)
        yield base, tmp_path
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _cell(page: Any, row_name: str, column: int) -> Any:
    row = page.locator("table tbody tr").filter(
        has=page.get_by_role("cell", name=row_name, exact=True)
    )
    return row.locator("td").nth(column)


def test_a_run_started_and_stopped_in_the_web_ui(
    browser: Any, earlier_run: Path, web_locust: tuple[str, Path], tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    base, cwd = web_locust
    (baseline,) = [p.name for p in run_dirs(cwd / "results")]
    slo = tmp_path / "ui-slo.toml"
    slo.write_text(SLO)
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(base + "/")
    expect(page.get_by_role("heading", name="Start new load test")).to_be_visible()
    page.get_by_label("Number of users (peak concurrency)").fill("6")
    page.get_by_label("Ramp up (users started/second)").fill("6")
    page.get_by_text("Custom parameters").click()

    # a bad value: its error in the page, and no run
    weight = page.locator('input[name="analyticsUserWeight"]')
    weight.fill("lots")
    page.get_by_role("button", name="Start").click()
    expect(page.get_by_role("alert").filter(has_text="Analytics user weight")).to_be_visible()
    page.screenshot(path=str(tmp_path / "01-bad-value.png"), full_page=True)
    weight.fill("1")
    slo_field = page.locator('input[name="sloFile"]')
    slo_field.fill(str(tmp_path / "missing.toml"))
    page.get_by_role("button", name="Start").click()
    expect(page.get_by_role("alert").filter(has_text="missing.toml: no such file")).to_be_visible()
    status, body = _get(base + "/stats/requests")
    assert json.loads(body)["state"] == "ready"
    assert [p.name for p in run_dirs(cwd / "results")] == [baseline]  # nothing started

    # the run: its thresholds, label, version, analytics weight and baseline from the form
    slo_field.fill(str(slo))
    page.locator('input[name="label"]').fill("ui-run")
    page.locator('input[name="targetVersion"]').fill("panacea-2026.12.3")
    page.locator('select[name="baseline"]').select_option(baseline)
    page.get_by_role("button", name="Start").click()
    expect(page.get_by_role("button", name="Stop")).to_be_visible(timeout=15_000)
    page.get_by_role("tab", name="Panacea").click()
    p95 = _cell(page, "rule: total p95_ms", 1)
    expect(p95).to_have_count(1, timeout=15_000)
    expect(_cell(page, "rule: total p95_ms", 2)).to_have_text("<= 2000.0 ms")
    expect(_cell(page, "SLO file", 1)).to_have_text(str(slo))
    seen = {p95.inner_text()}
    deadline = time.monotonic() + 20
    while len(seen) < 3 and time.monotonic() < deadline:  # the rule's value moves as it runs
        page.wait_for_timeout(1000)
        seen.add(p95.inner_text())
    assert len(seen) >= 3, f"the rule's value did not update: {seen}"
    expect(_cell(page, "rule: total max_failure_ratio", 3)).to_have_text("pass", timeout=15_000)
    expect(_cell(page, "users: AnalyticsUser", 1)).not_to_have_text("")
    expect(_cell(page, "data source", 1)).to_have_text("generated")
    page.wait_for_timeout(2500)
    shot = tmp_path / "02-panacea-tab.png"
    page.screenshot(path=str(shot), full_page=True)
    if SAVE_SCREENSHOT:
        SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)

    page.get_by_role("button", name="Stop").click()
    expect(page.get_by_role("button", name="New")).to_be_visible(timeout=15_000)
    deadline = time.monotonic() + 20
    while len(run_dirs(cwd / "results")) < 2 or not any(
        (d / "summary.html").exists() for d in run_dirs(cwd / "results") if d.name != baseline
    ):
        assert time.monotonic() < deadline, "the run's results were not written"
        time.sleep(0.3)
    (run_dir,) = [d for d in run_dirs(cwd / "results") if d.name != baseline]
    page.reload()  # Locust polls its statistics only while a test runs
    expect(_cell(page, "verdict", 3)).to_have_text("PASS", timeout=15_000)
    expect(_cell(page, "report: summary.html", 1)).to_have_text(
        f"/panacea/runs/{run_dir.name}/summary.html"
    )
    expect(_cell(page, f"compare with {baseline}", 1)).not_to_have_text("")
    page.screenshot(path=str(tmp_path / "03-verdict.png"), full_page=True)

    # the links of the Download Data tab serve the run's own reports
    page.get_by_role("tab", name="Download Data").click()
    page.get_by_role("link", name="Panacea summary (HTML)").click()
    page.wait_for_url(f"**/panacea/runs/{run_dir.name}/summary.html")
    expect(page.locator("body")).to_contain_text("ui-run")
    page.screenshot(path=str(tmp_path / "04-summary.png"), full_page=True)
    for name in ("summary.md", "summary.json", "junit.xml", "compare.html"):
        status, body = _get(f"{base}/panacea/runs/{run_dir.name}/{name}")
        assert status == 200 and body == (run_dir / name).read_bytes(), name
    # ... and nothing else of the file system
    for path in (f"/panacea/runs/{run_dir.name}/histograms.json",
                 f"/panacea/runs/{run_dir.name}/..%2F..%2Fui-slo.toml",
                 "/panacea/runs/..%2F/ui-slo.toml", "/panacea/runs/../summary.json",
                 "/panacea/runs/nonexistent/summary.json"):  # fmt: skip
        assert _get(base + path)[0] == 404, path

    summary = json.loads((run_dir / "summary.json").read_text())
    assert set(STABLE_KEYS) <= set(summary), set(STABLE_KEYS) - set(summary)
    run = summary["run"]
    assert run["label"] == "ui-run" and run["target_version"] == "panacea-2026.12.3"
    assert run["users"].get("AnalyticsUser", 0) >= 1, run["users"]
    assert {r["metric"] for r in summary["thresholds"]["rules"]} == {
        "p95_ms", "max_failure_ratio", "min_rps"
    }  # fmt: skip
    assert summary["verdict"]["outcome"] == "PASS", summary["verdict"]
    compared = json.loads((run_dir / "compare.json").read_text())
    assert baseline in compared["baseline"]


def test_an_open_model_run_from_the_start_form(web_locust: tuple[str, Path]) -> None:
    """The form's arrival rate makes the run open (the number of users serves the
    arrivals), as the start form posts it; the next test, without a rate, is closed again."""
    base, cwd = web_locust
    before = set(run_dirs(cwd / "results"))

    def start(**fields: str) -> dict:
        form = {"user_count": "10", "spawn_rate": "10", "run_time": "6s",
                "baseline": "none", **fields}  # fmt: skip
        request = urllib.request.Request(
            base + "/swarm", data=urllib.parse.urlencode(form).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.loads(response.read())
        assert answer["success"], answer
        time.sleep(1.5)
        during = _rows(base)  # the tab of this run, not of the one before
        assert during["run"]["value"] == "running" and "verdict" not in during, during
        assert during["run"]["status"] == "", during  # no run id until it is written
        deadline = time.monotonic() + 40
        while True:
            new = [d for d in run_dirs(cwd / "results") if d not in before]
            if new and (new[-1] / "summary.json").exists():
                before.add(new[-1])
                return json.loads((new[-1] / "summary.json").read_text())
            assert time.monotonic() < deadline, "the run did not end"
            time.sleep(0.5)

    for field, value, message in (("arrival_rate", "-3", "Arrival rate"),
                                  ("host", " ", "Host is empty")):  # fmt: skip
        bad = urllib.request.Request(
            base + "/swarm", method="POST",
            data=urllib.parse.urlencode({"user_count": "10", "spawn_rate": "10",
                                         field: value}).encode(),
        )  # fmt: skip
        with urllib.request.urlopen(bad, timeout=10) as response:
            refused = json.loads(response.read())
        assert not refused["success"] and message in refused["message"], refused

    opened = start(arrival_rate="20", label="open-ui")
    workload = opened["run"]["workload"]
    assert workload["model"] == "open" and workload["target_rps"] == 20, workload
    assert workload["max_users"] == 10 and workload["sent"] > 40, workload
    assert set(opened["run"]["users"]) == {"OpenUser"}
    assert _rows(base)["open model: target rate"]["value"] == "20.0/s"
    closed = start(arrival_rate="", label="closed-ui")
    assert closed["run"]["workload"]["model"] == "closed"
    assert set(closed["run"]["users"]) == {"HeavyUser", "LightUser"}
    rows = _rows(base)  # the second run's, not the first's
    assert rows["run"]["status"] == closed["run"]["id"] and "open model: target rate" not in rows


def _post_swarm(base: str, **fields: str) -> dict:
    form = {"user_count": "4", "spawn_rate": "4", "baseline": "none", **fields}
    request = urllib.request.Request(
        base + "/swarm", data=urllib.parse.urlencode(form).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        answer: dict = json.loads(response.read())
    assert answer["success"], answer
    return answer


def _rows(base: str) -> dict[str, dict]:
    status, body = _get(base + "/panacea/status.json")
    assert status == 200
    return {row["name"]: row for row in json.loads(body)["rows"]}


def _wait_for_summary(results: Path, known: set[Path], seconds: float = 60) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        new = [d for d in run_dirs(results) if d not in known]
        if new and (new[-1] / "summary.json").exists():
            known.add(new[-1])
            return dict(json.loads((new[-1] / "summary.json").read_text()))
        assert time.monotonic() < deadline, "the run did not end"
        time.sleep(0.5)


def test_the_tab_counts_down_a_broken_abort_rule(
    web_locust: tuple[str, Path], api: ReferenceAPIProcess, tmp_path: Path
) -> None:
    """A rule of an ``abort = true`` table broken on every snapshot shows how long until it
    stops the run; then the run stops, aborted, and the tab gives the verdict."""
    base, cwd = web_locust
    known = set(run_dirs(cwd / "results"))
    slo = tmp_path / "abort.toml"
    slo.write_text("[total]\np95_ms = 1\nmin_tail_samples = 0\nabort = true\n"
                   "abort_grace_s = 6\n")  # fmt: skip
    api.configure(latency="on", latency_scale=1.0)  # every answer slower than 1 ms
    _post_swarm(base, slo_file=str(slo), run_time="60s")
    countdowns = []
    deadline = time.monotonic() + 30
    while len(countdowns) < 2 and time.monotonic() < deadline:
        status = _rows(base).get("rule: total p95_ms", {}).get("status", "")
        if "aborts the run in" in status and status not in countdowns:
            countdowns.append(status)
        time.sleep(0.5)
    assert len(countdowns) == 2, countdowns
    left = [int(s.split("aborts the run in ")[1].split()[0]) for s in countdowns]
    assert left[0] > left[1] and 0 <= left[1] <= 6, countdowns  # counting down
    summary = _wait_for_summary(cwd / "results", known)
    assert summary["run"]["aborted"].startswith("SLO abort: total p95_ms"), summary["run"]
    assert summary["run"]["duration_s"] < 40
    rows = _rows(base)
    assert rows["verdict"]["status"] == "FAIL"


def test_a_distributed_run_from_the_web_ui_shows_each_worker(
    api: ReferenceAPIProcess, tmp_path: Path
) -> None:
    """A master with the web UI and two workers: the tab shows each worker's CPU, and the
    run's folder is the master's, with both workers recorded."""
    web, master_port = _free_port(), _free_port()
    env = clean_env(**FAST_WAITS)
    log = (tmp_path / "master.log").open("w")
    procs = [subprocess.Popen(
        [*LOCUST, "--master", "--host", api.url, "--web-host", "127.0.0.1", "--web-port",
         str(web), "--master-bind-host", "127.0.0.1", "--master-bind-port", str(master_port)],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
    )]  # fmt: skip
    for i in range(2):
        folder = tmp_path / f"w{i}"
        folder.mkdir()
        procs.append(subprocess.Popen(
            [*LOCUST, "--worker", "--master-host", "127.0.0.1", "--master-port",
             str(master_port)],
            cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))  # fmt: skip
    base = f"http://127.0.0.1:{web}"
    try:
        deadline = time.monotonic() + 40
        while True:
            status, body = _get(base + "/stats/requests")
            if (
                status == 200
                and json.loads(body).get("workers")
                and len(json.loads(body)["workers"]) == 2
            ):
                break
            assert time.monotonic() < deadline, (tmp_path / "master.log").read_text()[-2000:]
            time.sleep(0.3)
        _post_swarm(base, user_count="6", spawn_rate="6", run_time="8s", label="dist-ui")
        deadline = time.monotonic() + 30
        workers: list[str] = []
        while len(workers) < 2 and time.monotonic() < deadline:  # reports every 3 s
            workers = [n for n in _rows(base) if n.startswith("load generator: CPU of worker")]
            time.sleep(0.5)
        assert len(workers) == 2, _rows(base)
        summary = _wait_for_summary(tmp_path / "results", set())
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        log.close()
    assert len(summary["run"]["workers"]["joined"]) == 2
    assert summary["run"]["label"] == "dist-ui" and summary["total"]["requests"] > 0


def test_under_a_web_base_path_the_panacea_pages_are_there_too(
    api: ReferenceAPIProcess, tmp_path: Path
) -> None:
    """Locust's ``--web-base-path`` moves its pages (a reverse proxy's prefix); the Download
    Data links are relative to them, so ours move along."""
    port = _free_port()
    proc = subprocess.Popen(
        [*LOCUST, "--host", api.url, "--web-host", "127.0.0.1", "--web-port", str(port),
         "--web-base-path", "/perf"],
        cwd=tmp_path, env=clean_env(**FAST_WAITS), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}/perf"
    try:
        deadline = time.monotonic() + 30
        while _get(base + "/stats/requests")[0] != 200:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        status, body = _get(base + "/panacea/status.json")
        assert status == 200 and json.loads(body)["rows"][0]["name"] == "run"
        assert _get(base + "/panacea/latest/summary.html")[0] == 404  # no run yet
    finally:
        proc.terminate()
        proc.wait(timeout=20)
