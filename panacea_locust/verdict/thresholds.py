"""SLO thresholds: parse the TOML file, judge a run summary, decide early aborts.

The file has a ``[total]`` table and ``[endpoints."<request name>"]`` tables; each holds any of
the keys in ``RULE_KEYS`` plus ``abort``/``abort_grace_s``. It is checked completely before the
run starts (``load_slo``), so a typo costs seconds, not a 30-minute run that judged nothing.
Rules are judged against the results-contract ``summary.json`` shape (``SLO.evaluate``), which
returns the ``thresholds`` block of that contract.

Decisions, documented in docs/verdicts.md as well:
- A rule is judged only on enough evidence. A percentile rule needs ``min_tail_samples``
  (default 5) requests beyond its percentile (p95: 100 requests, p99: 500), the same rule as
  ``compare``; any rule needs its scope to have requests. Without that it is
  ``insufficient``: no evidence either way, which makes the verdict INCONCLUSIVE, not FAIL,
  unless its table says ``require_samples = true``.
- ``AbortTracker`` ignores rules without enough samples (no evidence, no abort) and never aborts on
  ``min_rps`` (throughput is low by design while users ramp up); both are judged at the end.
- Observed values are rounded (ms and RPS to 3 decimals, ratios to 6) before the comparison,
  so the verdict always agrees with the numbers shown.
- A table with ``window_s = N`` holds its rules over every sliding window of N seconds (the
  run's timeline intervals, merged exactly: ``verdict/timeline.py``), not only over the whole
  run, where a collapse after a long good stretch is averaged away. Each window is judged on
  the same evidence rules; the worst judged window decides, and the rule's result names it
  (``window``). The abort tracker judges the most recent window.
No Locust import here: the module is pure and shared by the runner, the event handlers and tests.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from panacea_locust.verdict.health import generator_failures

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

#: Process exit code when at least one threshold rule failed.
EXIT_THRESHOLDS_FAILED = 3

TOTAL_SCOPE = "total"
LATENCY_KEYS: tuple[str, ...] = ("p50_ms", "p90_ms", "p95_ms", "p99_ms")
RATIO_KEYS: tuple[str, ...] = ("max_failure_ratio", "max_acceptable_4xx_ratio")
#: open-model rules, of ``[total]`` only, judged on ``run.workload`` over the whole run: the
#: share of arrivals dropped, and the schedule lag (actual send minus due time) at p99
WORKLOAD_KEYS: tuple[str, ...] = ("max_dropped_ratio", "lag_p99_ms")
RULE_KEYS: tuple[str, ...] = (*LATENCY_KEYS, *RATIO_KEYS, "min_rps", *WORKLOAD_KEYS)
OPTION_KEYS: tuple[str, ...] = (
    "abort", "abort_grace_s", "min_tail_samples", "require_samples", "window_s",
)  # fmt: skip
ALLOWED_KEYS: tuple[str, ...] = (*RULE_KEYS, *OPTION_KEYS)
DEFAULT_ABORT_GRACE_S = 10.0
#: Requests a percentile needs beyond it before it is evidence (compare uses it too).
DEFAULT_MIN_TAIL_SAMPLES = 5
QUANTILES: dict[str, float] = {"p50_ms": 0.50, "p90_ms": 0.90, "p95_ms": 0.95, "p99_ms": 0.99}
#: z of the one-sided 95 % Wilson interval ratio rules are judged on
RATIO_Z = 1.645
#: a rule's status in the ``thresholds`` block
PASS, FAIL, INSUFFICIENT = "pass", "fail", "insufficient"

#: Rules never used for aborting (see the module docstring).
_NOT_FOR_ABORT = frozenset({"min_rps"})


class SLOError(ValueError):
    """A bad SLO file; ``str(err)`` is one line: the file, the table/key and what is allowed."""


@dataclass(frozen=True)
class Window:
    """A stretch of the run, ``start_s`` to ``end_s`` seconds after its start, and its
    ``stats``: ``{"total": block, "endpoints": {name: block}}`` with the metric keys of
    ``summary.json`` that rules read (requests, failures, acceptable, rps, p50_ms ...)."""

    start_s: float
    end_s: float
    stats: Mapping[str, Any]


#: the windows of ``window_s`` seconds of a run, in time order (``Timeline.windows``); for a
#: snapshot, only the most recent one
WindowSource = Callable[[float], Sequence[Window]]


@dataclass(frozen=True)
class Rule:
    """One threshold: ``metric`` of ``scope`` must stay <= ``limit`` (>= for min_rps)."""

    scope: str
    metric: str
    limit: float
    abort: bool = False
    abort_grace_s: float = DEFAULT_ABORT_GRACE_S
    min_tail_samples: int = DEFAULT_MIN_TAIL_SAMPLES
    require_samples: bool = False
    #: judged over every window of this many seconds (None: over the whole run)
    window_s: float | None = None

    @property
    def is_minimum(self) -> bool:
        return self.metric == "min_rps"

    @property
    def comparator(self) -> str:
        return ">=" if self.is_minimum else "<="

    def observe(self, summary: Mapping[str, Any]) -> float | None:
        """This rule's observed value in a results-contract summary; None when there is no data."""
        if self.metric in WORKLOAD_KEYS:
            workload = _open_workload(summary)
            if workload is None:
                return None
            key = "dropped_ratio" if self.metric == "max_dropped_ratio" else "lag_p99_ms"
            found = _number(workload.get(key))
            return None if found is None else round(found, 6 if key == "dropped_ratio" else 3)
        stats = _scope_stats(summary, self.scope)
        if stats is None:
            return None
        requests = _number(stats.get("requests")) or 0.0
        if requests <= 0:
            return None
        value: float | None
        if self.metric in LATENCY_KEYS:
            value = _number(stats.get(self.metric))
            digits = 3
        elif self.metric == "max_failure_ratio":
            mine = generator_failures(stats)
            value = None if mine else _number(stats.get("failure_ratio"))
            if value is None:
                # the target's ratio: requests that failed in the load generator never left it
                failures = _number(stats.get("failures"))
                sent = requests - mine
                value = None if failures is None or sent <= 0 else (failures - mine) / sent
            digits = 6
        elif self.metric == "max_acceptable_4xx_ratio":
            acceptable = stats.get("acceptable") or {}
            counts = (
                [_number(v) for v in acceptable.values()] if isinstance(acceptable, Mapping) else []
            )
            value = sum(c for c in counts if c is not None) / requests
            digits = 6
        else:  # min_rps
            value = _number(stats.get("rps"))
            digits = 3
        return None if value is None else round(value, digits)

    def needed(self) -> int:
        """Requests this rule's scope needs before its observed value is evidence: for a
        percentile, ``min_tail_samples`` beyond it; for a ratio, enough that a clean run
        (no failure) proves the limit, at 95 % one-sided (``ratio_interval``)."""
        if self.metric in QUANTILES:
            return tail_requests_needed(self.metric, self.min_tail_samples)
        if self.metric == "lag_p99_ms":
            return tail_requests_needed("p99_ms", self.min_tail_samples)
        if self.metric in (*RATIO_KEYS, "max_dropped_ratio") and self.limit > 0:
            return max(1, math.ceil(RATIO_Z**2 * (1.0 - self.limit) / self.limit - 1e-9))
        return 1

    def _ratio_status(self, observed: float, samples: int) -> str | None:
        """A ratio is judged on its confidence interval: FAIL only when the whole interval is
        above the limit (a breach, not chance), PASS when it is at or below it; None when
        the interval spans the limit (too few requests to tell)."""
        if self.limit == 0:
            return FAIL if observed > 0 else PASS
        low, high = ratio_interval(round(observed * samples), samples)
        if low > self.limit:
            return FAIL
        if high <= self.limit:
            return PASS
        return None

    def check(self, observed: float | None) -> bool:
        """Pass or fail for an observed value; None (no data) fails."""
        if observed is None:
            return False
        return observed >= self.limit if self.is_minimum else observed <= self.limit

    def result(self, summary: Mapping[str, Any]) -> dict[str, Any]:
        """This rule's entry in the ``thresholds`` block: ``status`` pass, fail or
        insufficient; ``passed`` True, False, or None (no evidence either way)."""
        observed = self.observe(summary)
        samples = self._samples(summary)
        needed = self.needed()
        status: str | None = None
        ratio = self.metric in RATIO_KEYS or self.metric == "max_dropped_ratio"
        if observed is not None and ratio and samples > 0:
            status = self._ratio_status(observed, samples)
        elif observed is not None and samples >= needed:
            status = PASS if self.check(observed) else FAIL
        if status is None:
            if self.require_samples and observed is not None:
                status = PASS if self.check(observed) else FAIL
            else:
                status = FAIL if self.require_samples else INSUFFICIENT
        return {
            "scope": self.scope,
            "metric": self.metric,
            "limit": self.limit,
            "observed": observed,
            "samples": samples,
            "needed": needed,
            "status": status,
            "passed": None if status == INSUFFICIENT else status == PASS,
        }

    def _samples(self, summary: Mapping[str, Any]) -> int:
        """The evidence behind the observed value: the scope's requests; for the open-model
        rules the arrivals handled (sent or dropped) and those sent."""
        if self.metric in WORKLOAD_KEYS:
            workload = _open_workload(summary) or {}
            sent = int(_number(workload.get("sent")) or 0)
            if self.metric == "lag_p99_ms":
                return sent
            return sent + int(_number(workload.get("dropped")) or 0)
        stats = _scope_stats(summary, self.scope)
        if stats is None:
            return 0
        requests = int(_number(stats.get("requests")) or 0)
        if self.metric == "max_failure_ratio":  # those that left the load generator
            return max(0, requests - generator_failures(stats))
        return requests

    def _badness(self, result: Mapping[str, Any]) -> tuple[bool, float]:
        """Orders window results: failed ones first, then by how far the value went the
        wrong way (the highest latency or ratio, the lowest throughput)."""
        observed = result["observed"]
        value = math.inf if observed is None else (-observed if self.is_minimum else observed)
        return result["status"] == FAIL, value

    def windowed_result(self, windows: Sequence[Window]) -> dict[str, Any]:
        """This rule over every window: the worst window judged on enough evidence decides,
        and the result names it (``window``). When no window has the evidence the rule is
        insufficient, and shows the window with the most requests; with
        ``require_samples`` every window is then judged on what it holds, as a whole-run
        rule would be."""
        if not windows:
            return {**self.result({}), "window": None}
        on_evidence = replace(self, require_samples=False)
        results = [(w, on_evidence.result(w.stats)) for w in windows]
        judged = [(w, r) for w, r in results if r["status"] != INSUFFICIENT]
        if not judged and self.require_samples:
            judged = [(w, self.result(w.stats)) for w in windows]
        if judged:
            window, result = max(judged, key=lambda wr: self._badness(wr[1]))
        else:
            window, result = max(results, key=lambda wr: wr[1]["samples"])
        span = {"start_s": round(window.start_s, 3), "end_s": round(window.end_s, 3)}
        return {**result, "window": span}


