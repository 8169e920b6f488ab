"""The run's timeline, pure: interval bucketing, timeline.json, exact merging of worker deltas,
sliding windows, the most recent window, and latency.hlog read back by hdrh's own reader."""

from __future__ import annotations

import io
import json
import math
import random
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader

from panacea_locust.verdict.histogram import (
    HIGHEST_US,
    LOWEST_US,
    SIGNIFICANT_DIGITS,
    TOTAL,
    LatencyHistogram,
    SparseHistogram,
)
from panacea_locust.verdict.tally import RunTally
from panacea_locust.verdict.timeline import (
    HLOG_FILE,
    TIMELINE_FILE,
    Interval,
    Timeline,
    parse_interval,
)

SEARCH, INFO = "/api/v1/logs/search", "/api/v1/logs/info"
STARTED = datetime(2025, 1, 2, 3, 4, 5, 903880, tzinfo=timezone.utc)  # not a whole ms


def _values(n: int, seed: int = 1, scale: float = 20.0) -> list[float]:
    rng = random.Random(seed)
    return [rng.lognormvariate(math.log(scale), 0.8) for _ in range(n)]


# --- the interval option ---------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "seconds"), [("5", 5.0), ("0.5", 0.5), (2, 2.0), ("3600", 3600.0)])
def test_an_interval_is_a_number_of_seconds(raw: str | float, seconds: float) -> None:
    assert parse_interval(raw) == seconds


@pytest.mark.parametrize("raw", ["0", "-1", "nan", "inf", "five", "", "3601"])
def test_a_bad_interval_says_the_rule(raw: str) -> None:
    with pytest.raises(ValueError, match="above 0 and at most 3600") as err:
        parse_interval(raw)
    assert "\n" not in str(err.value) and repr(raw) in str(err.value)


# --- the sparse histogram matches the dense one ------------------------------------------------


def test_sparse_histograms_give_the_dense_ones_percentiles_exactly() -> None:
    dense, sparse = LatencyHistogram(), SparseHistogram()
    for v in [*_values(3000), 0.0, -1.0, 5e9, 0.0004]:
        dense.record(v)
        sparse.record(v)
    for q in (0.0, 1.0, 50.0, 90.0, 95.0, 99.0, 99.9, 100.0):
        assert sparse.percentile(q) == dense.percentile(q), q
    assert (sparse.count, sparse.min_ms, sparse.max_ms) == (dense.count, dense.min_ms, dense.max_ms)
    again = SparseHistogram.of(dense)
    assert (again.counts, again.count) == (sparse.counts, sparse.count)
    assert SparseHistogram.from_payload(dense.to_payload()).counts == sparse.counts
    assert LatencyHistogram.from_payload(sparse.to_payload()).percentile(99) == dense.percentile(99)
    assert SparseHistogram().percentile(50) == 0.0


# --- intervals -------------------------------------------------------------------------------


def test_requests_fall_into_the_interval_of_their_time() -> None:
    tl = Timeline(5.0)
    assert tl.at(0.0) is tl.at(4.999) is tl.at(-1.0)
    assert tl.at(5.0) is not tl.at(4.999)
    assert tl.index_of(12.5) == 2
    assert tl.current is tl.at(0.0)
    tl.advance(7.0)
    assert tl.current is tl.at(5.0)


