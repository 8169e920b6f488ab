"""``summary.html``: the renderer on its own (escaping, missing and null values, the banners,
the charts) and the page in a real headless Chromium (Debian's ``/usr/bin/chromium``, driven by
Playwright; never a browser of Playwright's own): it loads nothing, logs no error, and shows the
verdict, the rules and the charts.

Without Chromium (or Playwright) the browser tests skip with the reason, unless ``CI=true`` or
``PANACEA_REQUIRE_BROWSER=1``: then they fail. ``make test`` installs Chromium
(``scripts/install-chromium.sh``).
"""

from __future__ import annotations

import html
import json
import random
import re
from pathlib import Path
from typing import Any

import pytest

from panacea_locust.contract import ENDPOINTS
from panacea_locust.report.html import (
    SUMMARY_HTML,
    TIMELINE_FILE,
    main,
    render_summary_html,
    write_summary_html,
)
from panacea_locust.verdict.decision import decide
from panacea_locust.verdict.histogram import HistogramSet, LatencyHistogram
from panacea_locust.verdict.results import EndpointCounts, build_summary, metrics
from panacea_locust.verdict.thresholds import parse_slo

ROOT = Path(__file__).resolve().parent.parent

HOSTILE = '<script>alert("x")</script>'
HOSTILE_IMG = "<img src=x onerror=alert(1)>"


# --- a realistic run, from the project's own histograms, SLO rules and verdict ----------------

INTERVAL_S = 5
STAGE_USERS = (10, 20, 40, 80)
STAGE_S = 60
ASK_AI = "/api/v1/ai/ask-ai"
SEARCH = "/api/v1/logs/search"
SLO = {
    "total": {
        "p95_ms": 800,
        "p99_ms": 1500,
        "max_failure_ratio": 0.01,
        "max_acceptable_4xx_ratio": 0.2,
    },
    "endpoints": {SEARCH: {"p95_ms": 600}, ASK_AI: {"p99_ms": 3000}},
}


def _latency(rng: random.Random, users: int, slow: float) -> float:
    """Milliseconds: flat up to 40 users, then queueing sets in."""
    queueing = 1.0 if users <= 40 else 1.0 + (users - 40) / 6
    return rng.lognormvariate(3.7, 0.55) * slow * queueing