@dataclass(frozen=True)
class SLO:
    """Every rule of an SLO file, ``total`` first, then endpoints in file order."""

    rules: tuple[Rule, ...] = ()
    source: str = field(default="<slo>", compare=False)

    @property
    def scopes(self) -> list[str]:
        return list(dict.fromkeys(rule.scope for rule in self.rules))

    def evaluate(
        self, summary: Mapping[str, Any], windows: WindowSource | None = None
    ) -> dict[str, Any]:
        """The results-contract ``thresholds`` block: ``{"passed": ..., "rules": [...]}``;
        ``passed`` is False when a rule failed, None when none failed but some had too little
        evidence, True when every rule passed. Rules with ``window_s`` are judged on
        ``windows`` (without it, the whole run is their one window)."""
        source = cached_windows(summary, windows)
        results = [
            rule.windowed_result(source(rule.window_s)) if rule.window_s else rule.result(summary)
            for rule in self.rules
        ]
        statuses = {r["status"] for r in results}
        passed = False if FAIL in statuses else (None if INSUFFICIENT in statuses else True)
        return {"passed": passed, "rules": results}

    def abort_rules(self) -> tuple[Rule, ...]:
        """Rules of tables with ``abort = true`` that may stop a run early (never ``min_rps``)."""
        return tuple(r for r in self.rules if r.abort and r.metric not in _NOT_FOR_ABORT)


