"""``junit.xml``: a run's rules and verdict as JUnit XML, for CI test reporters.

CI systems (GitHub Actions reporters, GitLab's test report, Jenkins) read JUnit XML and show
each test case with its message, so a broken SLO rule reads there as a failed test with its
observed value and limit, next to the pipeline's other tests. The exit code stays the gate;
this file only explains it. Mapping (docs/ci.md):

- one ``testcase`` per SLO rule (classname ``panacea.slo``, name ``<scope> <metric>``): a
  ``failure`` when the rule is broken, an ``error`` of type ``inconclusive`` when it had too
  little evidence to judge;
- ``panacea.run`` / ``run completed``: an ``error`` of type ``interrupted`` when a signal
  stopped the run; a ``failure`` when the run was stopped early by an ``abort`` rule or no
  request got an answer (both FAIL verdicts, exit 3); an ``error`` (``inconclusive``) when no
  request was made;
- ``panacea.run`` / ``load generator fitness``: an ``error`` (``inconclusive``) when the
  verdict is INCONCLUSIVE because the load generator was unfit to measure.

Every text passes through ``_clean`` first: XML 1.0 cannot hold control characters or lone
surrogates at all, escaped or not, and a label or an endpoint name from a hand-edited summary
may contain them. Pure: no Locust, no gevent.

``python -m panacea_locust.report.junit RUN_DIR`` (re)writes a run folder's ``junit.xml``
from its ``summary.json``.
"""

from __future__ import annotations

import json
import os
import re
import sys
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from panacea_locust.report.thresholds import rule_result, window_text
from panacea_locust.verdict.decision import INCONCLUSIVE, Verdict, decide
from panacea_locust.verdict.health import load_generator_warnings
from panacea_locust.verdict.thresholds import FAIL, INSUFFICIENT, PASS, evidence, format_value
from panacea_locust.verdict.thresholds import finite_number as _number

JUNIT_XML = "junit.xml"
SLO_CLASS, RUN_CLASS = "panacea.slo", "panacea.run"
RUN_COMPLETED, GENERATOR_FITNESS = "run completed", "load generator fitness"
#: the ``type`` of an ``error`` element: evidence that decides neither way
TYPE_INCONCLUSIVE = "inconclusive"

#: characters XML 1.0 cannot hold: C0 controls but tab, newline and return; lone surrogates;
#: U+FFFE and U+FFFF
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _clean(value: Any) -> str:
    """``value`` as text XML can hold: each character it cannot shown as ``\\xNN``/``\\uNNNN``."""
    return _NOT_XML.sub(lambda m: ascii(m.group())[1:-1], str(value))


@dataclass(frozen=True)
class Case:
    """One ``testcase``: ``kind`` is None (passed), ``failure`` or ``error``."""

    classname: str
    name: str
    kind: str | None = None
    type: str = ""
    message: str = ""
    detail: str = ""
    out: str = ""


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _value(metric: str, value: Any) -> str:
    number = _number(value)
    return "n/a (no requests)" if number is None else format_value(metric, number)


def _status(rule: Mapping[str, Any]) -> str:
    """A rule's ``status``; for a summary without one, its ``passed``: true, false, or
    anything else (no evidence either way)."""
    status = rule.get("status")
    if status in (PASS, FAIL, INSUFFICIENT):
        return str(status)
    passed = rule.get("passed")
    return PASS if passed is True else FAIL if passed is False else INSUFFICIENT


def _rule_case(rule: Mapping[str, Any], caveat: str) -> Case:
    """A rule's test case; its message says observed, limit, samples and, for a windowed
    rule, the window that decided it. ``caveat`` is added to a broken rule's message."""
    metric = str(rule.get("metric", ""))
    name = f"{rule.get('scope')} {metric}"
    comparator = ">=" if metric == "min_rps" else "<="
    facts = (
        f"observed {_value(metric, rule.get('observed'))}, limit {comparator} "
        f"{_value(metric, rule.get('limit'))}"
    )
    samples, needed = _number(rule.get("samples")), _number(rule.get("needed"))
    if samples is not None:
        facts += f", {samples:.0f} requests" + (f" ({needed:.0f} needed)" if needed else "")
    if isinstance(rule.get("window"), Mapping):
        facts += f", worst window {window_text(rule)}"
    elif "window" in rule:
        facts += ", judged over windows: the run had none"
    status = _status(rule)
    detail = f"{name}: {facts}; result {rule_result({**rule, 'status': status})}"
    if status == FAIL:
        return Case(SLO_CLASS, name, "failure", "slo", f"{name} broken: {facts}{caveat}", detail)
    if status == INSUFFICIENT:
        message = f"{name} not judged: too little evidence ({evidence(rule)}); {facts}"
        return Case(SLO_CLASS, name, "error", TYPE_INCONCLUSIVE, message, detail)
    return Case(SLO_CLASS, name, out=detail)


