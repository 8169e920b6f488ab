"""The one verdict of a run: PASS, FAIL, INCONCLUSIVE or INTERRUPTED, its reasons, its exit code.

The printed verdict line, ``summary.md``, ``summary.json``'s ``verdict`` and the process exit
code all come from :func:`decide`, so they can never disagree. A verdict is never more
optimistic than its evidence:

- a run in which requests were sent but none got an answer FAILS, whatever the rules say;
- a run stopped early by an ``abort`` rule FAILS, with the abort reason;
- failed latency or throughput rules measured by an unfit load generator (a ``load_generator``
  warning: CPU, steal time, a late event loop) are INCONCLUSIVE: the generator's own queueing
  may be what broke them. Failed failure-ratio rules still FAIL: errors are not inflated by a
  busy generator;
- requests that failed in the load generator itself (out of descriptors or ports) never
  reached the target: the failure ratios judge the target without them, and the run is never
  a PASS, since the load it applied was less than planned (INCONCLUSIVE at best; so is a run
  in which no request left the generator);
- a distributed run that lost a worker running users, or a run whose users waited too long to
  start (``STALLED_START_S``), applied less load than planned: never a PASS either
  (INCONCLUSIVE, saying which);
- rules without enough samples, or a run that sent nothing, are INCONCLUSIVE;
- a pass stays a pass even on an unfit generator (it can only overstate latency);
- a run stopped by SIGINT or SIGTERM is INTERRUPTED (exit 128 + the signal's number: 130, 143),
  with what the rules said of the part that ran: a partial run proves nothing either way.
Pure: no Locust import.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from panacea_locust.verdict.health import (
    generator_failures,
    load_generator_warnings,
    lost_worker_text,
    stalled_starts_text,
)
from panacea_locust.verdict.thresholds import (
    EXIT_THRESHOLDS_FAILED,
    FAIL,
    INSUFFICIENT,
    LATENCY_KEYS,
    WORKLOAD_KEYS,
    evidence,
    format_value,
)

EXIT_PASSED = 0
EXIT_FAILED = EXIT_THRESHOLDS_FAILED
EXIT_INCONCLUSIVE = 4
#: the results could not be written (full disk, read-only or missing folder, name too long)
EXIT_RESULTS_UNWRITABLE = 6
#: exit codes of an interrupted run, as a shell reports a process killed by the signal
EXIT_INTERRUPTED = {"SIGINT": 130, "SIGTERM": 143}

PASSED, FAILED, INCONCLUSIVE, UNJUDGED = "PASS", "FAIL", "INCONCLUSIVE", "NONE"
INTERRUPTED = "INTERRUPTED"
#: rules a busy load generator can break by itself (its own queueing adds latency, and a
#: generator that cannot keep up sends less, late, or drops arrivals)
_GENERATOR_SENSITIVE = frozenset({*LATENCY_KEYS, "min_rps", *WORKLOAD_KEYS})


@dataclass(frozen=True)
class Verdict:
    """What a run proved. ``exit_code`` is None when no rules applied (Locust's own code)."""

    outcome: str
    exit_code: int | None
    reasons: tuple[str, ...] = ()
    rules: int = 0
    broken: int = 0

    @property
    def line(self) -> str:
        """The one line printed at the end and quoted in ``summary.md``."""
        if self.outcome == UNJUDGED:
            return "VERDICT: no thresholds configured (set --slo FILE or SLO_FILE)"
        if self.outcome == PASSED:
            return f"VERDICT: PASS ({self.rules} rules)"
        detail = "; ".join(self.reasons)
        return f"VERDICT: {self.outcome} ({detail})"

    def as_dict(self) -> dict[str, Any]:
        """``summary.json``'s ``verdict`` block."""
        return {"outcome": self.outcome, "exit_code": self.exit_code, "reasons": list(self.reasons)}


def _rule_name(rule: Mapping[str, Any]) -> str:
    return f"{rule.get('scope')} {rule.get('metric')}"


def _short(rule: Mapping[str, Any]) -> str:
    metric = str(rule.get("metric", ""))
    if rule.get("observed") is None:
        return f"{_rule_name(rule)} had no requests"
    sign = "<" if metric == "min_rps" else ">"
    return (
        f"{_rule_name(rule)} {format_value(metric, rule.get('observed'))} "
        f"{sign} {format_value(metric, rule.get('limit'))}"
    )


def _counts(summary: Mapping[str, Any]) -> tuple[int, int]:
    total = summary.get("total")
    if not isinstance(total, Mapping):
        return 0, 0
    requests, failures = total.get("requests"), total.get("failures")
    return (
        requests if isinstance(requests, int) and not isinstance(requests, bool) else 0,
        failures if isinstance(failures, int) and not isinstance(failures, bool) else 0,
    )


def load_shortfall(run: Mapping[str, Any]) -> str | None:
    """Why the run applied less load than planned, in words: users that waited too long to
    start (``run.workload.stalled_starts``), workers lost with users (``run.workers.lost``);
    None when neither happened."""
    workload = run.get("workload")
    stalled = workload.get("stalled_starts") if isinstance(workload, Mapping) else None
    if isinstance(stalled, int) and not isinstance(stalled, bool) and stalled > 0:
        return stalled_starts_text(stalled)
    workers = run.get("workers")
    lost = workers.get("lost") if isinstance(workers, Mapping) else None
    gone = [
        w for w in lost or []
        if isinstance(w, Mapping) and isinstance(w.get("users"), int) and w["users"] > 0
    ]  # fmt: skip
    if not gone:
        return None
    first = gone[0]
    more = f" (and {len(gone) - 1} more)" if len(gone) > 1 else ""
    return lost_worker_text(first.get("id"), first.get("at_s"), first["users"]) + more


def decide(summary: Mapping[str, Any]) -> Verdict:
    """The verdict of a results-contract summary (its ``thresholds``, ``run`` and ``total``)."""
    judged = _judge(summary)
    run = summary.get("run")
    stop = run.get("interrupted") if isinstance(run, Mapping) else None
    if not isinstance(stop, Mapping):
        return judged
    signal = str(stop.get("signal") or "a signal")
    at = stop.get("at_s")
    when = f" after {at:g} s" if isinstance(at, (int, float)) else ""
    stood = (
        "no thresholds configured"
        if judged.outcome == UNJUDGED
        else f"the rules as they stood: {judged.line.removeprefix('VERDICT: ')}"
    )
    return Verdict(
        INTERRUPTED, EXIT_INTERRUPTED.get(signal, 130), (f"stopped by {signal}{when}", stood),
        judged.rules, judged.broken,
    )  # fmt: skip


def _judge(summary: Mapping[str, Any]) -> Verdict:
    """The verdict the rules give, the run's end aside."""
    block = summary.get("thresholds")
    rules = [r for r in (block or {}).get("rules") or [] if isinstance(r, Mapping)]
    if not rules:
        return Verdict(UNJUDGED, None)
    run = summary.get("run") if isinstance(summary.get("run"), Mapping) else {}
    assert isinstance(run, Mapping)
    aborted = (block or {}).get("aborted") or run.get("aborted")
    requests, failures = _counts(summary)
    failed = [r for r in rules if r.get("status", FAIL if r.get("passed") is False else "") == FAIL]
    short = [r for r in rules if r.get("status") == INSUFFICIENT]
    warnings = load_generator_warnings(summary)
    n = len(rules)

    def verdict(outcome: str, code: int, *reasons: str) -> Verdict:
        return Verdict(outcome, code, tuple(reasons), n, len(failed))

    total = summary.get("total")
    mine = generator_failures(total) if isinstance(total, Mapping) else 0
    if requests > 0 and mine >= requests:
        return verdict(
            INCONCLUSIVE, EXIT_INCONCLUSIVE,
            f"no request left the load generator: all {requests} failed in it",
        )  # fmt: skip
    if requests > 0 and failures >= requests:
        return verdict(
            FAILED, EXIT_FAILED, f"no request got an answer: {failures} of {requests} failed"
        )
    if aborted:
        return verdict(FAILED, EXIT_FAILED, f"stopped early: {aborted}")
    if failed:
        broken = f"{len(failed)} of {n} rules broken: " + ", ".join(_short(r) for r in failed[:3])
        if len(failed) > 3:
            broken += ", ..."
        if warnings and all(r.get("metric") in _GENERATOR_SENSITIVE for r in failed):
            return verdict(
                INCONCLUSIVE,
                EXIT_INCONCLUSIVE,
                broken,
                f"the load generator was unfit to measure: {warnings[0]}",
            )
        return verdict(FAILED, EXIT_FAILED, broken)
    if requests == 0:
        return verdict(INCONCLUSIVE, EXIT_INCONCLUSIVE, "no requests were made: nothing to judge")
    if mine:
        return verdict(
            INCONCLUSIVE, EXIT_INCONCLUSIVE,
            f"{mine} of {requests} requests failed in the load generator itself and never "
            "reached the target: the load applied was less than planned",
        )  # fmt: skip
    gone = load_shortfall(run)
    if gone:
        return verdict(
            INCONCLUSIVE, EXIT_INCONCLUSIVE, f"{gone}: the load applied was less than planned"
        )
    if short:
        listed = ", ".join(f"{_rule_name(r)} ({evidence(r)})" for r in short[:3])
        more = ", ..." if len(short) > 3 else ""
        return verdict(
            INCONCLUSIVE,
            EXIT_INCONCLUSIVE,
            f"{len(short)} of {n} rules had too few samples to judge: {listed}{more}",
        )
    return verdict(PASSED, EXIT_PASSED)
