"""``summary.html``: a run's report for people, self-contained (inline CSS, inline SVG charts,
no script, nothing from the network; a Content-Security-Policy forbids any load).

It shows the verdict as ``verdict.decision`` gave it, the SLO rules, the load generator's
health, the key figures, the endpoint table, the run's facts and, from ``timeline.json``,
charts over time (users or target rate, requests per second, failures, p50/p95/p99), with the
stages shaded and the capacity sentence when the run had them. Every key is optional: a
summary written by an older version, or by hand, renders with what it has.

The layout is the Jinja2 template ``templates/summary.html.j2`` (autoescaped); this module
turns the summary into plain strings for it. Pure: no Locust, no gevent.

``python -m panacea_locust.report.html RUN_DIR`` (re)writes a run folder's ``summary.html``
from its ``summary.json`` and, when present, ``timeline.json``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from panacea_locust import __version__
from panacea_locust.report.svg import BAR, STEP, Band, Limit, Series, clock, sparkline, time_chart
from panacea_locust.report.thresholds import rule_result
from panacea_locust.verdict.decision import decide
from panacea_locust.verdict.thresholds import finite_number as _number
from panacea_locust.verdict.thresholds import format_value

SUMMARY_HTML = "summary.html"
TIMELINE_FILE = "timeline.json"

_P50, _P95, _P99 = "#2f855a", "#2b6cb0", "#c05621"
_USERS, _RPS, _TARGET = "#6b46c1", "#2b6cb0", "#4a5568"
_FAILURES, _ACCEPTABLE = "#c53030", "#d69e2e"
_LATENCY = (("p50_ms", "p50", _P50), ("p95_ms", "p95", _P95), ("p99_ms", "p99", _P99))

_BANNERS = {
    "PASS": ("pass", "PASS", "every rule passed"),
    "FAIL": ("fail", "FAIL", "the run did not meet its SLO"),
    "INCONCLUSIVE": ("inconclusive", "INCONCLUSIVE", "the evidence decides neither way"),
    "INTERRUPTED": (
        "inconclusive",
        "INTERRUPTED",
        "stopped by a signal before its end: a partial run proves nothing either way",
    ),
    "NONE": ("none", "NOT JUDGED", "no thresholds configured (set --slo FILE or SLO_FILE)"),
}


# --- reading values that may be missing, null or of the wrong type ---------------------------


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _text(value: Any) -> str:
    return "–" if value is None or value == "" else str(value)


def _breakable(name: str) -> Markup:
    """``name`` escaped, with a line-break opportunity after each ``/`` (long endpoint paths
    wrap between their parts, not inside a word; the text itself is unchanged)."""
    return Markup("/<wbr>").join(name.split("/"))


# --- formatting -------------------------------------------------------------------------------


def _count(value: Any) -> str:
    n = _number(value)
    return "–" if n is None else f"{n:,.0f}"


def _ms(value: Any) -> str:
    n = _number(value)
    if n is None:
        return "–"
    if n >= 100:
        return f"{n:,.0f}"
    return f"{n:.1f}" if n >= 10 else f"{n:.2f}"


def _rps(value: Any) -> str:
    n = _number(value)
    if n is None:
        return "–"
    return f"{n:,.1f}" if n >= 10 else f"{n:.2f}"


def _percent(value: Any) -> str:
    n = _number(value)
    if n is None:
        return "–"
    return f"{n * 100:.2f} %" if n else "0 %"


def _duration(value: Any) -> str:
    n = _number(value)
    if n is None:
        return "–"
    minutes, seconds = divmod(round(n), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min {seconds} s"
    return f"{minutes} min {seconds} s" if minutes else f"{n:.1f} s"


def _acceptable(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{code}: {_count(n)}" for code, n in value.items()) or "–"
    return _count(value) if value is not None else "–"


def _acceptable_total(value: Any) -> float | None:
    """An ``acceptable`` block (``{"404": n}``) or a plain count, as one number."""
    if isinstance(value, Mapping):
        counts = [_number(n) for n in value.values()]
        return sum(n for n in counts if n is not None)
    return _number(value)


# --- the parts of the page --------------------------------------------------------------------


def _verdict(summary: Mapping[str, Any]) -> dict[str, Any]:
    block = summary.get("verdict")
    if not isinstance(block, Mapping) or block.get("outcome") not in _BANNERS:
        block = decide(summary).as_dict()  # an older summary: the verdict its rules give
    css, headline, meaning = _BANNERS[str(block["outcome"])]
    reasons = [str(r) for r in _list(block.get("reasons")) if r is not None]
    code = block.get("exit_code")
    return {
        "css": css,
        "headline": headline,
        "meaning": meaning,
        "reasons": reasons,
        "exit_code": "Locust's own" if code is None else str(code),
    }


def _rules(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for rule in _list(_map(summary.get("thresholds")).get("rules")):
        if not isinstance(rule, Mapping):
            continue
        metric = str(rule.get("metric", ""))
        observed, limit = _number(rule.get("observed")), _number(rule.get("limit"))
        passed = rule.get("passed")
        status = rule.get("status") or (
            "pass" if passed is True else "fail" if passed is False else ""
        )
        window = _map(rule.get("window"))
        start, end = _number(window.get("start_s")), _number(window.get("end_s"))
        result = rule_result({**rule, "status": status}) if status else "–"
        out.append(
            {
                "scope": _text(rule.get("scope")),
                "metric": metric,
                "limit": f"{'≥' if metric == 'min_rps' else '≤'} {format_value(metric, limit)}",
                "observed": "n/a (no requests)"
                if observed is None
                else format_value(metric, observed),
                "samples": f"{_count(rule.get('samples'))} / {_count(rule.get('needed'))}",
                "window": ""
                if start is None and end is None
                else f"{clock(start or 0.0)}–{clock(end) if end is not None else 'end'}",
                "css": {"pass": "pass", "fail": "fail", "insufficient": "insufficient"}.get(
                    str(status), "none"
                ),
                "result": result.split(" (", 1)[0],
                "detail": result.partition(" ")[2] if " (" in result else "",
            }
        )
    return out


def _health(run: Mapping[str, Any]) -> dict[str, Any] | None:
    health = run.get("load_generator")
    if not isinstance(health, Mapping):
        return None
    cpu, steal = (
        _number(health.get("cpu_percent_max")),
        _number(health.get("steal_percent")),
    )
    lag = _number(health.get("loop_lag_p99_ms"))
    facts = [
        ("CPU (busiest Locust process)",
         f"up to {cpu:.0f} % of a core" if cpu is not None else "not sampled (too short a run)"),
        ("Steal time (hypervisor)", f"{steal:.1f} %" if steal is not None else "n/a"),
    ]  # fmt: skip
    if "loop_lag_p99_ms" in health:
        facts.append(("Event loop lag p99", f"{_ms(lag)} ms" if lag is not None else "n/a"))
    workers = _number(health.get("workers_sampled"))
    if workers:
        facts.append(("Workers sampled", _count(workers)))
    warnings = [str(w) for w in _list(health.get("warnings")) if w]
    return {"facts": facts, "warnings": warnings, "fit": not warnings}


def _endpoint_row(name: str, block: Mapping[str, Any], spark: str) -> dict[str, Any]:
    failures = _number(block.get("failures")) or 0
    return {
        "name": _breakable(name),
        "requests": _count(block.get("requests")),
        "failures": _count(block.get("failures")),
        "failure_ratio": _percent(block.get("failure_ratio")),
        "failed": failures > 0,
        "rps": _rps(block.get("rps")),
        "p50": _ms(block.get("p50_ms")),
        "p90": _ms(block.get("p90_ms")),
        "p95": _ms(block.get("p95_ms")),
        "p99": _ms(block.get("p99_ms")),
        "max": _ms(block.get("max_ms")),
        "acceptable": _acceptable(block.get("acceptable")),
        "spark": Markup(spark),
    }


def _intervals(timeline: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    """The timeline's intervals that have a start and an end, in time order."""
    rows = [
        i
        for i in _list(_map(timeline).get("intervals"))
        if isinstance(i, Mapping)
        and _number(i.get("start_s")) is not None
        and _number(i.get("end_s")) is not None
    ]
    return sorted(rows, key=lambda i: float(i["start_s"]))


