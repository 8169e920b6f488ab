"""``--data-from-clickhouse``: the reference API's known bundles, combos and cases from ClickHouse.

A database-mode load test takes its ids from ClickHouse; a reference API that knows the same
records answers them with 200s instead of 404s. This module belongs to the reference API, which
never imports the load side: it reads the same ``CLICKHOUSE_*`` table and column variables
itself (defaults: SPEC's reference schema) and talks to ClickHouse with clickhouse-driver.
Values are client-side parameters; names are checked and backquoted.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timezone

from .dataset import BundleRecord, ComboRecord, Dataset, SfdcCaseRecord

_IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


class ClickHouseSourceError(RuntimeError):
    """The data set could not be loaded; the message names the cause, never the password."""


@dataclass(frozen=True)
class SourceNames:
    """Table and column names; field ``x`` is read from ``CLICKHOUSE_X``, as the load side does."""

    user_sessions_table: str = "user_sessions"  # unused here; listed so the names match
    log_bundles_table: str = "log_bundles"
    combo_bundles_table: str = "combo_bundles"
    sfdc_cases_table: str = "sfdc_cases"
    created_at_column: str = "created_at"
    bundle_id_column: str = "bundle_id"
    sfdc_case_column: str = "sfdc_case_no"
    bundle_path_column: str = "remote_log_bundle_path"
    status_column: str = "status"
    combo_id_column: str = "combo_id"
    combo_bundle_ids_column: str = "bundle_ids"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SourceNames:
        env = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            value = env.get(f"CLICKHOUSE_{f.name.upper()}")
            if value:
                values[f.name] = value
        return cls(**values)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not _IDENTIFIER_RE.match(value):
                raise ClickHouseSourceError(
                    f"invalid CLICKHOUSE_{f.name.upper()}={value!r}: must be a plain name "
                    "(a letter or '_', then letters, digits or '_')"
                )

    def q(self, name: str) -> str:
        return f"`{getattr(self, name)}`"


@dataclass(frozen=True)
class ClickHouseSource:
    """Where to read: loopback by default; the password comes from CLICKHOUSE_PASSWORD."""

    host: str = "127.0.0.1"
    port: int = 9000
    database: str = "panacea"
    user: str = "default"
    password: str = ""
    connect_timeout: float = 5.0
    query_timeout: float = 30.0
    names: SourceNames = SourceNames()

    def where(self) -> str:
        pw = "password ***" if self.password else "no password"
        return (
            f"ClickHouse {self.host}:{self.port}, database {self.database!r}, "
            f"user {self.user!r} ({pw})"
        )

    def mask(self, text: str) -> str:
        return text.replace(self.password, "***") if self.password else text


def _utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(int(seconds), timezone.utc)


def _cause(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    first = message.strip().splitlines()[0] if message.strip() else type(exc).__name__
    return first.split(" Stack trace:", 1)[0].removeprefix("DB::Exception: ").rstrip(". ")


def load_dataset(source: ClickHouseSource, seed: int = 42) -> Dataset:
    """Every bundle (any status), combo and case in the database, as the server's data set.

    Raises :class:`ClickHouseSourceError` when ClickHouse cannot be read or holds no bundles.
    """
    from clickhouse_driver import Client

    if not _IDENTIFIER_RE.match(source.database):
        raise ClickHouseSourceError(f"invalid database name {source.database!r}")
    n, db = source.names, f"`{source.database}`"
    client = Client(
        host=source.host, port=source.port, database=source.database, user=source.user,
        password=source.password, client_name="panacea-reference-api",
        connect_timeout=source.connect_timeout, send_receive_timeout=source.query_timeout,
        sync_request_timeout=source.connect_timeout,
    )  # fmt: skip
    at = f"toUnixTimestamp({n.q('created_at_column')})"
    try:
        bundle_rows = client.execute(
            f"SELECT {n.q('bundle_id_column')}, {n.q('sfdc_case_column')}, "
            f"{n.q('bundle_path_column')}, {n.q('status_column')}, {at} "
            f"FROM {db}.{n.q('log_bundles_table')} WHERE {n.q('bundle_id_column')} > %(zero)s",
            {"zero": 0},
        )
        combo_rows = client.execute(
            f"SELECT {n.q('combo_id_column')}, {n.q('combo_bundle_ids_column')}, {at} "
            f"FROM {db}.{n.q('combo_bundles_table')} WHERE {n.q('combo_id_column')} > %(zero)s",
            {"zero": 0},
        )
        case_rows = client.execute(
            f"SELECT {n.q('sfdc_case_column')}, {at} FROM {db}.{n.q('sfdc_cases_table')} "
            f"WHERE {n.q('sfdc_case_column')} != %(empty)s",
            {"empty": ""},
        )
    except Exception as exc:  # any driver or socket error: one masked line
        raise ClickHouseSourceError(source.mask(f"{source.where()}: {_cause(exc)}")) from None
    finally:
        client.disconnect()
    if not bundle_rows:
        raise ClickHouseSourceError(
            f"{source.where()}: no bundles in {source.database}.{n.log_bundles_table} "
            "(run 'panacea-locust db seed' to fill it)"
        )
    # one record per id: the newest row wins (a real table may hold a bundle's status history)
    bundles: dict[int, BundleRecord] = {}
    for bid, case, path, status, ts in sorted(bundle_rows, key=lambda r: (r[4], r[0])):
        bundles[int(bid)] = BundleRecord(int(bid), str(case), str(path), str(status), _utc(ts))
    combos: dict[int, ComboRecord] = {}
    for cid, members, ts in sorted(combo_rows, key=lambda r: (r[2], r[0])):
        combos[int(cid)] = ComboRecord(int(cid), sorted(int(b) for b in members), _utc(ts))
    cases: dict[str, SfdcCaseRecord] = {}
    for case, ts in sorted(case_rows, key=lambda r: (r[1], r[0])):
        cases[str(case)] = SfdcCaseRecord(str(case), _utc(ts))
    return Dataset.from_records(seed, bundles.values(), combos.values(), cases.values())


# --- the server's command line ----------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--data-from-clickhouse`` and its connection options (password: CLICKHOUSE_PASSWORD)."""
    group = parser.add_argument_group(
        "data from ClickHouse (password from the CLICKHOUSE_PASSWORD variable)"
    )
    group.add_argument(
        "--data-from-clickhouse",
        action="store_true",
        help="serve the bundles, combos and cases in ClickHouse instead of the synthetic set",
    )
    env = os.environ
    group.add_argument("--clickhouse-host", default=env.get("CLICKHOUSE_HOST", "127.0.0.1"),
                       help="host (CLICKHOUSE_HOST, default 127.0.0.1)")  # fmt: skip
    port = env.get("CLICKHOUSE_PORT", "")
    group.add_argument("--clickhouse-port", type=int,
                       default=int(port) if port.isdigit() else 9000,
                       help="native-protocol port (CLICKHOUSE_PORT, default 9000)")  # fmt: skip
    group.add_argument("--clickhouse-database", default=env.get("CLICKHOUSE_DATABASE", "panacea"),
                       help="database (CLICKHOUSE_DATABASE, default panacea)")  # fmt: skip
    group.add_argument("--clickhouse-user", default=env.get("CLICKHOUSE_USER", "default"),
                       help="user (CLICKHOUSE_USER, default 'default')")  # fmt: skip


def source_from_args(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> ClickHouseSource:
    """The :class:`ClickHouseSource` the parsed options name."""
    env = os.environ if environ is None else environ
    return ClickHouseSource(
        host=args.clickhouse_host,
        port=args.clickhouse_port,
        database=args.clickhouse_database,
        user=args.clickhouse_user,
        password=env.get("CLICKHOUSE_PASSWORD", ""),
        connect_timeout=float(env.get("CLICKHOUSE_CONNECT_TIMEOUT", "5") or 5),
        query_timeout=float(env.get("CLICKHOUSE_QUERY_TIMEOUT", "30") or 30),
        names=SourceNames.from_env(env),
    )


def dataset_from_args(args: argparse.Namespace, seed: int) -> Dataset | None:
    """The data set to serve when ``--data-from-clickhouse`` is given, else None.

    Raises :class:`ClickHouseSourceError`; the server prints it and exits non-zero.
    """
    if not getattr(args, "data_from_clickhouse", False):
        return None
    return load_dataset(source_from_args(args), seed=seed)
