#!/usr/bin/env python3
"""Check the database-mode set-up: settings, the ClickHouse connection, what would be loaded.

    source setup_env.sh          # or export the CLICKHOUSE_* variables yourself
    python setup_and_test.py     # exit 0: every kind would come from the database

It changes nothing in the database. To create and fill the reference schema on a test server:
``panacea-locust db init && panacea-locust db seed``.
"""

from __future__ import annotations

import sys

from panacea_locust.cli.db import check_report, print_tables_and_kinds
from panacea_locust.config import ConfigError, load_settings

__test__ = False  # a script, not a pytest module


def main() -> int:
    print("== settings")
    try:
        settings = load_settings()
    except ConfigError as err:
        print(f"  {err}")
        return 2
    shown = settings.masked()
    for name in ("USE_DATABASE_DATA", "CLICKHOUSE_HOST", "CLICKHOUSE_PORT", "CLICKHOUSE_DATABASE",
                 "CLICKHOUSE_USER", "CLICKHOUSE_PASSWORD", "CLICKHOUSE_CONNECT_TIMEOUT",
                 "CLICKHOUSE_QUERY_TIMEOUT", "DB_USERS_LIMIT", "DB_BUNDLE_IDS_LIMIT",
                 "DB_COMBO_IDS_LIMIT", "DB_SFDC_CASES_LIMIT"):  # fmt: skip
        print(f"  {name:<28} {shown[name]}")
    if not settings.use_database_data:
        print("  note: USE_DATABASE_DATA is off: a run would use generated data; checking anyway")

    print("== connection")
    report = check_report(settings.model_copy(update={"use_database_data": True}))
    print(f"  {report['target']}")
    if not report["connected"]:
        print(f"  FAILED: {report['error']}")
        print("  a database-mode run would go on with generated data (and say so in its summary)")
        print("  hints: is ClickHouse running and reachable on the native port? is")
        print("  CLICKHOUSE_PASSWORD set? does the database exist ('panacea-locust db init')?")
        return 1
    print(f"  OK: ClickHouse {report['server_version']}")
    print_tables_and_kinds(report)
    if report["complete"]:
        print("== ready: every kind comes from the database")
        return 0
    print("== partly ready: the kinds above marked 'generated' fall back to generated data")
    return 1


if __name__ == "__main__":
    sys.exit(main())
