"""The reference server's capacity (``--max-concurrency``): at most N requests worked on at once,
the rest queued first in, first out (never refused), and what ``/__stats`` says about it. Real
server processes on 127.0.0.1; timing bounds are generous (a shared 2-core machine)."""

from __future__ import annotations

import asyncio
import http.client
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from panacea_locust.reference_api import server as server_module
from panacea_locust.reference_api.capacity import Gate, WaitHistogram
from panacea_locust.reference_api.dataset import build_dataset
from panacea_locust.reference_api.launcher import ReferenceAPIProcess, contract_headers

DS = build_dataset(seed=42)
B1 = DS.bundles[0].bundle_id
H = contract_headers("capacity")
INFO = f"/api/v1/logs/info?bundle_id={B1}"
#: the info endpoint always takes exactly 100 ms
FIXED_100MS = ["--fault", "info=latency:100"]


def _get(port: int, path: str = INFO) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        conn.request("GET", path, headers=H)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def _all_at_once(n: int, call: Callable[[], int]) -> tuple[list[int], float]:
    """``n`` threads released together, each making one call: (statuses, seconds overall)."""
    statuses: list[int] = []
    start = threading.Barrier(n + 1)

    def one() -> None:
        start.wait()
        statuses.append(call())

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join(30)
    return statuses, time.perf_counter() - t0


def _wait_for(api: ReferenceAPIProcess, check: Callable[[dict[str, Any]], bool]) -> None:
    deadline = time.monotonic() + 10
    while not check(api.stats()["concurrency"]):
        assert time.monotonic() < deadline, api.stats()["concurrency"]
        time.sleep(0.01)


@pytest.mark.parametrize("fast_path", ["on", "off"])
def test_max_concurrency_queues_the_rest_and_reports_it(fast_path: str) -> None:
    """10 requests of 100 ms at once, 2 at a time: about 5 x 100 ms overall, all answered 200,
    never more than 2 in flight, and the later ones waited in the queue; the same through
    FastAPI's router (``--fast-path off``)."""
    args = [*FIXED_100MS, "--fast-path", fast_path]
    with ReferenceAPIProcess(args, max_concurrency=2) as api:
        statuses, took = _all_at_once(10, lambda: _get(api.port))
        assert statuses == [200] * 10
        assert 0.45 <= took < 5.0, took
        c = api.stats()["concurrency"]
        assert c["max_concurrency"] == 2 and c["max_in_flight"] == 2
        assert (c["in_flight"], c["queued"], c["abandoned"]) == (0, 0, 0)
        assert c["max_queued"] >= 2
        waits = c["queue_wait_ms"]
        assert waits["count"] == 10
        assert 250 <= waits["max"] < 5000 and waits["p50"] <= waits["p99"] <= waits["max"]

        api.reset_stats()
        c = api.stats()["concurrency"]
        assert (c["max_in_flight"], c["queue_wait_ms"]["count"], c["max_queued"]) == (0, 0, 0)


def test_without_a_limit_requests_run_side_by_side() -> None:
    """The default (no ``--max-concurrency``): today's behaviour, nothing queues."""
    with ReferenceAPIProcess(FIXED_100MS) as api:
        statuses, _ = _all_at_once(10, lambda: _get(api.port))
        assert statuses == [200] * 10
        c = api.stats()["concurrency"]
        assert c["max_concurrency"] is None and c["max_in_flight"] >= 3
        assert c["queue_wait_ms"] == {"count": 10, "p50": 0.0, "p99": 0.0, "max": 0.0}