def synthetic_run(failing: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    """A 4-minute step run (10, 20, 40, 80 users, a minute each) over the twelve endpoints:
    ``(summary, timeline)`` as the run would write them, verdict and rules included."""
    rng = random.Random(7)
    names = [e.path for e in ENDPOINTS]
    weights = {e.path: e.weight for e in ENDPOINTS}
    slowness = {name: 1.0 for name in names} | {ASK_AI: 6.0, "/api/v1/ai/report_summary": 4.0}
    whole, failed = HistogramSet(), HistogramSet()
    counts = {name: EndpointCounts() for name in names}
    acceptable: dict[str, dict[str, int]] = {name: {} for name in names}
    intervals, stages = [], []
    duration = STAGE_S * len(STAGE_USERS)
    for index, users in enumerate(STAGE_USERS):
        stage_hist, stage_counts = LatencyHistogram(), EndpointCounts()
        for start in range(index * STAGE_S, (index + 1) * STAGE_S, INTERVAL_S):
            total_hist, total_counts, interval_ok = LatencyHistogram(), EndpointCounts(), 0
            per_endpoint: dict[str, Any] = {}
            for name in names:
                hist, c = LatencyHistogram(), EndpointCounts()
                n = max(1, round(users * weights[name] / 12 * INTERVAL_S * 0.35))
                for _ in range(n):
                    ms = _latency(rng, users, slowness[name])
                    c.requests += 1
                    if failing and name == ASK_AI and users == 80 and rng.random() < 0.5:
                        c.failures += 1
                        c.failures_by_reason["HTTP 5xx"] = c.failures_by_reason.get(
                            "HTTP 5xx", 0
                        ) + 1  # fmt: skip
                        failed.record(name, ms)
                        failed.record("total", ms)
                        continue
                    if name == SEARCH and rng.random() < 0.05:
                        acceptable[name]["404"] = acceptable[name].get("404", 0) + 1
                        interval_ok += 1
                    hist.record(ms)
                    whole.record(name, ms)
                    whole.record("total", ms)
                c.rps = c.requests / INTERVAL_S
                per_endpoint[name] = _interval_metrics(c, hist, 0)
                total_hist.merge(hist)
                for target in (total_counts, counts[name], stage_counts):
                    target.requests += c.requests
                    target.failures += c.failures
                for reason, k in c.failures_by_reason.items():
                    counts[name].failures_by_reason[reason] = (
                        counts[name].failures_by_reason.get(reason, 0) + k
                    )
            total_counts.rps = total_counts.requests / INTERVAL_S
            stage_hist.merge(total_hist)
            intervals.append(
                {
                    "start_s": start,
                    "end_s": start + INTERVAL_S,
                    "users": users,
                    "total": _interval_metrics(total_counts, total_hist, interval_ok),
                    "endpoints": per_endpoint,
                }
            )
        stage_counts.rps = stage_counts.requests / STAGE_S
        block = metrics(stage_counts, stage_hist, {})
        stages.append(
            {
                "index": index + 1,
                "start_s": index * STAGE_S,
                "end_s": (index + 1) * STAGE_S,
                "users": users,
                "total": block,
            }
        )
    for c in counts.values():
        c.rps = c.requests / duration
    total = EndpointCounts(
        sum(c.requests for c in counts.values()),
        sum(c.failures for c in counts.values()),
        sum(c.requests for c in counts.values()) / duration,
    )
    run = {
        "id": "20250301T120000Z_step",
        "label": "step",
        "host": "http://127.0.0.1:8000",
        "started_at": "2025-03-01T12:00:00Z",
        "ended_at": "2025-03-01T12:04:00Z",
        "duration_s": float(duration),
        "users": {"HeavyUser": 24, "LightUser": 48, "AnalyticsUser": 8},
        "data_source": {"mode": "generated", "loaded": {}, "generated": [], "fallbacks": {}},
        "load_generator": {
            "cpu_percent_max": 61.5,
            "cpu_warning": False,
            "steal_percent": 0.4,
            "loop_lag_p99_ms": 3.2,
            "workers_sampled": 0,
            "warnings": [],
        },
    }
    summary = build_summary(
        run, counts, total, whole, acceptable, tuple(names), failed if failing else None
    )
    summary["thresholds"] = parse_slo(SLO, names).evaluate(summary)
    # the total p95 as a windowed rule (window_s = 60) reports it: judged on its worst
    # window, which it names
    worst = stages[-1]["total"]["p95_ms"]
    summary["thresholds"]["rules"][0].update(
        observed=worst, samples=stages[-1]["total"]["requests"], status="fail", passed=False,
        window={"start_s": 180.0, "end_s": 240.0},
    )  # fmt: skip
    summary["verdict"] = decide(summary).as_dict()
    # each stage judged on the total's latency rules, and the capacity they give
    for stage in stages:
        broken = [
            f"{key.removesuffix('_ms')} was {stage['total'][key]:.0f} ms > {limit}"
            for key, limit in (("p95_ms", 800), ("p99_ms", 1500))
            if stage["total"][key] > limit
        ]
        stage["slo"] = {"status": "broke" if broken else "held", "broken": broken,
                        "unjudged": []}  # fmt: skip
    summary["stages"] = stages
    broke = stages[-1]["slo"]["broken"]
    summary["capacity"] = {
        "held": {"index": 3, "users": 40},
        "broke": {"index": 4, "users": 80, "rules": broke},
        "unjudged": [],
        "text": f"held 40 users; at 80 users {', '.join(broke)}",
    }
    return summary, {"interval_s": INTERVAL_S, "intervals": intervals}


def _interval_metrics(c: EndpointCounts, hist: LatencyHistogram, ok: int) -> dict[str, Any]:
    block = metrics(c, hist, {})
    return {
        "requests": block["requests"],
        "failures": block["failures"],
        "acceptable": {"404": ok} if ok else {},
        "rps": block["rps"],
        "p50_ms": block["p50_ms"],
        "p95_ms": block["p95_ms"],
        "p99_ms": block["p99_ms"],
        "max_ms": block["max_ms"],
    }


@pytest.fixture(scope="module")
def run_data() -> tuple[dict[str, Any], dict[str, Any]]:
    return synthetic_run()


def _fresh(run_data: tuple[dict[str, Any], dict[str, Any]]) -> tuple[dict, dict]:
    summary, timeline = run_data
    return json.loads(json.dumps(summary)), json.loads(json.dumps(timeline))


def _text(page_html: str) -> str:
    """The page's text, tags dropped and whitespace folded (what a reader sees)."""
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page_html)))


