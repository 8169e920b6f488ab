"""Every setting of a run, read from environment variables and checked before any request.

Names follow the original design (``PANACEA_HOST``, ``BUNDLE_ID_MIN`` ...), so existing
shell set-ups keep working. A bad value raises :class:`ConfigError` whose message is one line
naming the variable, the value and the rule; callers turn it into a non-zero exit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from panacea_locust.contract import (
    ENDPOINTS,
    ENDPOINTS_BY_KEY,
    IDENTIFIER_RE,
    IDENTIFIER_RULE,
    REFERENCE_SCHEMA,
    SCHEMA_VARIABLES,
)


class ConfigError(ValueError):
    """A setting is invalid; ``str(err)`` is the one-line message shown to the user."""


_PATH_RE = re.compile(r"^/[A-Za-z0-9_./{}-]*$")
_PREFIX_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
#: the settings whose values are secrets: never shown, never written (``secrets.py`` scrubs
#: them from every log record and from Locust's failure and exception lists)
SECRET_FIELDS = ("clickhouse_password", "panacea_auth_token", "panacea_run_secret")
#: a secret goes into a header or a connection string as it is: printable ASCII, no whitespace
#: (a token pasted with its trailing newline was refused by the HTTP client, in an error message
#: that quoted it into every output)
_SECRET_RE = re.compile(r"[\x21-\x7e]*")
SECRET_RULE = "must be printable ASCII without whitespace (no spaces, tabs or line breaks)"
#: ``FOLLOW_REDIRECTS``: ``none`` (a 3xx is a failure) or ``same-origin`` (followed only within
#: the target's scheme, host and port)
FollowRedirects = Literal["none", "same-origin"]
FOLLOW_REDIRECTS_CHOICES: tuple[FollowRedirects, ...] = ("none", "same-origin")
#: database, table and column names (the contract's reference schema by default): backquoted
#: in SQL, and plain identifiers
CLICKHOUSE_IDENTIFIER_FIELDS = tuple(v.lower() for v in SCHEMA_VARIABLES.values())

#: Every number has a finite, documented range (docs/configuration.md): a value that passes
#: validation must not break the run (a weight of 50,000,000 took 2 GB building the task list;
#: an id near 1e30 overflowed in every user; ``inf`` waits never ended).
MAX_WEIGHT = 1000
MAX_ID = 2**31 - 1
MAX_COUNT = 1_000_000
MAX_SECONDS = 86_400.0
MAX_PATH_CHARS = 4096  #: Linux's PATH_MAX; one path component is at most 255 bytes
BODY_LIMIT_MIN, BODY_LIMIT_MAX = 1024, 1024**3  #: MAX_RESPONSE_BYTES: 1 KB to 1 GB
Seconds = Annotated[float, Field(gt=0, le=MAX_SECONDS, allow_inf_nan=False)]
WaitSeconds = Annotated[float, Field(ge=0, le=MAX_SECONDS, allow_inf_nan=False)]
Rate = Annotated[float, Field(gt=0, le=100_000, allow_inf_nan=False)]
Weight = Annotated[int, Field(ge=0, le=MAX_WEIGHT)]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
Count = Annotated[int, Field(ge=1, le=MAX_COUNT)]


class Settings(BaseSettings):
    """The effective configuration of one process; every variable is in docs/configuration.md."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    # --- target and run -------------------------------------------------------------------
    panacea_host: str | None = None
    panacea_auth_token: SecretStr | None = None
    #: shared by a run's master and workers: a worker proves it knows it, and checks that
    #: its master does, before any user runs (``panacea-locust run --processes`` sets one)
    panacea_run_secret: Annotated[SecretStr, Field(min_length=16)] | None = None
    #: hosts a run may target at all (patterns ``host`` or ``host:port``, wildcards); empty:
    #: any host
    panacea_allowed_hosts: str | None = None
    #: hosts a run may target only with ``--confirm-host`` and at most PROTECTED_MAX_USERS
    panacea_protected_hosts: str | None = None
    protected_max_users: Annotated[int, Field(ge=1, le=MAX_COUNT)] = 10
    #: at most this many AI requests (ask-ai, report_summary) a second over the whole run;
    #: those over it are skipped and counted, not sent (none: no cap)
    ai_max_rps: Annotated[float, Field(gt=0, le=1_000_000, allow_inf_nan=False)] | None = None
    locust_min_users: Annotated[int, Field(ge=0, le=MAX_COUNT)] = 1
    locust_max_users: Count = 100
    locust_spawn_rate: Rate = 2.0
    request_timeout: Seconds = 30.0
    #: seconds a stopping run gives the requests still in flight (Locust's ``--stop-timeout``
    #: when that is not set); those still unanswered then fail as ``unfinished at stop``
    stop_grace_s: WaitSeconds = 10.0
    #: open model: an arrival that could not leave within this many seconds of its due time
    #: is dropped (and counted)
    max_schedule_lag_s: Seconds = 1.0
    #: a W3C ``traceparent`` on every request, and each endpoint's slowest by trace id
    trace_context: bool = False
    #: ``none``: a 3xx answer fails as ``redirect to <origin>``; ``same-origin``: followed
    #: within the target's origin only (``base_user.MAX_REDIRECTS`` hops at most)
    follow_redirects: FollowRedirects = "none"
    #: the largest response body a user reads (bytes, after decompression): a larger one fails
    #: as ``body too large`` without being held; a user holds at most this much at a time
    max_response_bytes: Annotated[int, Field(ge=BODY_LIMIT_MIN, le=BODY_LIMIT_MAX)] = (
        16 * 1024 * 1024
    )
    acceptable_status_codes: Annotated[frozenset[int], NoDecode] = frozenset({400, 404})
    loadtest_seed: int | None = None
    results_dir: Annotated[str, Field(min_length=1)] = "results"
    slo_file: str | None = None

    # --- data distribution ----------------------------------------------------------------
    bundle_id_min: Id = 800
    bundle_id_max: Id = 1000
    bundle_id_range_per_user: Count = 50
    bundle_id_overlap_percentage: float = 0.3
    combo_id_min: Id = 1
    combo_id_max: Id = 200
    combo_id_range_per_user: Count = 20
    sfdc_cases_per_user: Count = 10
    sfdc_case_base: Annotated[int, Field(ge=0, le=899_999_999)] = 12_340_000
    bundle_paths_per_user: Count = 15
    user_pool_size: Count = 1000
    user_id_prefix: str = "loadtest_user"

    # --- user types -----------------------------------------------------------------------
    heavy_user_weight: Weight = 1
    light_user_weight: Weight = 3
    analytics_user_weight: Weight = 0
    heavy_wait_min: WaitSeconds = 0.5
    heavy_wait_max: WaitSeconds = 1.0
    light_wait_min: WaitSeconds = 2.0
    light_wait_max: WaitSeconds = 4.0
    standard_wait_min: WaitSeconds = 1.0
    standard_wait_max: WaitSeconds = 2.0

    # --- ClickHouse (database mode) -------------------------------------------------------
    use_database_data: bool = False
    clickhouse_host: str = "127.0.0.1"
    clickhouse_port: Annotated[int, Field(ge=1, le=65535)] = 9000
    clickhouse_database: str = REFERENCE_SCHEMA.database
    clickhouse_user: str = "default"
    clickhouse_password: SecretStr = SecretStr("")
    clickhouse_connect_timeout: Seconds = 5.0
    clickhouse_query_timeout: Seconds = 30.0
    db_users_limit: Count = 1000
    db_bundle_ids_limit: Count = 500
    db_combo_ids_limit: Count = 100
    db_sfdc_cases_limit: Count = 200
    # table and column names, for an installation that names them otherwise (the defaults are
    # the reference schema); a column name applies in every table that has that column
    clickhouse_user_sessions_table: str = REFERENCE_SCHEMA.user_sessions
    clickhouse_log_bundles_table: str = REFERENCE_SCHEMA.log_bundles
    clickhouse_combo_bundles_table: str = REFERENCE_SCHEMA.combo_bundles
    clickhouse_sfdc_cases_table: str = REFERENCE_SCHEMA.sfdc_cases
    clickhouse_user_id_column: str = REFERENCE_SCHEMA.user_id
    clickhouse_session_id_column: str = REFERENCE_SCHEMA.session_id
    clickhouse_created_at_column: str = REFERENCE_SCHEMA.created_at
    clickhouse_bundle_id_column: str = REFERENCE_SCHEMA.bundle_id
    clickhouse_sfdc_case_column: str = REFERENCE_SCHEMA.sfdc_case_no
    clickhouse_bundle_path_column: str = REFERENCE_SCHEMA.remote_log_bundle_path
    clickhouse_status_column: str = REFERENCE_SCHEMA.status
    clickhouse_combo_id_column: str = REFERENCE_SCHEMA.combo_id
    clickhouse_combo_bundle_ids_column: str = REFERENCE_SCHEMA.bundle_ids
    clickhouse_active_status: str = "completed"  #: the status that makes a bundle "active"

    # --- endpoints: <KEY>_PATH and <KEY>_WEIGHT -------------------------------------------
    logs_analyze_path: str = ENDPOINTS_BY_KEY["LOGS_ANALYZE"].path
    logs_analyze_weight: Weight = ENDPOINTS_BY_KEY["LOGS_ANALYZE"].weight
    logs_info_path: str = ENDPOINTS_BY_KEY["LOGS_INFO"].path
    logs_info_weight: Weight = ENDPOINTS_BY_KEY["LOGS_INFO"].weight
    logs_severity_count_path: str = ENDPOINTS_BY_KEY["LOGS_SEVERITY_COUNT"].path
    logs_severity_count_weight: Weight = ENDPOINTS_BY_KEY["LOGS_SEVERITY_COUNT"].weight
    logs_histogram_path: str = ENDPOINTS_BY_KEY["LOGS_HISTOGRAM"].path
    logs_histogram_weight: Weight = ENDPOINTS_BY_KEY["LOGS_HISTOGRAM"].weight
    logs_heatmap_path: str = ENDPOINTS_BY_KEY["LOGS_HEATMAP"].path
    logs_heatmap_weight: Weight = ENDPOINTS_BY_KEY["LOGS_HEATMAP"].weight
    logs_search_path: str = ENDPOINTS_BY_KEY["LOGS_SEARCH"].path
    logs_search_weight: Weight = ENDPOINTS_BY_KEY["LOGS_SEARCH"].weight
    logs_filter_options_path: str = ENDPOINTS_BY_KEY["LOGS_FILTER_OPTIONS"].path
    logs_filter_options_weight: Weight = ENDPOINTS_BY_KEY["LOGS_FILTER_OPTIONS"].weight
    events_path: str = ENDPOINTS_BY_KEY["EVENTS"].path
    events_weight: Weight = ENDPOINTS_BY_KEY["EVENTS"].weight
    ai_report_summary_path: str = ENDPOINTS_BY_KEY["AI_REPORT_SUMMARY"].path
    ai_report_summary_weight: Weight = ENDPOINTS_BY_KEY["AI_REPORT_SUMMARY"].weight
    ai_ask_ai_path: str = ENDPOINTS_BY_KEY["AI_ASK_AI"].path
    ai_ask_ai_weight: Weight = ENDPOINTS_BY_KEY["AI_ASK_AI"].weight
    reports_path: str = ENDPOINTS_BY_KEY["REPORTS"].path
    reports_weight: Weight = ENDPOINTS_BY_KEY["REPORTS"].weight
    bundle_paths_by_case_path: str = ENDPOINTS_BY_KEY["BUNDLE_PATHS_BY_CASE"].path
    bundle_paths_by_case_weight: Weight = ENDPOINTS_BY_KEY["BUNDLE_PATHS_BY_CASE"].weight

    # --- field rules ----------------------------------------------------------------------
    @field_validator("acceptable_status_codes", mode="before")
    @classmethod
    def _parse_codes(cls, value: Any) -> Any:
        if isinstance(value, str):
            parts = [p.strip() for p in value.split(",") if p.strip()]
            try:
                return frozenset(int(p) for p in parts)
            except ValueError:
                raise ValueError("must be a comma-separated list of HTTP status codes") from None
        return value

    @field_validator("acceptable_status_codes")
    @classmethod
    def _check_codes(cls, value: frozenset[int]) -> frozenset[int]:
        bad = sorted(c for c in value if not 100 <= c <= 599 or 200 <= c <= 299)
        if bad:
            raise ValueError("must list non-2xx HTTP status codes between 100 and 599")
        if 401 in value:
            raise ValueError("must not include 401: a missing or bad token is always a failure")
        return value

    @field_validator(*SECRET_FIELDS)
    @classmethod
    def _check_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _SECRET_RE.fullmatch(value.get_secret_value()):
            raise ValueError(SECRET_RULE)  # the message names the rule, never the value
        return value

    @field_validator("follow_redirects", mode="before")
    @classmethod
    def _check_follow_redirects(cls, value: Any) -> Any:
        text = value.strip().lower() if isinstance(value, str) else value
        if text not in FOLLOW_REDIRECTS_CHOICES:
            raise ValueError("must be none or same-origin")
        return text

    @field_validator("results_dir", "slo_file")
    @classmethod
    def _check_file_path(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if len(value.encode()) > MAX_PATH_CHARS or any(
            len(part.encode()) > 255 for part in value.split("/")
        ):
            raise ValueError(
                f"is too long for a file path ({MAX_PATH_CHARS} bytes, 255 per folder name)"
            )
        if "\x00" in value:
            raise ValueError("must not contain a NUL character")
        return value

    @field_validator("bundle_id_overlap_percentage")
    @classmethod
    def _check_overlap(cls, value: float) -> float:
        if not 0 <= value < 1:
            raise ValueError("must be at least 0 and below 1 (a fraction, 0.3 means 30%)")
        return value

    @field_validator("user_id_prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        if not _PREFIX_RE.match(value):
            raise ValueError("must be non-empty letters, digits, '_', '.' or '-'")
        return value

    @field_validator(*CLICKHOUSE_IDENTIFIER_FIELDS)
    @classmethod
    def _check_identifier(cls, value: str) -> str:
        if not IDENTIFIER_RE.fullmatch(value):
            raise ValueError(IDENTIFIER_RULE)
        return value

    @field_validator("panacea_host")
    @classmethod
    def _check_host(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        assert value is not None
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator(*(f"{e.key.lower()}_path" for e in ENDPOINTS))
    @classmethod
    def _check_path(cls, value: str) -> str:
        if not _PATH_RE.match(value):
            raise ValueError("must be an absolute URL path starting with '/'")
        return value

    # --- relations between fields ---------------------------------------------------------
    @model_validator(mode="after")
    def _check_relations(self) -> Settings:
        def fail(field: str, rule: str) -> None:
            raise _RelationError(field, getattr(self, field), rule)

        if self.bundle_id_min > self.bundle_id_max:
            fail("bundle_id_min", f"must not exceed BUNDLE_ID_MAX ({self.bundle_id_max})")
        n_bundles = self.bundle_id_max - self.bundle_id_min + 1
        if self.bundle_id_range_per_user > n_bundles:
            fail(
                "bundle_id_range_per_user",
                f"must not exceed the {n_bundles} ids from BUNDLE_ID_MIN to BUNDLE_ID_MAX",
            )
        if self.combo_id_min > self.combo_id_max:
            fail("combo_id_min", f"must not exceed COMBO_ID_MAX ({self.combo_id_max})")
        n_combos = self.combo_id_max - self.combo_id_min + 1
        if self.combo_id_range_per_user > n_combos:
            fail(
                "combo_id_range_per_user",
                f"must not exceed the {n_combos} ids from COMBO_ID_MIN to COMBO_ID_MAX",
            )
        if self.sfdc_cases_per_user > self.bundle_id_range_per_user:
            fail(
                "sfdc_cases_per_user",
                f"must not exceed BUNDLE_ID_RANGE_PER_USER ({self.bundle_id_range_per_user}): "
                "each case belongs to one of the user's bundles",
            )
        if self.sfdc_case_base + self.bundle_id_max > 999_999_999:
            fail("sfdc_case_base", "plus BUNDLE_ID_MAX must stay within 9 digits")
        for kind in ("heavy", "light", "standard"):
            low, high = getattr(self, f"{kind}_wait_min"), getattr(self, f"{kind}_wait_max")
            if low > high:
                fail(f"{kind}_wait_min", f"must not exceed {kind.upper()}_WAIT_MAX ({high})")
        if self.locust_min_users > self.locust_max_users:
            fail("locust_min_users", f"must not exceed LOCUST_MAX_USERS ({self.locust_max_users})")
        if self.locust_max_users > self.user_pool_size:
            fail("locust_max_users", f"must not exceed USER_POOL_SIZE ({self.user_pool_size})")
        if self.heavy_user_weight + self.light_user_weight + self.analytics_user_weight == 0:
            fail("heavy_user_weight", "and the other user weights must not all be 0")
        if all(self.endpoint_weight(e.key) == 0 for e in ENDPOINTS):
            fail("logs_info_weight", "and the other endpoint weights must not all be 0")
        return self

    # --- accessors ------------------------------------------------------------------------
    def endpoint_path(self, key: str) -> str:
        return str(getattr(self, f"{key.lower()}_path"))

    def endpoint_names(self) -> tuple[str, ...]:
        """The request names of the twelve endpoints, in the contract's order (what Locust's
        statistics, summary.json and SLO files call them)."""
        return tuple(self.endpoint_path(e.key) for e in ENDPOINTS)

    def endpoint_weight(self, key: str) -> int:
        return int(getattr(self, f"{key.lower()}_weight"))

    @property
    def seed(self) -> int | None:
        return self.loadtest_seed

    def masked(self) -> dict[str, Any]:
        """The effective configuration as plain data, secrets replaced by ``"***"``.

        Keys are the environment variable names, so a summary reads like the shell set-up.
        """
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name in SECRET_FIELDS:
                value = "***" if value is not None and value.get_secret_value() else None
            elif isinstance(value, frozenset):
                value = sorted(value)
            out[name.upper()] = value
        return out


class _RelationError(ValueError):
    def __init__(self, field: str, value: Any, rule: str) -> None:
        super().__init__(rule)
        self.field, self.value, self.rule = field, value, rule


#: characters of a rejected value quoted back: enough to recognise it, never a 10 KB line
SHOWN_CHARS = 80


def _show(field: str, value: Any) -> str:
    if field in SECRET_FIELDS:
        return "'***'"
    text = value if isinstance(value, str) else str(value)
    if len(text) > SHOWN_CHARS:
        text = f"{text[:SHOWN_CHARS]}... ({len(text)} characters)"
    return repr(text) if isinstance(value, str) else f"'{text}'"


def _rule_text(error: Mapping[str, Any]) -> str:
    """pydantic's message in the words of the settings table."""
    ctx = {k: f"{v:g}" if isinstance(v, float) else v for k, v in (error.get("ctx") or {}).items()}
    kind = error.get("type")
    if kind == "less_than_equal":
        return f"must be at most {ctx.get('le')}"
    if kind == "greater_than_equal":
        return f"must be at least {ctx.get('ge')}"
    if kind == "greater_than":
        return f"must be above {ctx.get('gt')}"
    if kind == "finite_number":
        return "must be a finite number"
    if kind in ("int_parsing", "int_from_float"):
        return "must be a whole number"
    if kind == "float_parsing":
        return "must be a number"
    if kind == "string_too_short":
        return "must not be empty"
    return str(error["msg"]).removeprefix("Value error, ")


def load_settings(overrides: Mapping[str, Any] | None = None) -> Settings:
    """Read the settings from the environment (``overrides`` win), or raise ConfigError."""
    try:
        return Settings(**{k.lower(): v for k, v in (overrides or {}).items()})
    except _RelationError as err:  # raised bare by the after-validator on pydantic >= 2.x
        raise ConfigError(_relation_message(err)) from None
    except ValidationError as err:
        raise ConfigError(_validation_message(err)) from None


def _relation_message(err: _RelationError) -> str:
    return f"invalid setting {err.field.upper()}={_show(err.field, err.value)}: {err.rule}"


def _validation_message(err: ValidationError) -> str:
    first = err.errors()[0]
    ctx = first.get("ctx") or {}
    inner = ctx.get("error")
    if isinstance(inner, _RelationError):
        return _relation_message(inner)
    field = str(first["loc"][0]) if first["loc"] else "settings"
    return (
        f"invalid setting {field.upper()}={_show(field, first.get('input'))}: {_rule_text(first)}"
    )


#: Variables read outside ``Settings``: the load shapes (``shapes.py``) and the test switch.
OTHER_VARIABLE_PREFIXES: tuple[str, ...] = (
    "LOAD_SHAPE", "SPIKE_", "PANACEA_", "PROMETHEUS_", "TARGET_VERSION", "TIMELINE_INTERVAL",
    "ARRIVAL_",
)  # fmt: skip


def environment_without_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` less every variable panacea-locust reads.

    Tests and benchmarks start their processes from this, so that a developer's shell set-up
    (``BUNDLE_ID_MIN``, ``LOGS_SEARCH_WEIGHT``, ``LOAD_SHAPE`` ...) cannot change them.
    """
    names = {name.upper() for name in Settings.model_fields}
    return {
        k: v
        for k, v in environ.items()
        if k.upper() not in names and not k.upper().startswith(OTHER_VARIABLE_PREFIXES)
    }


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once (the environment does not change mid-run)."""
    return load_settings()