def _endpoints(
    summary: Mapping[str, Any], intervals: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    rows = []
    for name, block in _map(summary.get("endpoints")).items():
        if not isinstance(block, Mapping):
            continue
        p95 = [_number(_map(_map(i.get("endpoints")).get(name)).get("p95_ms")) for i in intervals]
        spark = sparkline(p95, _P95, f"{name}: p95 per interval, ms")
        rows.append(_endpoint_row(str(name), block, spark))
    return rows


def _failure_row(name: str, block: Mapping[str, Any]) -> dict[str, Any] | None:
    """An endpoint's failures: how many, why, and how long the failed requests took."""
    reasons = _map(block.get("failures_by_reason"))
    took = block.get("failed_ms")
    if not (_number(block.get("failures")) or reasons or isinstance(took, Mapping)):
        return None
    took = _map(took)
    return {
        "name": _breakable(name),
        "failures": _count(block.get("failures")),
        "reasons": [f"{reason}: {_count(n)}" for reason, n in reasons.items()],
        "took": " / ".join(_ms(took.get(k)) for k in ("p50_ms", "p95_ms", "max_ms"))
        if took
        else "–",
    }


def _failures(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = [
        _failure_row(str(name), block)
        for name, block in _map(summary.get("endpoints")).items()
        if isinstance(block, Mapping)
    ]
    return [row for row in rows if row is not None]


def _users_text(users: Mapping[str, Any]) -> str:
    counted = {str(k): _number(v) for k, v in users.items()}
    if not counted:
        return "none recorded"
    text = ", ".join(f"{k} {_count(v)}" for k, v in counted.items())
    everyone = sum(v for v in counted.values() if v is not None)
    return f"{text} ({everyone:,.0f} in all)" if len(counted) > 1 else text


def _facts(summary: Mapping[str, Any]) -> list[tuple[str, str]]:
    run = _map(summary.get("run"))
    source = _map(run.get("data_source"))
    mode = _text(source.get("mode")) if source else "–"
    fallbacks = _map(source.get("fallbacks"))
    if fallbacks:
        mode += " (fallbacks: " + "; ".join(f"{k}: {v}" for k, v in fallbacks.items()) + ")"
    facts = [
        ("Run", _text(run.get("id"))),
        ("Label", _text(run.get("label"))),
        ("Target", _text(run.get("host"))),
        ("Started", _text(run.get("started_at"))),
        ("Ended", _text(run.get("ended_at"))),
        ("Duration", _duration(run.get("duration_s"))),
        ("Users", _users_text(_map(run.get("users")))),
        ("Data source", mode),
    ]
    if run.get("aborted"):
        facts.append(("Stopped early", str(run["aborted"])))
    resent = _map(run.get("connections")).get("stale_resends")
    if resent:
        facts.append(("Requests resent", f"{_count(resent)} (the target closed a kept-alive "
                      "connection under them)"))  # fmt: skip
    return facts


def _figures(summary: Mapping[str, Any], intervals: Sequence[Mapping[str, Any]]) -> list[dict]:
    total, run = _map(summary.get("total")), _map(summary.get("run"))
    peak = [_number(i.get("users")) for i in intervals]
    peak_users = max((u for u in peak if u is not None), default=None)
    if peak_users is None:
        counts = [_number(v) for v in _map(run.get("users")).values()]
        peak_users = sum(c for c in counts if c is not None) if counts else None
    failures = _number(total.get("failures")) or 0
    return [
        {"label": "Requests", "value": _count(total.get("requests")), "note": "", "bad": False},
        {
            "label": "Failures",
            "value": _count(total.get("failures")),
            "note": _percent(total.get("failure_ratio")),
            "bad": failures > 0,
        },
        {
            "label": "Throughput",
            "value": _rps(total.get("rps")),
            "note": "requests/s",
            "bad": False,
        },
        {"label": "p95", "value": _ms(total.get("p95_ms")), "note": "ms", "bad": False},
        {"label": "p99", "value": _ms(total.get("p99_ms")), "note": "ms", "bad": False},
        {"label": "Duration", "value": _duration(run.get("duration_s")), "note": "", "bad": False},
        {"label": "Users", "value": _count(peak_users), "note": "at most", "bad": False},
    ]


def _stages(summary: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [
        s
        for s in _list(summary.get("stages"))
        if isinstance(s, Mapping)
        and _number(s.get("start_s")) is not None
        and _number(s.get("end_s")) is not None
    ]


def _stage_load(stage: Mapping[str, Any]) -> str:
    """``40 users``, ``1 user``, ``20 req/s`` (an arrival-rate stage's target), as the
    capacity sentence says them; ``–`` when the stage gives no load."""
    users, rate = _number(stage.get("users")), _number(stage.get("target_rps"))
    if users is not None:
        return f"{users:,.0f} user" + ("" if users == 1 else "s")
    if rate is not None:
        return f"{rate:,.0f} req/s" if rate == int(rate) else f"{_rps(rate)} req/s"
    return "–"


def _stage_number(stage: Mapping[str, Any], position: int) -> str:
    """The stage's ``index`` (from 1, as the plan counts them), else its position."""
    index = _number(stage.get("index"))
    return f"{index:g}" if index is not None else str(position)


_STAGE_RESULTS = {"held": "held", "broke": "broke", "insufficient": "not judged"}


def _stage_slo(stage: Mapping[str, Any]) -> dict[str, Any] | None:
    """A stage's judgement against the SLO (``stages[].slo``), for a badge and its detail."""
    slo = stage.get("slo")
    if not isinstance(slo, Mapping):
        return None
    status = str(slo.get("status"))
    detail = [str(x) for x in _list(slo.get("broken" if status == "broke" else "unjudged"))]
    return {
        "css": {"held": "pass", "broke": "fail"}.get(status, "insufficient"),
        "result": _STAGE_RESULTS.get(status, status),
        "detail": "; ".join(detail),
        "tone": status,
    }


def _stage_rows(stages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for n, stage in enumerate(stages, start=1):
        total = _map(stage.get("total"))
        rows.append(
            {
                "index": _stage_number(stage, n),
                "slo": _stage_slo(stage),
                "span": f"{clock(float(stage['start_s']))}–{clock(float(stage['end_s']))}",
                "load": _stage_load(stage),
                "requests": _count(total.get("requests")),
                "rps": _rps(total.get("rps")),
                "failures": _count(total.get("failures")),
                "p50": _ms(total.get("p50_ms")),
                "p95": _ms(total.get("p95_ms")),
                "p99": _ms(total.get("p99_ms")),
                "max": _ms(total.get("max_ms")),
            }
        )
    return rows


def _bands(stages: Sequence[Mapping[str, Any]]) -> list[Band]:
    bands = []
    for n, stage in enumerate(stages, start=1):
        number, load, slo = _stage_number(stage, n), _stage_load(stage), _stage_slo(stage)
        short = load.replace(" req/s", "/s").replace(" users", "u").replace(" user", "u")
        start, end = float(stage["start_s"]), float(stage["end_s"])
        note = f"stage {number}: {load}, {clock(start)}–{clock(end)}"
        if slo is not None:
            note += f"; SLO {slo['result']}" + (f": {slo['detail']}" if slo["detail"] else "")
        bands.append(
            Band(
                start,
                end,
                f"stage {number} · {load}",
                f"S{number} {short}",
                note,
                slo["tone"] if slo is not None else "",
            )
        )
    return bands


def _limits(summary: Mapping[str, Any], metrics: Sequence[tuple[str, str, str]]) -> list[Limit]:
    """The total's rules on the charted metrics, as limit lines; a windowed rule's line marks
    the window that decided it (the worst one)."""
    out = []
    colours = {key: colour for key, _, colour in metrics}
    names = {key: name for key, name, _ in metrics}
    for rule in _list(_map(summary.get("thresholds")).get("rules")):
        if not isinstance(rule, Mapping) or rule.get("scope") != "total":
            continue
        metric, limit = str(rule.get("metric")), _number(rule.get("limit"))
        if metric not in colours or limit is None:
            continue
        window = _map(rule.get("window"))
        start, end = _number(window.get("start_s")), _number(window.get("end_s"))
        comparator = "≥" if metric == "min_rps" else "≤"
        unit = " ms" if metric.endswith("_ms") else "/s"
        label = f"{names[metric]} {comparator} {limit:g}{unit}"
        mark = (start, end) if start is not None and end is not None else None
        note = f"{label}: worst window {clock(mark[0])}–{clock(mark[1])}" if mark else ""
        out.append(Limit(limit, label, colours[metric], mark, note))
    return out


def _series(
    intervals: Sequence[Mapping[str, Any]], key: str, read: Any = None
) -> list[tuple[float, float, float | None]]:
    read = read or _number
    return [
        (float(i["start_s"]), float(i["end_s"]), read(_map(i.get("total")).get(key)))
        for i in intervals
    ]


def _charts(
    summary: Mapping[str, Any],
    intervals: Sequence[Mapping[str, Any]],
    stages: Sequence[Mapping[str, Any]],
) -> list[dict[str, Any]]:
    if not intervals:
        return []
    ends = [float(i["end_s"]) for i in intervals] + [float(s["end_s"]) for s in stages]
    duration = max(ends)
    bands = _bands(stages)
    target = [
        (float(s["start_s"]), float(s["end_s"]), _number(s.get("target_rps"))) for s in stages
    ]
    has_target = any(v is not None for _, _, v in target)
    target_series = Series("target rate", _TARGET, target, STEP, dashed=True)
    users = [(float(i["start_s"]), float(i["end_s"]), _number(i.get("users"))) for i in intervals]

    def chart(title: str, unit: str, series: list[Series], limits: list[Limit]) -> dict:
        svg = time_chart(title, unit, series, duration_s=duration, bands=bands, limits=limits)
        return {"title": title, "svg": Markup(svg)}

    charts = []
    if any(v is not None for _, _, v in users):
        charts.append(chart("Users", "users", [Series("users", _USERS, users, STEP)], []))
    elif has_target:
        charts.append(chart("Target rate", "requests/s", [target_series], []))
    throughput = [Series("requests/s", _RPS, _series(intervals, "rps"))]
    if has_target:
        throughput.append(target_series)
    charts.append(
        chart(
            "Requests per second",
            "requests/s",
            throughput,
            _limits(summary, [("min_rps", "min rps", _FAILURES)]),
        )
    )
    charts.append(
        chart(
            "Failures and acceptable 4xx per interval",
            "requests",
            [
                Series("failures", _FAILURES, _series(intervals, "failures"), BAR),
                Series(
                    "acceptable 4xx",
                    _ACCEPTABLE,
                    _series(intervals, "acceptable", _acceptable_total),
                    BAR,
                ),
            ],
            [],
        )
    )
    charts.append(
        chart(
            "Latency of answered requests",
            "ms",
            [Series(name, colour, _series(intervals, key)) for key, name, colour in _LATENCY],
            _limits(summary, _LATENCY),
        )
    )
    return charts


def _view(summary: Mapping[str, Any], timeline: Mapping[str, Any] | None) -> dict[str, Any]:
    run = _map(summary.get("run"))
    intervals = _intervals(timeline)
    stages = _stages(summary)
    total = _map(summary.get("total"))
    interval_s = _number(_map(timeline).get("interval_s"))
    capacity = _map(summary.get("capacity")).get("text")
    rules = _rules(summary)
    return {
        "title": f"Load test {run.get('label') or ''}".strip(),
        "run_id": _text(run.get("id")),
        "host": _text(run.get("host")),
        "verdict": _verdict(summary),
        "capacity": str(capacity) if capacity else "",
        "aborted": str(run["aborted"]) if run.get("aborted") else "",
        "figures": _figures(summary, intervals),
        "rules": rules,
        "has_windows": any(r["window"] for r in rules),
        "health": _health(run),
        "charts": _charts(summary, intervals, stages),
        "interval_s": f"{interval_s:g}" if interval_s else "",
        "timeline_given": timeline is not None,
        "stages": _stage_rows(stages),
        "stages_judged": any(_stage_slo(s) is not None for s in stages),
        "endpoints": _endpoints(summary, intervals),
        "total": _endpoint_row("total", total, "") if total else None,
        "has_sparks": len(intervals) > 1,
        "failures": _failures(summary),
        "failures_total": _failure_row("total", total) if total else None,
        "facts": _facts(summary),
        "version": __version__,
    }


@cache
def template(name: str) -> jinja2.Template:
    """One of the report's Jinja2 templates (``templates/``), HTML-escaped, strict about
    undefined values; shared by summary.html and history.html."""
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("panacea_locust.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return environment.get_template(name)


def render_summary_html(
    summary: Mapping[str, Any], timeline: Mapping[str, Any] | None = None
) -> str:
    """``summary.html``'s text for a results-contract summary and, when given, the run's
    timeline (``timeline.json``: ``{"interval_s", "intervals": [...]}``)."""
    return template("summary.html.j2").render(**_view(summary, timeline))


def write_summary_html(
    run_dir: Path, summary: Mapping[str, Any], timeline: Mapping[str, Any] | None = None
) -> Path:
    """Write ``run_dir/summary.html`` atomically (a reader never sees half a file)."""
    path = run_dir / SUMMARY_HTML
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(render_summary_html(summary, timeline), encoding="utf-8")
    os.replace(tmp, path)
    return path


def main(argv: Sequence[str]) -> int:
    """``python -m panacea_locust.report.html RUN_DIR``: (re)write a run's ``summary.html``."""
    if len(argv) != 1:
        print("usage: python -m panacea_locust.report.html RUN_DIR", file=sys.stderr)
        return 2
    run_dir = Path(argv[0])
    try:
        summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
        timeline_path = run_dir / TIMELINE_FILE
        timeline = (
            json.loads(timeline_path.read_text(encoding="utf-8"))
            if timeline_path.exists()
            else None
        )
    except (OSError, ValueError) as exc:
        print(f"{run_dir}: cannot read the run's results: {exc}", file=sys.stderr)
        return 2
    if not isinstance(summary, Mapping):
        print(f"{run_dir / 'summary.json'}: not a JSON object", file=sys.stderr)
        return 2
    print(write_summary_html(run_dir, summary, timeline if isinstance(timeline, Mapping) else None))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