def _counts(summary: Mapping[str, Any]) -> tuple[float, float]:
    total = _map(summary.get("total"))
    return _number(total.get("requests")) or 0.0, _number(total.get("failures")) or 0.0


def _run_case(summary: Mapping[str, Any]) -> Case:
    """Did the run deliver its load: stopped by a signal is an error (``interrupted``: the
    part that ran proves nothing either way); stopped early by an abort rule, or no request
    answered, fails (both are FAIL verdicts); no request at all is inconclusive."""
    run = _map(summary.get("run"))
    aborted = _map(summary.get("thresholds")).get("aborted") or run.get("aborted")
    requests, failures = _counts(summary)
    counted = f"{requests:.0f} requests, {failures:.0f} failed"
    stop = run.get("interrupted")
    if isinstance(stop, Mapping):  # a part of a run proves nothing either way
        at = _number(stop.get("at_s"))
        when = f" after {at:g} s" if at is not None else ""
        message = f"stopped by {stop.get('signal') or 'a signal'}{when}: the run is incomplete"
        return Case(RUN_CLASS, RUN_COMPLETED, "error", "interrupted", message, counted)
    if requests > 0 and failures >= requests:
        message = f"no request got an answer: {failures:.0f} of {requests:.0f} failed"
        return Case(RUN_CLASS, RUN_COMPLETED, "failure", "no-answer", message, counted)
    if aborted:
        message = f"stopped early: {aborted}"
        return Case(RUN_CLASS, RUN_COMPLETED, "failure", "aborted", message, counted)
    if requests == 0:
        message = "no requests were made: nothing to judge"
        return Case(RUN_CLASS, RUN_COMPLETED, "error", TYPE_INCONCLUSIVE, message, counted)
    return Case(RUN_CLASS, RUN_COMPLETED, out=counted)


def _generator_facts(summary: Mapping[str, Any]) -> str:
    health = _map(_map(summary.get("run")).get("load_generator"))
    cpu, steal = _number(health.get("cpu_percent_max")), _number(health.get("steal_percent"))
    lag = _number(health.get("loop_lag_p99_ms"))
    return (
        f"CPU up to {'n/a' if cpu is None else f'{cpu:.0f} %'}, steal time "
        f"{'n/a' if steal is None else f'{steal:.1f} %'}, event-loop lag p99 "
        f"{'n/a' if lag is None else f'{lag:.1f} ms'}"
    )


def _fitness_case(summary: Mapping[str, Any], verdict: Verdict, broken: int) -> Case:
    """An error when the generator's health made the verdict INCONCLUSIVE: broken rules, yet
    not FAIL, happens only then (``verdict.decision``). Warnings that changed nothing (a pass
    stays a pass, errors fail whatever the generator) are reported, not counted."""
    warnings = load_generator_warnings(summary)
    facts = _generator_facts(summary)
    if verdict.outcome == INCONCLUSIVE and broken and warnings:
        message = "the load generator was unfit to measure: " + "; ".join(warnings)
        return Case(RUN_CLASS, GENERATOR_FITNESS, "error", TYPE_INCONCLUSIVE, message, facts)
    notes = "".join(f"\nwarning (did not change the verdict): {w}" for w in warnings)
    return Case(RUN_CLASS, GENERATOR_FITNESS, out=facts + notes)


def _verdict(summary: Mapping[str, Any], rules: int) -> Verdict:
    """The verdict the run recorded (``summary.json``'s ``verdict``), else the one its rules
    give (an older summary), as ``verdict.decision`` words it."""
    block = _map(summary.get("verdict"))
    outcome, code = block.get("outcome"), block.get("exit_code")
    if not isinstance(outcome, str) or not outcome:
        return decide(summary)
    reasons = tuple(str(r) for r in block.get("reasons") or [] if r is not None)
    return Verdict(outcome, code if isinstance(code, int) else None, reasons, rules)


