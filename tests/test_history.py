"""``panacea-locust history``: run folders read oldest first, each run judged against the
previous run of its label by ``compare``'s own rules, bad folders skipped with one note each,
the filters, and ``history.html`` with a chart per metric.

The run folders are real: summaries from the project's builders (histograms, ``build_summary``,
the SLO's evaluation, ``decide``) written by the real writer (``report.summary.write_results``,
``histograms.json`` included), and, in the e2e test, two short real runs against the
reference API on loopback.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from panacea_locust.cli import COMMANDS
from panacea_locust.cli import compare as compare_cli
from panacea_locust.cli.history import main
from panacea_locust.report.history import render_html
from panacea_locust.report.summary import write_results
from panacea_locust.verdict.decision import decide
from panacea_locust.verdict.histogram import HistogramSet
from panacea_locust.verdict.history import HISTORY_HTML, build_history, load_text
from panacea_locust.verdict.results import EndpointCounts, build_summary, create_run_dir
from panacea_locust.verdict.thresholds import parse_slo

SEARCH, INFO = "/api/v1/logs/search", "/api/v1/logs/info"
T0 = datetime(2025, 3, 1, 2, 0, tzinfo=timezone.utc)
SLO = {"total": {"p95_ms": 400, "max_failure_ratio": 0.05}}
HOSTILE = '<script>alert("x")</script>'


def make_run(
    results: Path,
    label: str,
    hours: float,
    *,
    search_ms: float = 40.0,
    failures: int = 0,
    version: str | None = "2.4.1",
    older: bool = False,
    workload: dict[str, Any] | None = None,
) -> Path:
    """A run folder as a run writes it: 600 search requests around ``search_ms`` and 300 info
    requests at 10 ms, ``failures`` of the search requests failed, started ``hours`` after T0.
    ``older``: a summary from before target_version, description and git_commit existed."""
    started = T0 + timedelta(hours=hours)
    folder = create_run_dir(results, label, started)
    hist = HistogramSet()
    for i in range(600 - failures):
        hist.record(SEARCH, search_ms * (0.5 + i / 600))
    for _ in range(300):
        hist.record(INFO, 10.0)
    counts = {
        SEARCH: EndpointCounts(600, failures, 10.0, {"HTTP 500": failures} if failures else {}),
        INFO: EndpointCounts(300, 0, 5.0),
    }
    run: dict[str, Any] = {
        "id": folder.name,
        "label": label,
        "host": "http://127.0.0.1:8000",
        "started_at": started.isoformat().replace("+00:00", "Z"),
        "duration_s": 60.0,
        "users": {"HeavyUser": 5, "LightUser": 20},
        "locust": {"num_users": 25},
        "load_generator": {"warnings": []},
    }
    if not older:
        run |= {"target_version": version, "description": None, "git_commit": "0123456789abcdef"}
    if workload is not None:
        run["workload"] = workload
    summary = build_summary(
        run, counts, EndpointCounts(900, failures, 15.0), hist, {}, (SEARCH, INFO)
    )
    summary["thresholds"] = parse_slo(SLO, (SEARCH, INFO)).evaluate(summary)
    summary["verdict"] = decide(summary).as_dict()
    write_results(folder, summary, hist.to_payload())
    return folder


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """Nightly load runs, the third one slower, and a smoke run between them that is far
    slower still (another scenario: never compared with a load run)."""
    root = tmp_path / "results"
    make_run(root, "load", 0, version="2.4.0", older=True)
    make_run(root, "load", 24)
    make_run(root, "smoke", 30, search_ms=900.0)
    make_run(root, "load", 48, search_ms=120.0, version="2.5.0")
    return root


def test_a_real_regression_is_flagged_as_compare_flags_it(results: Path) -> None:
    history = build_history(results)
    ids = [e.run.id for e in history.entries]
    assert ids == sorted(ids)  # oldest first
    assert [e.run.label for e in history.entries] == ["load", "load", "smoke", "load"]
    first, second, smoke, third = history.entries
    assert first.previous is None and smoke.previous is None  # the first of their labels
    assert second.previous == first.run and second.regressions == []
    assert third.previous == second.run  # the previous *load* run, not the smoke run
    assert {scope for scope, _ in third.regressions} == {"total", SEARCH}
    assert any(r.startswith("p95_ms") for s, r in third.regressions if s == "total")
    assert "p95_ms" in third.regressed_metrics
    assert third.change == f"REGRESSION ({len(third.regressions)})"
    # the same pair, given to `panacea-locust compare`, flags the same regressions (exit 1)
    out = results.parent / "compare"
    code = compare_cli.main([str(second.run.folder), str(third.run.folder), "--out", str(out)])
    assert code == 1
    flagged = json.loads((out / "compare.json").read_text())
    assert [(s["scope"], r) for s in flagged["scopes"] for r in s["regressions"]] == (
        third.regressions
    )


def test_the_command_prints_a_line_per_run_and_writes_the_page(
    results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "history" in COMMANDS
    assert main(["--results-dir", str(results)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    assert lines[0].startswith(f"History of {results} (4 runs")
    rows = [line.split() for line in lines[2:6]]
    assert [row[0] for row in rows] == ["1", "2", "3", "4"]
    first, second, _, third = rows
    # the older summary has no target version: "-"
    assert first[1].endswith("_load") and first[2] == "-" and second[2] == "2.4.1"
    assert third[2] == "2.5.0"
    assert first[3:5] == ["25", "users"]
    assert first[-2:] == ["PASS", "-"] and second[-2:] == ["PASS", "ok"]
    assert third[-3:-1] == ["PASS", "REGRESSION"]
    assert re.search(r"! \S+_load vs \S+_load: total: p95_ms", out)
    assert lines[-2].startswith("History: ") and "regressions flagged in 1 run" in lines[-2]
    assert lines[-1] == f"History page: {results / HISTORY_HTML}"
    assert (results / HISTORY_HTML).is_file()


def test_bad_folders_are_skipped_with_one_note_each(
    results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = sorted(p for p in results.iterdir())[1]
    (results / "notes.txt").write_text("not a run", encoding="utf-8")
    (results / "20250101T000000Z_empty").mkdir()  # a run that never wrote its summary
    bad_json = results / "20250102T000000Z_badjson"
    bad_json.mkdir()
    (bad_json / "summary.json").write_text('{"total": ', encoding="utf-8")
    not_finite = results / "20250103T000000Z_nan"
    not_finite.mkdir()
    summary = json.loads((good / "summary.json").read_text())
    summary["total"]["p95_ms"] = float("nan")
    (not_finite / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    undecodable = results / "20250104T000000Z_bytes"
    undecodable.mkdir()
    (undecodable / "summary.json").write_bytes(b'{"total": {}, "x": "\xff\xfe"}')
    not_a_summary = results / "20250105T000000Z_list"
    not_a_summary.mkdir()
    (not_a_summary / "summary.json").write_text("[1, 2]", encoding="utf-8")
    as_folder = results / "20250106T000000Z_dir"
    (as_folder / "summary.json").mkdir(parents=True)
    (results / ".20250107T000000Z_tmp").mkdir()  # hidden: a folder being written

    assert main(["--results-dir", str(results)]) == 0
    out, err = capsys.readouterr()
    notes = err.splitlines()
    assert all(n.startswith("panacea-locust history: note: skipped ") for n in notes), notes
    assert len(notes) == 7 and "Traceback" not in err
    expected = {
        "notes.txt": "a file, not a run folder",
        "_empty": "has no summary.json",
        "_badjson": "summary.json is not valid JSON",
        "_nan": "summary.json: total.p95_ms = NaN is not a finite number >= 0",
        "_bytes": "cannot read summary.json",
        "_list": "is not a panacea-locust summary",
        "_dir": "has no summary.json",
    }
    for name, reason in expected.items():
        assert sum(1 for n in notes if name in n and reason in n) == 1, (name, notes)
    assert "(4 runs" in out  # the good ones are all there


def test_an_unreadable_folder_is_skipped(results: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A summary.json that cannot be read (here a folder: the tests run as root, which reads
    any file whatever its mode) is one note, never a traceback."""
    locked = results / "20250101T000000Z_locked"
    (locked / "summary.json").mkdir(parents=True)
    assert main(["--results-dir", str(results)]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "_locked" in err


def test_label_and_last_filter_the_runs(results: Path, capsys: pytest.CaptureFixture[str]) -> None:
    smoke = build_history(results, label="smoke")
    assert [e.run.label for e in smoke.entries] == ["smoke"]
    last = build_history(results, label="load", last=1)
    (only,) = last.entries
    # still judged against the previous load run, though that one is not shown
    assert only.previous is not None and only.previous.label == "load"
    assert only.regressions
    assert [e.run.label for e in build_history(results, last=2).entries] == ["smoke", "load"]
    assert main(["--results-dir", str(results), "--label", "load", "--last", "2"]) == 0
    out = capsys.readouterr().out
    assert "(2 runs, label load, the last 2;" in out and "smoke" not in out
    # nothing matched: exit 1 and one line, no page
    (results / HISTORY_HTML).unlink()
    assert main(["--results-dir", str(results), "--label", "stress"]) == 1
    out, err = capsys.readouterr()
    assert (
        out == "" and err == f"panacea-locust history: no run with label 'stress' under {results}\n"
    )
    assert not (results / HISTORY_HTML).exists()
    empty = results.parent / "empty"
    empty.mkdir()
    assert main(["--results-dir", str(empty)]) == 1


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--last", "0"], "argument --last: '0' must be a whole number >= 1"),
        (["--last", "x"], "argument --last: 'x' must be a whole number >= 1"),
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["--results-dir", "{missing}"], "does not exist"),
        (["--results-dir", "{file}"], "is not a folder"),
        (["--html", "{missing}/page.html"], "cannot write"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    results: Path, capsys: pytest.CaptureFixture[str], args: list[str], says: str
) -> None:
    (results.parent / "file").write_text("x", encoding="utf-8")
    names = {"missing": str(results.parent / "missing"), "file": str(results.parent / "file")}
    args = [a.format(**names) for a in args]
    if "--results-dir" not in args:
        args = ["--results-dir", str(results), *args]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("panacea-locust history: ") and says in err