# --- the renderer, no browser -----------------------------------------------------------------


def test_the_synthetic_run_fails_on_its_rules(run_data: tuple[dict, dict]) -> None:
    summary, timeline = run_data
    assert summary["verdict"]["outcome"] == "FAIL"
    assert {r["status"] for r in summary["thresholds"]["rules"]} >= {"pass", "fail"}
    assert len(timeline["intervals"]) == 48 and len(summary["stages"]) == 4


def test_full_report_shows_verdict_rules_charts_stages_and_endpoints(
    run_data: tuple[dict, dict],
) -> None:
    summary, timeline = run_data
    page = render_summary_html(summary, timeline)
    text = _text(page)
    assert 'class="banner fail"' in page
    for reason in summary["verdict"]["reasons"]:
        assert reason.replace(">", "&gt;").replace("<", "&lt;") in page
    assert summary["capacity"]["text"] in text
    # every rule is a row, with its result; the windowed one says its window
    assert page.count('<tr class="rule-') == len(summary["thresholds"]["rules"])
    assert "3:00–4:00" in text and "whole run" in text
    assert "insufficient (" in text or "FAIL" in text
    # four charts over time, each with data, the four stages shaded on each
    charts = re.findall(r'<svg class="chart".*?</svg>', page, re.S)
    assert len(charts) == 4
    for chart in charts:
        assert chart.count('class="band"') == 4
        assert '<rect class="series"' in chart or '<polyline class="series"' in chart
        assert "time since start (m:ss)" in chart and "4:00" in chart
    latency = charts[3]
    assert "p95 ≤ 800 ms" in latency and latency.count('class="limit"') == 2
    # the windowed rule's worst window, marked on its limit line
    assert latency.count('class="window"') == 1 and "worst window 3:00–4:00" in latency
    # stages tinted by their SLO result: three held, the last broke
    assert charts[0].count('fill="#e6f6ec"') == 3 and charts[0].count('fill="#fde8e8"') == 1
    stages = re.search(r'<section id="stages">.*?</section>', page, re.S)
    assert stages is not None
    assert stages.group(0).count('<span class="status pass">held</span>') == 3
    assert '<span class="status fail">broke</span>' in stages.group(0)
    assert "p95 was 1069 ms &gt; 800" in stages.group(0)
    assert "stage 4 · 80 users" in charts[0]
    # every endpoint and the total, with a p95 sparkline per endpoint
    for e in ENDPOINTS:
        assert f'<td class="name mono">{e.path.replace("/", "/<wbr>")}</td>' in page
    assert page.count('<svg class="spark"') == len(ENDPOINTS)
    assert '<tr class="total">' in page
    # failures apart: per endpoint, why and how long the failed requests took
    failures = re.search(r'<section id="failures">.*?</section>', page, re.S)
    assert failures is not None
    ask_ai = summary["endpoints"][ASK_AI]
    took = ask_ai["failed_ms"]
    assert f"HTTP 5xx: {ask_ai['failures']}" in failures.group(0)
    assert f"{took['p50_ms']:,.0f} / {took['p95_ms']:,.0f} / {took['max_ms']:,.0f}" in (
        failures.group(0)
    )
    assert failures.group(0).count("<tr") == 3  # header, ask-ai, total
    assert "event loop lag p99".lower() in text.lower() and "3.20 ms" in text
    assert "HeavyUser 24, LightUser 48, AnalyticsUser 8 (80 in all)" in text
    assert "Requests resent" not in text  # none were
    resent, _ = _fresh(run_data)
    resent["run"]["connections"] = {"stale_resends": 4}
    assert "4 (the target closed a kept-alive connection" in _text(render_summary_html(resent))


