"""The run over time: per-interval histograms, ``timeline.json``, ``latency.hlog`` and windows.

A whole-run percentile hides a collapse late in a long good run: five bad seconds after
twenty-five good ones barely move a p95. So every run also keeps, for each interval of
``interval_s`` seconds from the test's start, per request name: the histogram of the answered
requests (the whole run's buckets, so intervals and windows merge exactly), the count of failed
ones, the acceptable 4xx by code; and the users running at the interval's end.

A local process records each request straight into the current interval; a master adds each
worker's drained delta (``RunTally.drain``) into the interval it arrives in. Workers report
every 3 s, so on a distributed run an interval's edges are as sharp as that.

From the intervals: ``timeline.json`` (the run, interval by interval), ``latency.hlog``
(HdrHistogram's standard interval log, for its own tools) and the windows that rules with
``window_s`` judge (``verdict/thresholds.py``). Pure: no Locust import.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from hdrh.log import HistogramLogWriter

from panacea_locust.verdict.histogram import (
    TOTAL,
    SparseHistogram,
    percentile_of,
)
from panacea_locust.verdict.thresholds import Window

DEFAULT_INTERVAL_S = 5.0
#: an interval longer than an hour would make a timeline of one or two points
MAX_INTERVAL_S = 3600.0
TIMELINE_FILE = "timeline.json"
HLOG_FILE = "latency.hlog"
#: percentiles in timeline.json (of answered requests, as in summary.json)
TIMELINE_PERCENTILES: tuple[tuple[str, float], ...] = (
    ("p50_ms", 50.0), ("p95_ms", 95.0), ("p99_ms", 99.0),
)  # fmt: skip
#: percentiles a window offers its rules (every latency rule's)
WINDOW_PERCENTILES: tuple[tuple[str, float], ...] = (
    ("p50_ms", 50.0), ("p90_ms", 90.0), ("p95_ms", 95.0), ("p99_ms", 99.0),
)  # fmt: skip
#: hlog values are microseconds; the interval lines' max column is in milliseconds
_US_PER_MS = 1000.0
#: a tag ends at a comma, and HdrHistogram's Java reader splits on whitespace too
_TAG_UNSAFE = re.compile(r"[\s,]")


def parse_interval(value: str | float) -> float:
    """An interval in seconds from an option or an environment variable; ``ValueError`` saying
    the rule unless it is a finite number above 0 and at most an hour."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if not math.isfinite(seconds) or not 0 < seconds <= MAX_INTERVAL_S:
        raise ValueError(
            f"must be a number of seconds above 0 and at most {MAX_INTERVAL_S:.0f}, not {value!r}"
        )
    return seconds


class Interval:
    """What one interval holds, by request name."""

    __slots__ = ("answered", "failures", "reasons", "acceptable", "users")

    def __init__(self) -> None:
        self.answered: dict[str, SparseHistogram] = {}
        self.failures: Counter[str] = Counter()
        #: the failures' reasons by request name, as ``summary.json`` names them: what tells
        #: the load generator's own failures (``GENERATOR_FAILURE``) from the target's
        self.reasons: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.acceptable: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.users: int | None = None

    def record(self, name: str, ms: float) -> None:
        """An answered request (a local process's hot path: one dict look-up and a record)."""
        hist = self.answered.get(name)
        if hist is None:
            hist = self.answered[name] = SparseHistogram()
        hist.record(ms)

    def fail(self, name: str, reason: str) -> None:
        """A failed request, with its reason."""
        self.failures[name] += 1
        self.reasons[name][reason] += 1

    def merge(self, other: Interval) -> None:
        for name, hist in other.answered.items():
            self.answered.setdefault(name, SparseHistogram()).merge(hist)
        self.failures.update(other.failures)
        for name, reasons in other.reasons.items():
            self.reasons[name].update(reasons)
        for name, codes in other.acceptable.items():
            self.acceptable[name].update(codes)
        if other.users is not None:
            self.users = other.users

    def clear_requests(self) -> None:
        self.answered, self.failures = {}, Counter()
        self.reasons, self.acceptable = defaultdict(Counter), defaultdict(Counter)

    def names(self) -> set[str]:
        return {n for n, h in self.answered.items() if h.count} | {
            n for n, c in self.failures.items() if c
        }

    def parts(self, scope: str) -> Parts:
        """``scope``'s (a name, or ``total``) answered histogram, failures, acceptable 4xx
        and failure reasons."""
        if scope != TOTAL:
            return (
                self.answered.get(scope) or SparseHistogram(), self.failures.get(scope, 0),
                Counter(self.acceptable.get(scope) or {}), Counter(self.reasons.get(scope) or {}),
            )  # fmt: skip
        total = SparseHistogram()
        for hist in self.answered.values():
            total.merge(hist)
        acceptable: Counter[str] = Counter()
        for codes in self.acceptable.values():
            acceptable.update(codes)
        reasons: Counter[str] = Counter()
        for counted in self.reasons.values():
            reasons.update(counted)
        return total, sum(self.failures.values()), acceptable, reasons