def test_workload_and_older_summaries(tmp_path: Path) -> None:
    assert load_text({"workload": {"model": "closed", "users": 25}}) == "25 users"
    assert load_text({"workload": {"model": "open", "rate": 20, "users": 40}}) == "20/s"
    assert load_text({"workload": {"target_rps": 7.5}}) == "7.50/s"
    assert load_text({"shape": {"stages": [{"users": 10}, {"users": 40}]}}) == "up to 40 users"
    assert load_text({"users": {"HeavyUser": 2, "LightUser": 3}}) == "5 users"
    assert load_text({}) == "-"
    make_run(tmp_path, "open", 0, workload={"model": "open", "rate": 20})
    (entry,) = build_history(tmp_path).entries
    assert entry.run.load == "20/s" and entry.run.description is None


def test_the_page_has_a_chart_per_metric_and_escapes_what_it_shows(
    results: Path, tmp_path: Path
) -> None:
    make_run(results, HOSTILE, 60, version=HOSTILE)
    page_path = tmp_path / "page.html"
    assert main(["--results-dir", str(results), "--html", str(page_path)]) == 0
    page = page_path.read_text(encoding="utf-8")
    assert not (results / HISTORY_HTML).exists()  # --html chose the place
    assert page.count('<svg class="chart"') == 4
    for title in ("Throughput", "p95 latency", "p99 latency", "Failure ratio"):
        assert re.search(rf'<svg class="chart" [^>]*aria-label="{title}', page), title
    assert page.count('class="point regressed"') == 2  # the third load run: p95 and p99
    assert "default-src 'none'" in page
    assert HOSTILE not in page and html_escaped(HOSTILE) in page
    assert "<script" not in page and "http://" not in page.replace("http://127.0.0.1", "")
    history = build_history(results)
    assert render_html(history) == page


