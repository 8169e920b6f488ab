"""``--data-from-clickhouse``: the reference API's known bundles, combos and cases from ClickHouse.

A database-mode load test takes its ids from ClickHouse; a reference API that knows the same
records answers them with 200s instead of 404s. This module belongs to the reference API, which
never imports the load side: it reads the same ``CLICKHOUSE_*`` table and column variables
itself, through the contract's :class:`~panacea_locust.contract.SchemaNames` (defaults: the
reference schema), and talks to ClickHouse with clickhouse-driver. Values are client-side
parameters; names are checked and backquoted.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from panacea_locust.contract import REFERENCE_SCHEMA, SchemaNames

from .dataset import BundleRecord, ComboRecord, Dataset, SfdcCaseRecord


class ClickHouseSourceError(RuntimeError):
    """The data set could not be loaded; the message names the cause, never the password."""


@dataclass(frozen=True)
class ClickHouseSource:
    """Where to read: loopback by default; the password comes from CLICKHOUSE_PASSWORD.

    The database is ``names.database``: one set of names, the same type the load side uses.
    """

    host: str = "127.0.0.1"
    port: int = 9000
    user: str = "default"
    password: str = ""
    connect_timeout: float = 5.0
    query_timeout: float = 30.0
    names: SchemaNames = REFERENCE_SCHEMA

    @property
    def database(self) -> str:
        return self.names.database

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

    n = source.names  # plain names, checked when it was made
    client = Client(
        host=source.host, port=source.port, database=source.database, user=source.user,
        password=source.password, client_name="panacea-reference-api",
        connect_timeout=source.connect_timeout, send_receive_timeout=source.query_timeout,
        sync_request_timeout=source.connect_timeout,
    )  # fmt: skip
    at = f"toUnixTimestamp({n.q('created_at')})"
    try:
        bundle_rows = client.execute(
            f"SELECT {n.q('bundle_id')}, {n.q('sfdc_case_no')}, "
            f"{n.q('remote_log_bundle_path')}, {n.q('status')}, {at} "
            f"FROM {n.table('log_bundles')} WHERE {n.q('bundle_id')} > %(zero)s",
            {"zero": 0},
        )
        combo_rows = client.execute(
            f"SELECT {n.q('combo_id')}, {n.q('bundle_ids')}, {at} "
            f"FROM {n.table('combo_bundles')} WHERE {n.q('combo_id')} > %(zero)s",
            {"zero": 0},
        )
        case_rows = client.execute(
            f"SELECT {n.q('sfdc_case_no')}, {at} FROM {n.table('sfdc_cases')} "
            f"WHERE {n.q('sfdc_case_no')} != %(empty)s",
            {"empty": ""},
        )
    except Exception as exc:  # any driver or socket error: one masked line
        raise ClickHouseSourceError(source.mask(f"{source.where()}: {_cause(exc)}")) from None
    finally:
        client.disconnect()
    if not bundle_rows:
        raise ClickHouseSourceError(
            f"{source.where()}: no bundles in {n.shown('log_bundles')} "
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
    db = REFERENCE_SCHEMA.database
    group.add_argument("--clickhouse-database", default=env.get("CLICKHOUSE_DATABASE", db),
                       help=f"database (CLICKHOUSE_DATABASE, default {db})")  # fmt: skip
    group.add_argument("--clickhouse-user", default=env.get("CLICKHOUSE_USER", "default"),
                       help="user (CLICKHOUSE_USER, default 'default')")  # fmt: skip


def source_from_args(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> ClickHouseSource:
    """The :class:`ClickHouseSource` the parsed options name."""
    env = os.environ if environ is None else environ
    try:  # the variables' names, then --clickhouse-database (which defaults to its variable)
        names = replace(SchemaNames.from_env(env), database=args.clickhouse_database)
    except ValueError as exc:  # a name that is not a plain identifier
        raise ClickHouseSourceError(str(exc)) from None
    return ClickHouseSource(
        host=args.clickhouse_host,
        port=args.clickhouse_port,
        user=args.clickhouse_user,
        password=env.get("CLICKHOUSE_PASSWORD", ""),
        connect_timeout=float(env.get("CLICKHOUSE_CONNECT_TIMEOUT", "5") or 5),
        query_timeout=float(env.get("CLICKHOUSE_QUERY_TIMEOUT", "30") or 30),
        names=names,
    )


def dataset_from_args(args: argparse.Namespace, seed: int) -> Dataset | None:
    """The data set to serve when ``--data-from-clickhouse`` is given, else None.

    Raises :class:`ClickHouseSourceError`; the server prints it and exits non-zero.
    """
    if not getattr(args, "data_from_clickhouse", False):
        return None
    return load_dataset(source_from_args(args), seed=seed)