def _local_run() -> Timeline:
    """Twelve seconds of a local process at 5 s intervals: 10 answered requests a second to
    search (some failed), 5 to info, two acceptable 404s, users ramping from 2 to 4."""
    tl = Timeline(5.0)
    values = iter(_values(400))
    for second in range(12):
        tl.advance(second + 0.5)
        tl.note_users(second + 0.5, min(2 + second // 4, 4))
        for _ in range(10):
            tl.current.record(SEARCH, next(values))
        for _ in range(5):
            tl.current.record(INFO, next(values) / 4)
        if second % 3 == 0:
            tl.current.fail(SEARCH, "timeout")
    tl.at(6.0).acceptable[INFO]["404"] += 2
    return tl


def test_timeline_json_has_every_interval_up_to_the_end() -> None:
    tl = _local_run()
    data = tl.to_json(12.0, order=(SEARCH, INFO))
    assert data["interval_s"] == 5.0
    spans = [(i["start_s"], i["end_s"]) for i in data["intervals"]]
    assert spans == [(0.0, 5.0), (5.0, 10.0), (10.0, 12.0)]
    first, second, last = data["intervals"]
    assert [i["users"] for i in data["intervals"]] == [3, 4, 4]
    assert list(first["endpoints"]) == [SEARCH, INFO]
    keys = {"requests", "failures", "failures_by_reason", "acceptable", "rps",
            "p50_ms", "p95_ms", "p99_ms", "max_ms"}  # fmt: skip
    assert set(first["total"]) == keys and set(first["endpoints"][SEARCH]) == keys
    assert first["endpoints"][SEARCH]["failures_by_reason"] == {"timeout": 2}
    assert first["endpoints"][INFO]["failures_by_reason"] == {}
    # 5 s of 15 answered a second, plus the failures of seconds 0 and 3
    assert first["total"]["requests"] == 5 * 15 + 2
    assert first["total"]["failures"] == 2
    assert first["total"]["rps"] == pytest.approx(77 / 5)
    assert last["total"]["rps"] == pytest.approx((2 * 15 + 0) / 2)  # the last one is 2 s long
    assert second["total"]["acceptable"] == {"404": 2}
    assert second["endpoints"][INFO]["acceptable"] == {"404": 2}
    assert sum(i["total"]["requests"] for i in data["intervals"]) == 12 * 15 + 4


def test_timeline_percentiles_are_exact_per_interval() -> None:
    tl = Timeline(5.0)
    search, info = _values(500, seed=2), _values(300, seed=3, scale=3.0)
    for v in search:
        tl.at(1.0).record(SEARCH, v)
    for v in info:
        tl.at(1.0).record(INFO, v)
    block = tl.to_json(5.0)["intervals"][0]
    total, alone = LatencyHistogram(), LatencyHistogram()
    for v in search + info:
        total.record(v)
    for v in search:
        alone.record(v)
    for key, q in (("p50_ms", 50), ("p95_ms", 95), ("p99_ms", 99)):
        assert block["total"][key] == round(total.percentile(q), 3)
        assert block["endpoints"][SEARCH][key] == round(alone.percentile(q), 3)
    assert block["total"]["max_ms"] == round(max(search + info), 3)


def test_worker_deltas_merge_exactly_into_the_interval_they_arrive_in() -> None:
    """Two workers' drained reports on a master give the timeline a local run would have."""
    direct, master = Timeline(5.0), Timeline(5.0)
    workers = [RunTally(), RunTally()]
    collected = RunTally()
    rng = random.Random(4)
    for report_at in (3.0, 6.0, 9.0, 12.0):
        for worker in workers:
            for _ in range(200):
                name, v = rng.choice((SEARCH, INFO)), rng.lognormvariate(3, 1)
                if rng.random() < 0.05:
                    reason = rng.choice(("HTTP 500", "load generator: no local port free"))
                    worker.record_failure(name, v, reason)
                    direct.at(report_at).fail(name, reason)
                else:
                    worker.histograms.record(name, v)
                    direct.at(report_at).record(name, v)
            worker.acceptable_response(INFO, 404)
            direct.at(report_at).acceptable[INFO]["404"] += 1
            delta = collected.merge(worker.drain())
            master.add(report_at, delta.answered, delta.failed, delta.acceptable, delta.reasons)
    assert master.to_json(12.0) == direct.to_json(12.0)
    reasons = master.to_json(12.0)["intervals"][1]["total"]["failures_by_reason"]
    assert set(reasons) == {"HTTP 500", "load generator: no local port free"}, reasons
    answered = sum(
        i["total"]["requests"] - i["total"]["failures"] for i in master.to_json(12.0)["intervals"]
    )
    assert answered == collected.histograms.total.count


def test_late_reports_count_in_the_last_interval() -> None:
    tl = Timeline(5.0)
    tl.at(1.0).record(SEARCH, 10.0)
    tl.at(7.0).record(SEARCH, 20.0)
    tl.at(16.0).record(SEARCH, 30.0)  # a worker's last report, after the run's end at 8 s
    data = tl.to_json(8.0)
    assert [(i["end_s"], i["total"]["requests"]) for i in data["intervals"]] == [(5.0, 1), (8.0, 2)]
    assert data["intervals"][-1]["total"]["max_ms"] == 30.0


def test_a_reset_forgets_the_requests_and_a_restart_everything() -> None:
    tl = _local_run()
    tl.clear_requests()
    data = tl.to_json(12.0)
    assert sum(i["total"]["requests"] for i in data["intervals"]) == 0
    assert data["intervals"][-1]["users"] == 4  # the users stay: they were running
    tl.restart()
    assert tl.to_json(12.0)["intervals"][-1]["users"] == 0
    assert tl.current is tl.at(0.0)


def test_an_interval_counts_acceptable_responses_of_a_local_tally() -> None:
    tally = RunTally()
    tally.timeline = tl = Timeline(5.0)
    tally.acceptable_response(INFO, 404)
    tally.reset()  # a new test from the web UI: the timeline stays attached
    tally.acceptable_response(INFO, 404)
    assert tally.timeline is tl
    assert tl.current.acceptable[INFO]["404"] == 2 and tally.acceptable[INFO]["404"] == 1


# --- windows -----------------------------------------------------------------------------------


def _brute_window(tl: Timeline, first: int, last: int) -> Interval:
    merged = Interval()
    for index in range(first, last + 1):
        merged.merge(tl.at(index * tl.interval_s))
    return merged


def test_windows_slide_by_one_interval_and_merge_exactly() -> None:
    tl = Timeline(2.0)
    rng = random.Random(5)
    for index in range(10):
        for _ in range(rng.randrange(0, 120)):
            tl.at(index * 2.0).record(
                rng.choice((SEARCH, INFO)), rng.lognormvariate(2 + index / 4, 1)
            )
        for _ in range(index % 3):
            tl.at(index * 2.0).fail(SEARCH, f"HTTP 50{index % 2}")
    windows = tl.windows(5.0, 20.0)  # 5 s: three intervals of 2 s
    assert [(w.start_s, w.end_s) for w in windows] == [(i * 2.0, i * 2.0 + 6.0) for i in range(8)]
    for first, window in enumerate(windows):
        for scope in (TOTAL, SEARCH, INFO):
            hist, failures, _, reasons = _brute_window(tl, first, first + 2).parts(scope)
            block = window.stats["total"] if scope == TOTAL else window.stats["endpoints"][scope]
            assert block["requests"] == hist.count + failures
            assert block["failures"] == failures
            assert block["failures_by_reason"] == {r: n for r, n in sorted(reasons.items()) if n}
            assert block["rps"] == pytest.approx((hist.count + failures) / 6.0, abs=1e-3)
            for key, q in (("p50_ms", 50), ("p90_ms", 90), ("p95_ms", 95), ("p99_ms", 99)):
                expected = round(hist.percentile(q), 3) if hist.count else None
                assert block[key] == expected, (first, scope, key)
            assert block["max_ms"] == (round(hist.max_ms, 3) if hist.count else None)


def test_a_run_shorter_than_a_window_is_one_window_and_scopes_can_be_chosen() -> None:
    tl = _local_run()
    (window,) = tl.windows(60.0, 12.0, scopes=[SEARCH])
    assert (window.start_s, window.end_s) == (0.0, 12.0)
    assert window.stats["total"] is None and list(window.stats["endpoints"]) == [SEARCH]
    assert window.stats["endpoints"][SEARCH]["requests"] == 12 * 10 + 4


def test_the_most_recent_window_covers_the_last_seconds_up_to_now() -> None:
    """A collapse at 25 s fills the most recent 5 s window from the next interval on."""
    tl = Timeline(5.0)
    done: set[int] = set()

    def run_until(now: float) -> None:
        for second in set(range(int(now))) - done:
            done.add(second)
            for _ in range(20):
                tl.at(second + 0.5).record(SEARCH, 5.0 if second < 25 else 500.0)

    run_until(27.0)
    recent = tl.recent(5.0, 27.0, [TOTAL])
    assert (recent.start_s, recent.end_s) == (20.0, 27.0)  # intervals 20-25 and 25-now
    assert recent.stats["total"]["requests"] == 140
    assert recent.stats["total"]["p50_ms"] == pytest.approx(5.0, rel=1e-3)  # mostly fast still
    run_until(31.0)
    recent = tl.recent(5.0, 31.0, [TOTAL])
    assert (recent.start_s, recent.end_s) == (25.0, 31.0)
    assert recent.stats["total"]["p50_ms"] == pytest.approx(500.0, rel=1e-3)
    early = tl.recent(5.0, 3.0, [TOTAL])
    assert (early.start_s, early.end_s) == (0.0, 3.0)


# --- files -----------------------------------------------------------------------------------


def _read_hlog(path: Path) -> list[tuple[str | None, float, float, HdrHistogram]]:
    reader = HistogramLogReader(str(path), HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS))
    out = []
    try:
        while (hist := reader.get_next_interval_histogram()) is not None:
            start = hist.get_start_time_stamp() / 1000.0 - STARTED.timestamp()
            end = hist.get_end_time_stamp() / 1000.0 - STARTED.timestamp()
            out.append((hist.get_tag(), round(start, 3), round(end, 3), hist))
    finally:
        reader.close()
    return out


def test_the_hlog_reads_back_with_hdrh_interval_by_interval_and_tag_by_tag(tmp_path: Path) -> None:
    tl = _local_run()
    tl.at(3.0).record("/api/v1/with, comma", 1.0)
    tl.write(tmp_path, 12.0, STARTED, order=(SEARCH, INFO))
    assert json.loads((tmp_path / TIMELINE_FILE).read_text()) == tl.to_json(12.0, (SEARCH, INFO))
    lines = _read_hlog(tmp_path / HLOG_FILE)
    untagged = [(s, e, h.get_total_count()) for tag, s, e, h in lines if tag is None]
    intervals = tl.to_json(12.0)["intervals"]
    assert untagged == [
        (i["start_s"], i["end_s"], i["total"]["requests"] - i["total"]["failures"])
        for i in intervals
    ]
    tags = {tag for tag, *_ in lines if tag}
    assert tags == {SEARCH, INFO, "/api/v1/with__comma"}
    search = [h for tag, _, _, h in lines if tag == SEARCH]
    assert sum(h.get_total_count() for h in search) == 12 * 10
    # same buckets: hdrh's percentile of the first interval is ours, in microseconds
    ours = tl.at(0.0).answered[SEARCH]
    assert search[0].get_value_at_percentile(95.0) / 1000.0 == pytest.approx(
        ours.percentile(95.0), rel=1e-3
    )
    text = (tmp_path / HLOG_FILE).read_text()
    assert "#[Histogram log format version 1.2]" in text and "#[StartTime: " in text


def test_an_empty_run_still_writes_both_files(tmp_path: Path) -> None:
    Timeline(5.0).write(tmp_path, 0.0, STARTED)
    data = json.loads((tmp_path / TIMELINE_FILE).read_text())
    assert len(data["intervals"]) == 1 and data["intervals"][0]["total"]["requests"] == 0
    assert [h.get_total_count() for _, _, _, h in _read_hlog(tmp_path / HLOG_FILE)] == [0]


def test_hlog_lines_are_the_interval_format() -> None:
    tl = Timeline(5.0)
    tl.at(0.0).record(SEARCH, 12.5)
    out = io.StringIO()
    tl.write_hlog(out, 5.0, STARTED)
    data_lines = [line for line in out.getvalue().splitlines() if not line.startswith(("#", '"'))]
    assert data_lines[0].startswith("0.000000,5.000000,12.000000,HISTF")
    assert data_lines[1].startswith(f"Tag={SEARCH},0.000000,5.000000,")
