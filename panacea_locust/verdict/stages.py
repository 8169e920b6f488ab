"""The stages of a shaped run: the stage list's syntax, what each stage measured, the capacity.

A run with a load shape (``shapes.py``: step or spike) is a sequence of stages: 5 users for a
minute, then 10, then 25. Its totals mix them; ``summary.json`` ``stages`` tells them apart and
``capacity`` names the last stage whose SLO rules held and the first that broke them.

Pure: no Locust, no gevent (the ``panacea-locust run`` command checks ``--stages`` with
``parse_stages`` without loading Locust, which patches the standard library).

Input, as plain data:
- the plan: one mapping per stage, ``{"index", "start_s", "end_s", "users"}`` (``"target_rps"``
  instead of ``"users"`` for an arrival-rate stage), seconds from the start of the run, as
  ``shapes.describe_stages`` gives it; ``index`` counts from 1, as the messages about
  ``LOAD_SHAPE_STAGES`` do;
- the measurements: ``(start_s, end_s, counts)`` per interval, consecutive stretches of the
  run, as ``Timeline.spans`` gives them (``verdict/timeline.py``; this module does not import
  it): ``counts`` has the latency histograms of the answered requests by request name
  (``LatencyHistogram`` or the timeline's ``SparseHistogram``), the failed requests by name
  and the acceptable 4xx by name and status code (:class:`Counts`; :class:`Interval` is a
  plain one).

Decisions:
- An interval belongs to the stage its middle falls in; an interval outside every stage (the
  shutdown after the last one) belongs to none. With stages a whole number of intervals long,
  the boundaries match exactly. A stage includes its ramp: the seconds in which users are still
  being started or stopped towards its count are part of it.
- A stage's percentiles are those of the exact merge of its intervals' histograms (one bucket
  layout), never an average of interval percentiles; its ``rps`` is its requests over the
  seconds its intervals cover. Only stages the run reached (at least one interval) are listed.
- A stage is judged by the SLO's rules (``Rule.result``, the thresholds' evidence rules: a p95
  needs 100 requests, a ratio a confidence interval clear of its limit) on a stage-shaped
  summary. Two exceptions, because a stage is a part of a run: ``min_rps`` is not judged per
  stage (a step starts low by design; the run's total judges throughput), and
  ``require_samples`` does not apply (a short stage without evidence neither holds nor breaks).
- A stage ``held`` when every rule passed, ``broke`` when any rule failed, and is
  ``insufficient`` otherwise: neither. ``capacity``: ``broke`` is the first stage that broke;
  ``held`` the highest load among the stages that held before it (all stages when none broke),
  the latest of equals.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeAlias

from panacea_locust.verdict.histogram import (
    TOTAL,
    HistogramSet,
    LatencyHistogram,
    SparseHistogram,
)
from panacea_locust.verdict.results import PERCENTILES
from panacea_locust.verdict.thresholds import (
    FAIL,
    INSUFFICIENT,
    PASS,
    SLO,
    TOTAL_SCOPE,
    WORKLOAD_KEYS,
    evidence,
)

#: a stage's status under the SLO
HELD, BROKE = "held", "broke"
#: rules not judged per stage (see the module docstring)
NOT_PER_STAGE = frozenset({"min_rps", *WORKLOAD_KEYS})
#: the keys of a stage's ``total`` in ``summary.json``
STAGE_TOTAL_KEYS: tuple[str, ...] = (
    "requests", "failures", "failure_ratio", "failures_by_reason", "rps",
    "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms",
)  # fmt: skip
#: what a stage holds constant: users (step, spike) or an arrival rate
LOAD_KEYS: tuple[str, ...] = ("users", "target_rps")
STAGES_VAR = "LOAD_SHAPE_STAGES"


class ShapeError(ValueError):
    """A bad shape setting; ``str(err)`` is one line naming the variable and what is allowed."""


# --- the stage list's syntax -----------------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    """Hold ``users`` for ``duration_s``, changing towards it at ``spawn_rate`` users/s."""

    users: int
    duration_s: float
    spawn_rate: float | None = None  # None: the shape's default rate


_DURATION = re.compile(
    r"^(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m)?"
    r"(?:(?P<s>\d+(?:\.\d+)?)s?)?$"
)
_STAGE = re.compile(r"^(?P<users>\d+)(?:@(?P<rate>\d+(?:\.\d+)?))?:(?P<duration>.+)$")
_REVERSED = re.compile(r"^(?P<duration>[0-9.hms]*[hms]):(?P<users>\d+)$")


def parse_duration(text: str) -> float | None:
    """Seconds in ``90``, ``90s``, ``1.5m``, ``1h30m``..., or None if not a duration."""
    match = _DURATION.match(text.strip().lower())
    if match is None or not any(match.groupdict().values()):
        return None
    h, m, s = (float(match.group(k) or 0) for k in ("h", "m", "s"))
    return h * 3600 + m * 60 + s


def parse_stages(spec: str, source: str = STAGES_VAR) -> list[Stage]:
    """Parse a stage list ``USERS[@RATE]:DURATION,...`` (e.g. ``10:30s,25:1m,50@5:2m``);
    ``source`` names the setting in the one-line ``ShapeError`` (``--stages`` for the CLI)."""
    parts = [p.strip() for p in spec.split(",")]
    if not spec.strip() or not all(parts):
        raise ShapeError(
            f"{source} = {spec!r} must be a comma-separated list of "
            f"USERS[@RATE]:DURATION, e.g. 10:30s,25:1m,50@5:2m"
        )
    stages = []
    for number, part in enumerate(parts, 1):
        compact = part.replace(" ", "")
        match = _STAGE.match(compact)
        duration = parse_duration(match.group("duration")) if match else None
        if match is None or duration is None:
            reversed_ = _REVERSED.match(compact.lower())
            hint = (
                f"; users come first: {reversed_.group('users')}:{reversed_.group('duration')}"
                if reversed_ and parse_duration(reversed_.group("duration"))
                else ""
            )
            raise ShapeError(
                f"{source}: stage {number} {part!r} is not "
                f"USERS[@RATE]:DURATION (e.g. 50@5:2m, durations like 90s, 5m, 1h){hint}"
            )
        if duration <= 0:
            raise ShapeError(f"{source}: stage {number} {part!r} must last more than 0 seconds")
        rate = float(match.group("rate")) if match.group("rate") else None
        if rate is not None and rate <= 0:
            raise ShapeError(f"{source}: stage {number} {part!r} needs a spawn rate > 0 after '@'")
        stages.append(Stage(users=int(match.group("users")), duration_s=duration, spawn_rate=rate))
    return stages


# --- measuring the stages ----------------------------------------------------------------------


#: one latency histogram: the dense form (a ``HistogramSet``'s) or the timeline's sparse one
Histogram: TypeAlias = LatencyHistogram | SparseHistogram


class Counts(Protocol):
    """What an interval holds, by request name, as the timeline's intervals hold it."""

    @property
    def answered(self) -> Mapping[str, Histogram] | HistogramSet:
        """Latency histograms of the requests that got an answer (a ``total`` entry, if any,
        is ignored: the total is always their merge)."""

    @property
    def failures(self) -> Mapping[str, int]:
        """Failed requests (a name's requests are its answered count plus these)."""

    @property
    def acceptable(self) -> Mapping[str, Mapping[str, int]]:
        """Acceptable 4xx by status code."""

    @property
    def reasons(self) -> Mapping[str, Mapping[str, int]]:
        """The failures' reasons (the load generator's own tell apart by theirs)."""