def html_escaped(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&#34;")
    )


def test_the_judging_loads_neither_locust_nor_gevent() -> None:
    from test_layers import modules_after_importing, of_packages

    loaded = modules_after_importing("panacea_locust.cli.history")
    assert "panacea_locust.verdict.history" in loaded and "panacea_locust.report.history" in loaded
    assert of_packages(loaded, "locust", "gevent") == []


# --- real runs ----------------------------------------------------------------------------


@pytest.mark.e2e
def test_history_of_two_real_runs_flags_the_failures_of_the_second(
    api: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from conftest import clean_env, run_panacea

    env = clean_env(LIGHT_WAIT_MIN="0.05", LIGHT_WAIT_MAX="0.1", HEAVY_WAIT_MIN="0.05",
                    HEAVY_WAIT_MAX="0.1")  # fmt: skip
    args = ["--host", api.url, "-u", "5", "-r", "5", "-t", "3s", "--no-slo", "--label", "real"]
    first = run_panacea([*args, "--target-version", "1.0"], cwd=tmp_path, env=env)
    assert first.run_dir is not None, first.stderr[-3000:]
    api.configure(error_rate=0.3)  # the new "release" fails three requests in ten
    second = run_panacea([*args, "--target-version", "1.1"], cwd=tmp_path, env=env)
    assert second.run_dir is not None, second.stderr[-3000:]

    assert main(["--results-dir", str(tmp_path / "results"), "--label", "real"]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines()[2:4]]
    assert [row[1] for row in rows] == [first.run_dir.name, second.run_dir.name], out
    assert [row[2] for row in rows] == ["1.0", "1.1"], out
    assert rows[1][-2] == "REGRESSION", out
    assert re.search(r"! \S+ vs \S+: total: failure_ratio \d+\.\d+% -> \d+\.\d+%", out), out
    page = (tmp_path / "results" / HISTORY_HTML).read_text(encoding="utf-8")
    assert page.count('<svg class="chart"') == 4


# --- in a real browser --------------------------------------------------------------------


@pytest.mark.browser
def test_history_html_in_chromium(browser: Any, results: Path) -> None:
    from test_summary_html import Opened

    assert main(["--results-dir", str(results)]) == 0
    opened = Opened(browser, results / HISTORY_HTML)
    try:
        page = opened.page
        assert opened.errors == [] and opened.failed == []
        assert opened.requests == [opened.url]  # the file itself, nothing else
        assert page.locator("#runs tbody tr").count() == 4
        regressed = page.locator("#runs tr.regressed")
        assert regressed.count() == 1 and "REGRESSION" in regressed.inner_text()
        charts = page.locator("svg.chart")
        assert charts.count() == 4
        for i in range(4):
            chart = charts.nth(i)
            chart.scroll_into_view_if_needed()
            box = chart.bounding_box()
            assert chart.is_visible() and box is not None and box["width"] > 400
            assert chart.locator("circle.point").count() == 4
        assert page.locator("circle.regressed").count() == 2  # p95 and p99 of run 4
    finally:
        opened.close()