#: one scope of an interval: answered histogram, failures, acceptable 4xx, failure reasons
Parts = tuple[SparseHistogram, int, Counter[str], Counter[str]]


#: an interval with its time span: (start_s, end_s, interval)
Span = tuple[float, float, Interval]


class Timeline:
    """The intervals of one test, by index (interval ``i`` covers ``i * interval_s`` to
    ``(i + 1) * interval_s`` seconds after the start)."""

    def __init__(self, interval_s: float = DEFAULT_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self._intervals: dict[int, Interval] = {}
        #: where a local process records its requests (``advance`` moves it on)
        self.current = self.at(0.0)

    def restart(self) -> None:
        """Forget everything: a new test begins."""
        self._intervals = {}
        self.current = self.at(0.0)

    def clear_requests(self) -> None:
        """Forget the requests counted so far (Locust reset its statistics): the timeline
        covers the same requests as ``summary.json``."""
        for interval in self._intervals.values():
            interval.clear_requests()

    def index_of(self, at_s: float) -> int:
        return max(0, int(at_s // self.interval_s))

    def at(self, at_s: float) -> Interval:
        """The interval holding ``at_s`` seconds after the start (created when new)."""
        index = self.index_of(at_s)
        interval = self._intervals.get(index)
        if interval is None:
            interval = self._intervals[index] = Interval()
        return interval

    def advance(self, at_s: float) -> None:
        """Requests recorded from now on go into the interval holding ``at_s``."""
        self.current = self.at(at_s)

    def note_users(self, at_s: float, users: int) -> None:
        self.at(at_s).users = users

    def add(
        self,
        at_s: float,
        answered: Mapping[str, SparseHistogram],
        failed: Mapping[str, SparseHistogram],
        acceptable: Mapping[str, Mapping[str, int]],
        reasons: Mapping[str, Mapping[str, int]] | None = None,
    ) -> None:
        """A worker's delta, into the interval it arrived in (merged exactly); ``reasons``:
        its failures' reasons by request name."""
        interval = self.at(at_s)
        for name, hist in answered.items():
            mine = interval.answered.get(name)
            if mine is None:
                mine = interval.answered[name] = SparseHistogram()
            mine.merge(hist)
        for name, hist in failed.items():
            interval.failures[name] += hist.count
        for name, codes in acceptable.items():
            interval.acceptable[name].update(codes)
        for name, counted in (reasons or {}).items():
            interval.reasons[name].update(counted)

    # --- reading ---------------------------------------------------------------------------
    def spans(self, end_s: float) -> list[Span]:
        """Every interval from the start to ``end_s``, in order (empty ones too), the last one
        ending at ``end_s``. Anything that arrived after ``end_s`` (a worker's last report)
        counts in the last interval."""
        size = self.interval_s
        last = max(0, math.ceil(end_s / size - 1e-9) - 1)
        out: list[Span] = []
        for index in range(last + 1):
            interval = self._intervals.get(index) or Interval()
            out.append((index * size, min((index + 1) * size, max(end_s, index * size)), interval))
        late = [i for i in self._intervals if i > last]
        if late:
            folded = Interval()
            for index in [last, *sorted(late)]:
                if index in self._intervals:
                    folded.merge(self._intervals[index])
            out[-1] = (out[-1][0], out[-1][1], folded)
        return out

    def names(self, end_s: float, order: Sequence[str] = ()) -> list[str]:
        """Request names seen in the run: those of ``order`` first, then the others sorted."""
        seen: set[str] = set()
        for _, _, interval in self.spans(end_s):
            seen |= interval.names()
        return [n for n in order if n in seen] + sorted(seen.difference(order))

    def to_json(self, end_s: float, order: Sequence[str] = ()) -> dict[str, Any]:
        """``timeline.json``: per interval its span, users, total and endpoints (the blocks
        of ``summary.json``'s keys: requests, failures, acceptable, rps, p50/p95/p99/max)."""
        names = self.names(end_s, order)
        intervals = []
        users = 0
        for start, end, interval in self.spans(end_s):
            # an interval that no users sample reached had its predecessor's users
            users = interval.users if interval.users is not None else users
            seconds = end - start

            def block(scope: str, interval: Interval = interval, seconds: float = seconds) -> Any:
                hist, failures, acceptable, reasons = interval.parts(scope)
                return _block(
                    hist.counts, hist.count, failures, acceptable, reasons, seconds,
                    hist.min_ms, hist.max_ms, TIMELINE_PERCENTILES,
                )  # fmt: skip

            intervals.append(
                {
                    "start_s": round(start, 3),
                    "end_s": round(end, 3),
                    "users": users,
                    "total": block(TOTAL),
                    "endpoints": {name: block(name) for name in names},
                }
            )
        return {"interval_s": self.interval_s, "intervals": intervals}

    def windows(
        self, window_s: float, end_s: float, scopes: Iterable[str] | None = None
    ) -> list[Window]:
        """Every window of ``window_s`` seconds (rounded up to whole intervals), sliding by
        one interval, in time order; a run shorter than a window is one window. ``scopes``:
        the request names (or ``total``) to compute, default all."""
        spans = self.spans(end_s)
        wanted = [TOTAL, *self.names(end_s)] if scopes is None else list(dict.fromkeys(scopes))
        size = max(1, math.ceil(window_s / self.interval_s - 1e-9))
        size = min(size, len(spans))
        slides = {scope: _Slide([s[2].parts(scope) for s in spans]) for scope in wanted}
        out = []
        for first in range(len(spans) - size + 1):
            last = first + size - 1
            start, end = spans[first][0], spans[last][1]
            for slide in slides.values():
                slide.move_to(first, last)
            out.append(
                Window(start, end, _stats({s: sl.block(end - start) for s, sl in slides.items()}))
            )
        return out

    def recent(self, window_s: float, now_s: float, scopes: Iterable[str]) -> Window:
        """The most recent window: the intervals covering the last ``window_s`` seconds up to
        ``now_s`` (the current one still filling), for an abort rule to judge."""
        first = self.index_of(max(0.0, now_s - window_s))
        last = max(first, self.index_of(now_s))
        start = first * self.interval_s
        end = max(now_s, start)
        empty = Interval()
        stats = {}
        for scope in dict.fromkeys(scopes):
            parts = [(self._intervals.get(i) or empty).parts(scope) for i in range(first, last + 1)]
            slide = _Slide(parts)
            slide.move_to(0, len(parts) - 1)
            stats[scope] = slide.block(end - start)
        return Window(start, end, _stats(stats))

    # --- files -----------------------------------------------------------------------------
    def write_hlog(
        self, out: TextIO, end_s: float, started_at: datetime, order: Sequence[str] = ()
    ) -> None:
        """HdrHistogram's interval log (format 1.2): per interval one untagged line for all
        answered requests and one ``Tag=<request name>`` line per endpoint with answers;
        values in microseconds, timestamps in seconds from ``started_at``. Read it back with
        ``hdrh.log.HistogramLogReader`` or HdrHistogram's own tools."""
        # a whole millisecond, written alike in both headers: a reader takes each interval's
        # offset as BaseTime + timestamp - StartTime, and skips one that comes out below 0
        epoch = round(started_at.timestamp(), 3)
        writer = HistogramLogWriter(out)
        writer.output_comment("[Logged with panacea-locust: answered requests, microseconds]")
        writer.output_log_format_version()
        # hdrh's output_start_time cannot format a date; the line is the Java writer's
        when = started_at.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
        writer.output_comment(f"[StartTime: {epoch:.3f} (seconds since epoch), {when}]")
        writer.output_base_time(epoch * 1000.0)
        writer.output_legend()
        names = self.names(end_s, order)
        for start, end, interval in self.spans(end_s):
            _hlog_line(writer, out, interval.parts(TOTAL)[0], start, end, None)
            for name in names:
                hist = interval.answered.get(name)
                if hist is not None and hist.count:
                    _hlog_line(writer, out, hist, start, end, _TAG_UNSAFE.sub("_", name))

    def write(
        self, run_dir: Path, end_s: float, started_at: datetime, order: Sequence[str] = ()
    ) -> None:
        """``timeline.json`` and ``latency.hlog`` into ``run_dir`` (each written whole, then
        renamed into place)."""
        text = json.dumps(self.to_json(end_s, order), indent=1) + "\n"
        _write_atomic(run_dir / TIMELINE_FILE, lambda f: f.write(text))
        _write_atomic(run_dir / HLOG_FILE, lambda f: self.write_hlog(f, end_s, started_at, order))


class _Slide:
    """One scope over a sliding run of intervals: the buckets and counts of the intervals
    ``first..last`` kept by adding the interval entering and taking out the one leaving, so
    each step costs the filled buckets of two intervals, not of the whole window."""

    def __init__(self, parts: list[Parts]) -> None:
        self.parts = parts
        self.counts: dict[int, int] = {}
        self.answered = self.failures = 0
        self.acceptable: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()
        self.first, self.last = 0, -1

    def _apply(self, index: int, sign: int) -> None:
        hist, failures, acceptable, reasons = self.parts[index]
        counts = self.counts
        for bucket, n in hist.counts.items():
            left = counts.get(bucket, 0) + sign * n
            if left:
                counts[bucket] = left
            else:
                del counts[bucket]
        self.answered += sign * hist.count
        self.failures += sign * failures
        for code, n in acceptable.items():
            self.acceptable[code] += sign * n
        for reason, n in reasons.items():
            self.reasons[reason] += sign * n

    def move_to(self, first: int, last: int) -> None:
        """Hold the intervals ``first..last`` (both only move forward)."""
        for index in range(self.last + 1, last + 1):
            self._apply(index, +1)
        for index in range(self.first, first):
            self._apply(index, -1)
        self.first, self.last = first, last

    def block(self, seconds: float) -> dict[str, Any]:
        held = [p[0] for p in self.parts[self.first : self.last + 1] if p[0].count]
        low = min((h.min_ms for h in held), default=0.0)
        high = max((h.max_ms for h in held), default=0.0)
        # ``+`` drops the codes and reasons counted down to zero
        return _block(
            self.counts, self.answered, self.failures, +self.acceptable, +self.reasons,
            seconds, low, high, WINDOW_PERCENTILES,
        )  # fmt: skip


def _block(
    counts: Mapping[int, int],
    answered: int,
    failures: int,
    acceptable: Mapping[str, int],
    reasons: Mapping[str, int],
    seconds: float,
    low: float,
    high: float,
    percentiles: Sequence[tuple[str, float]],
) -> dict[str, Any]:
    """A scope's metrics over a stretch: ``summary.json``'s keys, times of answered requests."""
    requests = answered + failures
    block: dict[str, Any] = {
        "requests": requests,
        "failures": failures,
        "failures_by_reason": {reason: n for reason, n in sorted(reasons.items()) if n},
        "acceptable": {code: n for code, n in sorted(acceptable.items()) if n},
        "rps": round(requests / seconds, 3) if seconds > 0 else 0.0,
    }
    for key, q in percentiles:
        block[key] = round(percentile_of(counts, answered, q, low, high), 3) if answered else None
    block["max_ms"] = round(high, 3) if answered else None
    return block


def _stats(blocks: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """Scope blocks in ``summary.json``'s shape, as rules read it."""
    endpoints = {scope: b for scope, b in blocks.items() if scope != TOTAL}
    return {"total": blocks.get(TOTAL), "endpoints": endpoints}


def _hlog_line(
    writer: HistogramLogWriter,
    out: TextIO,
    hist: SparseHistogram,
    start: float,
    end: float,
    tag: str | None,
) -> None:
    hdr = hist.to_hdr()
    hdr.set_start_time_stamp(start * 1000.0)
    hdr.set_end_time_stamp(end * 1000.0)
    if tag:
        out.write(f"Tag={tag},")  # hdrh's writer has no tags; its reader (and Java's) reads them
    writer.output_interval_histogram(hdr, start, end, max_value_unit_ratio=_US_PER_MS)


def _write_atomic(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        write(f)
    os.replace(tmp, path)
