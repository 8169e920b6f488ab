"""``panacea-locust db init|seed|check``: the reference ClickHouse schema, its data, a dry run.

``init`` creates the reference schema (docs/database.md); ``seed`` fills it with the reference
API's own synthetic data set (so ids a database-mode run loads are ids the reference API knows)
plus user sessions; ``check`` connects and shows what database mode would load, kind by kind.
Connection settings are the ``CLICKHOUSE_*`` variables (flags override them); the password is
read from ``CLICKHOUSE_PASSWORD`` only, never from a flag, so it never shows in a process list.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from panacea_locust.clickhouse_dao import TABLES, ClickHouseDAO, ClickHouseError, load_pool_data
from panacea_locust.config import ConfigError, Settings, load_settings
from panacea_locust.payload_generator import EPOCH, FIRST_NAMES, LAST_NAMES, POOL_KINDS, SPAN_DAYS

EXIT_OK, EXIT_INCOMPLETE, EXIT_USAGE = 0, 1, 2


def _connection_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "connection (default: the CLICKHOUSE_* variables; password only from CLICKHOUSE_PASSWORD)"
    )
    group.add_argument("--host", help="ClickHouse host (CLICKHOUSE_HOST, default 127.0.0.1)")
    group.add_argument("--port", type=int, help="native-protocol port (CLICKHOUSE_PORT, 9000)")
    group.add_argument("--database", help="database (CLICKHOUSE_DATABASE, default panacea)")
    group.add_argument("--user", help="user (CLICKHOUSE_USER, default 'default')")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="panacea-locust db",
        description="Create, fill and check the reference ClickHouse schema of database mode.",
    )
    sub = parser.add_subparsers(dest="action", required=True, metavar="{init,seed,check}")

    init = sub.add_parser("init", help="create the database and its four tables (idempotent)")
    init.add_argument("--drop", action="store_true", help="drop the four tables first")
    init.add_argument("--print-sql", action="store_true", help="print the DDL, run nothing")
    _connection_args(init)

    seed = sub.add_parser(
        "seed", help="fill the tables with the reference API's synthetic data set and sessions"
    )
    seed.add_argument("--seed", type=int, help="data set seed (LOADTEST_SEED, else 42)")
    seed.add_argument("--users", type=int, default=1000, help="user sessions (default 1000)")
    seed.add_argument("--bundle-min", type=int, help="lowest bundle id (BUNDLE_ID_MIN)")
    seed.add_argument("--bundle-max", type=int, help="highest bundle id (BUNDLE_ID_MAX)")
    seed.add_argument("--combo-min", type=int, help="lowest combo id (COMBO_ID_MIN)")
    seed.add_argument("--combo-max", type=int, help="highest combo id (COMBO_ID_MAX)")
    seed.add_argument(
        "--unknown-ratio",
        type=float,
        default=0.05,
        help="share of the bundle id range left unknown (404s), as the reference API (0.05)",
    )
    seed.add_argument(
        "--append", action="store_true", help="keep existing rows (default: empty the tables)"
    )
    _connection_args(seed)

    check = sub.add_parser("check", help="test the connection and show what would be loaded")
    check.add_argument("--samples", type=int, default=3, help="sample values per kind (3)")
    check.add_argument("--json", action="store_true", help="print the result as JSON")
    _connection_args(check)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {"USE_DATABASE_DATA": True}
    for flag in ("host", "port", "database", "user"):
        name = f"CLICKHOUSE_{flag.upper()}"
        value = getattr(args, flag, None)
        if value is not None:
            overrides[name] = value
    return load_settings(overrides)


def main(argv: Sequence[str]) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as exit_:  # argparse exits 2 on bad usage, 0 on --help
        return int(exit_.code or 0)
    try:
        settings = _settings(args)
    except ConfigError as err:
        print(f"panacea-locust db: {err}", file=sys.stderr)
        return EXIT_USAGE
    action = {"init": cmd_init, "seed": cmd_seed, "check": cmd_check}[args.action]
    try:
        return action(args, settings)
    except ClickHouseError as err:
        print(f"panacea-locust db {args.action}: {err}", file=sys.stderr)
        return EXIT_INCOMPLETE
    except ValueError as err:  # a seed size the data set rejects
        print(f"panacea-locust db {args.action}: {err}", file=sys.stderr)
        return EXIT_USAGE


# --- init -----------------------------------------------------------------------------------


def cmd_init(args: argparse.Namespace, settings: Settings) -> int:
    with ClickHouseDAO(settings, database="") as dao:  # the database may not exist yet
        if args.print_sql:
            print(";\n".join(dao.schema_statements(drop=args.drop)) + ";")
            return EXIT_OK
        version = dao.ping()
        tables = dao.create_schema(drop=args.drop)
    print(f"{dao.target}: ClickHouse {version}")
    print(f"schema ready: {', '.join(tables)}" + (" (dropped and re-created)" if args.drop else ""))
    return EXIT_OK


# --- seed -----------------------------------------------------------------------------------


def _epoch_seconds(value: Any) -> int:
    """Unix seconds for a ``DateTime`` column: the same instant on any server time zone."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return int(moment.timestamp())
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str):
        return _epoch_seconds(datetime.fromisoformat(value.replace("Z", "+00:00")))
    raise ValueError(f"not a time: {value!r}")