def cached_windows(summary: Mapping[str, Any], windows: WindowSource | None) -> WindowSource:
    """``windows`` asked once per window length; without it, the whole run as one window."""
    cache: dict[float, Sequence[Window]] = {}

    def source(window_s: float) -> Sequence[Window]:
        if window_s not in cache:
            if windows is not None:
                cache[window_s] = windows(window_s)
            else:
                run = summary.get("run")
                duration = _number(run.get("duration_s")) if isinstance(run, Mapping) else None
                cache[window_s] = [Window(0.0, duration or 0.0, summary)]
        return cache[window_s]

    return source


def mark_aborted(block: Mapping[str, Any], reason: str) -> dict[str, Any]:
    """The ``thresholds`` block of a run stopped early by an abort rule: failed, with the reason.

    The end-of-run values may well pass (the breach may have been short next to a long run),
    but a run cut short did not deliver its load, so its verdict is a failure (exit 3).
    """
    return {**block, "passed": False, "aborted": reason}


# --- parsing -------------------------------------------------------------------------------


def load_slo(path: str | Path, known_endpoints: Collection[str]) -> SLO:
    """Read and validate an SLO TOML file; ``SLOError`` (one line) on any problem."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SLOError(f"{source}: cannot read the SLO file ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise SLOError(f"{source}: the SLO file is not UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SLOError(f"{source}: not valid TOML: {exc}") from None
    return parse_slo(data, known_endpoints, source=source)


def parse_slo(
    data: Mapping[str, Any], known_endpoints: Collection[str], source: str = "<slo>"
) -> SLO:
    """Validate an already-parsed TOML document (see ``load_slo``)."""
    rules: list[Rule] = []
    for key, value in data.items():
        if key == TOTAL_SCOPE:
            rules += _parse_table(source, "[total]", TOTAL_SCOPE, value)
        elif key == "endpoints":
            if not isinstance(value, Mapping):
                raise SLOError(
                    f'{source}: endpoints must be tables like [endpoints."/api/v1/logs/search"]'
                )
            for name, table in value.items():
                label = f"[endpoints.{json.dumps(name)}]"
                if name not in known_endpoints:
                    known = ", ".join(sorted(known_endpoints)) or "(none)"
                    raise SLOError(f"{source}: {label} is not a known endpoint; known: {known}")
                rules += _parse_table(source, label, name, table)
        else:
            raise SLOError(
                f"{source}: unknown top-level key {key!r}; allowed: [total] and "
                f'[endpoints."<request name>"]'
            )
    return SLO(rules=tuple(rules), source=source)


def _parse_table(source: str, label: str, scope: str, table: Any) -> list[Rule]:
    where = f"{source}: {label}"
    if not isinstance(table, Mapping):
        raise SLOError(f"{where} must be a table of rules; allowed keys: {', '.join(ALLOWED_KEYS)}")
    for key in table:
        if key not in ALLOWED_KEYS:
            raise SLOError(f"{where} unknown key {key!r}; allowed: {', '.join(ALLOWED_KEYS)}")
    abort = table.get("abort", False)
    if not isinstance(abort, bool):
        raise SLOError(f"{where} abort = {_toml(abort)} must be true or false")
    grace = DEFAULT_ABORT_GRACE_S
    if "abort_grace_s" in table:
        grace = _non_negative(where, "abort_grace_s", table["abort_grace_s"], "seconds")
    require = table.get("require_samples", False)
    if not isinstance(require, bool):
        raise SLOError(f"{where} require_samples = {_toml(require)} must be true or false")
    tail = table.get("min_tail_samples", DEFAULT_MIN_TAIL_SAMPLES)
    if isinstance(tail, bool) or not isinstance(tail, int) or not 0 <= tail <= 1_000_000:
        raise SLOError(
            f"{where} min_tail_samples = {_toml(tail)} must be a whole number from 0 to 1000000"
        )
    window: float | None = None
    if "window_s" in table:
        raw = table["window_s"]
        window = _number(raw)
        if window is None:  # not a number, or not finite: said as for any other key
            _non_negative(where, "window_s", raw, "seconds")
        if window is None or window <= 0:
            raise SLOError(f"{where} window_s = {_toml(raw)} must be > 0 (seconds)")
    rules = []
    for key in RULE_KEYS:  # canonical order, whatever the file's order
        if key not in table:
            continue
        if key in WORKLOAD_KEYS and scope != TOTAL_SCOPE:
            raise SLOError(f"{where} {key} belongs in [total]: it judges the run's arrivals")
        if key in (*RATIO_KEYS, "max_dropped_ratio"):
            limit = _non_negative(where, key, table[key], "a ratio between 0 and 1 (0.01 = 1 %)")
            if limit > 1:
                raise SLOError(
                    f"{where} {key} = {_toml(table[key])} must be a ratio between "
                    f"0 and 1 (0.01 = 1 %)"
                )
        elif key == "min_rps":
            limit = _non_negative(where, key, table[key], "requests per second")
        else:
            limit = _non_negative(where, key, table[key], "milliseconds")
        rules.append(
            Rule(
                scope, key, limit, abort and key not in WORKLOAD_KEYS, grace,
                min_tail_samples=tail, require_samples=require,
                window_s=None if key in WORKLOAD_KEYS else window,  # judged on the whole run
            )
        )  # fmt: skip
    return rules


def _non_negative(where: str, key: str, value: Any, unit: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SLOError(f"{where} {key} = {_toml(value)} must be a number ({unit})")
    if not math.isfinite(value):
        raise SLOError(f"{where} {key} = {_toml(value)} must be a finite number ({unit})")
    if value < 0:
        raise SLOError(f"{where} {key} = {_toml(value)} must be >= 0 ({unit})")
    return float(value)


def _toml(value: Any) -> str:
    """A value roughly as it was written in the file, on one line."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    return " ".join(repr(value).split())


