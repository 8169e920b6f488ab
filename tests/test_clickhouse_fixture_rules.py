"""The database tests skip visibly where no ClickHouse can be installed, and never in CI."""

from __future__ import annotations

import clickhouse_fixture
import pytest


@pytest.mark.parametrize(
    ("env", "outcome"),
    [
        ({}, pytest.skip.Exception),
        ({"CI": "true"}, pytest.fail.Exception),
        ({"PANACEA_REQUIRE_CLICKHOUSE": "1"}, pytest.fail.Exception),
    ],
)
def test_missing_server_skips_except_in_ci(
    env: dict[str, str], outcome: type[BaseException], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("PANACEA_REQUIRE_CLICKHOUSE", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(clickhouse_fixture, "find_server_command", lambda: None)
    with pytest.raises(outcome, match="clickhouse-server is not installed"):
        clickhouse_fixture.start_server_or_skip()


def test_the_config_stays_on_loopback() -> None:
    assert "<listen_host>127.0.0.1</listen_host>" in clickhouse_fixture._CONFIG
    assert "::" not in clickhouse_fixture._CONFIG and "0.0.0.0" not in clickhouse_fixture._CONFIG
