"""Database mode in a distributed run: what the master's data costs to load and to ship.

Only the master reads ClickHouse and sends its workers what it loaded
(``pool_transfer.py``). This measures, on a real ClickHouse (Debian's ``clickhouse-server``,
started on loopback with free ports by the test suite's own fixture) seeded by
``panacea-locust db seed`` with ``--bundles`` active bundles:

- the master's start-up cost: ``load_pool_data`` (every kind, the bundle limit raised to the
  bundle count) and packing (JSON, zlib, chunks), medians of ``--rounds`` alternating rounds;
- what goes to each worker: bytes, chunks, bytes of JSON before compression;
- a worker's cost to put it back together and decode it.

Run: ``python bench/bench_pool_transfer.py [--bundles 100000] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from clickhouse_fixture import ClickHouseInfo, ClickHouseTestServer, find_server_command  # noqa: E402
from common import ROOT, clean_env, median, print_machine  # noqa: E402

from panacea_locust.clickhouse_dao import load_pool_data  # noqa: E402
from panacea_locust.config import load_settings  # noqa: E402
from panacea_locust.pool_transfer import Assembler, pack  # noqa: E402


def db(info: ClickHouseInfo, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "panacea_locust.cli", "db", *args, "--database", info.database],
        cwd=ROOT, env=clean_env(**info.env()), check=True, capture_output=True, timeout=900,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundles", type=int, default=100_000, help="active bundle ids")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    command = find_server_command()
    if command is None:
        sys.exit("bench_pool_transfer: clickhouse-server is missing (make clickhouse installs it)")
    print_machine()
    server = ClickHouseTestServer(command)
    info = server.start()
    try:
        info = ClickHouseInfo(**{**info.__dict__, "database": "bench_pool_transfer"})
        db(info, "init")
        # a few of the range are left unknown and a few are not completed: seed more than asked
        seeded = time.monotonic()
        db(info, "seed", "--users", "1000", "--bundle-min", "1",
           "--bundle-max", str(int(args.bundles * 1.25)))  # fmt: skip
        print(f"seeded in {time.monotonic() - seeded:.1f} s")
        settings = load_settings(info.overrides(
            use_database_data=True, db_bundle_ids_limit=args.bundles, db_users_limit=1000,
            db_sfdc_cases_limit=1000, db_combo_ids_limit=10_000,
        ))  # fmt: skip
        loads, packs, unpacks = [], [], []
        for _ in range(args.rounds):
            started = time.perf_counter()
            data = load_pool_data(settings)
            loads.append(time.perf_counter() - started)
            started = time.perf_counter()
            packed = pack(data)
            packs.append(time.perf_counter() - started)
            started = time.perf_counter()
            assembler, got = Assembler(), None
            for message in packed.messages():
                got = assembler.add(message) or got
            unpacks.append(time.perf_counter() - started)
            assert got is not None and got.bundle_ids == data.bundle_ids
        loaded = data.describe()["loaded"]
        print(f"loaded: {loaded}")
        print(f"master: load {median(loads):.2f} s + pack {median(packs) * 1000:.0f} ms "
              f"(median of {args.rounds})")  # fmt: skip
        print(f"to each worker: {packed.sent_bytes / 1024:.0f} kB in {len(packed.chunks)} "
              f"chunks ({packed.raw_bytes / 1024:.0f} kB of JSON, "
              f"{packed.raw_bytes / packed.sent_bytes:.1f}x compressed)")  # fmt: skip
        print(f"worker: assemble and decode {median(unpacks) * 1000:.0f} ms")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