def _field(record: Any, name: str) -> Any:
    return record[name] if isinstance(record, dict) else getattr(record, name)


def seed_sessions(seed: int, count: int) -> list[tuple[str, str, int]]:
    """``count`` (user_id, session_id, created_at) rows, the same for the same seed.

    User ids look like people (``jane.doe.00017``); session ids are 32 lowercase hex and
    unique; the newest session is user 0's, so a database-mode run takes them in order.
    """
    rng = random.Random(f"panacea-locust db seed sessions {seed}")
    newest = int((EPOCH + timedelta(days=SPAN_DAYS)).timestamp())
    rows: list[tuple[str, str, int]] = []
    seen: set[str] = set()
    moment = newest
    for i in range(count):
        session = uuid.UUID(int=rng.getrandbits(128)).hex
        while session in seen:
            session = uuid.UUID(int=rng.getrandbits(128)).hex
        seen.add(session)
        user = f"{rng.choice(FIRST_NAMES)}.{rng.choice(LAST_NAMES)}.{i:05d}"
        rows.append((user, session, moment))
        moment -= rng.randint(1, 600)  # strictly older than the one before
    return rows


def build_seed_rows(
    args: argparse.Namespace, settings: Settings
) -> tuple[int, dict[str, list[tuple[Any, ...]]]]:
    """The rows ``db seed`` writes, per table attribute, and the seed used."""
    from panacea_locust.reference_api.dataset import build_dataset

    seed = args.seed if args.seed is not None else (settings.loadtest_seed or 42)
    dataset = build_dataset(
        seed=seed,
        bundle_min=args.bundle_min if args.bundle_min is not None else settings.bundle_id_min,
        bundle_max=args.bundle_max if args.bundle_max is not None else settings.bundle_id_max,
        unknown_ratio=args.unknown_ratio,
        combo_min=args.combo_min if args.combo_min is not None else settings.combo_id_min,
        combo_max=args.combo_max if args.combo_max is not None else settings.combo_id_max,
    )
    if args.users < 0:
        raise ValueError(f"--users must be at least 0, not {args.users}")
    rows: dict[str, list[tuple[Any, ...]]] = {
        "log_bundles": [
            (int(_field(b, "bundle_id")), str(_field(b, "sfdc_case_no")),
             str(_field(b, "remote_log_bundle_path")), str(_field(b, "status")),
             _epoch_seconds(_field(b, "created_at")))
            for b in dataset.bundles
        ],
        "combo_bundles": [
            (int(_field(c, "combo_id")), [int(x) for x in _field(c, "bundle_ids")],
             _epoch_seconds(_field(c, "created_at")))
            for c in dataset.combos
        ],
        "sfdc_cases": [
            (str(_field(c, "sfdc_case_no")), _epoch_seconds(_field(c, "created_at")))
            for c in dataset.sfdc_cases
        ],
        "user_sessions": list(seed_sessions(seed, args.users)),
    }  # fmt: skip
    return seed, rows


