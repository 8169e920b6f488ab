"""ClickHouse access for database mode: the reference schema, its queries, and the pool loader.

Database mode replaces generated ids with real ones (sessions, active bundles, combos, recent
SFDC cases, bundle paths). A database is an optional luxury for a load test, so nothing here may
stop a run: :func:`load_pool_data` never raises; a kind it cannot load is left empty (and is
generated) with the reason recorded. Queries use only constructs that run on ClickHouse 18.16
and on current releases. Names of databases, tables and columns come from the settings, are
checked against a strict pattern and backquoted; every value travels as a clickhouse-driver
``%(name)s`` parameter, never formatted into the SQL text. No Locust import: the loader runs
before any user exists.
"""

from __future__ import annotations

import logging
import math
import re
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from clickhouse_driver import Client
from clickhouse_driver import errors as ch_errors

from panacea_locust.config import Settings, get_settings
from panacea_locust.contract import (
    SCHEMA_VARIABLES,
    SESSION_ID_PATTERN,
    SFDC_CASE_PATTERN,
    SchemaNames,
)
from panacea_locust.payload_generator import POOL_KINDS, PoolData

logger = logging.getLogger("panacea_locust.clickhouse")

SESSION_ID_RE = re.compile(SESSION_ID_PATTERN)
SFDC_CASE_RE = re.compile(SFDC_CASE_PATTERN)

# ClickHouse server error codes this module explains in words.
_AUTH_CODES = {192, 193, 194, 516}  # unknown user, wrong password, required password, auth failed
_UNKNOWN_DATABASE, _UNKNOWN_TABLE, _TIMEOUT_EXCEEDED = 81, 60, 159
_UNKNOWN_COLUMN_CODES = {16, 47}  # no such column in table, unknown identifier
_ACCESS_CODES = {164, 497}  # readonly, access denied


class ClickHouseError(Exception):
    """A ClickHouse operation failed; ``str(err)`` is one line naming the cause, no secret."""


def names_from_settings(settings: Settings) -> SchemaNames:
    """The names the settings give: each ``CLICKHOUSE_*`` name setting of the contract's table."""
    return SchemaNames(**{f: getattr(settings, v.lower()) for f, v in SCHEMA_VARIABLES.items()})


#: table attribute -> its columns, as (column attribute, type) in the reference schema's order
_COLUMNS: dict[str, list[tuple[str, str]]] = {
    "user_sessions": [
        ("user_id", "String"), ("session_id", "String"), ("created_at", "DateTime"),
    ],
    "log_bundles": [
        ("bundle_id", "UInt32"), ("sfdc_case_no", "String"),
        ("remote_log_bundle_path", "String"), ("status", "String"),
        ("created_at", "DateTime"),
    ],
    "combo_bundles": [
        ("combo_id", "UInt32"), ("bundle_ids", "Array(UInt32)"), ("created_at", "DateTime"),
    ],
    "sfdc_cases": [("sfdc_case_no", "String"), ("created_at", "DateTime")],
}  # fmt: skip
#: table attribute -> the sorting key of its MergeTree, as column attributes
_ORDER_BY = {
    "user_sessions": ("created_at", "session_id"),
    "log_bundles": ("created_at", "bundle_id"),
    "combo_bundles": ("created_at", "combo_id"),
    "sfdc_cases": ("created_at", "sfdc_case_no"),
}
TABLES = tuple(_ORDER_BY)


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    line = line.split(" Stack trace:", 1)[0].split(". Stack trace:", 1)[0]
    return line.removeprefix("DB::Exception: ").rstrip(". ")