def _timestamp(value: Any) -> str | None:
    """JUnit's timestamp: ISO 8601 in UTC without a zone (the schema's form)."""
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment.isoformat(timespec="seconds")


def cases_of(summary: Mapping[str, Any]) -> tuple[list[Case], Verdict]:
    """The run's test cases, rules first, and its verdict."""
    rules = [
        r for r in _map(summary.get("thresholds")).get("rules") or [] if isinstance(r, Mapping)
    ]
    verdict = _verdict(summary, len(rules))
    broken = [r for r in rules if _status(r) == FAIL]
    caveat = ""
    if verdict.outcome == INCONCLUSIVE and broken:
        caveat = "; measured by an unfit load generator, so the verdict is INCONCLUSIVE"
    cases = [_rule_case(rule, caveat) for rule in rules]
    cases += [_run_case(summary), _fitness_case(summary, verdict, len(broken))]
    return cases, verdict


def _attrs(**values: Any) -> dict[str, str]:
    return {key: _clean(value) for key, value in values.items() if value is not None}


def render_junit(summary: Mapping[str, Any]) -> bytes:
    """``junit.xml``'s bytes (UTF-8, with the XML declaration) for a results-contract summary."""
    run = _map(summary.get("run"))
    cases, verdict = cases_of(summary)
    failures = sum(1 for c in cases if c.kind == "failure")
    errors = sum(1 for c in cases if c.kind == "error")
    duration = _number(run.get("duration_s")) or 0.0
    counts = _attrs(
        tests=len(cases), failures=failures, errors=errors, skipped=0, time=f"{duration:.3f}"
    )
    root = ET.Element("testsuites", _attrs(name="panacea-locust", **counts))
    suite = ET.SubElement(
        root,
        "testsuite",
        _attrs(
            name=f"panacea-locust {run.get('label') or run.get('id') or 'run'}",
            timestamp=_timestamp(run.get("started_at")),
            **counts,
        ),
    )
    properties = ET.SubElement(suite, "properties")
    facts = {
        "run": run.get("id"),
        "label": run.get("label"),
        "target": run.get("host"),
        "target_version": run.get("target_version"),
        "description": run.get("description"),
        "git_commit": run.get("git_commit"),
        "verdict": verdict.outcome,
        "exit_code": verdict.exit_code,
    }
    for key, value in facts.items():
        if value is not None and value != "":
            ET.SubElement(properties, "property", _attrs(name=key, value=value))
    for case in cases:
        element = ET.SubElement(
            suite, "testcase", _attrs(classname=case.classname, name=case.name, time="0")
        )
        if case.kind is not None:
            problem = ET.SubElement(
                element, case.kind, _attrs(type=case.type, message=case.message)
            )
            problem.text = _clean(case.detail)
        if case.out:
            ET.SubElement(element, "system-out").text = _clean(case.out)
    out = [
        verdict.line,
        *(f"WARNING (load generator): {w}" for w in load_generator_warnings(summary)),
    ]
    ET.SubElement(suite, "system-out").text = _clean("\n".join(out))
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def write_junit(run_dir: Path, summary: Mapping[str, Any]) -> Path:
    """Write ``run_dir/junit.xml`` atomically (a CI step never reads half a file)."""
    path = run_dir / JUNIT_XML
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(render_junit(summary))
    os.replace(tmp, path)
    return path


def main(argv: Sequence[str]) -> int:
    """``python -m panacea_locust.report.junit RUN_DIR``: (re)write a run's ``junit.xml``."""
    if len(argv) != 1:
        print("usage: python -m panacea_locust.report.junit RUN_DIR", file=sys.stderr)
        return 2
    run_dir = Path(argv[0])
    try:
        summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        print(f"{run_dir}: cannot read the run's summary.json: {exc}", file=sys.stderr)
        return 2
    if not isinstance(summary, Mapping):
        print(f"{run_dir / 'summary.json'}: not a JSON object", file=sys.stderr)
        return 2
    try:
        print(write_junit(run_dir, summary))
    except OSError as exc:
        print(f"{run_dir}: cannot write {JUNIT_XML}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
