"""Every settings rule, with the one-line message a user sees."""

from __future__ import annotations

import pytest

from panacea_locust.clickhouse_dao import names_from_settings
from panacea_locust.config import ConfigError, Settings, load_settings
from panacea_locust.contract import ENDPOINTS, REFERENCE_SCHEMA, SCHEMA_VARIABLES


def test_defaults_match_the_original_design() -> None:
    s = load_settings()
    assert (s.bundle_id_min, s.bundle_id_max, s.bundle_id_range_per_user) == (800, 1000, 50)
    assert s.bundle_id_overlap_percentage == 0.3
    assert (s.heavy_user_weight, s.light_user_weight, s.analytics_user_weight) == (1, 3, 0)
    assert (s.heavy_wait_min, s.heavy_wait_max, s.light_wait_min, s.light_wait_max) == (
        0.5,
        1.0,
        2.0,
        4.0,
    )
    assert s.acceptable_status_codes == {400, 404}
    assert s.use_database_data is False
    assert s.clickhouse_host == "127.0.0.1"
    assert s.clickhouse_password.get_secret_value() == ""
    assert [s.endpoint_weight(e.key) for e in ENDPOINTS] == [3, 4, 3, 2, 2, 3, 2, 2, 1, 1, 2, 1]


def test_clickhouse_names_default_to_the_contracts_reference_schema() -> None:
    """Each name setting is one field of ``SchemaNames``: same default, same variable."""
    s = load_settings()
    for field, variable in SCHEMA_VARIABLES.items():
        assert variable.lower() in Settings.model_fields, variable
        assert getattr(s, variable.lower()) == getattr(REFERENCE_SCHEMA, field), variable
    assert names_from_settings(s) == REFERENCE_SCHEMA
    renamed = load_settings({"CLICKHOUSE_SFDC_CASE_COLUMN": "case_number"})
    assert names_from_settings(renamed).sfdc_case_no == "case_number"


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUNDLE_ID_MIN", "100")
    monkeypatch.setenv("USE_DATABASE_DATA", "true")
    monkeypatch.setenv("ACCEPTABLE_STATUS_CODES", "400, 404, 409")
    monkeypatch.setenv("LOGS_SEARCH_WEIGHT", "9")
    monkeypatch.setenv("LOGS_SEARCH_PATH", "/api/v2/logs/search")
    s = load_settings()
    assert s.bundle_id_min == 100 and s.use_database_data is True
    assert s.acceptable_status_codes == {400, 404, 409}
    assert s.endpoint_weight("LOGS_SEARCH") == 9
    assert s.endpoint_path("LOGS_SEARCH") == "/api/v2/logs/search"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"BUNDLE_ID_MIN": "1000", "BUNDLE_ID_MAX": "800"},
            "invalid setting BUNDLE_ID_MIN='1000': must not exceed BUNDLE_ID_MAX (800)",
        ),
        (
            {"BUNDLE_ID_RANGE_PER_USER": "300"},
            "invalid setting BUNDLE_ID_RANGE_PER_USER='300': must not exceed the 201 ids",
        ),
        (
            {"BUNDLE_ID_OVERLAP_PERCENTAGE": "1"},
            "invalid setting BUNDLE_ID_OVERLAP_PERCENTAGE='1': must be at least 0 and below 1",
        ),
        ({"BUNDLE_ID_OVERLAP_PERCENTAGE": "-0.1"}, "BUNDLE_ID_OVERLAP_PERCENTAGE='-0.1'"),
        ({"COMBO_ID_MIN": "50", "COMBO_ID_MAX": "10"}, "COMBO_ID_MIN='50': must not exceed"),
        ({"COMBO_ID_RANGE_PER_USER": "500"}, "COMBO_ID_RANGE_PER_USER='500'"),
        (
            {"HEAVY_WAIT_MIN": "2", "HEAVY_WAIT_MAX": "1"},
            "HEAVY_WAIT_MIN='2.0': must not exceed HEAVY_WAIT_MAX (1.0)",
        ),
        ({"LIGHT_WAIT_MIN": "-1"}, "LIGHT_WAIT_MIN='-1': must be at least 0"),
        ({"STANDARD_WAIT_MAX": "soon"}, "STANDARD_WAIT_MAX='soon': must be a number"),
        ({"LOCUST_MIN_USERS": "20", "LOCUST_MAX_USERS": "10"}, "LOCUST_MIN_USERS='20'"),
        ({"LOCUST_MAX_USERS": "5000"}, "LOCUST_MAX_USERS='5000': must not exceed USER_POOL_SIZE"),
        ({"LOCUST_SPAWN_RATE": "0"}, "LOCUST_SPAWN_RATE='0': must be above 0"),
        ({"ACCEPTABLE_STATUS_CODES": "400,oops"}, "ACCEPTABLE_STATUS_CODES='400,oops'"),
        ({"ACCEPTABLE_STATUS_CODES": "401"}, "must not include 401"),
        ({"ACCEPTABLE_STATUS_CODES": "200"}, "must list non-2xx HTTP status codes"),
        ({"USER_ID_PREFIX": "bad prefix"}, "USER_ID_PREFIX='bad prefix'"),
        ({"PANACEA_HOST": "ftp://x"}, "PANACEA_HOST='ftp://x': must be an http:// or https:// URL"),
        ({"CLICKHOUSE_PORT": "70000"}, "CLICKHOUSE_PORT='70000'"),
        ({"USE_DATABASE_DATA": "perhaps"}, "USE_DATABASE_DATA='perhaps'"),
        ({"REQUEST_TIMEOUT": "0"}, "REQUEST_TIMEOUT='0'"),
        ({"LOGS_INFO_PATH": "api/v1/logs/info"}, "LOGS_INFO_PATH='api/v1/logs/info': must be"),
        ({"LOGS_INFO_WEIGHT": "-1"}, "LOGS_INFO_WEIGHT='-1'"),
        ({"HEAVY_USER_WEIGHT": "0", "LIGHT_USER_WEIGHT": "0"}, "other user weights must not all"),
        ({"SFDC_CASES_PER_USER": "60"}, "SFDC_CASES_PER_USER='60': must not exceed"),
        # found by the fault matrix: values that passed validation and then broke the run
        ({"LOGS_SEARCH_WEIGHT": "50000000"}, "LOGS_SEARCH_WEIGHT='50000000': must be at most"),
        ({"HEAVY_USER_WEIGHT": "5000"}, "HEAVY_USER_WEIGHT='5000': must be at most 1000"),
        ({"COMBO_ID_MAX": "1e30"}, "COMBO_ID_MAX="),
        ({"BUNDLE_ID_MAX": "3000000000"}, "BUNDLE_ID_MAX='3000000000': must be at most"),
        ({"HEAVY_WAIT_MAX": "inf"}, "HEAVY_WAIT_MAX='inf': must be a finite number"),
        ({"REQUEST_TIMEOUT": "inf"}, "REQUEST_TIMEOUT='inf': must be a finite number"),
        ({"REQUEST_TIMEOUT": "nan"}, "REQUEST_TIMEOUT='nan'"),
        ({"LOCUST_SPAWN_RATE": "inf"}, "LOCUST_SPAWN_RATE='inf'"),
        ({"RESULTS_DIR": "r" * 10_000}, "RESULTS_DIR="),
        ({"USER_POOL_SIZE": "99999999999"}, "USER_POOL_SIZE="),
    ],
)
def test_bad_values_give_one_line_naming_variable_value_and_rule(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert expected in message
    assert "\n" not in message


def test_all_endpoint_weights_zero_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    for e in ENDPOINTS:
        monkeypatch.setenv(f"{e.key}_WEIGHT", "0")
    with pytest.raises(ConfigError, match="endpoint weights must not all be 0"):
        load_settings()


def test_zero_wait_is_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEAVY_WAIT_MIN", "0")
    monkeypatch.setenv("HEAVY_WAIT_MAX", "0")
    assert load_settings().heavy_wait_max == 0


def test_secrets_never_appear(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLICKHOUSE_PASSWORD", "hunter2-secret")
    monkeypatch.setenv("PANACEA_AUTH_TOKEN", "tok-secret")
    s = load_settings()
    masked = s.masked()
    assert masked["CLICKHOUSE_PASSWORD"] == "***" and masked["PANACEA_AUTH_TOKEN"] == "***"
    for value in ("hunter2-secret", "tok-secret"):
        assert value not in repr(s) and value not in str(masked)
    monkeypatch.setenv("CLICKHOUSE_PORT", "nope")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "hunter2" not in str(info.value)


def test_environment_without_settings_drops_every_variable_we_read() -> None:
    from panacea_locust.config import environment_without_settings

    env = {
        "PATH": "/bin",
        "LOGS_SEARCH_WEIGHT": "9",
        "bundle_id_min": "5",
        "LOAD_SHAPE": "step",
        "SPIKE_AT_S": "3",
        "CLICKHOUSE_PASSWORD": "x",
        "HOME": "/root",
    }
    assert environment_without_settings(env) == {"PATH": "/bin", "HOME": "/root"}


def test_a_rejected_value_is_quoted_short(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 10 KB value is named, not echoed: at most 80 of its characters."""
    monkeypatch.setenv("PANACEA_HOST", "x" * 10_000)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert "PANACEA_HOST=" in message and len(message) < 250
    assert "x" * 81 not in message


# --- MAX_RESPONSE_BYTES: the largest response body a user reads -----------------------------
def test_max_response_bytes_defaults_to_16_mb_and_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().max_response_bytes == 16 * 1024 * 1024
    monkeypatch.setenv("MAX_RESPONSE_BYTES", "1024")
    assert load_settings().max_response_bytes == 1024
    monkeypatch.setenv("MAX_RESPONSE_BYTES", str(2**30))
    assert load_settings().max_response_bytes == 2**30
    assert load_settings().masked()["MAX_RESPONSE_BYTES"] == 2**30


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("1023", "must be at least 1024"),
        ("0", "must be at least 1024"),
        (str(2**30 + 1), f"must be at most {2**30}"),
        ("16MB", "must be a whole number"),
        ("1e9", "must be a whole number"),
    ],
)
def test_max_response_bytes_outside_1_kb_to_1_gb_is_refused(
    monkeypatch: pytest.MonkeyPatch, value: str, rule: str
) -> None:
    monkeypatch.setenv("MAX_RESPONSE_BYTES", value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(info.value) == f"invalid setting MAX_RESPONSE_BYTES='{value}': {rule}"


# --- secrets: printable ASCII without whitespace, refused without a trace of the value -------
@pytest.mark.parametrize("variable", ["PANACEA_AUTH_TOKEN", "CLICKHOUSE_PASSWORD"])
@pytest.mark.parametrize(
    "value",
    ["Sekr1t-tok3n-value\n", "Sekr1t-tok3n-value\r\n", "Sekr1t tok3n value", "\tSekr1t-tok3n",
     "Sekr1t-tök3n-value", "Sekr1t-tok3n\x00value", "Sekr1t-tok3n\x7fvalue"],
    ids=["LF", "CRLF", "space", "tab", "non-ASCII", "NUL", "DEL"],
)  # fmt: skip
def test_a_secret_that_is_not_printable_ascii_is_refused_and_never_shown(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    """The finding: a token with its trailing newline ended up quoted in every output."""
    overrides = {}
    if "\x00" in value:  # no environment variable can hold a NUL
        overrides[variable] = value
    else:
        monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as info:
        load_settings(overrides)
    message = str(info.value)
    assert message == (
        f"invalid setting {variable}='***': must be printable ASCII without whitespace "
        "(no spaces, tabs or line breaks)"
    )
    # not even partly: no 4 consecutive characters of the value
    assert [value[i : i + 4] for i in range(len(value) - 3) if value[i : i + 4] in message] == []


def test_printable_secrets_and_an_empty_password_are_accepted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = "".join(chr(c) for c in range(0x21, 0x7F))  # every printable ASCII character
    monkeypatch.setenv("PANACEA_AUTH_TOKEN", token)
    monkeypatch.setenv("CLICKHOUSE_PASSWORD", "")
    s = load_settings()
    assert s.panacea_auth_token is not None
    assert s.panacea_auth_token.get_secret_value() == token
    assert s.clickhouse_password.get_secret_value() == ""


# --- FOLLOW_REDIRECTS ------------------------------------------------------------------------
def test_follow_redirects_is_none_by_default_and_reads_same_origin(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert load_settings().follow_redirects == "none"
    monkeypatch.setenv("FOLLOW_REDIRECTS", " Same-Origin ")
    assert load_settings().follow_redirects == "same-origin"
    assert load_settings().masked()["FOLLOW_REDIRECTS"] == "same-origin"


@pytest.mark.parametrize("value", ["all", "true", "yes", "", "same_origin"])
def test_follow_redirects_other_than_none_or_same_origin_is_refused(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("FOLLOW_REDIRECTS", value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    rule = "must be none or same-origin"
    assert str(info.value) == f"invalid setting FOLLOW_REDIRECTS={value!r}: {rule}"