def test_the_queue_is_first_in_first_out_and_a_leaver_gives_its_place_up() -> None:
    """One slot, 600 ms each: requests queued in the order 1, 2 (who leaves), 3, 4 are answered
    in the order 0, 1, 3, 4, and the leaver is never worked on."""
    with ReferenceAPIProcess(["--fault", "info=latency:600"], max_concurrency=1) as api:
        done: list[int] = []
        threads: list[threading.Thread] = []

        def send(n: int) -> None:
            assert _get(api.port) == 200
            done.append(n)

        def start(n: int) -> None:
            threads.append(threading.Thread(target=send, args=(n,)))
            threads[-1].start()

        start(0)
        _wait_for(api, lambda c: c["in_flight"] == 1)
        start(1)
        _wait_for(api, lambda c: c["queued"] == 1)
        leaver = socket.create_connection(("127.0.0.1", api.port), timeout=5)
        leaver.sendall(
            f"GET {INFO} HTTP/1.1\r\nHost: x\r\n".encode()
            + "".join(f"{k}: {v}\r\n" for k, v in H.items()).encode()
            + b"\r\n"
        )
        _wait_for(api, lambda c: c["queued"] == 2)
        start(3)
        _wait_for(api, lambda c: c["queued"] == 3)
        start(4)
        _wait_for(api, lambda c: c["queued"] == 4)
        leaver.close()
        _wait_for(api, lambda c: c["abandoned"] == 1)
        for t in threads:
            t.join(10)
        assert done == [0, 1, 3, 4]
        stats = api.stats()
        assert stats["total"] == 4  # the leaver's request was never handled
        assert stats["concurrency"]["max_in_flight"] == 1


def test_introspection_never_waits_in_the_queue() -> None:
    with ReferenceAPIProcess(
        ["--fault", "info=latency:2000", "--shutdown-grace", "0"], max_concurrency=1
    ) as api:
        for _ in range(3):
            threading.Thread(target=_get, args=(api.port,), daemon=True).start()
        _wait_for(api, lambda c: c["in_flight"] == 1 and c["queued"] == 2)
        t0 = time.perf_counter()
        assert api.request("GET", "/__health")[0] == 200
        assert api.config()["latency"] == "on"
        assert time.perf_counter() - t0 < 1.0


# --- the gate and the histogram, without a server ----------------------------------------------


def test_gate_hands_a_freed_slot_to_the_longest_waiter() -> None:
    async def scenario() -> list[str]:
        gate = Gate(1)
        order: list[str] = []
        never: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        async def receive() -> Any:  # the client never leaves
            return await never

        async def worker(name: str) -> None:
            if not gate.enter_now():
                assert await gate.enter_queued(receive)
            order.append(name)
            await asyncio.sleep(0.01)
            gate.leave()

        first = asyncio.create_task(worker("a"))
        await asyncio.sleep(0)
        rest = [asyncio.create_task(worker(n)) for n in "bcd"]
        await asyncio.sleep(0)
        assert not gate.enter_now()  # a newcomer cannot overtake the queue
        await asyncio.gather(first, *rest)
        assert (gate.in_flight, gate.max_in_flight, gate.max_queued) == (0, 1, 3)
        assert gate.waits.count == 4
        return order

    assert asyncio.run(scenario()) == ["a", "b", "c", "d"]


def test_wait_histogram_percentiles_within_two_percent() -> None:
    h = WaitHistogram()
    for ms in range(1, 101):
        h.add(float(ms))
    for _ in range(100):
        h.add(0.0)
    d = h.describe()
    assert d["count"] == 200 and d["max"] == 100.0
    assert d["p50"] == 0.0
    assert h.percentile(0.75) == pytest.approx(50.0, rel=0.02)
    assert h.percentile(0.99) == pytest.approx(98.0, rel=0.02)
    assert WaitHistogram().describe() == {"count": 0, "p50": 0.0, "p99": 0.0, "max": 0.0}


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["--max-concurrency", "0"], "--max-concurrency"),
        (["--max-concurrency", "many"], "--max-concurrency"),
        (["--max-body-bytes", "0"], "--max-body-bytes"),
        (["--keep-alive-timeout", "-1"], "--keep-alive-timeout"),
        (["--shutdown-grace", "99999"], "--shutdown-grace"),
        (["--max-connections", str(10**9)], "--max-connections"),
        (["--backlog", "0"], "--backlog"),
        (["--bundle-max", str(2**64)], "--bundle-max"),
    ],
)
def test_bad_limit_is_one_line_and_exit_2(
    argv: list[str], option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        server_module.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and option in err and "error" in err, err


def test_the_start_line_names_the_capacity() -> None:
    with ReferenceAPIProcess(["--latency", "off"], max_concurrency=3) as api:
        assert any("max concurrency 3" in line for line in api.output)
