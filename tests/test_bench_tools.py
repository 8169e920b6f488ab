"""The benchmarks' own instruments (``bench/``): the delay server that is the accuracy truth
(and, with a capacity, the open model's), the steal-time arithmetic, the rule that takes
disturbed accuracy runs again, and the open-model benchmark's pieces."""

from __future__ import annotations

import contextlib
import http.client
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, clean_env

sys.path.insert(0, str(ROOT / "bench"))

import bench_accuracy  # noqa: E402
import bench_open_model  # noqa: E402
from common import LocustResult, _steal_shares  # noqa: E402


def test_delay_server_holds_each_request_and_records_what_it_held(tmp_path: Path) -> None:
    held_file = tmp_path / "held.txt"
    args = ["--delay-ms", "30", "--workers", "2", "--held-file", str(held_file)]
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "delay_server.py"), *args],
        stdout=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("listening on http://127.0.0.1:"), line
        port = int(line.rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        since = time.monotonic()
        elapsed = []
        for _ in range(4):  # one kept-alive connection, as Locust's users use it
            started = time.perf_counter()
            conn.request("POST", "/x", body=b'{"a": 1}', headers={"Content-Type": "a/json"})
            response = conn.getresponse()
            assert response.status == 200 and response.read() == b"{}"
            elapsed.append(time.perf_counter() - started)
        until = time.monotonic()
        conn.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    assert min(elapsed) >= 0.030
    lines = held_file.read_text().split()
    held_us, at_us = [int(x) for x in lines[0::2]], [int(x) for x in lines[1::2]]
    assert len(held_us) == 4  # the workers' own warm-up requests are not recorded
    assert all(30_000 <= us < 30_000 + 20_000 for us in held_us), held_us
    assert all(since <= at / 1e6 <= until for at in at_us)  # the clock Locust can read too


def test_steal_shares_are_per_cpu_shares_of_the_window() -> None:
    tick = os.sysconf("SC_CLK_TCK")
    since = {"wall": 10.0, "steal": [0, 5 * tick]}
    until = {"wall": 12.0, "steal": [tick // 10, 5 * tick + tick // 2]}
    assert _steal_shares(since, until) == pytest.approx([0.05, 0.25])
    assert _steal_shares({"wall": 1.0}, {"wall": 2.0, "steal": [1]}) == []  # not reported


def test_steal_on_looks_at_the_given_cpus_only(tmp_path: Path) -> None:
    r = LocustResult("x", 0, 0, 0.0, 0.0, tmp_path, steal=[0.01, 0.2, 0.03])
    assert r.steal_on((0, 2)) == 0.03
    assert r.steal_on((None, None)) == 0.2  # no pinning: every CPU counts
    assert LocustResult("x", 0, 0, 0.0, 0.0, tmp_path).steal_on((0, 1)) == 0.0


def _run(steal: float, p99: float) -> bench_accuracy.AccuracyRun:
    return bench_accuracy.AccuracyRun(
        "paced", "framework", 100, 50.5, p99, 50.0, 50.0, 0.2, steal=steal
    )


@pytest.mark.parametrize(
    ("steals", "attempts", "kept"),
    [
        ([0.01], 1, 0.01),  # calm at once: one run
        ([0.05, 0.01], 2, 0.01),  # disturbed, then calm
        ([0.05, 0.03, 0.04], 3, 0.03),  # never calm: the calmest of three, still disturbed
    ],
)
def test_disturbed_runs_are_taken_again_and_the_calmest_kept(
    monkeypatch: pytest.MonkeyPatch, steals: list[float], attempts: int, kept: float
) -> None:
    queue = [_run(s, 53.0 + i) for i, s in enumerate(steals)]
    monkeypatch.setattr(bench_accuracy, "measure", lambda *a, **k: queue.pop(0))
    pattern = bench_accuracy.Pattern("paced", 200, 0.2, 0.8, 100)
    r = bench_accuracy.measure_calm(
        pattern, "framework", 10.0, 50.0, (0, 1), max_steal=0.02, attempts=3, quiet=True
    )
    assert (r.attempts, r.steal) == (attempts, kept)
    assert not queue  # no run more than needed
    a = bench_accuracy.Accuracy(50.0, runs=[r])
    assert len(a.disturbed) == (1 if kept > 0.02 else 0)
    assert a.as_dict()["attempts"] == attempts


# --- the open-model benchmark: the server's capacity and the script's pieces ------------------
@contextlib.contextmanager
def _delay_server(tmp_path: Path, *args: str) -> Iterator[tuple[int, Path, Path]]:
    held, requests = tmp_path / "held.txt", tmp_path / "requests.txt"
    cmd = [sys.executable, str(ROOT / "bench" / "delay_server.py"), "--held-file", str(held)]
    proc = subprocess.Popen(
        [*cmd, "--requests-file", str(requests), *args],
        stdout=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("listening on http://127.0.0.1:"), line
        yield int(line.rsplit(":", 1)[1]), held, requests
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def test_delay_server_capacity_queues_the_request_beyond_it(tmp_path: Path) -> None:
    """Capacity 2, 150 ms each: of 3 requests sent at once on 3 connections, two are answered
    after 150 ms and the third waits for a slot, 300 ms; the records say so, by trace id."""
    args = ("--delay-ms", "150", "--capacity", "2", "--workers", "4")
    with _delay_server(tmp_path, *args) as (port, held_file, requests_file):
        conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
        try:
            started = time.perf_counter()
            for i, conn in enumerate(conns):
                traceparent = f"00-{i + 1:032x}-{1:016x}-01"
                conn.sendall(f"GET / HTTP/1.1\r\ntraceparent: {traceparent}\r\n\r\n".encode())
            elapsed = []
            with selectors.DefaultSelector() as answers:  # each answer as it comes
                for conn in conns:
                    answers.register(conn, selectors.EVENT_READ, conn)
                while len(elapsed) < 3:
                    for key, _ in answers.select(timeout=5):
                        assert key.data.recv(65536).startswith(b"HTTP/1.1 200 OK")
                        answers.unregister(key.data)
                        elapsed.append(time.perf_counter() - started)
        finally:
            for conn in conns:
                conn.close()
    first, second, last = sorted(elapsed)
    # two at once: the third answer comes a 150 ms delay after the second (half of it is the
    # margin for a busy host; at a capacity of three they would come together)
    assert first >= 0.15 and second < last - 0.075 and last >= 0.29, elapsed
    records = bench_open_model.read_server_requests(requests_file)
    assert set(records) == {f"{i:032x}" for i in (1, 2, 3)}
    queued = sorted(q for _, _, q in records.values())
    assert queued[0] == queued[1] == 0 and queued[2] >= 140, queued
    held = sorted(h for _, h, _ in records.values())
    assert held[2] >= 290, held  # the wait is part of what the server held it
    assert len(held_file.read_text().split()) == 6  # the held file as before: 2 columns x 3


def test_delay_server_without_capacity_holds_every_request_at_once(tmp_path: Path) -> None:
    with _delay_server(tmp_path, "--delay-ms", "150", "--workers", "4") as (port, _, requests):
        conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
        try:
            started = time.perf_counter()
            for conn in conns:
                conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            for conn in conns:
                assert conn.recv(65536).startswith(b"HTTP/1.1 200 OK")
            elapsed = time.perf_counter() - started
        finally:
            for conn in conns:
                conn.close()
    assert elapsed < 0.29  # at once: one 150 ms delay (two in turn would take 0.3 s)
    assert bench_open_model.read_server_requests(requests) == {}  # no traceparent: no trace id
    assert [line.split()[2:] for line in requests.read_text().splitlines()] == [["0", "-"]] * 3


def test_ladder_maximum_is_the_highest_step_held() -> None:
    rates = bench_open_model.ladder_rates(400, 1.25, 1300)
    assert rates == [400, 500, 625, 781, 977, 1221]
    # samples every 0.2 s: (monotonic, CPU s, requests, failures); the schedule starts at 100.0,
    # a warm-up of 3 s, then steps of 2 s; the generator answers at most 1000 a second and
    # stalls once for 50 ms in the 625 step's window: the higher steps held show it was no limit
    samples, t, count = [], 100.0, 0.0
    while t < 100.0 + 3 + 2 * len(rates):
        k = int((t - 103.0) // 2)
        rate = 200.0 if k < 0 else rates[k]
        stalled = k == 2 and abs(t - 108.6) < 0.01
        count += 0.2 * min(rate, 1000.0) - (rate * 0.05 if stalled else 0.0)
        samples.append((round(t, 3), 0.0, count, 0.0))
        t += 0.2
    steps = bench_open_model.steps_from_samples(samples, 100.0, 3.0, 2.0, rates)
    assert [s.held for s in steps] == [True, True, False, True, True, False]
    ladder = bench_open_model.Ladder(steps, steal=0.0)
    assert ladder.max_rps == 977 and not ladder.topped
    assert bench_open_model.Ladder(steps[:2], 0.0).topped


def test_the_truth_joins_the_probe_to_the_server_by_trace_id(tmp_path: Path) -> None:
    requests = tmp_path / "requests.txt"
    # answered at (us), held (us), queued (us), trace id
    requests.write_text("10030000 25000 5000 aa\n10090000 20000 0 bb\n10095000 20000 0 -\n")
    server = bench_open_model.read_server_requests(requests)
    rows = [("aa", 10.0, 31.0), ("bb", 10.068, 23.0), ("cc", 10.1, 40.0)]  # cc: no record
    truth = bench_open_model.join_truth(rows, server)
    assert truth.intended_ms == pytest.approx([30.0, 22.0])  # answer out - due
    assert truth.errors_ms == pytest.approx([1.0, 1.0])
    assert (truth.held_ms, truth.queued_ms) == ([25.0, 20.0], [5.0, 0.0])
    assert bench_open_model.percentile([5.0, 1.0, 3.0, 2.0, 4.0], 50) == 3.0


def test_closed_think_time_offers_the_rate_while_the_server_answers_in_its_hold() -> None:
    assert bench_open_model.think_time_s(40, 100, 0.02) == pytest.approx(0.38)
    assert 40 / (bench_open_model.think_time_s(40, 300, 0.02) + 0.02) == pytest.approx(300)
    with pytest.raises(ValueError, match="closed users"):
        bench_open_model.think_time_s(4, 300, 0.02)


def test_open_model_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    s, server = bench_open_model.settings_from(["--quick", "--parts", "3,2", "--slots", "8"])
    assert (s.rounds, s.window, s.attempts, s.parts) == (1, 4.0, 1, (2, 3))
    assert server.capacity_rps == 8 / 0.020
    s, _ = bench_open_model.settings_from(["--generator-max", "1500", "--ladder", "300,1.2,900"])
    assert (s.generator_max, s.ladder, s.rounds) == (1500.0, (300.0, 1.2, 900.0), 2)
    for bad in (["--ladder", "300,1,900"], ["--parts", "4"], ["--hold-ms", "0"]):
        with pytest.raises(SystemExit):
            bench_open_model.settings_from(bad)
    assert "error" in capsys.readouterr().err


@pytest.mark.e2e
def test_an_open_run_against_the_capacity_server_is_joined_to_the_truth() -> None:
    """One short open run with the probe loaded into Locust: every answered request is
    joined to the server's record, and the reported p99 is near the truth (loosely: this is
    plumbing, not the benchmark)."""
    run = bench_open_model.measure_open(
        0.5, bench_open_model.Server(2, 20.0), settle=1.0, window=2.0, cpus_=(None, None)
    )
    assert run.sent > 20 and run.joined == run.requests > 20
    assert run.true_service_p99_ms >= 20.0
    assert abs(run.p99_minus_truth) < 20.0, run