def finite_number(value: Any) -> float | None:
    """A figure read from a summary: a finite int or float, else None (booleans, strings,
    NaN and infinities are no figure)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


_number = finite_number  # the short name the rules below read with


def _open_workload(summary: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """``run.workload`` of an open-model run; None for a closed run (no arrivals to judge)."""
    run = summary.get("run")
    workload = run.get("workload") if isinstance(run, Mapping) else None
    if isinstance(workload, Mapping) and workload.get("model") == "open":
        return workload
    return None


def _scope_stats(summary: Mapping[str, Any], scope: str) -> Mapping[str, Any] | None:
    if scope == TOTAL_SCOPE:
        stats = summary.get("total")
    else:
        endpoints = summary.get("endpoints") or {}
        stats = endpoints.get(scope) if isinstance(endpoints, Mapping) else None
    return stats if isinstance(stats, Mapping) else None


# --- early abort ---------------------------------------------------------------------------


class AbortTracker:
    """Decides when to stop a run early, from periodic snapshot summaries.

    Feed it ``update(now, snapshot, windows)`` (seconds from any monotonic clock, a summary
    dict of the results-contract shape, and for rules with ``window_s`` a source whose last
    window is the most recent one) every second or so on the master. It returns None while
    all is well and a one-line reason once any abort rule has been broken in every snapshot
    for at least its ``abort_grace_s``; from then on it keeps returning that same reason. A
    windowed rule judges only its most recent window, so a collapse after a long good stretch
    stops the run within about ``window_s`` plus the grace, where the whole run's value would
    take far longer to move.
    """

    def __init__(self, slo: SLO) -> None:
        self.rules = slo.abort_rules()
        self._broken_since: dict[Rule, float] = {}
        self.reason: str | None = None

    def update(
        self,
        now: float,
        snapshot_summary: Mapping[str, Any],
        windows: WindowSource | None = None,
    ) -> str | None:
        if self.reason is not None:
            return self.reason
        source = cached_windows(snapshot_summary, windows)
        for rule in self.rules:
            stats, over = snapshot_summary, ""
            if rule.window_s:
                recent = source(rule.window_s)
                stats = recent[-1].stats if recent else {}
                if recent:
                    over = f" over {recent[-1].start_s:.0f}-{recent[-1].end_s:.0f} s"
            result = rule.result(stats)  # too few samples: no evidence, no abort
            observed = result["observed"]
            if result["status"] != FAIL or observed is None:
                self._broken_since.pop(rule, None)
                continue
            since = self._broken_since.setdefault(rule, now)
            if now - since >= rule.abort_grace_s:
                self.reason = (
                    f"SLO abort: {rule.scope} {rule.metric} = "
                    f"{format_value(rule.metric, observed)}{over} breaks the limit "
                    f"{rule.comparator} {format_value(rule.metric, rule.limit)} for "
                    f"{now - since:.0f} s (abort_grace_s = {rule.abort_grace_s:g})"
                )
                return self.reason
        return None

    def countdowns(self, now: float) -> dict[str, float]:
        """Seconds until each broken abort rule stops the run (``"scope metric"`` keys), as
        of the last ``update``: what the web UI shows while a rule is broken."""
        return {
            f"{rule.scope} {rule.metric}": max(0.0, rule.abort_grace_s - (now - since))
            for rule, since in self._broken_since.items()
        }


def format_value(metric: str, value: float | None) -> str:
    """A rule's limit or observed value with its unit, as people read it."""
    if value is None:
        return "n/a"
    if metric.endswith("_ms"):
        return f"{value:.1f} ms"
    if metric.endswith("_ratio"):
        return f"{value:.4f}"
    return f"{value:.2f}/s"


