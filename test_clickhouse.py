#!/usr/bin/env python3
"""The detailed ClickHouse queries behind database mode, run one by one with their timings.

    source setup_env.sh
    python test_clickhouse.py [--samples N]

For each reference table: whether it exists, its row count and its newest rows; then every
query database mode runs (sessions, active bundle ids, combo ids, recent SFDC cases, bundle
paths), with its SQL, the limit from the DB_*_LIMIT variables, rows returned and time taken.
Read-only. Exit 0 when every query returns rows, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from panacea_locust.clickhouse_dao import TABLES, ClickHouseDAO, ClickHouseError
from panacea_locust.config import ConfigError, load_settings

__test__ = False  # a script, not a pytest module


def _timed(call: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = call()
    return result, (time.perf_counter() - started) * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=3, help="rows shown per table (3)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as err:
        print(err)
        return 2
    ok = True
    with ClickHouseDAO(settings) as dao:
        print(dao.target)
        try:
            version, ms = _timed(dao.ping)
        except ClickHouseError as err:
            print(f"connection FAILED: {err}")
            return 1
        print(f"server: ClickHouse {version} (connect and SELECT version(): {ms:.1f} ms)")
        present = set(dao.existing_tables())
        n = dao.names

        print("\n== tables")
        for table in TABLES:
            name = getattr(n, table)
            if name not in present:
                print(f"{n.shown(table)}: MISSING (create it with 'panacea-locust db init')")
                ok = False
                continue
            count, ms = _timed(partial(dao.count_rows, table))
            print(f"{n.shown(table)}: {count} rows ({ms:.1f} ms)")
            if table == "log_bundles":
                active = dao.count_rows(table, where_status=settings.clickhouse_active_status)
                print(f"  {n.status} = {settings.clickhouse_active_status!r}: {active} rows")
            if args.samples > 0 and count:
                sql = (f"SELECT * FROM {n.table(table)} ORDER BY {n.q('created_at')} DESC "
                       "LIMIT %(limit)s")  # fmt: skip
                for row in dao.execute(sql, {"limit": args.samples}):
                    print(f"  {row}")

        print("\n== the queries of database mode")
        queries: list[tuple[str, str, int, Callable[[int], list[Any]]]] = [
            ("users and sessions", "DB_USERS_LIMIT", settings.db_users_limit,
             dao.get_users_and_sessions),
            ("active bundle ids", "DB_BUNDLE_IDS_LIMIT", settings.db_bundle_ids_limit,
             dao.get_active_bundle_ids),
            ("active combo ids", "DB_COMBO_IDS_LIMIT", settings.db_combo_ids_limit,
             dao.get_active_combo_ids),
            ("recent SFDC cases", "DB_SFDC_CASES_LIMIT", settings.db_sfdc_cases_limit,
             dao.get_recent_sfdc_cases),
            ("bundle paths", "DB_BUNDLE_IDS_LIMIT", settings.db_bundle_ids_limit,
             dao.get_bundle_paths),
        ]  # fmt: skip
        for title, variable, limit, query in queries:
            try:
                rows, ms = _timed(partial(query, limit))
            except ClickHouseError as err:
                print(f"{title}: FAILED: {err}")
                ok = False
                continue
            print(f"{title} ({variable}={limit}): {len(rows)} rows in {ms:.1f} ms")
            print(f"  first: {rows[: args.samples]}")
            ok = ok and bool(rows)
        cases = dao.get_recent_sfdc_cases(1)
        if cases:
            paths, ms = _timed(partial(dao.get_bundle_paths_by_sfdc_case, cases[0]))
            print(f"bundle paths of case {cases[0]}: {len(paths)} in {ms:.1f} ms: {paths[:2]}")
    print("\nall queries returned rows" if ok else "\nsome queries failed or returned nothing")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