def cmd_seed(args: argparse.Namespace, settings: Settings) -> int:
    started = time.monotonic()
    seed, rows = build_seed_rows(args, settings)
    with ClickHouseDAO(settings, database="") as dao:
        version = dao.ping()
        dao.create_schema()
        if not args.append:
            for table in TABLES:
                dao.truncate(table)
        counts = {table: dao.insert(table, rows[table]) for table in TABLES}
    elapsed = time.monotonic() - started
    print(f"{dao.target}: ClickHouse {version}")
    print(f"seeded with seed {seed} in {elapsed:.2f}s" + (" (appended)" if args.append else ""))
    for table in TABLES:
        print(f"  {dao.names.shown(table):<32} {counts[table]:>8} rows")
    return EXIT_OK


# --- check ----------------------------------------------------------------------------------


def check_report(settings: Settings, samples: int = 3) -> dict[str, Any]:
    """What ``db check`` prints: connection, rows per table, and per kind what would load."""
    report: dict[str, Any] = {"connected": False, "tables": {}, "kinds": {}}
    with ClickHouseDAO(settings) as dao:
        report["target"] = dao.target
        try:
            report["server_version"] = dao.ping()
            report["connected"] = True
        except ClickHouseError as err:
            report["error"] = str(err)
        if report["connected"]:
            for table in TABLES:
                shown = dao.names.shown(table)
                try:
                    report["tables"][shown] = dao.count_rows(table)
                except ClickHouseError as err:
                    report["tables"][shown] = str(err)
    data = load_pool_data(settings) if report["connected"] else None
    limits = {"sessions": settings.db_users_limit, "bundle_ids": settings.db_bundle_ids_limit,
              "combo_ids": settings.db_combo_ids_limit,
              "sfdc_cases": settings.db_sfdc_cases_limit,
              "bundle_paths": settings.db_bundle_ids_limit}  # fmt: skip
    for kind in POOL_KINDS:
        values = getattr(data, kind) if data else []
        entry: dict[str, Any] = {"loaded": len(values), "limit": limits[kind],
                                 "sample": [list(v) if isinstance(v, tuple) else v
                                            for v in values[:samples]]}  # fmt: skip
        if data is None:
            entry["fallback"] = report.get("error", "not connected")
        elif kind in data.fallbacks:
            entry["fallback"] = data.fallbacks[kind]
        report["kinds"][kind] = entry
    report["complete"] = report["connected"] and not any(
        "fallback" in k for k in report["kinds"].values()
    )
    return report


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    report = check_report(settings, samples=max(0, args.samples))
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return EXIT_OK if report["complete"] else EXIT_INCOMPLETE
    print(report["target"])
    if not report["connected"]:
        print(f"  connection FAILED: {report['error']}")
        print("  database mode would generate all data instead")
        return EXIT_INCOMPLETE
    print(f"  connected: ClickHouse {report['server_version']}")
    print_tables_and_kinds(report)
    if report["complete"]:
        print("  every kind would come from the database")
        return EXIT_OK
    print("  some kinds would be generated: see above")
    return EXIT_INCOMPLETE


def print_tables_and_kinds(report: dict[str, Any], indent: str = "  ") -> None:
    """The rows per table and, per kind, what database mode would load or why it would not."""
    print(f"{indent}tables:")
    for table, rows in report["tables"].items():
        print(f"{indent}  {table:<32} {rows if isinstance(rows, str) else f'{rows} rows'}")
    print(f"{indent}database mode would load (USE_DATABASE_DATA=true):")
    for kind, entry in report["kinds"].items():
        if "fallback" in entry:
            print(f"{indent}  {kind:<13} GENERATED instead: {entry['fallback']}")
        else:
            sample = ", ".join(_show_sample(v) for v in entry["sample"])
            print(
                f"{indent}  {kind:<13} {entry['loaded']:>6} (limit {entry['limit']})  e.g. {sample}"
            )


def _show_sample(value: Any) -> str:
    if isinstance(value, list):
        return "(" + ", ".join(str(v) for v in value) + ")"
    return str(value)