@dataclass(frozen=True)
class Interval:
    """Plain :class:`Counts`, for a caller without a timeline (and for tests)."""

    answered: Mapping[str, Histogram] | HistogramSet
    failures: Mapping[str, int] = field(default_factory=dict)
    acceptable: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    reasons: Mapping[str, Mapping[str, int]] = field(default_factory=dict)


#: an interval with its span, seconds from the start: ``(start_s, end_s, counts)``, as
#: ``Timeline.spans`` gives them
Span: TypeAlias = tuple[float, float, Counts]


def load_of(stage: Mapping[str, Any]) -> tuple[str, float] | None:
    """What a stage holds constant: ``("users", 40)`` or ``("target_rps", 20.0)``; None if
    neither is given."""
    for key in LOAD_KEYS:
        value = stage.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return key, value
    return None


def load_text(stage: Mapping[str, Any]) -> str:
    """``40 users``, ``1 user``, ``20 req/s``; ``stage 3`` when the stage gives no load."""
    load = load_of(stage)
    if load is None:
        return f"stage {stage.get('index')}"
    key, value = load
    if key == "users":
        return f"{value:g} user" + ("" if value == 1 else "s")
    return f"{value:g} req/s"


def _stage_of(plan: Sequence[Mapping[str, Any]], start_s: float, end_s: float) -> int | None:
    middle = (start_s + end_s) / 2.0
    for position, stage in enumerate(plan):
        if float(stage["start_s"]) <= middle < float(stage["end_s"]):
            return position
    return None


def _sparse(hist: Histogram) -> SparseHistogram:
    return hist if isinstance(hist, SparseHistogram) else SparseHistogram.of(hist)


