"""A results folder's runs over time, oldest first, each judged against the run before it.

``panacea-locust compare`` answers "did this run get slower than that one"; a team that runs the
same scenario every night wants the answer for every night at once, and to see where a
regression began. This module reads every run folder under a results folder, puts the runs in
the order they started, and judges each run against the previous run *of the same label* (the
same scenario; a smoke run says nothing about a load run) with ``verdict.compare``'s own rules:
``compare_summaries`` on the two summaries and their ``histograms.json``, so a regression here
is exactly what ``compare`` would flag for that pair. A folder that cannot be read (no
summary.json, bad JSON, a figure that is not a finite number, a file where a folder belongs,
no permission) is skipped with one note naming it, as ``compare``'s own checks word it.

Pure: the renderers live in ``report.history``, the command in ``cli.history``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from panacea_locust.verdict.compare import (
    DEFAULT_MIN_TAIL_SAMPLES,
    DEFAULT_NOISE_FLOOR_MS,
    DEFAULT_TOLERANCE,
    TOTAL_SCOPE,
    CompareInputError,
    Comparison,
    compare_summaries,
    load_histograms,
    load_summary,
)
from panacea_locust.verdict.decision import decide
from panacea_locust.verdict.thresholds import finite_number as _number

#: the page ``panacea-locust history`` writes, by default into the results folder; never
#: taken for a run folder
HISTORY_HTML = "history.html"
#: the metrics of the total a history shows and charts, in that order
METRICS: tuple[str, ...] = ("rps", "p95_ms", "p99_ms", "failure_ratio")

_FOLDER_TIME = re.compile(r"^(\d{8}T\d{6}Z)")


class HistoryInputError(ValueError):
    """A results folder that cannot be listed; ``str(err)`` is one line."""


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str | None:
    """A run fact as text; None when it is missing or empty."""
    return None if value is None or value == "" else str(value)


def _started(summary: Mapping[str, Any], folder: Path) -> datetime | None:
    """When the run started: ``run.started_at``, else the UTC time its folder is named after."""
    raw = _map(summary.get("run")).get("started_at")
    if isinstance(raw, str):
        try:
            moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            moment = None
        if moment is not None:
            return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    match = _FOLDER_TIME.match(folder.name)
    if match:
        return datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    return None


def _count(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"


def load_text(run: Mapping[str, Any]) -> str:
    """The load a run applied, as people say it: ``25 users`` (closed: a number of users) or
    ``20/s`` (open: an arrival rate). From ``run.workload`` when the summary has one, else
    the peak of its shape's stages, the users Locust was told to run, or the users counted."""
    workload = run.get("workload")
    if isinstance(workload, Mapping):
        rate = next(
            (
                _number(workload.get(key))
                for key in ("rate", "target_rps", "rps", "arrival_rate")
                if _number(workload.get(key)) is not None
            ),
            None,
        )
        users = _number(workload.get("users"))
        model = str(workload.get("model") or workload.get("kind") or "").lower()
        if rate is not None and (users is None or model == "open"):
            return f"{_count(rate)}/s"
        if users is not None:
            return f"{_count(users)} users"
    elif isinstance(workload, str) and workload:
        return workload
    stages = [s for s in _map(run.get("shape")).get("stages") or [] if isinstance(s, Mapping)]
    peak_users = [u for s in stages if (u := _number(s.get("users"))) is not None]
    peak_rate = [r for s in stages if (r := _number(s.get("target_rps"))) is not None]
    if peak_users:
        return f"up to {_count(max(peak_users))} users"
    if peak_rate:
        return f"up to {_count(max(peak_rate))}/s"
    configured = _number(_map(run.get("locust")).get("num_users"))
    if configured is not None:
        return f"{_count(configured)} users"
    counted = [n for n in map(_number, _map(run.get("users")).values()) if n is not None]
    return f"{_count(sum(counted))} users" if counted else "-"


@dataclass(frozen=True)
class RunRecord:
    """One run folder that could be read: its summary and what a history line shows."""

    folder: Path
    summary: Mapping[str, Any] = field(repr=False)
    started: datetime | None = None

    @property
    def run(self) -> Mapping[str, Any]:
        return _map(self.summary.get("run"))

    @property
    def id(self) -> str:
        return _text(self.run.get("id")) or self.folder.name

    @property
    def label(self) -> str:
        """``run.label``, else the part of the folder name after its time."""
        label = _text(self.run.get("label"))
        if label is not None:
            return label
        name = self.folder.name
        return name.split("_", 1)[1] if _FOLDER_TIME.match(name) and "_" in name else name

    @property
    def target_version(self) -> str | None:
        return _text(self.run.get("target_version"))

    @property
    def description(self) -> str | None:
        return _text(self.run.get("description"))

    @property
    def git_commit(self) -> str | None:
        return _text(self.run.get("git_commit"))

    @property
    def load(self) -> str:
        return load_text(self.run)

    def metric(self, name: str) -> float | None:
        """A figure of the run's total (``rps``, ``p95_ms``, ``p99_ms``, ``failure_ratio``)."""
        return _number(_map(self.summary.get("total")).get(name))

    @property
    def verdict(self) -> str:
        """PASS, FAIL, INCONCLUSIVE, NONE ..., as the run recorded it (or its rules give it)."""
        outcome = _map(self.summary.get("verdict")).get("outcome")
        return outcome if isinstance(outcome, str) and outcome else decide(self.summary).outcome