def test_hostile_names_are_escaped(run_data: tuple[dict, dict]) -> None:
    summary, timeline = _fresh(run_data)
    block = summary["endpoints"].pop(SEARCH)
    block["failures_by_reason"] = {HOSTILE_IMG: 3}
    summary["endpoints"][HOSTILE] = block
    for interval in timeline["intervals"]:
        interval["endpoints"][HOSTILE] = interval["endpoints"].pop(SEARCH)
    summary["run"]["label"] = HOSTILE
    summary["run"]["host"] = HOSTILE_IMG
    summary["run"]["aborted"] = HOSTILE
    summary["run"]["users"] = {HOSTILE: 3}
    summary["run"]["load_generator"]["warnings"] = [HOSTILE]
    summary["verdict"]["reasons"] = [HOSTILE]
    summary["capacity"]["text"] = HOSTILE_IMG
    summary["thresholds"]["rules"][-1]["scope"] = HOSTILE
    summary["stages"][0]["users"] = HOSTILE  # not a number: shown as missing
    page = render_summary_html(summary, timeline)
    assert "<script" not in page.lower() and "<img" not in page.lower()
    assert "onerror=alert(1)>" not in page
    assert page.count("&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") >= 8
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_no_timeline_and_an_empty_one_render_without_charts(run_data: tuple[dict, dict]) -> None:
    summary, _ = run_data
    page = render_summary_html(summary, None)
    assert '<svg class="chart"' not in page and '<svg class="spark"' not in page
    assert "No timeline was recorded for this run" in page
    assert 'class="banner fail"' in page and "Stages" in page  # the rest is still there
    empty = render_summary_html(summary, {"interval_s": 5, "intervals": []})
    assert '<svg class="chart"' not in empty and "The timeline has no intervals" in empty
    junk = render_summary_html(summary, {"intervals": [{"start_s": None}, "x", 3]})
    assert '<svg class="chart"' not in junk


def test_nulls_and_missing_keys_render(run_data: tuple[dict, dict]) -> None:
    summary, timeline = _fresh(run_data)
    for block in [summary["total"], *summary["endpoints"].values()]:
        for key in list(block):
            block[key] = None
    for interval in timeline["intervals"][::3]:
        interval["users"] = None
        interval["total"] = {k: None for k in interval["total"]}
        interval["endpoints"] = None
    for rule in summary["thresholds"]["rules"]:
        rule["observed"] = None
    summary["run"]["load_generator"] = {"cpu_percent_max": None, "steal_percent": None}
    summary["run"]["connections"] = "x"  # the wrong type: no line, no error
    summary["stages"][1]["total"] = None
    summary["capacity"] = None
    page = render_summary_html(summary, timeline)
    assert "n/a (no requests)" in page and "not sampled (too short a run)" in page
    assert page.count('<svg class="chart"') == 4  # gaps in the lines, still charts
    # a bare summary, and one of the wrong types throughout
    bare = render_summary_html({}, None)
    assert 'class="banner none"' in bare and "No thresholds were configured" in bare
    assert "Not recorded for this run" in bare and "No requests were recorded" in bare
    odd = {"run": [], "total": "x", "endpoints": {"a": None}, "thresholds": {"rules": [1]},
           "verdict": {"outcome": "MAYBE"}, "stages": {"x": 1}}  # fmt: skip
    assert 'class="banner none"' in render_summary_html(odd, {"intervals": "x"})


