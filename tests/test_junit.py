"""``junit.xml`` (report.junit): one test case per SLO rule and two for the run, read back with
a JUnit parser (``junitparser``) as a CI reporter would. Summaries come from the project's own
builders: histograms, ``build_summary``, the SLO's evaluation and ``decide``."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from junitparser import Error, Failure, JUnitXml, TestCase, TestSuite

from panacea_locust.report.junit import (
    GENERATOR_FITNESS,
    JUNIT_XML,
    RUN_CLASS,
    RUN_COMPLETED,
    SLO_CLASS,
    main,
    write_junit,
)
from panacea_locust.verdict.decision import decide
from panacea_locust.verdict.histogram import HistogramSet
from panacea_locust.verdict.results import EndpointCounts, build_summary
from panacea_locust.verdict.thresholds import mark_aborted, parse_slo

SEARCH, INFO = "/api/v1/logs/search", "/api/v1/logs/info"
BUSY = "a Locust process reached 97 % CPU (over 85 %): its latencies include its own queueing"
HOSTILE = "a<b>&\"c'</testcase>]]>\x00\x1b\ud800 ☃ 😀"


def run_summary(
    slo: dict[str, Any] | None,
    *,
    search_ms: float = 40.0,
    requests: int = 600,
    failures: int = 0,
    warnings: list[str] | None = None,
    aborted: str | None = None,
    label: str = "load",
    endpoints: tuple[str, ...] = (SEARCH, INFO),
    info_requests: int = 20,
) -> dict[str, Any]:
    """A judged summary: ``requests`` search requests at about ``search_ms`` (a spread of
    +-50 %), ``info_requests`` at 10 ms, ``failures`` of the search requests failed."""
    search, info = endpoints
    hist = HistogramSet()
    answered = requests - failures
    for i in range(answered):
        hist.record(search, search_ms * (0.5 + i / max(answered, 1)))
    for _ in range(info_requests):
        hist.record(info, 10.0)
    counts = {
        search: EndpointCounts(requests, failures, requests / 60, {"HTTP 500": failures}),
        info: EndpointCounts(info_requests, 0, info_requests / 60),
    }
    everything = requests + info_requests
    total = EndpointCounts(everything, failures, everything / 60)
    run = {
        "id": f"20250301T120000Z_{label}",
        "label": label,
        "host": "http://127.0.0.1:8000",
        "started_at": "2025-03-01T12:00:00.250000Z",
        "duration_s": 60.0,
        "target_version": "2.4.1",
        "load_generator": {"cpu_percent_max": 40.0, "warnings": warnings or []},
    }
    if aborted:
        run["aborted"] = aborted
    summary = build_summary(run, counts, total, hist, {info: {"404": 1}}, endpoints)
    summary["thresholds"] = (
        parse_slo(slo, endpoints).evaluate(summary) if slo else {"passed": None, "rules": []}
    )
    if aborted:
        summary["thresholds"] = mark_aborted(summary["thresholds"], aborted)
    summary["verdict"] = decide(summary).as_dict()
    return summary


def written(tmp_path: Path, summary: dict[str, Any]) -> TestSuite:
    path = write_junit(tmp_path, summary)
    assert path == tmp_path / JUNIT_XML
    ET.parse(path)  # a strict XML parser reads it too
    xml = JUnitXml.fromfile(str(path))
    suites = list(xml) if isinstance(xml, JUnitXml) else [xml]
    assert len(suites) == 1
    suite = suites[0]
    cases = list(suite)
    # the counts agree with the cases, in the suite and in the root
    assert suite.tests == len(cases)
    assert suite.failures == sum(1 for c in cases if is_(c, Failure))
    assert suite.errors == sum(1 for c in cases if is_(c, Error))
    assert suite.skipped == 0
    assert isinstance(xml, JUnitXml) and (xml.tests, xml.failures, xml.errors) == (
        suite.tests,
        suite.failures,
        suite.errors,
    )
    return suite


def is_(case: TestCase, kind: type) -> bool:
    return any(isinstance(r, kind) for r in case.result)


def by_name(suite: TestSuite) -> dict[str, TestCase]:
    return {c.name: c for c in suite}


def suite_out(path: Path) -> str:
    suite = ET.parse(path).getroot().find("testsuite")
    assert suite is not None
    out = suite.find("system-out")
    assert out is not None and out.text is not None
    return out.text


SLO = {
    "total": {"p95_ms": 50, "p99_ms": 5000, "max_failure_ratio": 0.01},
    "endpoints": {SEARCH: {"p95_ms": 30}, INFO: {"p99_ms": 100}},
}


def test_a_test_case_per_rule_and_failures_exactly_for_the_broken_ones(tmp_path: Path) -> None:
    summary = run_summary(SLO)  # search p95 about 58 ms: total and search p95 broken
    rules = summary["thresholds"]["rules"]
    broken = {f"{r['scope']} {r['metric']}" for r in rules if r["status"] == "fail"}
    unjudged = {f"{r['scope']} {r['metric']}" for r in rules if r["status"] == "insufficient"}
    assert broken == {"total p95_ms", f"{SEARCH} p95_ms"}
    assert unjudged == {f"{INFO} p99_ms"}  # 20 requests, a p99 needs 500
    assert summary["verdict"]["outcome"] == "FAIL"

    suite = written(tmp_path, summary)
    cases = by_name(suite)
    rule_cases = [c for c in suite if c.classname == SLO_CLASS]
    assert [c.name for c in rule_cases] == [f"{r['scope']} {r['metric']}" for r in rules]
    assert {c.name for c in suite if is_(c, Failure)} == broken
    assert {c.name for c in suite if is_(c, Error)} == unjudged
    assert suite.name == "panacea-locust load"
    assert suite.time == 60.0 and suite.timestamp == "2025-03-01T12:00:00"
    # the message names observed and limit
    p95 = summary["thresholds"]["rules"][0]
    failure = cases["total p95_ms"].result[0]
    assert isinstance(failure, Failure) and failure.type == "slo"
    assert f"observed {p95['observed']:.1f} ms" in failure.message
    assert "limit <= 50.0 ms" in failure.message
    error = cases[f"{INFO} p99_ms"].result[0]
    assert error.type == "inconclusive" and "20 of 500 requests" in error.message
    assert cases["total max_failure_ratio"].is_passed
    assert "observed 0.0000" in (cases["total max_failure_ratio"].system_out or "")
    # the run's two cases pass; the verdict line is the suite's output
    assert cases[RUN_COMPLETED].classname == RUN_CLASS and cases[RUN_COMPLETED].is_passed
    assert cases[GENERATOR_FITNESS].classname == RUN_CLASS and cases[GENERATOR_FITNESS].is_passed
    assert suite_out(tmp_path / JUNIT_XML).startswith("VERDICT: FAIL (2 of 5 rules broken")
    properties = {p.name: p.value for p in suite.properties()}
    assert properties["verdict"] == "FAIL" and properties["exit_code"] == "3"
    assert properties["target_version"] == "2.4.1"


def test_a_passing_run_has_no_failure_and_no_error(tmp_path: Path) -> None:
    summary = run_summary({"total": {"p95_ms": 500, "max_failure_ratio": 0.01}})
    suite = written(tmp_path, summary)
    assert suite.tests == 4 and suite.failures == 0 and suite.errors == 0
    assert all(c.is_passed for c in suite)
    assert suite_out(tmp_path / JUNIT_XML) == "VERDICT: PASS (2 rules)"


def test_a_windowed_rule_names_its_window(tmp_path: Path) -> None:
    slo = {"total": {"p95_ms": 50, "window_s": 30}}
    summary = run_summary(slo)
    assert "window" in summary["thresholds"]["rules"][0]
    failure = by_name(written(tmp_path, summary))["total p95_ms"].result[0]
    assert "worst window 0-60 s" in failure.message


def test_an_unfit_generator_makes_the_fitness_case_an_error(tmp_path: Path) -> None:
    slo = {"total": {"p95_ms": 50}}
    summary = run_summary(slo, warnings=[BUSY])
    assert summary["verdict"]["outcome"] == "INCONCLUSIVE"
    suite = written(tmp_path, summary)
    cases = by_name(suite)
    fitness = cases[GENERATOR_FITNESS].result
    assert len(fitness) == 1 and isinstance(fitness[0], Error)
    assert fitness[0].type == "inconclusive" and BUSY in fitness[0].message
    # the broken rule is still a failure, its message says why the verdict is not FAIL
    assert "unfit load generator" in cases["total p95_ms"].result[0].message
    assert suite.failures == 1 and suite.errors == 1
    # the same warning on a passing run changes nothing: the case passes and says so
    passing = run_summary({"total": {"p95_ms": 500}}, warnings=[BUSY])
    case = by_name(written(tmp_path, passing))[GENERATOR_FITNESS]
    assert case.is_passed and BUSY in (case.system_out or "")


def test_an_aborted_run_and_a_run_without_answers_fail_the_run_case(tmp_path: Path) -> None:
    reason = "SLO abort: total p95_ms = 900.0 ms breaks the limit <= 50.0 ms for 10 s"
    summary = run_summary({"total": {"p95_ms": 5000}}, aborted=reason)
    case = by_name(written(tmp_path, summary))[RUN_COMPLETED]
    assert isinstance(case.result[0], Failure) and case.result[0].type == "aborted"
    assert reason in case.result[0].message

    # every request failed (fast refusals: the p95 rule alone would pass)
    dead = run_summary({"total": {"p95_ms": 5000}}, failures=600, info_requests=0)
    assert dead["verdict"]["outcome"] == "FAIL"
    case = by_name(written(tmp_path, dead))[RUN_COMPLETED]
    assert isinstance(case.result[0], Failure) and case.result[0].type == "no-answer"
    assert case.result[0].message == "no request got an answer: 600 of 600 failed"
    # most failed, some answered: the run case passes (the rules judge the rest)
    some = run_summary({"total": {"p95_ms": 5000}}, failures=600)
    assert by_name(written(tmp_path, some))[RUN_COMPLETED].is_passed


def test_a_run_without_requests_is_inconclusive(tmp_path: Path) -> None:
    empty = run_summary({"total": {"p95_ms": 5000}}, requests=0, info_requests=0)
    assert empty["verdict"]["outcome"] == "INCONCLUSIVE"
    case = by_name(written(tmp_path, empty))[RUN_COMPLETED]
    assert isinstance(case.result[0], Error) and case.result[0].type == "inconclusive"


def test_an_interrupted_run_is_an_error_of_the_run_case(tmp_path: Path) -> None:
    summary = run_summary({"total": {"p95_ms": 500}})
    summary["run"]["interrupted"] = {"signal": "SIGTERM", "at_s": 12.5}
    summary["verdict"] = {
        "outcome": "INTERRUPTED",
        "exit_code": 143,
        "reasons": ["stopped by SIGTERM after 12.5 s", "the rules as they stood: PASS (1 rules)"],
    }
    suite = written(tmp_path, summary)
    case = by_name(suite)[RUN_COMPLETED]
    assert isinstance(case.result[0], Error) and case.result[0].type == "interrupted"
    assert case.result[0].message == "stopped by SIGTERM after 12.5 s: the run is incomplete"
    assert suite_out(tmp_path / JUNIT_XML).startswith("VERDICT: INTERRUPTED (stopped by SIGTERM")
    assert {p.name: p.value for p in suite.properties()}["exit_code"] == "143"


def test_without_an_slo_only_the_run_cases(tmp_path: Path) -> None:
    suite = written(tmp_path, run_summary(None))
    assert [c.name for c in suite] == [RUN_COMPLETED, GENERATOR_FITNESS]
    assert suite_out(tmp_path / JUNIT_XML).startswith("VERDICT: no thresholds configured")


def test_xml_hostile_text_survives(tmp_path: Path) -> None:
    endpoint = f"/api/v1/{HOSTILE}"
    summary = run_summary(
        {"total": {"p95_ms": 50}, "endpoints": {endpoint: {"p95_ms": 30}}},
        label=HOSTILE,
        aborted=f"SLO abort: {HOSTILE}",
        endpoints=(endpoint, INFO),
    )
    summary["run"]["description"] = HOSTILE
    suite = written(tmp_path, summary)
    shown = "a<b>&\"c'</testcase>]]>\\x00\\x1b\\ud800 ☃ 😀"  # what XML cannot hold, spelled out
    assert suite.name == f"panacea-locust {shown}"
    names = [c.name for c in suite]
    assert f"/api/v1/{shown} p95_ms" in names
    run_case = by_name(suite)[RUN_COMPLETED]
    assert run_case.result[0].message == f"stopped early: SLO abort: {shown}"
    assert {p.name: p.value for p in suite.properties()}["description"] == shown
    raw = (tmp_path / JUNIT_XML).read_bytes()
    raw.decode("utf-8")  # valid UTF-8 throughout
    assert b"\x00" not in raw and b"\x1b" not in raw


def test_a_summary_without_verdict_gets_the_one_its_rules_give(tmp_path: Path) -> None:
    summary = run_summary(SLO)
    del summary["verdict"]
    suite = written(tmp_path, summary)
    assert {p.name: p.value for p in suite.properties()}["verdict"] == "FAIL"
    # a hand-written summary with almost nothing still gives a readable file
    suite = written(tmp_path, {"run": {"label": "x"}, "thresholds": {"rules": [{"scope": 1}]}})
    assert suite.tests == 3


def test_the_module_rewrites_a_run_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    summary = run_summary(SLO)
    (tmp_path / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    assert main([str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / JUNIT_XML)
    assert written(tmp_path, summary).failures == 2
    assert main([str(tmp_path / "missing")]) == 2
    assert main([]) == 2
    (tmp_path / "summary.json").write_text("[1]", encoding="utf-8")
    assert main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 3 and "Traceback" not in err


def test_the_writer_loads_neither_locust_nor_gevent() -> None:
    from test_layers import modules_after_importing, of_packages

    loaded = modules_after_importing("panacea_locust.report.junit")
    assert "panacea_locust.report.junit" in loaded
    assert of_packages(loaded, "locust", "gevent") == []