class ClickHouseDAO:
    """One connection to the configured ClickHouse, with the queries database mode needs.

    Every method raises :class:`ClickHouseError` (masked, one line) on failure; use it as a
    context manager to close the connection.
    """

    def __init__(self, settings: Settings, *, database: str | None = None) -> None:
        self.settings = settings
        self.names = names_from_settings(settings)
        self.host, self.port = settings.clickhouse_host, settings.clickhouse_port
        self.user = settings.clickhouse_user
        self._password = settings.clickhouse_password.get_secret_value()
        # connect to ``database`` (db init passes "" to use the server's default: ours may
        # not exist yet); queries always name the database explicitly anyway
        self._connect_db = settings.clickhouse_database if database is None else database
        self._client: Client | None = None
        driver_log = logging.getLogger("clickhouse_driver.connection")
        if driver_log.level == logging.NOTSET:  # it logs a traceback per failed connect;
            driver_log.setLevel(logging.ERROR)  # our own warning names the cause instead

    # --- connection -----------------------------------------------------------------------
    @property
    def target(self) -> str:
        """Where we connect, for messages: never the password itself."""
        password = "password ***" if self._password else "no password"
        return (
            f"ClickHouse {self.host}:{self.port}, database {self.names.database!r}, "
            f"user {self.user!r} ({password})"
        )

    @property
    def client(self) -> Client:
        if self._client is None:
            query_timeout = self.settings.clickhouse_query_timeout
            self._client = Client(
                host=self.host,
                port=self.port,
                database=self._connect_db,
                user=self.user,
                password=self._password,
                client_name="panacea-locust",
                connect_timeout=self.settings.clickhouse_connect_timeout,
                send_receive_timeout=query_timeout,
                sync_request_timeout=self.settings.clickhouse_connect_timeout,
                settings={"max_execution_time": max(1, math.ceil(query_timeout))},
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.disconnect()
            finally:
                self._client = None

    def __enter__(self) -> ClickHouseDAO:
        return self

    def __exit__(
        self,
        _exc_type: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self.close()

    def mask(self, text: str) -> str:
        """``text`` with the password, should a driver ever echo it, replaced by ``***``."""
        return text.replace(self._password, "***") if self._password else text

    def explain(self, exc: BaseException) -> str:
        """A one-line, password-free cause for a driver or socket error."""
        where = f"{self.host}:{self.port}"
        if isinstance(exc, ClickHouseError):
            return self.mask(str(exc))
        if isinstance(exc, ch_errors.ServerException):
            code, message = exc.code, _first_line(exc.message or "")
            if code in _AUTH_CODES:
                pw = "password ***" if self._password else "no password"
                text = f"authentication failed for user {self.user!r} ({pw}): {message}"
            elif code == _UNKNOWN_DATABASE:
                text = f"unknown database: {message}"
            elif code == _UNKNOWN_TABLE:
                text = f"unknown table: {message}"
            elif code in _UNKNOWN_COLUMN_CODES:
                text = f"unknown column: {message}"
            elif code == _TIMEOUT_EXCEEDED:
                text = f"timeout: query exceeded max_execution_time: {message}"
            elif code in _ACCESS_CODES:
                text = f"access denied for user {self.user!r}: {message}"
            else:
                text = f"ClickHouse error {code}: {message}"
        elif isinstance(exc, ch_errors.SocketTimeoutError | socket.timeout | TimeoutError):
            text = (
                f"timeout: {where} did not answer within "
                f"{self.settings.clickhouse_query_timeout:g}s"
            )
        elif isinstance(exc, ch_errors.NetworkError | ConnectionError | OSError):
            message = _first_line(getattr(exc, "message", None) or str(exc))
            if "refused" in message.lower() or isinstance(exc, ConnectionRefusedError):
                text = f"connection refused by {where} (is ClickHouse running there?)"
            elif "name or service not known" in message.lower() or "resolve" in message.lower():
                text = f"host name {self.host!r} could not be resolved"
            else:
                text = f"network error talking to {where}: {message}"
        elif isinstance(exc, ch_errors.Error):
            text = f"{type(exc).__name__}: {_first_line(exc.message or str(exc))}"
        else:
            text = f"{type(exc).__name__}: {_first_line(str(exc))}"
        return self.mask(text)

    def execute(self, sql: str, params: dict[str, Any] | Sequence[Any] | None = None) -> Any:
        """Run ``sql`` with client-side ``%(name)s`` parameters; errors become ClickHouseError."""
        try:
            return self.client.execute(sql, params)
        except Exception as exc:  # any driver or socket failure, explained in one line
            self.close()  # a failed connection is not reused half-open
            raise ClickHouseError(self.explain(exc)) from None

    def ping(self) -> str:
        """Connect and return the server version (raises ClickHouseError with the cause)."""
        rows = self.execute("SELECT version()")
        return str(rows[0][0])

    def test_connection(self) -> bool:
        """True when the server answers with these credentials and the database exists."""
        try:
            self.ping()
        except ClickHouseError as err:
            logger.warning("%s: %s", self.target, err)
            return False
        return True

    # --- the queries database mode runs -----------------------------------------------------
    def get_users_and_sessions(self, limit: int) -> list[tuple[str, str]]:
        """(user_id, session_id) pairs, newest first, one per session id."""
        n = self.names
        sql = (
            f"SELECT argMax({n.q('user_id')}, {n.q('created_at')}) AS _pl_user, "
            f"{n.q('session_id')} AS _pl_session, max({n.q('created_at')}) AS _pl_at "
            f"FROM {n.table('user_sessions')} WHERE {n.q('session_id')} != %(empty)s "
            "GROUP BY _pl_session ORDER BY _pl_at DESC, _pl_session LIMIT %(limit)s"
        )
        rows = self.execute(sql, {"empty": "", "limit": int(limit)})
        return [(str(user), str(session)) for user, session, _ in rows]

    def get_active_bundle_ids(self, limit: int) -> list[int]:
        """Ids of bundles with the active status (``completed``), newest first."""
        n = self.names
        sql = (
            f"SELECT {n.q('bundle_id')} AS _pl_id, max({n.q('created_at')}) AS _pl_at "
            f"FROM {n.table('log_bundles')} WHERE {n.q('status')} = %(status)s "
            "GROUP BY _pl_id ORDER BY _pl_at DESC, _pl_id DESC LIMIT %(limit)s"
        )
        rows = self.execute(sql, {"status": self.settings.clickhouse_active_status,
                                  "limit": int(limit)})  # fmt: skip
        return [int(r[0]) for r in rows]

    def get_active_combo_ids(self, limit: int) -> list[int]:
        """Combo ids, newest first (a combo has no status of its own)."""
        n = self.names
        sql = (
            f"SELECT {n.q('combo_id')} AS _pl_id, max({n.q('created_at')}) AS _pl_at "
            f"FROM {n.table('combo_bundles')} "
            "GROUP BY _pl_id ORDER BY _pl_at DESC, _pl_id DESC LIMIT %(limit)s"
        )
        return [int(r[0]) for r in self.execute(sql, {"limit": int(limit)})]

    def get_recent_sfdc_cases(self, limit: int) -> list[str]:
        """SFDC case numbers, most recent first."""
        n = self.names
        sql = (
            f"SELECT {n.q('sfdc_case_no')} AS _pl_case, max({n.q('created_at')}) AS _pl_at "
            f"FROM {n.table('sfdc_cases')} WHERE {n.q('sfdc_case_no')} != %(empty)s "
            "GROUP BY _pl_case ORDER BY _pl_at DESC, _pl_case LIMIT %(limit)s"
        )
        return [str(r[0]) for r in self.execute(sql, {"empty": "", "limit": int(limit)})]

    def get_bundle_paths(self, limit: int) -> list[str]:
        """Remote log bundle paths of the active bundles, newest first."""
        n = self.names
        sql = (
            f"SELECT {n.q('remote_log_bundle_path')} AS _pl_path, "
            f"max({n.q('created_at')}) AS _pl_at FROM {n.table('log_bundles')} "
            f"WHERE {n.q('status')} = %(status)s AND {n.q('remote_log_bundle_path')} != %(empty)s "
            "GROUP BY _pl_path ORDER BY _pl_at DESC, _pl_path LIMIT %(limit)s"
        )
        params = {"status": self.settings.clickhouse_active_status, "empty": "",
                  "limit": int(limit)}  # fmt: skip
        return [str(r[0]) for r in self.execute(sql, params)]

    def get_bundle_paths_by_sfdc_case(self, sfdc_case_no: str, limit: int = 100) -> list[str]:
        """The bundle paths of one case, newest first (what endpoint 12 answers)."""
        n = self.names
        sql = (
            f"SELECT {n.q('remote_log_bundle_path')} FROM {n.table('log_bundles')} "
            f"WHERE {n.q('sfdc_case_no')} = %(case)s "
            f"ORDER BY {n.q('created_at')} DESC LIMIT %(limit)s"
        )
        return [str(r[0]) for r in self.execute(sql, {"case": sfdc_case_no, "limit": int(limit)})]

    def count_rows(self, table: str, where_status: str | None = None) -> int:
        """Rows in table ``table`` (an attribute of :class:`SchemaNames`), optionally one status."""
        n = self.names
        if where_status is None:
            return int(self.execute(f"SELECT count() FROM {n.table(table)}")[0][0])
        sql = f"SELECT count() FROM {n.table(table)} WHERE {n.q('status')} = %(status)s"
        return int(self.execute(sql, {"status": where_status})[0][0])

    def existing_tables(self) -> list[str]:
        """Names of the tables present in the configured database."""
        sql = "SELECT name FROM system.tables WHERE database = %(db)s ORDER BY name"
        return [str(r[0]) for r in self.execute(sql, {"db": self.names.database})]

    # --- schema and data (db init / db seed) --------------------------------------------------
    def schema_statements(self, *, drop: bool = False) -> list[str]:
        """The DDL of the reference schema under the configured names (ClickHouse 18.16+)."""
        n = self.names
        statements = [f"CREATE DATABASE IF NOT EXISTS {n.q('database')}"]
        for table, columns in _COLUMNS.items():
            if drop:
                statements.append(f"DROP TABLE IF EXISTS {n.table(table)}")
            cols = ", ".join(f"{n.q(col)} {type_}" for col, type_ in columns)
            order = ", ".join(n.q(col) for col in _ORDER_BY[table])
            statements.append(
                f"CREATE TABLE IF NOT EXISTS {n.table(table)} ({cols}) "
                f"ENGINE = MergeTree() ORDER BY ({order})"
            )
        return statements

    def create_schema(self, *, drop: bool = False) -> list[str]:
        """Create the database and the four tables (dropping them first with ``drop``)."""
        for statement in self.schema_statements(drop=drop):
            self.execute(statement)
        return [self.names.shown(t) for t in TABLES]

    def truncate(self, table: str) -> None:
        self.execute(f"TRUNCATE TABLE {self.names.table(table)}")

    def insert(self, table: str, rows: Iterable[Sequence[Any]]) -> int:
        """Bulk-insert ``rows`` (tuples in the reference schema's column order) into ``table``;
        returns the count."""
        n = self.names
        cols = ", ".join(n.q(col) for col, _ in _COLUMNS[table])
        data = [tuple(r) for r in rows]
        if data:
            self.execute(f"INSERT INTO {n.table(table)} ({cols}) VALUES", data)
        return len(data)


# --- the loader the pools consume -----------------------------------------------------------


@dataclass(frozen=True)
class _Kind:
    name: str
    table: str  # SchemaNames attribute
    limit_setting: str
    fetch: Callable[[ClickHouseDAO, int], list[Any]]
    valid: Callable[[Any], bool] | None = None
    rule: str = ""
    by_status: bool = False


_KINDS = (
    _Kind("sessions", "user_sessions", "db_users_limit",
          lambda d, k: d.get_users_and_sessions(k),
          lambda pair: bool(SESSION_ID_RE.fullmatch(pair[1])), "a 32-lowercase-hex session id"),
    _Kind("bundle_ids", "log_bundles", "db_bundle_ids_limit",
          lambda d, k: d.get_active_bundle_ids(k), lambda b: b > 0, "a positive id",
          by_status=True),
    _Kind("combo_ids", "combo_bundles", "db_combo_ids_limit",
          lambda d, k: d.get_active_combo_ids(k), lambda c: c > 0, "a positive id"),
    _Kind("sfdc_cases", "sfdc_cases", "db_sfdc_cases_limit",
          lambda d, k: d.get_recent_sfdc_cases(k),
          lambda c: bool(SFDC_CASE_RE.fullmatch(c)), "a 9-digit case number"),
    _Kind("bundle_paths", "log_bundles", "db_bundle_ids_limit",
          lambda d, k: d.get_bundle_paths(k), by_status=True),
)  # fmt: skip
assert tuple(k.name for k in _KINDS) == POOL_KINDS


def _empty_reason(dao: ClickHouseDAO, kind: _Kind) -> str:
    """Why a kind's query returned nothing: an empty table, or no active rows in it."""
    shown = dao.names.shown(kind.table)
    try:
        total = dao.count_rows(kind.table)
    except ClickHouseError as err:
        return str(err)
    if total == 0:
        return f"table {shown} is empty"
    if kind.by_status:
        status = dao.settings.clickhouse_active_status
        return f"no rows with {dao.names.status} = {status!r} in {shown} ({total} rows)"
    return f"no usable rows in {shown} ({total} rows)"


def load_pool_data(settings: Settings) -> PoolData:
    """Every kind of id database mode uses, loaded once; never raises.

    With ``USE_DATABASE_DATA`` off this is the generated-data ``PoolData``. Otherwise each kind
    is loaded up to its ``DB_*_LIMIT``; a kind that fails or comes back empty stays empty (so
    it is generated) with its reason in ``fallbacks``, and a connection failure gives every
    kind that reason. One WARNING is logged per fallback. Bundle and combo ids are returned
    sorted ascending (the pools' windowing is over sorted ids); sessions stay newest first.
    """
    data = PoolData()
    if not settings.use_database_data:
        return data
    started = time.monotonic()
    try:
        dao = ClickHouseDAO(settings)
    except Exception as exc:  # bad names cannot pass Settings, but never fail a run here
        return _all_fallback(data, f"cannot configure ClickHouse access: {exc}", settings)
    with dao:
        try:
            version = dao.ping()
        except ClickHouseError as err:
            return _all_fallback(data, str(err), settings, target=dao.target)
        for kind in _KINDS:
            why = _load_kind(dao, kind, data, getattr(settings, kind.limit_setting))
            if why:
                data.fallbacks[kind.name] = why
                logger.warning(
                    "database mode: generating %s instead: %s (%s)", kind.name, why, dao.target
                )
    loaded = {k: len(getattr(data, k)) for k in POOL_KINDS if getattr(data, k)}
    data.source = "database" if loaded else "generated"
    logger.info(
        "database mode: loaded %s from ClickHouse %s in %.2fs",
        ", ".join(f"{k}={v}" for k, v in loaded.items()) or "nothing",
        version,
        time.monotonic() - started,
    )
    return data


def _load_kind(dao: ClickHouseDAO, kind: _Kind, data: PoolData, limit: int) -> str | None:
    """Fill one kind of ``data``; return the reason when it must be generated instead."""
    try:
        values = kind.fetch(dao, limit)
    except ClickHouseError as err:
        return str(err)
    if not values:
        return _empty_reason(dao, kind)
    if kind.valid is not None:
        good = [v for v in values if kind.valid(v)]
        if len(good) < len(values):
            logger.warning(
                "database mode: dropped %d of %d %s that are not %s (first: %r)",
                len(values) - len(good), len(values), kind.name, kind.rule,
                next(v for v in values if not kind.valid(v)),
            )  # fmt: skip
        if not good:
            return f"none of the {len(values)} {kind.name} loaded is {kind.rule}"
        values = good
    if kind.name in ("bundle_ids", "combo_ids"):
        values = sorted(values)
    setattr(data, kind.name, values)
    return None


def _all_fallback(
    data: PoolData, reason: str, settings: Settings, target: str | None = None
) -> PoolData:
    for kind in POOL_KINDS:
        data.fallbacks[kind] = reason
    password = settings.clickhouse_password.get_secret_value()
    shown = reason.replace(password, "***") if password else reason
    logger.warning(
        "database mode: ClickHouse unavailable, generating all data instead: %s%s",
        shown,
        f" ({target})" if target else "",
    )
    data.source = "generated"
    return data


# --- the original module-level interface (settings from the environment) --------------------


def _dao() -> ClickHouseDAO:
    return ClickHouseDAO(get_settings())


def test_connection() -> bool:
    """True when the configured ClickHouse answers (the original ``clickhouse_dao`` call)."""
    with _dao() as dao:
        return dao.test_connection()


test_connection.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def get_users_and_sessions(limit: int | None = None) -> list[tuple[str, str]]:
    """(user_id, session_id) pairs, newest first; ``limit`` defaults to DB_USERS_LIMIT."""
    with _dao() as dao:
        return dao.get_users_and_sessions(limit or dao.settings.db_users_limit)


def get_active_bundle_ids(limit: int | None = None) -> list[int]:
    """Completed bundle ids, newest first; ``limit`` defaults to DB_BUNDLE_IDS_LIMIT."""
    with _dao() as dao:
        return dao.get_active_bundle_ids(limit or dao.settings.db_bundle_ids_limit)


def get_active_combo_ids(limit: int | None = None) -> list[int]:
    """Combo ids, newest first; ``limit`` defaults to DB_COMBO_IDS_LIMIT."""
    with _dao() as dao:
        return dao.get_active_combo_ids(limit or dao.settings.db_combo_ids_limit)


def get_recent_sfdc_cases(limit: int | None = None) -> list[str]:
    """SFDC case numbers, most recent first; ``limit`` defaults to DB_SFDC_CASES_LIMIT."""
    with _dao() as dao:
        return dao.get_recent_sfdc_cases(limit or dao.settings.db_sfdc_cases_limit)


def get_bundle_paths(limit: int | None = None) -> list[str]:
    """Paths of the active bundles, newest first; ``limit`` defaults to DB_BUNDLE_IDS_LIMIT."""
    with _dao() as dao:
        return dao.get_bundle_paths(limit or dao.settings.db_bundle_ids_limit)


def get_bundle_paths_by_sfdc_case(sfdc_case_no: str, limit: int = 100) -> list[str]:
    """The bundle paths recorded for one SFDC case, newest first."""
    with _dao() as dao:
        return dao.get_bundle_paths_by_sfdc_case(sfdc_case_no, limit)