@pytest.mark.parametrize(
    ("outcome", "code", "css", "shown"),
    [
        ("PASS", 0, "pass", "every rule passed"),
        ("FAIL", 3, "fail", "the run did not meet its SLO"),
        ("INCONCLUSIVE", 4, "inconclusive", "the evidence decides neither way"),
        ("NONE", None, "none", "no thresholds configured"),
    ],
)
def test_each_outcome_has_its_banner(
    run_data: tuple[dict, dict], outcome: str, code: int | None, css: str, shown: str
) -> None:
    summary, timeline = _fresh(run_data)
    reasons = ["6 of 9 rules had too few samples to judge"] if outcome == "INCONCLUSIVE" else []
    summary["verdict"] = {"outcome": outcome, "exit_code": code, "reasons": reasons}
    page = render_summary_html(summary, timeline)
    banner = re.search(r'<section class="banner (\w+)".*?</section>', page, re.S)
    assert banner is not None and banner.group(1) == css
    assert shown in banner.group(0)
    headline = "NOT JUDGED" if outcome == "NONE" else outcome
    assert f'<div class="outcome">{headline}</div>' in banner.group(0)
    assert f"<b>{code if code is not None else 'Locust&#39;s own'}</b>" in banner.group(0)
    for reason in reasons:
        assert f"<li>{reason}</li>" in banner.group(0)
    assert f"<title>Load test step · {headline}</title>" in page


def test_a_summary_without_verdict_gets_the_one_its_rules_give(
    run_data: tuple[dict, dict],
) -> None:
    summary, _ = _fresh(run_data)
    expected = summary.pop("verdict")
    page = render_summary_html(summary, None)
    assert f'class="banner {expected["outcome"].lower()}"' in page


def test_target_rate_stages_chart_the_target(run_data: tuple[dict, dict]) -> None:
    summary, timeline = _fresh(run_data)
    for rate, stage in zip((20, 40, 80, 160), summary["stages"], strict=True):
        del stage["users"]
        stage["target_rps"] = rate
    for interval in timeline["intervals"]:
        del interval["users"]
        interval["total"]["acceptable"] = {"404": 2, "400": 1}
    page = render_summary_html(summary, timeline)
    charts = re.findall(r'<svg class="chart".*?</svg>', page, re.S)
    assert 'aria-label="Target rate"' in charts[0]
    assert "target rate" in charts[1] and 'stroke-dasharray="5 4"' in charts[1]
    assert "stage 4 · 160 req/s" in charts[0] and "4 3:00–4:00 160 req/s" in _text(page)
    assert "acceptable 4xx: 3" in charts[2]  # a dict of codes, summed per interval


def test_the_page_references_nothing_outside_itself(run_data: tuple[dict, dict]) -> None:
    page = render_summary_html(*run_data)
    assert re.findall(r"\b(?:src|href|action|srcset|xlink:href)\s*=", page, re.I) == []
    assert "url(" not in page and "@import" not in page and "<script" not in page
    assert "<link" not in page and "<iframe" not in page
    assert "default-src 'none'" in page  # and the browser is told to refuse any load