def _block(
    hist: SparseHistogram,
    failures: int,
    acceptable: Mapping[str, int],
    reasons: Mapping[str, int],
    seconds: float,
) -> dict[str, Any]:
    """A scope's metric block, with ``summary.json``'s keys and rounding (what rules read:
    the reasons tell the load generator's own failures apart)."""
    requests = hist.count + failures
    has = hist.count > 0
    block: dict[str, Any] = {
        "requests": requests,
        "failures": failures,
        "failure_ratio": round(failures / requests, 6) if requests else 0.0,
        "failures_by_reason": dict(sorted(reasons.items())),
        "acceptable": dict(sorted(acceptable.items())),
        "rps": round(requests / seconds, 3) if seconds > 0 else 0.0,
    }
    for key, q in PERCENTILES:
        block[key] = round(hist.percentile(q), 3) if has else None
    block["max_ms"] = round(hist.max_ms, 3) if has else None
    return block


def _add(into: dict[str, int], counted: Mapping[str, int]) -> None:
    """Add counts by key, leaving out the keys counted zero."""
    for key, n in counted.items():
        if n:
            into[key] = into.get(key, 0) + n


def stage_summary(spans: Sequence[Span], endpoint_order: Sequence[str] = ()) -> dict[str, Any]:
    """A summary-shaped ``{"total": ..., "endpoints": {...}}`` of some intervals, what the
    SLO's rules judge: each scope's histogram is the exact merge of the intervals' own, its
    ``rps`` its requests over the seconds the intervals cover."""
    merged: dict[str, SparseHistogram] = {}
    failures: dict[str, int] = {}
    acceptable: dict[str, dict[str, int]] = {}
    reasons: dict[str, dict[str, int]] = {}
    seconds = 0.0
    for start_s, end_s, counts in spans:
        seconds += max(0.0, end_s - start_s)
        answered = counts.answered
        for name in answered:
            if name != TOTAL and answered[name].count:
                merged.setdefault(name, SparseHistogram()).merge(_sparse(answered[name]))
        _add(failures, counts.failures)
        for into, source in ((acceptable, counts.acceptable), (reasons, counts.reasons)):
            for name, counted in source.items():
                _add(into.setdefault(name, {}), counted)
    names = [n for n in endpoint_order if n in merged or n in failures]
    names += sorted(n for n in {*merged, *failures} if n not in names)
    total = SparseHistogram()
    total_acceptable: dict[str, int] = {}
    total_reasons: dict[str, int] = {}
    endpoints: dict[str, Any] = {}
    for name in names:
        hist = merged.get(name) or SparseHistogram()
        codes, why = acceptable.get(name, {}), reasons.get(name, {})
        endpoints[name] = _block(hist, failures.get(name, 0), codes, why, seconds)
        total.merge(hist)
        _add(total_acceptable, codes)
        _add(total_reasons, why)
    return {
        "total": _block(total, sum(failures.values()), total_acceptable, total_reasons, seconds),
        "endpoints": endpoints,
    }


def judge_stage(summary: Mapping[str, Any], slo: SLO) -> dict[str, Any]:
    """A stage's ``slo`` entry: ``status`` held, broke or insufficient, the broken rules and
    the rules without enough evidence, as text (rules of the module docstring)."""
    results = [
        replace(rule, require_samples=False).result(summary)
        for rule in slo.rules
        if rule.metric not in NOT_PER_STAGE
    ]
    broken = [r for r in results if r["status"] == FAIL]
    unjudged = [r for r in results if r["status"] == INSUFFICIENT]
    if broken:
        status = BROKE
    elif results and all(r["status"] == PASS for r in results):
        status = HELD
    else:
        status = INSUFFICIENT
    return {
        "status": status,
        "broken": [rule_text(r) for r in broken],
        "unjudged": [f"{_rule_name(r)} ({evidence(r)})" for r in unjudged],
    }


