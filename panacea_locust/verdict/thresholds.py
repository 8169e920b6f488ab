"""SLO thresholds: parse the TOML file, judge a run summary, decide early aborts.

The file has a ``[total]`` table and ``[endpoints."<request name>"]`` tables; each holds any of
the keys in ``RULE_KEYS`` plus ``abort``/``abort_grace_s``. It is checked completely before the
run starts (``load_slo``), so a typo costs seconds, not a 30-minute run that judged nothing.
Rules are judged against the results-contract ``summary.json`` shape (``SLO.evaluate``), which
returns the ``thresholds`` block of that contract.

Decisions, documented in docs/verdicts.md as well:
- A rule whose scope got no requests (endpoint absent or ``requests == 0``) fails with
  ``observed = None``: an endpoint that was meant to be judged but never called is suspicious.
- ``AbortTracker`` ignores scopes without data (no evidence, no abort) and never aborts on
  ``min_rps`` (throughput is low by design while users ramp up); both are judged at the end.
- Observed values are rounded (ms and RPS to 3 decimals, ratios to 6) before the comparison,
  so the verdict always agrees with the numbers shown.
No Locust import here: the module is pure and shared by the runner, the event handlers and tests.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

#: Process exit code when at least one threshold rule failed.
EXIT_THRESHOLDS_FAILED = 3

TOTAL_SCOPE = "total"
LATENCY_KEYS: tuple[str, ...] = ("p50_ms", "p90_ms", "p95_ms", "p99_ms")
RATIO_KEYS: tuple[str, ...] = ("max_failure_ratio", "max_acceptable_4xx_ratio")
RULE_KEYS: tuple[str, ...] = (*LATENCY_KEYS, *RATIO_KEYS, "min_rps")
OPTION_KEYS: tuple[str, ...] = ("abort", "abort_grace_s")
ALLOWED_KEYS: tuple[str, ...] = (*RULE_KEYS, *OPTION_KEYS)
DEFAULT_ABORT_GRACE_S = 10.0

#: Rules never used for aborting (see the module docstring).
_NOT_FOR_ABORT = frozenset({"min_rps"})


class SLOError(ValueError):
    """A bad SLO file; ``str(err)`` is one line: the file, the table/key and what is allowed."""


@dataclass(frozen=True)
class Rule:
    """One threshold: ``metric`` of ``scope`` must stay <= ``limit`` (>= for min_rps)."""

    scope: str
    metric: str
    limit: float
    abort: bool = False
    abort_grace_s: float = DEFAULT_ABORT_GRACE_S

    @property
    def is_minimum(self) -> bool:
        return self.metric == "min_rps"

    @property
    def comparator(self) -> str:
        return ">=" if self.is_minimum else "<="

    def observe(self, summary: Mapping[str, Any]) -> float | None:
        """This rule's observed value in a results-contract summary; None when there is no data."""
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
            value = _number(stats.get("failure_ratio"))
            if value is None:
                failures = _number(stats.get("failures"))
                value = None if failures is None else failures / requests
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

    def check(self, observed: float | None) -> bool:
        """Pass or fail for an observed value; None (no data) fails."""
        if observed is None:
            return False
        return observed >= self.limit if self.is_minimum else observed <= self.limit

    def result(self, summary: Mapping[str, Any]) -> dict[str, Any]:
        observed = self.observe(summary)
        return {
            "scope": self.scope,
            "metric": self.metric,
            "limit": self.limit,
            "observed": observed,
            "passed": self.check(observed),
        }


@dataclass(frozen=True)
class SLO:
    """Every rule of an SLO file, ``total`` first, then endpoints in file order."""

    rules: tuple[Rule, ...] = ()
    source: str = field(default="<slo>", compare=False)

    @property
    def scopes(self) -> list[str]:
        return list(dict.fromkeys(rule.scope for rule in self.rules))

    def evaluate(self, summary: Mapping[str, Any]) -> dict[str, Any]:
        """The results-contract ``thresholds`` block: ``{"passed": bool, "rules": [...]}``."""
        results = [rule.result(summary) for rule in self.rules]
        return {"passed": all(r["passed"] for r in results), "rules": results}

    def abort_rules(self) -> tuple[Rule, ...]:
        """Rules of tables with ``abort = true`` that may stop a run early (never ``min_rps``)."""
        return tuple(r for r in self.rules if r.abort and r.metric not in _NOT_FOR_ABORT)


def exit_code(block: Mapping[str, Any]) -> int:
    """0 when every rule of a ``thresholds`` block passed, ``EXIT_THRESHOLDS_FAILED`` otherwise."""
    return 0 if block.get("passed", True) else EXIT_THRESHOLDS_FAILED


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
    rules = []
    for key in RULE_KEYS:  # canonical order, whatever the file's order
        if key not in table:
            continue
        if key in RATIO_KEYS:
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
        rules.append(Rule(scope=scope, metric=key, limit=limit, abort=abort, abort_grace_s=grace))
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


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


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

    Feed it ``update(now, snapshot)`` (seconds from any monotonic clock, a summary dict of the
    results-contract shape) every second or so on the master. It returns None while all is well
    and a one-line reason once any abort rule has been broken in every snapshot for at least
    its ``abort_grace_s``; from then on it keeps returning that same reason.
    """

    def __init__(self, slo: SLO) -> None:
        self.rules = slo.abort_rules()
        self._broken_since: dict[Rule, float] = {}
        self.reason: str | None = None

    def update(self, now: float, snapshot_summary: Mapping[str, Any]) -> str | None:
        if self.reason is not None:
            return self.reason
        for rule in self.rules:
            observed = rule.observe(snapshot_summary)
            if observed is None or rule.check(observed):
                self._broken_since.pop(rule, None)
                continue
            since = self._broken_since.setdefault(rule, now)
            if now - since >= rule.abort_grace_s:
                self.reason = (
                    f"SLO abort: {rule.scope} {rule.metric} = "
                    f"{format_value(rule.metric, observed)} breaks the limit "
                    f"{rule.comparator} {format_value(rule.metric, rule.limit)} for "
                    f"{now - since:.0f} s (abort_grace_s = {rule.abort_grace_s:g})"
                )
                return self.reason
        return None


def format_value(metric: str, value: float | None) -> str:
    """A rule's limit or observed value with its unit, as people read it."""
    if value is None:
        return "n/a"
    if metric.endswith("_ms"):
        return f"{value:.1f} ms"
    if metric.endswith("_ratio"):
        return f"{value:.4f}"
    return f"{value:.2f}/s"
