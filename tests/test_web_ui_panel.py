"""The web UI's pure part (``web_ui/panel.py``): what the start form accepts, which files
are served, and what the Panacea tab says for a snapshot of a run."""

from __future__ import annotations

from pathlib import Path

import pytest

from panacea_locust.scenarios import SCENARIOS
from panacea_locust.verdict.thresholds import AbortTracker, parse_slo
from panacea_locust.web_ui.panel import (
    NO_BASELINE,
    baseline_choices,
    form_error,
    panel_rows,
    safe_report,
)


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        ({"scenario": "nightly"}, "Scenario 'nightly' is not one of smoke"),
        ({"label": "a b"}, "Label: use 1 to 64"),
        ({"label": "x" * 65}, "Label: use 1 to 64"),
        ({"target_version": "v1\n"}, "Target version: printable"),
        ({"analytics_user_weight": "lots"}, "Analytics user weight must be a whole number"),
        ({"analytics_user_weight": "-2"}, "Analytics user weight must be a whole number"),
        ({"arrival_rate": "0"}, "Arrival rate must be a number"),
        ({"arrival_rate": "nan"}, "Arrival rate must be a number"),
        ({"user_count": "ten"}, "Number of users must be a whole number"),
        ({"user_count": "501"}, "501 users is above LOCUST_MAX_USERS (500)"),
    ],
)
def test_a_bad_form_value_gets_one_line_naming_it(form: dict, expected: str) -> None:
    error = form_error(form, SCENARIOS, 500)
    assert error is not None and error.startswith(expected) and "\n" not in error


def test_good_form_values_pass() -> None:
    good = {"scenario": "load", "label": "rc-2.1_nightly", "target_version": "panacea 2026.12",
            "analytics_user_weight": "0", "arrival_rate": "12.5", "user_count": "500"}  # fmt: skip
    assert form_error(good, SCENARIOS, 500) is None
    assert form_error({}, SCENARIOS, 500) is None  # the running test's Edit form


def test_only_a_runs_own_reports_are_served(tmp_path: Path) -> None:
    root = tmp_path / "results"
    run = root / "20261202T050000Z_smoke"
    run.mkdir(parents=True)
    for name in ("summary.html", "summary.json", "histograms.json"):
        (run / name).write_text("{}")
    (tmp_path / "secret.json").write_text("{}")
    assert safe_report(root, run.name, "summary.html") == run / "summary.html"
    assert safe_report(root, run.name, "summary.md") is None  # not written
    assert safe_report(root, run.name, "histograms.json") is None  # not a report
    for run_id in ("..", ".", "", "../results", f"{run.name}/..", "nonexistent"):
        assert safe_report(root, run_id, "summary.json") is None, run_id
    (root / "link").symlink_to(tmp_path)
    assert safe_report(root, "link", "summary.json") is None  # a link out of the folder
    assert baseline_choices(root) == [NO_BASELINE, run.name]
    assert baseline_choices(tmp_path / "none") == [NO_BASELINE]


def _by_name(rows: list[dict]) -> dict[str, dict]:
    names = [r["name"] for r in rows]
    assert len(names) == len(set(names)), "the table's rows need distinct names"
    return {r["name"]: r for r in rows}


def test_the_tab_while_a_run_lasts_rules_countdown_users_and_open_model() -> None:
    thresholds = {"rules": [
        {"scope": "total", "metric": "p95_ms", "limit": 800.0, "observed": 912.4,
         "status": "fail"},
        {"scope": "total", "metric": "min_rps", "limit": 5.0, "observed": None,
         "status": "insufficient"},
        {"scope": "/api/v1/logs/search", "metric": "p99_ms", "limit": 900.0, "observed": 120.0,
         "status": "pass", "window": {"start_s": 30.0, "end_s": 60.0}},
    ]}  # fmt: skip
    rows = _by_name(panel_rows({
        "state": "running", "run_id": None, "slo_file": "slo.toml", "thresholds": thresholds,
        "countdowns": {"total p95_ms": 6.4}, "users": {"HeavyUser": 5, "LightUser": 15},
        "data_source": {"mode": "database", "loaded": {"sessions": 40},
                        "fallbacks": {"combo_ids": "table combo_bundles is empty"}},
        "load_generator": {"cpu_percent_max": 91.0, "cpu_warning": True, "steal_percent": 2.5,
                           "loop_lag_p99_ms": 3.2, "warnings": ["CPU above 85 %"]},
        "worker_cpu": {"w1": 40.0},
        "workload": {"model": "open", "target_rps": 40.0, "achieved_rps": 39.6, "dropped": 3,
                     "dropped_ratio": 0.0025, "lag_p99_ms": 4.2},
        "connections": {"stale_resends": 2},
    }))  # fmt: skip
    p95 = rows["rule: total p95_ms"]
    assert (p95["value"], p95["limit"]) == ("912.4 ms", "<= 800.0 ms")
    assert p95["status"] == "fail, aborts the run in 6 s"
    assert rows["rule: total min_rps"]["value"] == "n/a"
    assert rows["rule: total min_rps"]["limit"] == ">= 5.00/s"
    assert rows["rule: /api/v1/logs/search p99_ms"]["value"] == "120.0 ms (window 30-60 s)"
    assert rows["users: LightUser"]["value"] == "15"
    assert rows["data fallback: combo_ids"]["value"] == "table combo_bundles is empty"
    assert rows["load generator: CPU max"]["status"] == "warning"
    assert rows["load generator: CPU of worker w1"]["value"] == "40 %"
    assert rows["open model: dropped"]["value"] == "3 (0.25 %)"
    assert rows["open model: schedule lag p99"]["value"] == "4.2 ms"
    assert rows["connections: requests resent"]["value"] == "2"
    assert "verdict" not in rows


def test_the_tab_after_the_run_verdict_reports_and_comparison() -> None:
    rows = _by_name(panel_rows({
        "state": "stopped", "run_id": "20261202T050000Z_ui", "slo_file": None,
        "verdict": {"outcome": "FAIL", "reasons": ["total p95_ms 912.4 ms > 800.0 ms"]},
        "reports": [("summary.html", "/panacea/runs/20261202T050000Z_ui/summary.html")],
        "compare": {"baseline": "20261201T050000Z_ui", "result": "regressions in total",
                    "status": "exit 1"},
    }))  # fmt: skip
    assert rows["verdict"]["status"] == "FAIL"
    assert rows["verdict"]["value"] == "total p95_ms 912.4 ms > 800.0 ms"
    assert rows["SLO file"]["value"].startswith("none")
    assert rows["report: summary.html"]["value"].endswith("/summary.html")
    assert rows["compare with 20261201T050000Z_ui"]["status"] == "exit 1"
    assert rows["run"]["status"] == "20261202T050000Z_ui"


def test_the_abort_countdown_runs_down_while_a_rule_stays_broken() -> None:
    slo = parse_slo({"total": {"p95_ms": 100, "abort": True, "abort_grace_s": 10}}, {"x"})
    tracker = AbortTracker(slo)
    broken = {"total": {"requests": 1000, "p95_ms": 500.0}, "endpoints": {}}
    assert tracker.countdowns(0.0) == {}
    tracker.update(100.0, broken)
    assert tracker.countdowns(104.0) == {"total p95_ms": 6.0}
    tracker.update(105.0, {"total": {"requests": 1000, "p95_ms": 50.0}, "endpoints": {}})
    assert tracker.countdowns(106.0) == {}  # healthy again: no countdown