def build_stages(
    plan: Sequence[Mapping[str, Any]],
    spans: Sequence[Span],
    slo: SLO | None = None,
    endpoint_order: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """``summary.json`` ``stages``: one entry per stage of ``plan`` the run reached (an
    interval's middle in it), with its total and, given an SLO, its ``slo`` entry
    (``judge_stage``). ``spans``: ``(start_s, end_s, counts)`` per interval, e.g.
    ``Timeline.spans(end_s)``."""
    grouped: list[list[Span]] = [[] for _ in plan]
    for span in spans:
        position = _stage_of(plan, span[0], span[1])
        if position is not None:
            grouped[position].append(span)
    stages = []
    for stage, members in zip(plan, grouped, strict=True):
        if not members:
            continue
        summary = stage_summary(members, endpoint_order)
        entry: dict[str, Any] = {
            "index": stage.get("index"),
            "start_s": stage["start_s"],
            "end_s": stage["end_s"],
        }
        load = load_of(stage)
        if load is not None:
            entry[load[0]] = load[1]
        entry["total"] = {key: summary["total"][key] for key in STAGE_TOTAL_KEYS}
        if slo is not None:
            entry["slo"] = judge_stage(summary, slo)
        stages.append(entry)
    return stages


# --- capacity ---------------------------------------------------------------------------------


def _rule_name(result: Mapping[str, Any]) -> str:
    metric = str(result.get("metric", ""))
    name = {"max_failure_ratio": "failure ratio", "max_acceptable_4xx_ratio": "acceptable 4xx "
            "ratio"}.get(metric, metric.removesuffix("_ms"))  # fmt: skip
    scope = result.get("scope")
    return name if scope == TOTAL_SCOPE else f"{scope} {name}"


def _ms(value: float) -> str:
    return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


def _percent(value: float) -> str:
    return f"{value * 100:.2f}".rstrip("0").rstrip(".") + " %"


def rule_text(result: Mapping[str, Any]) -> str:
    """A broken rule as people read it: ``p95 was 812 ms > 800``,
    ``/api/v1/ai/ask-ai p99 was 3120 ms > 3000``, ``failure ratio was 3.1 % > 1 %``."""
    observed, limit = result.get("observed"), float(result.get("limit") or 0.0)
    metric = str(result.get("metric", ""))
    comparator = "<" if metric == "min_rps" else ">"
    if observed is None:
        return f"{_rule_name(result)} had no requests"
    if metric.endswith("_ms"):
        return f"{_rule_name(result)} was {_ms(observed)} {comparator} {limit:g}"
    if metric.endswith("_ratio"):
        return f"{_rule_name(result)} was {_percent(observed)} {comparator} {_percent(limit)}"
    return f"{_rule_name(result)} was {observed:g}/s {comparator} {limit:g}/s"


def _ref(stage: Mapping[str, Any]) -> dict[str, Any]:
    ref: dict[str, Any] = {"index": stage.get("index")}
    load = load_of(stage)
    if load is not None:
        ref[load[0]] = load[1]
    return ref


def capacity(stages: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """``summary.json`` ``capacity`` from ``build_stages``'s judged stages: ``held`` (index,
    load), ``broke`` (index, load, ``rules``: the broken rules' texts), ``unjudged`` (the
    stages that neither held nor broke) and ``text``, e.g. ``held 40 users; at 60 users p95
    was 812 ms > 800``. None when no stage was judged against an SLO."""
    judged = [s for s in stages if isinstance(s.get("slo"), Mapping)]
    if not judged:
        return None
    if not any(s["slo"]["status"] != INSUFFICIENT or s["slo"]["unjudged"] for s in judged):
        return {
            "held": None,
            "broke": None,
            "unjudged": [_ref(s) for s in judged],
            "text": "no rule of the SLO is judged per stage (min_rps judges the whole run)",
        }
    status = [s["slo"]["status"] for s in judged]
    first_broken = status.index(BROKE) if BROKE in status else None
    before = judged if first_broken is None else judged[:first_broken]
    held_candidates = [s for s in before if s["slo"]["status"] == HELD]
    held = None
    if held_candidates:
        held = max(
            enumerate(held_candidates),
            key=lambda item: ((load_of(item[1]) or ("", 0.0))[1], item[0]),
        )[1]
    broke = judged[first_broken] if first_broken is not None else None
    unjudged = [s for s in judged if s["slo"]["status"] == INSUFFICIENT]

    parts = []
    if held is not None:
        parts.append(f"held {load_text(held)}")
    if broke is not None:
        rules = ", ".join(broke["slo"]["broken"])
        prefix = "" if held is not None else "no stage held; "
        parts.append(f"{prefix}at {load_text(broke)} {rules}")
    elif held is not None:
        parts[-1] += ", no stage broke the rules"
    if held is None and broke is None:
        parts.append("no stage had the evidence to hold or break the rules")
    if unjudged:
        listed = ", ".join(f"stage {s.get('index')} ({load_text(s)})" for s in unjudged)
        parts.append(f"too little evidence to judge {listed}")
    return {
        "held": _ref(held) if held is not None else None,
        "broke": {**_ref(broke), "rules": list(broke["slo"]["broken"])} if broke else None,
        "unjudged": [_ref(s) for s in unjudged],
        "text": "; ".join(parts),
    }


__all__ = [
    "Counts",
    "Interval",
    "ShapeError",
    "Stage",
    "build_stages",
    "capacity",
    "parse_duration",
    "parse_stages",
]