def test_write_summary_html_is_atomic_and_the_module_rewrites_a_run_folder(
    tmp_path: Path, run_data: tuple[dict, dict], capsys: pytest.CaptureFixture[str]
) -> None:
    summary, timeline = run_data
    path = write_summary_html(tmp_path, summary, timeline)
    assert path == tmp_path / SUMMARY_HTML
    assert sorted(p.name for p in tmp_path.iterdir()) == [SUMMARY_HTML]
    assert path.read_text(encoding="utf-8") == render_summary_html(summary, timeline)
    path.unlink()
    (tmp_path / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    assert main([str(tmp_path)]) == 0
    assert '<svg class="chart"' not in path.read_text(encoding="utf-8")  # no timeline.json
    (tmp_path / TIMELINE_FILE).write_text(json.dumps(timeline), encoding="utf-8")
    assert main([str(tmp_path)]) == 0
    assert path.read_text(encoding="utf-8") == render_summary_html(summary, timeline)
    assert capsys.readouterr().out.strip().endswith(SUMMARY_HTML)
    assert main([str(tmp_path / "missing")]) == 2
    assert main([]) == 2
    (tmp_path / "summary.json").write_text("[1]", encoding="utf-8")
    assert main([str(tmp_path)]) == 2


def test_the_template_ships_with_the_package() -> None:
    try:
        import tomllib
    except ImportError:  # pragma: no cover - Python 3.10
        import tomli as tomllib

    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = data["tool"]["setuptools"]["package-data"]["panacea_locust.report"]
    package = ROOT / "panacea_locust" / "report"
    templates = sorted((package / "templates").iterdir())
    assert templates
    shipped = {p for pattern in patterns for p in package.glob(pattern)}
    assert set(templates) <= shipped
    assert "dependencies" in data["project"] and any(
        d.startswith("jinja2") for d in data["project"]["dependencies"]
    )


def test_the_renderer_loads_neither_locust_nor_gevent() -> None:
    from test_layers import modules_after_importing, of_packages

    loaded = modules_after_importing("panacea_locust.report.html")
    assert "panacea_locust.report.html" in loaded and "jinja2" in loaded
    assert of_packages(loaded, "locust", "gevent") == []


# --- in a real browser ------------------------------------------------------------------------


class Opened:
    """A page opened in the browser, and what it did while loading."""

    def __init__(self, browser: Any, path: Path, width: int = 1280) -> None:
        self.requests: list[str] = []
        self.failed: list[str] = []
        self.errors: list[str] = []
        self.context = browser.new_context(viewport={"width": width, "height": 900})
        self.page = self.context.new_page()
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("requestfailed", lambda r: self.failed.append(f"{r.url} {r.failure}"))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.url = path.resolve().as_uri()
        self.page.goto(self.url, wait_until="load")
        self.page.wait_for_timeout(200)  # late console messages (a CSP report) arrive too

    def close(self) -> None:
        self.context.close()


@pytest.mark.browser
def test_summary_html_in_chromium(
    browser: Any, tmp_path: Path, run_data: tuple[dict, dict]
) -> None:
    summary, timeline = run_data
    path = write_summary_html(tmp_path, summary, timeline)
    opened = Opened(browser, path)
    try:
        page = opened.page
        assert opened.errors == []
        assert opened.failed == []
        assert opened.requests == [opened.url]  # the file itself, nothing else
        banner = page.locator("#verdict")
        assert banner.is_visible()
        assert banner.locator(".outcome").inner_text() == "FAIL"
        assert "rules broken" in banner.inner_text()
        colour = banner.evaluate("e => getComputedStyle(e).borderTopColor")
        assert colour == "rgb(197, 48, 48)"  # the fail red
        broken = page.locator("#rules tr.rule-fail")
        assert broken.count() == 2
        for row, metric in zip((broken.nth(0), broken.nth(1)), ("p95_ms", "p99_ms"), strict=True):
            assert row.is_visible()
            assert re.split(r"\s+", row.inner_text().strip())[:2] == ["total", metric]
            assert row.locator(".status").inner_text() == "FAIL"
        row = page.locator("#rules tr", has_text="max_failure_ratio")
        assert row.is_visible() and "insufficient (" in row.inner_text()
        charts = page.locator("svg.chart")
        assert charts.count() == 4
        for i in range(4):
            chart = charts.nth(i)
            chart.scroll_into_view_if_needed()
            assert chart.is_visible()
            box = chart.bounding_box()
            assert box is not None and box["width"] > 400 and box["height"] > 150
            assert chart.locator(".series").count() >= 1
        assert page.locator("#capacity").is_visible()
        assert page.locator("#endpoints tr", has_text="/api/v1/logs/search").is_visible()
        # nothing wider than the window: the page reads without scrolling sideways
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0
        page.screenshot(path=str(tmp_path / "summary.png"), full_page=True)
        assert (tmp_path / "summary.png").stat().st_size > 20_000
    finally:
        opened.close()


@pytest.mark.browser
def test_summary_html_on_a_narrow_screen_and_without_timeline(
    browser: Any, tmp_path: Path, run_data: tuple[dict, dict]
) -> None:
    summary, _ = _fresh(run_data)
    summary["verdict"] = {
        "outcome": "INCONCLUSIVE",
        "exit_code": 4,
        "reasons": ["6 of 9 rules had too few samples to judge: total p99_ms (17 of 500 requests)"],
    }
    path = write_summary_html(tmp_path, summary, None)
    opened = Opened(browser, path, width=420)
    try:
        page = opened.page
        assert opened.errors == [] and opened.failed == [] and opened.requests == [opened.url]
        assert page.locator("#verdict .outcome").inner_text() == "INCONCLUSIVE"
        assert page.locator("svg.chart").count() == 0
        assert page.get_by_text("No timeline was recorded").is_visible()
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0  # wide tables scroll in their own box, not the page
        page.screenshot(path=str(tmp_path / "summary-narrow.png"), full_page=True)
    finally:
        opened.close()


@pytest.mark.browser
def test_the_browser_checks_can_fail(browser: Any, tmp_path: Path) -> None:
    """A page that loads a stylesheet and runs a broken script is caught by the same checks."""
    page_html = render_summary_html({}, None).replace(
        "</head>",
        '<link rel="stylesheet" href="missing.css"><script>undefinedFunction()</script></head>',
    )
    path = tmp_path / "planted.html"
    path.write_text(page_html, encoding="utf-8")
    opened = Opened(browser, path)
    try:
        assert opened.errors != []  # the CSP refused both: reported on the console
        assert len(opened.requests) >= 1
        loose = tmp_path / "loose.html"
        loose.write_text(
            page_html.replace('<meta http-equiv="Content-Security-Policy"', "<meta x"),
            encoding="utf-8",
        )
        second = Opened(browser, loose)
        try:
            assert any(u.endswith("missing.css") for u in second.requests)
            assert second.failed != []
            assert any("undefinedFunction" in e for e in second.errors)
        finally:
            second.close()
    finally:
        opened.close()


# --- the SVG helpers --------------------------------------------------------------------------


def test_axis_ticks_and_clock() -> None:
    from panacea_locust.report.svg import clock, compact, nice_ticks, time_ticks

    assert nice_ticks(87) == [0, 20, 40, 60, 80, 100]
    assert nice_ticks(4000) == [0, 1000, 2000, 3000, 4000]
    assert nice_ticks(0) == [0.0, 1.0] and nice_ticks(float("nan")) == [0.0, 1.0]
    assert nice_ticks(0.3)[-1] >= 0.3
    assert time_ticks(240) == [0, 30, 60, 90, 120, 150, 180, 210, 240]
    assert len(time_ticks(7 * 3600)) <= 9 and time_ticks(0) == [0.0]
    assert [clock(s) for s in (0, 65, 3600, 3725.4)] == ["0:00", "1:05", "1:00:00", "1:02:05"]
    assert [compact(v) for v in (0, 2.5, 40, 1500, 20000, 3e6)] == [
        "0", "2.5", "40", "1.5k", "20k", "3M",
    ]  # fmt: skip


def test_time_chart_gaps_dots_narrow_bands_and_a_limit_far_above() -> None:
    from panacea_locust.report.svg import Band, Limit, Series, time_chart

    points = [(0, 5, 10.0), (5, 10, 12.0), (10, 15, None), (15, 20, 11.0), (20, 25, None)]
    bands = [Band(i, i + 1, f"stage {i} · many users", f"S{i}", f"stage {i}") for i in range(25)]
    limit = Limit(500.0, "p95 ≤ 500 ms", "#000")
    chart = time_chart("t", "ms", [Series("p95", "#123", points)], duration_s=25, bands=bands,
                       limits=[limit])  # fmt: skip
    assert chart.count("<polyline") == 1 and chart.count("<circle") == 1  # 2 points, then 1
    assert chart.count('class="band"') == 25 and "stage 3 · many users" not in chart
    assert "p95 ≤ 500 ms (above the chart)" in chart and 'class="limit"' not in chart
    assert nice_ticks_top(chart) < 100  # the chart is scaled to the data, not to the limit
    near = time_chart("t", "ms", [Series("p95", "#123", points)], duration_s=25,
                      limits=[Limit(20.0, "p95 ≤ 20 ms", "#000")])  # fmt: skip
    assert 'class="limit"' in near and "(above the chart)" not in near
    empty = time_chart("t", "ms", [Series("p95", "#123", [(0, 5, None)])], duration_s=5)
    assert "no data" in empty and "<polyline" not in empty


def nice_ticks_top(chart: str) -> float:
    """The highest y-axis label of a chart (the labels right-aligned left of the plot)."""
    labels = re.findall(r'text-anchor="end" fill="#718096">([0-9.k]+)</text>', chart)
    return max(float(x.replace("k", "e3")) for x in labels)
