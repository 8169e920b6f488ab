"""Which targets a run may load: the allowlist, protected hosts, and their user cap."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, clean_env, run_panacea

from panacea_locust.reference_api.launcher import ReferenceAPIProcess
from panacea_locust.target_guard import TargetRefused, check_target, matches, parse_target

LOCUST = [sys.executable, "-m", "locust", "-f", str(ROOT / "locustfile.py"), "--headless"]


@pytest.mark.parametrize(
    ("url", "patterns", "expected"),
    [
        ("http://api.staging.example.com:8080", ["*.staging.example.com"], True),
        ("http://api.staging.example.com:8080", ["*.staging.example.com:8080"], True),
        ("http://api.staging.example.com:8080", ["*.staging.example.com:443"], False),
        ("https://API.Example.com", ["api.example.com:443"], True),
        ("http://api.example.com.evil.net", ["api.example.com"], False),
        ("http://127.0.0.1:8000", ["127.0.0.1:*"], True),
        ("http://[::1]:8000", ["::1"], True),
    ],
)
def test_host_patterns(url: str, patterns: list[str], expected: bool) -> None:
    assert matches(parse_target(url), patterns) is expected


def test_the_allowlist_and_protected_hosts_decide_before_any_request() -> None:
    assert check_target("http://127.0.0.1:8000", "127.0.0.1", None, None, 50, 10).port == 8000
    with pytest.raises(TargetRefused, match="not in PANACEA_ALLOWED_HOSTS"):
        check_target("http://10.1.2.3", "127.0.0.1, *.staging.example.com", None, None, 1, 10)
    prod = "https://api.prod.example.com"
    with pytest.raises(TargetRefused, match="--confirm-host api.prod.example.com:443"):
        check_target(prod, None, "*.prod.example.com", None, 1, 10)
    with pytest.raises(TargetRefused, match="--confirm-host"):
        check_target(prod, None, "*.prod.example.com", "api.staging.example.com", 1, 10)
    with pytest.raises(TargetRefused, match="at most 10 users"):
        check_target(prod, None, "*.prod.example.com", "api.prod.example.com", 11, 10)
    assert check_target(prod, None, "*.prod.example.com", "api.prod.example.com:443", 10, 10)
    with pytest.raises(TargetRefused, match="not an http"):
        check_target("ftp://x", None, None, None, 1, 10)


@pytest.mark.e2e
def test_a_target_outside_the_allowlist_is_refused_before_any_request(
    api: ReferenceAPIProcess, tmp_path: Path
) -> None:
    for cmd in (
        [*LOCUST, "--host", api.url, "-u", "1", "-t", "3s"],
        [sys.executable, "-m", "panacea_locust.cli", "run", "--host", api.url, "-u", "1",
         "-t", "3s", "--no-slo"],
    ):  # fmt: skip
        proc = subprocess.run(
            cmd, cwd=tmp_path, capture_output=True, text=True, timeout=60,
            env=clean_env(PANACEA_ALLOWED_HOSTS="*.staging.example.com"),
        )  # fmt: skip
        assert proc.returncode == 2, proc.stderr[-2000:]
        last = proc.stderr.strip().splitlines()[-1]
        assert "is not in PANACEA_ALLOWED_HOSTS (*.staging.example.com)" in last
        assert "Traceback" not in proc.stderr
    assert api.stats()["total"] == 0
    assert not (tmp_path / "results").exists()


@pytest.mark.e2e
def test_a_protected_host_needs_confirming_and_is_capped(
    api: ReferenceAPIProcess, tmp_path: Path
) -> None:
    env = clean_env(PANACEA_PROTECTED_HOSTS="127.0.0.1", PROTECTED_MAX_USERS="3")
    name = api.url.split("://", 1)[1]
    refused = subprocess.run([*LOCUST, "--host", api.url, "-u", "2", "-t", "2s"], cwd=tmp_path,
                             env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert refused.returncode == 2 and f"add --confirm-host {name}" in refused.stderr
    too_many = subprocess.run(
        [*LOCUST, "--host", api.url, "-u", "5", "-t", "2s", "--confirm-host", name],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert too_many.returncode == 2 and "at most 3 users" in too_many.stderr
    assert api.stats()["total"] == 0
    confirmed = subprocess.run(
        [*LOCUST, "--host", api.url, "-u", "2", "-r", "2", "-t", "2s", "--confirm-host", name],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert confirmed.returncode == 0, confirmed.stderr[-2000:]
    assert api.stats()["total"] > 0


@pytest.mark.e2e
def test_the_embedded_api_runs_whatever_the_allowlist_and_the_target_comes_first(
    tmp_path: Path,
) -> None:
    run = run_panacea(["-u", "1", "-r", "1", "-t", "2s", "--no-slo"], cwd=tmp_path,
                      env=clean_env(PANACEA_ALLOWED_HOSTS="*.staging.example.com"))  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.summary()["total"]["requests"] > 0
    first = [line for line in run.stderr.splitlines() if "target" in line][0]
    assert first.startswith("panacea-locust run: target http://127.0.0.1:")


def test_make_demo_ignores_an_exported_panacea_host() -> None:
    """``make demo`` always runs against the embedded reference API (the finding: an exported
    PANACEA_HOST silently retargeted it)."""
    dry = subprocess.run(["make", "-n", "demo"], cwd=ROOT, capture_output=True, text=True,
                         env={**clean_env(), "PANACEA_HOST": "http://10.9.9.9"})  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    line = [x for x in dry.stdout.splitlines() if "panacea-locust run" in x][0]
    assert line.startswith("env -u PANACEA_HOST ") and "--host" not in line
