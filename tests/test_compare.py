"""``panacea-locust compare``: regression rules, added/removed endpoints, reports, exit codes.

Run folders are built in tmp_path with synthetic summary.json files of the results contract.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from panacea_locust import cli
from panacea_locust.cli.compare import main, parse_tolerance
from panacea_locust.verdict.compare import (
    FAILURE_RATIO_EPSILON,
    CompareInputError,
    compare_summaries,
)

SEARCH = "/api/v1/logs/search"
INFO = "/api/v1/logs/info"
ASK = "/api/v1/ai/ask-ai"
CASE = "/api/v1/log-bundle-paths/by-sfdc-case/{sfdc_case_no}"


def stats(
    p50: float = 40.0,
    p95: float = 100.0,
    p99: float = 200.0,
    rps: float = 10.0,
    requests: int = 1000,
    failures: int = 0,
) -> dict[str, Any]:
    return {
        "requests": requests,
        "failures": failures,
        "failure_ratio": failures / requests if requests else 0.0,
        "acceptable": {"404": 3},
        "rps": rps,
        "min_ms": 1.0,
        "mean_ms": p50 * 1.1,
        "p50_ms": p50,
        "p90_ms": p95 * 0.9,
        "p95_ms": p95,
        "p99_ms": p99,
        "p999_ms": p99 * 1.5,
        "max_ms": p99 * 2,
        "failures_by_reason": {},
    }


def summary(
    label: str, endpoints: dict[str, dict[str, Any]], total: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "run": {
            "id": f"20250101T000000Z_{label}",
            "label": label,
            "host": "http://127.0.0.1",
            "started_at": "2025-01-01T00:00:00Z",
            "duration_s": 60.0,
            "users": {},
        },
        "total": total or stats(),
        "endpoints": endpoints,
        "thresholds": {"passed": True, "rules": []},
    }


def run_dir(tmp_path: Path, name: str, data: dict[str, Any]) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "summary.json").write_text(json.dumps(data), encoding="utf-8")
    return folder


BASE = {SEARCH: stats(), INFO: stats(p50=4.0, p95=10.0, p99=20.0), ASK: stats(p95=900.0)}


def test_identical_runs_exit_zero_and_write_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = run_dir(tmp_path, "base", summary("base", BASE))
    cur = run_dir(tmp_path, "cur", summary("cur", BASE))
    assert main([str(base), str(cur)]) == 0
    out = capsys.readouterr().out
    assert "Verdict: no regression" in out and SEARCH in out
    md = (cur / "compare.md").read_text()
    assert "**Verdict: no regression**" in md and f"`{SEARCH}`" in md
    page = (cur / "compare.html").read_text()
    assert page.count("<svg") == 1 + len(BASE)  # total + one chart per endpoint
    assert "<script" not in page and not re.search(r"(src|href)=", page)  # no JS, no network


def test_latency_growth_beyond_tolerance_and_noise_floor_is_flagged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    current = {
        SEARCH: stats(p95=125.0),  # +25 %, +25 ms: regression
        INFO: stats(p50=4.0, p95=14.0, p99=27.0),  # +40 %, but only +4/+7 ms: p99 only
        ASK: stats(p95=960.0, p99=210.0),  # +6.7 % / +5 %: within tolerance
    }
    base = run_dir(tmp_path, "base", summary("base", BASE))
    cur = run_dir(tmp_path, "cur", summary("cur", current))
    assert main([str(base), str(cur), "--tolerance", "10%"]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION: 2 flagged" in out
    assert f"{SEARCH}: p95_ms 100.0 -> 125.0 ms (+25.0%, +25.0 ms)" in out
    assert f"{INFO}: p99_ms 20.0 -> 27.0 ms" in out and f"{INFO}: p95_ms" not in out
    page = (cur / "compare.html").read_text()
    assert "#c53030" in page and "REGRESSION" in page


def test_noise_floor_and_tolerance_options(tmp_path: Path) -> None:
    base = run_dir(tmp_path, "base", summary("base", BASE))
    cur = run_dir(tmp_path, "cur", summary("cur", {**BASE, ASK: stats(p95=960.0)}))
    assert main([str(base), str(cur)]) == 0  # +6.7 %
    assert main([str(base), str(cur), "--tolerance", "5"]) == 1  # bare number = percent
    assert main([str(base), str(cur), "--tolerance", "5%", "--noise-floor-ms", "100"]) == 0


def test_failure_ratio_growth_is_flagged_beyond_epsilon() -> None:
    base = summary("b", {SEARCH: stats(requests=10_000, failures=10)})
    small = summary("c", {SEARCH: stats(requests=10_000, failures=15)})  # +0.05 points
    big = summary("c", {SEARCH: stats(requests=10_000, failures=40)})  # +0.3 points
    assert FAILURE_RATIO_EPSILON == 0.001
    assert not compare_summaries(base, small, 0.1, 5.0).flagged
    comparison = compare_summaries(base, big, 0.1, 5.0)
    assert comparison.flagged
    assert comparison.regressions == [(SEARCH, "failure_ratio 0.10% -> 0.40% (+0.30 points)")]


def test_improvements_and_rps_changes_are_not_flagged() -> None:
    base = summary("b", BASE)
    cur = summary(
        "c", {k: {**v, "p95_ms": v["p95_ms"] / 2, "rps": v["rps"] / 3} for k, v in BASE.items()}
    )
    comparison = compare_summaries(base, cur, 0.1, 5.0)
    assert not comparison.flagged
    search = next(s for s in comparison.scopes if s.scope == SEARCH)
    assert search.metrics["p95_ms"].delta_pct == -50.0
    assert search.metrics["rps"].delta == pytest.approx(-10 / 1.5)


def test_added_and_removed_endpoints_are_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = run_dir(
        tmp_path, "base", summary("base", {SEARCH: stats(), INFO: stats(), ASK: stats(requests=0)})
    )
    cur = run_dir(tmp_path, "cur", summary("cur", {SEARCH: stats(), CASE: stats(p95=5000.0)}))
    assert main([str(base), str(cur)]) == 0
    out = capsys.readouterr().out
    assert re.search(rf"{re.escape(INFO)} .*removed", out)
    assert re.search(rf"{re.escape(CASE)} .*added", out)
    assert ASK not in out  # no requests in either run: nothing to say
    md = (cur / "compare.md").read_text()
    assert f"`{CASE}` (added)" in md and f"`{INFO}` (removed)" in md
    html_page = (cur / "compare.html").read_text()
    assert "{sfdc_case_no}" in html_page and "(added)" in html_page


def test_comparison_is_pure_and_ordered() -> None:
    comparison = compare_summaries(summary("b", BASE), summary("c", BASE), 0.1, 5.0)
    assert [s.scope for s in comparison.scopes] == ["total", ASK, INFO, SEARCH]
    assert all(s.status == "compared" for s in comparison.scopes)
    data = comparison.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert "20250101T000000Z_b" in comparison.baseline


def test_out_option_and_cli_dispatch(tmp_path: Path) -> None:
    base = run_dir(tmp_path, "base", summary("base", BASE))
    cur = run_dir(tmp_path, "cur", summary("cur", BASE))
    out = tmp_path / "reports" / "x"
    assert cli.main(["compare", str(base), str(cur), "--out", str(out)]) == 0
    assert (out / "compare.md").is_file() and (out / "compare.html").is_file()
    assert not (cur / "compare.md").exists()


@pytest.mark.parametrize(
    "case", ["missing", "no_summary", "bad_json", "not_summary", "bad_tolerance", "bad_floor"]
)
def test_bad_input_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    good = run_dir(tmp_path, "good", summary("good", BASE))
    other = tmp_path / "other"
    args = [str(good), str(other)]
    if case == "no_summary":
        other.mkdir()
    elif case == "bad_json":
        other.mkdir()
        (other / "summary.json").write_text("{not json")
    elif case == "not_summary":
        other.mkdir()
        (other / "summary.json").write_text("[1, 2]")
    elif case == "bad_tolerance":
        args = [str(good), str(good), "--tolerance", "ten%"]
    elif case == "bad_floor":
        args = [str(good), str(good), "--noise-floor-ms", "-1"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("panacea-locust compare: ") and "\n" not in err


def test_usage_errors_return_instead_of_exiting(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert main(["--help"]) == 0
    assert "Exit codes" in capsys.readouterr().out


def test_malformed_endpoints_section_is_bad_input() -> None:
    with pytest.raises(CompareInputError, match="'endpoints' is not an object"):
        compare_summaries(summary("b", BASE), {"total": stats(), "endpoints": [1]}, 0.1, 5.0)


def test_parse_tolerance() -> None:
    assert parse_tolerance("10%") == pytest.approx(0.10)
    assert parse_tolerance(" 2.5 % ") == pytest.approx(0.025)
    assert parse_tolerance("0") == 0.0
    with pytest.raises(CompareInputError):
        parse_tolerance("-5%")


def test_summary_json_path_is_accepted(tmp_path: Path) -> None:
    base = run_dir(tmp_path, "base", summary("base", BASE))
    cur = run_dir(tmp_path, "cur", summary("cur", BASE))
    assert main([str(base / "summary.json"), str(cur / "summary.json")]) == 0
    assert (cur / "compare.html").is_file()


def test_a_percentile_with_too_few_samples_beyond_it_is_not_judged() -> None:
    few = {SEARCH: stats(requests=120)}  # 6 beyond p95, 1.2 beyond p99
    slow = {SEARCH: stats(p95=300.0, p99=900.0, requests=120)}
    result = compare_summaries(summary("a", few), summary("b", slow), 0.10, 5.0)
    search = next(s for s in result.scopes if s.scope == SEARCH)
    assert search.regressed_metrics() == {"p95_ms"}  # p99 of 120 samples: noise
    strict = compare_summaries(summary("a", few), summary("b", slow), 0.10, 5.0, min_tail_samples=0)
    search = next(s for s in strict.scopes if s.scope == SEARCH)
    assert search.regressed_metrics() == {"p95_ms", "p99_ms"}
    tiny = {SEARCH: stats(requests=40)}
    tiny_slow = {SEARCH: stats(p95=300.0, p99=900.0, requests=40)}
    assert not compare_summaries(summary("a", tiny), summary("b", tiny_slow), 0.10, 5.0).flagged


def test_unjudged_values_are_marked_with_the_reason_in_all_three_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    few = {SEARCH: stats(requests=40), INFO: stats(requests=40)}
    slower = {SEARCH: stats(requests=40, p99=400.0), INFO: stats(requests=40)}
    base = run_dir(tmp_path, "base", summary("b", few, stats(requests=80)))
    cur = run_dir(tmp_path, "cur", summary("c", slower, stats(requests=80, p99=300.0)))
    assert main([str(base), str(cur)]) == 0  # a p99 of 80 requests is no evidence
    text = capsys.readouterr().out
    assert "+50.0% (not judged)" in text
    why = "total p99: not judged: too few samples (80 and 80 requests; needs 500)"
    assert why in text
    assert why in (cur / "compare.md").read_text()
    assert why in (cur / "compare.html").read_text()


def _write_hists(folder: Path, values: dict[str, list[float]]) -> None:
    from panacea_locust.verdict.histogram import LatencyHistogram

    payloads = {}
    for name, ms in values.items():
        h = LatencyHistogram()
        for v in ms:
            h.record(v)
        payloads[name] = h.to_payload()
    (folder / "histograms.json").write_text(json.dumps(payloads), encoding="utf-8")


def test_the_total_is_judged_on_the_baselines_mix(tmp_path: Path) -> None:
    """Same endpoints, same speeds; the current run just called the slow one more often.
    Its raw total p95 jumps, but on the baseline's mix nothing changed: no regression."""
    fast, slow = [10.0 + i % 5 for i in range(2000)], [900.0 + i % 50 for i in range(2000)]
    base_counts, cur_counts = {SEARCH: 1960, ASK: 40}, {SEARCH: 1800, ASK: 200}

    def run(name: str, counts: dict[str, int], total_p95: float) -> Path:
        eps = {
            SEARCH: stats(p95=14.0, p99=14.0, requests=counts[SEARCH]),
            ASK: stats(p95=948.0, p99=949.0, requests=counts[ASK]),
        }
        folder = run_dir(tmp_path, name, summary(name, eps, stats(p95=total_p95, p99=949.0,
                                                                  requests=2000)))  # fmt: skip
        _write_hists(folder, {SEARCH: fast[: counts[SEARCH]], ASK: slow[: counts[ASK]]})
        return folder

    base, cur = run("base", base_counts, 14.0), run("cur", cur_counts, 940.0)
    assert main([str(base), str(cur)]) == 0
    md = (cur / "compare.md").read_text()
    assert "judged on the baseline's endpoint mix" in md
    data = json.loads((cur / "compare.json").read_text())
    assert data["exit_code"] == 0 and data["scopes"][0]["on_baseline_mix"]["p95_ms"]["current"]
    # without the histograms the same runs read as a regression
    (base / "histograms.json").unlink()
    assert main([str(base), str(cur)]) == 1
    # and a real slowdown of an endpoint is one on the baseline's mix too (exit 1, not 4)
    _write_hists(base, {SEARCH: fast[:1960], ASK: slow[:40]})
    _write_hists(cur, {SEARCH: [3 * v for v in fast[:1800]], ASK: slow[:200]})
    assert main([str(base), str(cur)]) == 1