def tail_requests_needed(metric: str, min_tail_samples: int) -> int:
    """Requests that put ``min_tail_samples`` beyond ``metric``'s percentile (p95, 5: 100)."""
    return max(1, math.ceil(min_tail_samples / (1.0 - QUANTILES[metric]) - 1e-9))


def enough_tail(requests: float | None, metric: str, min_tail_samples: int) -> bool:
    """Whether ``requests`` put at least ``min_tail_samples`` beyond ``metric``'s percentile."""
    if requests is None:
        return False
    return requests * (1.0 - QUANTILES[metric]) + 1e-9 >= min_tail_samples


def ratio_interval(events: int, requests: int, z: float = RATIO_Z) -> tuple[float, float]:
    """Wilson score interval of ``events / requests`` (each side one-sided at ``z``): where
    the true ratio lies, given a sample. 2 acceptable 404s in 8 requests (25 %) spans 8 % to
    55 %: no evidence against a 20 % limit either way; 0 failures in 300 reaches 0.9 %."""
    if requests <= 0:
        return 0.0, 1.0
    p = events / requests
    z2 = z * z
    centre = (p + z2 / (2 * requests)) / (1 + z2 / requests)
    half = z * math.sqrt(p * (1 - p) / requests + z2 / (4 * requests * requests))
    half /= 1 + z2 / requests
    return max(0.0, centre - half), min(1.0, centre + half)


def evidence(rule: Mapping[str, Any]) -> str:
    """Why an insufficient rule result was not judged: too few requests, or a ratio whose
    confidence interval spans the limit (too close to it to tell on these requests)."""
    samples, needed = rule.get("samples", 0), rule.get("needed", 0)
    if isinstance(samples, int) and isinstance(needed, int) and samples < needed:
        return f"{samples} of {needed} requests"
    return f"too close to the limit to tell on {samples} requests"