@dataclass(frozen=True)
class Entry:
    """A run in the history, and how it compares with the previous run of its label."""

    run: RunRecord
    previous: RunRecord | None = None
    comparison: Comparison | None = None
    #: why the pair could not be compared, when it could not
    problem: str | None = None

    @property
    def regressions(self) -> list[tuple[str, str]]:
        return self.comparison.regressions if self.comparison is not None else []

    @property
    def regressed_metrics(self) -> set[str]:
        """The total's metrics flagged against the previous run (for the charts)."""
        if self.comparison is None:
            return set()
        return {
            metric
            for scope in self.comparison.scopes
            if scope.scope == TOTAL_SCOPE
            for metric in scope.regressed_metrics()
        }

    @property
    def change(self) -> str:
        """``-`` (nothing before it), ``ok``, ``REGRESSION (n)`` or ``INCONCLUSIVE (n)``."""
        if self.comparison is None:
            return "not compared" if self.problem else "-"
        n = len(self.comparison.regressions)
        if not n:
            return "ok"
        return f"{'INCONCLUSIVE' if self.comparison.inconclusive else 'REGRESSION'} ({n})"


@dataclass(frozen=True)
class History:
    results_dir: Path
    entries: list[Entry]
    #: one line per folder skipped, and per pair that could not be compared
    notes: list[str]
    label: str | None = None
    last: int | None = None

    @property
    def regressions(self) -> list[tuple[Entry, str, str]]:
        return [(e, scope, reason) for e in self.entries for scope, reason in e.regressions]


def read_runs(results_dir: Path) -> tuple[list[RunRecord], list[str]]:
    """Every readable run folder under ``results_dir``, oldest first, and a note for each
    entry skipped. Hidden entries (a run's temporary files) and ``history.html`` are no run
    folders and pass without a note."""
    if not results_dir.exists():
        raise HistoryInputError(f"results folder {str(results_dir)!r} does not exist")
    if not results_dir.is_dir():
        raise HistoryInputError(f"results folder {str(results_dir)!r} is not a folder")
    try:
        children = sorted(results_dir.iterdir())
    except OSError as exc:
        raise HistoryInputError(
            f"cannot list the results folder {str(results_dir)!r}: {exc.strerror or exc}"
        ) from None
    runs, notes = [], []
    for path in children:
        if path.name.startswith(".") or path.name == HISTORY_HTML:
            continue
        try:
            if not path.is_dir():
                notes.append(f"skipped {path}: a file, not a run folder")
                continue
            summary = load_summary(path, "the")
        except CompareInputError as exc:
            notes.append(f"skipped {path}: {_short(str(exc), path)}")
            continue
        except OSError as exc:
            notes.append(f"skipped {path}: cannot read it ({exc.strerror or exc})")
            continue
        runs.append(RunRecord(path, summary, _started(summary, path)))
    oldest = datetime.min.replace(tzinfo=timezone.utc)
    runs.sort(key=lambda r: (r.started or oldest, r.folder.name))
    return runs, notes


def _short(message: str, folder: Path) -> str:
    """``compare``'s message without the folder the note already names."""
    prefix = f"the run folder {str(folder)!r} "
    if message.startswith(prefix):
        return message[len(prefix) :]
    return message.replace(str(folder / "summary.json"), "summary.json")


def _judge(previous: RunRecord, current: RunRecord) -> Entry:
    """``current`` against ``previous`` by ``compare``'s rules and defaults."""
    try:
        comparison = compare_summaries(
            previous.summary,
            current.summary,
            DEFAULT_TOLERANCE,
            DEFAULT_NOISE_FLOOR_MS,
            DEFAULT_MIN_TAIL_SAMPLES,
            load_histograms(previous.folder),
            load_histograms(current.folder),
        )
    except CompareInputError as exc:
        return Entry(current, previous, None, str(exc))
    return Entry(current, previous, comparison)


def build_history(results_dir: Path, label: str | None = None, last: int | None = None) -> History:
    """The runs of ``results_dir`` (only ``label``'s when given; the ``last`` most recent when
    given), oldest first, each judged against the previous run of its label, even when that
    one is older than the ``last`` shown."""
    if last is not None and last < 1:
        raise HistoryInputError(f"--last {last} must be a whole number >= 1")
    runs, notes = read_runs(results_dir)
    if label is not None:
        runs = [r for r in runs if r.label == label]
    shown = runs[-last:] if last is not None else runs
    before: dict[str, RunRecord] = {}
    previous_of: dict[Path, RunRecord] = {}
    for run in runs:
        if run.label in before:
            previous_of[run.folder] = before[run.label]
        before[run.label] = run
    entries = []
    for run in shown:
        previous = previous_of.get(run.folder)
        entry = _judge(previous, run) if previous is not None else Entry(run)
        if entry.problem and previous is not None:
            notes.append(f"not compared {run.id} with {previous.id}: {entry.problem}")
        entries.append(entry)
    return History(results_dir, entries, notes, label, last)


def metric_series(history: History, metric: str) -> Sequence[tuple[Entry, float | None]]:
    """Each entry with its total's ``metric``, in the history's order (a chart's points)."""
    return [(e, e.run.metric(metric)) for e in history.entries]