def test_a_latency_regression_on_an_unfit_generator_exits_4(tmp_path: Path) -> None:
    busy = summary("c", {SEARCH: stats(p95=300.0)}, stats(p95=300.0))
    busy["run"]["load_generator"] = {"warnings": ["the hypervisor took 11.2 % ..."]}
    base = run_dir(tmp_path, "base", summary("b", {SEARCH: stats()}))
    cur = run_dir(tmp_path, "cur", busy)
    assert main([str(base), str(cur)]) == 4
    assert "INCONCLUSIVE" in (cur / "compare.md").read_text()
    # more failures are a regression whatever the generator
    busy["total"] = stats(p95=300.0, failures=100)
    cur2 = run_dir(tmp_path, "cur2", busy)
    assert main([str(base), str(cur2)]) == 1


@pytest.mark.parametrize(
    "bad,key",
    [
        ("Infinity", "p95_ms"),
        ("NaN", "p95_ms"),
        ('"fast"', "p95_ms"),
        ("true", "p95_ms"),
        ("-5", "requests"),
    ],
)
def test_a_summary_with_unusable_figures_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bad: str, key: str
) -> None:
    """Found by the fault matrix: these read as 'ok' (exit 0)."""
    base = run_dir(tmp_path, "base", summary("b", dict(BASE)))
    text = json.dumps(summary("c", {SEARCH: stats()}))
    text = text.replace(f'"{key}": {stats()[key]}', f'"{key}": {bad}', 1)
    assert bad in text
    (tmp_path / "cur").mkdir()
    (tmp_path / "cur" / "summary.json").write_text(text)
    assert main([str(base), str(tmp_path / "cur")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and key in err[0] and "summary.json" in err[0]


def test_a_deeply_nested_file_is_bad_input_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = run_dir(tmp_path, "base", summary("b", dict(BASE)))
    (tmp_path / "cur").mkdir()
    (tmp_path / "cur" / "summary.json").write_text("[" * 100_000 + "]" * 100_000)
    assert main([str(base), str(tmp_path / "cur")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0]
