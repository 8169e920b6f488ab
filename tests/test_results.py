"""results.py and tally.py: the summary contract, run folders that never overwrite, merging."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from panacea_locust.report.summary import (
    render_markdown,
    render_table,
    verdict_line,
    write_results,
)
from panacea_locust.verdict.histogram import HistogramSet
from panacea_locust.verdict.results import (
    EndpointCounts,
    build_summary,
    create_run_dir,
    safe_label,
)
from panacea_locust.verdict.tally import RunTally

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
SEARCH, INFO = "/api/v1/logs/search", "/api/v1/logs/info"


def _summary() -> dict:
    hist = HistogramSet()
    for ms in range(1, 101):
        hist.record(SEARCH, float(ms))
    for ms in (5.0, 7.0):
        hist.record(INFO, ms)
    counts = {
        SEARCH: EndpointCounts(100, 4, 10.0, {"HTTP 500": 3, "timeout": 1}),
        INFO: EndpointCounts(2, 0, 0.2),
    }
    total = EndpointCounts(102, 4, 10.2)
    acceptable = {INFO: {"404": 1}, SEARCH: {"400": 2, "404": 3}}
    return build_summary({"id": "x", "label": "t"}, counts, total, hist, acceptable, (INFO, SEARCH))


def test_summary_follows_the_results_contract() -> None:
    s = _summary()
    assert list(s["endpoints"]) == [INFO, SEARCH]  # the contract's order
    search = s["endpoints"][SEARCH]
    assert search["requests"] == 100 and search["failures"] == 4
    assert search["failure_ratio"] == 0.04
    # 3 significant digits: within 0.1% of the exact value; min, mean and max are exact
    assert search["p50_ms"] == pytest.approx(50.0, rel=1e-3)
    assert search["p99_ms"] == pytest.approx(99.0, rel=1e-3)
    assert search["max_ms"] == 100.0
    assert search["min_ms"] == 1.0 and search["mean_ms"] == 50.5
    assert search["failures_by_reason"] == {"HTTP 500": 3, "timeout": 1}
    assert search["acceptable"] == {"400": 2, "404": 3}
    total = s["total"]
    assert total["acceptable"] == {"400": 2, "404": 4}
    assert total["requests"] == 102 and total["max_ms"] == 100.0
    assert total["failures_by_reason"] == {"HTTP 500": 3, "timeout": 1}
    assert json.loads(json.dumps(s)) == s  # plain JSON


def test_an_endpoint_without_latency_samples_has_null_percentiles() -> None:
    s = build_summary({}, {INFO: EndpointCounts(0, 0, 0.0)}, EndpointCounts(), HistogramSet(), {})
    assert s["endpoints"][INFO]["p95_ms"] is None and s["total"]["failure_ratio"] == 0.0


def test_run_folders_are_never_reused(tmp_path: Path) -> None:
    first = create_run_dir(tmp_path, "load test #2", NOW)
    second = create_run_dir(tmp_path, "load test #2", NOW)
    assert first.name == "20260102T030405Z_load-test-2"
    assert second.name == "20260102T030405Z_load-test-2_2"
    write_results(first, _summary())
    assert json.loads((first / "summary.json").read_text())["total"]["requests"] == 102
    assert safe_label("../../etc") == "etc"


def test_renderings_show_the_numbers_and_the_verdict() -> None:
    s = _summary()
    assert verdict_line(s).startswith("VERDICT: no thresholds")
    s["thresholds"] = {
        "passed": False,
        "rules": [
            {"scope": "total", "metric": "p95_ms", "limit": 10, "observed": 95.0, "passed": False}
        ],
    }
    line = "VERDICT: FAIL (1 of 1 rules broken: total p95_ms 95.0 ms > 10.0 ms)"
    assert verdict_line(s) == line
    md = render_markdown(s)
    assert "| `/api/v1/logs/search` | 100 | 4 |" in md
    assert "| `/api/v1/logs/search` | HTTP 500 | 3 |" in md and "**FAIL**" in md
    table = render_table(s)
    assert table.splitlines()[0].split()[:3] == ["endpoint", "reqs", "fails"]
    assert "TOTAL" in table
    assert "- Connections:" not in md  # nothing resent: no line
    s["run"]["connections"] = {"stale_resends": 3}
    assert "- Connections: 3 requests resent after the target closed" in render_markdown(s)


def test_tally_drain_and_merge_add_up_like_one_process() -> None:
    # workers keep sparse histograms (cheap to encode at each report); the master dense ones
    master, w1, w2 = RunTally(), RunTally(sparse=True), RunTally(sparse=True)
    for tally, n in ((w1, 3), (w2, 5)):
        for i in range(n):
            tally.user_started("HeavyUser" if i % 2 else "LightUser", i == 0)
            tally.histograms.record(SEARCH, 10.0 * (i + 1))
        tally.acceptable_response(INFO, 404)
        tally.data_sources[f"w{n}"] = {"mode": "generated", "loaded": {}, "fallbacks": {}}
        tally.stale_resends += n
    master.merge(w1.drain())
    master.merge(w2.drain())
    master.merge(w1.drain())  # an empty interval changes nothing
    assert master.users_by_type == {"LightUser": 5, "HeavyUser": 3}
    assert master.acceptable[INFO] == {"404": 2}
    assert master.stale_resends == 8  # each counted once, the second drain of w1 empty
    assert not master.histograms.sparse and w1.histograms.sparse
    w1.record_failure(SEARCH, 3.0, "HTTP 500")
    delta = RunTally().merge(w1.drain())
    assert delta.reasons == {SEARCH: {"HTTP 500": 1}} and not w1.failure_reasons
    w1.record_failure(SEARCH, 3.0, "HTTP 500")
    w1.reset_requests()  # Locust reset its statistics: what was not reported yet goes too
    assert not w1.failure_reasons and not RunTally().merge(w1.drain()).reasons
    w1.reset()
    assert w1.histograms.sparse and w1.failed.sparse and w1.service.sparse  # kept through resets
    hist = master.histograms.get(SEARCH)
    assert hist is not None and hist.count == 8 and hist.max_ms == 50.0
    source = master.data_source()
    assert source["mode"] == "generated"
    assert source["sessions"] == {"from_database": 2, "generated": 6}
