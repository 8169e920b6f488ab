"""Scenario files parse with Locust's own config parser and hold the documented numbers."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from locust.argument_parser import (
    LocustArgumentParser,
    get_empty_argument_parser,
    parse_locustfile_option,
    setup_parser_arguments,
)

from panacea_locust.config import load_settings
from panacea_locust.contract import ENDPOINTS
from panacea_locust.open_model.schedule import parse_arrival_stages
from panacea_locust.shapes import add_shape_arguments
from panacea_locust.verdict.stages import NOT_PER_STAGE
from panacea_locust.verdict.thresholds import TOTAL_SCOPE, load_slo

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"
#: the SLO file each scenario names
SLO_OF = {
    "smoke": "scenarios/slo-smoke.toml",
    "load": "slo.toml",
    "stress": "slo.toml",
    "analytics": "slo.toml",
}
#: name -> (users, spawn rate, run time s, analytics user weight or None)
EXPECTED = {
    "smoke": (5, 1.0, 60, None),
    "load": (25, 3.0, 600, None),
    "stress": (100, 10.0, 1800, None),
    "analytics": (50, 5.0, 900, 5),
}


def locust_parser() -> LocustArgumentParser:
    """Locust's parser plus the panacea-locust options the scenario files use."""
    parser = get_empty_argument_parser(default_config_files=[])
    setup_parser_arguments(parser)
    parser.add_argument("--scenario", default="", include_in_web_ui=False)
    parser.add_argument(
        "--slo",
        "--slo-file",
        dest="slo_file",
        default="",
        env_var="SLO_FILE",
        include_in_web_ui=False,
    )
    parser.add_argument(
        "--analytics-user-weight",
        type=int,
        default=None,
        env_var="ANALYTICS_USER_WEIGHT",
        include_in_web_ui=False,
    )
    add_shape_arguments(parser)
    return parser


#: open-model scenarios: name -> (arrival stages, max users, SLO file)
OPEN_EXPECTED = {
    "capacity": ("5:30s,10:30s,20:30s,40:30s,80:30s,160:30s", 100,
                 "scenarios/slo-capacity.toml"),
}  # fmt: skip


def test_every_scenario_is_tested() -> None:
    assert sorted(p.stem for p in SCENARIOS.glob("*.conf")) == sorted([*EXPECTED, *OPEN_EXPECTED])


def test_the_capacity_scenario_steps_the_rate_and_judges_each_step() -> None:
    """Locust's full parser with the project's listeners reads it (a subprocess: they are
    global); its stages parse, and its lowest step gives every per-step rule its evidence."""
    code = (
        "import sys\n"
        "import panacea_locust.event_handlers\n"
        "from locust.argument_parser import get_parser\n"
        "o = get_parser(default_config_files=[]).parse_args(['--config', sys.argv[1]])\n"
        "print(o.scenario, o.arrival_stages, o.max_users, o.slo_file, o.num_users)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(SCENARIOS / "capacity.conf")], cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "HOME": str(ROOT)}, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    scenario, stages, max_users, slo_file, users = result.stdout.split()
    expected_stages, expected_users, expected_slo = OPEN_EXPECTED["capacity"]
    assert (scenario, stages, int(max_users), slo_file) == (
        "capacity", expected_stages, expected_users, expected_slo,
    )  # fmt: skip
    assert users == "None"  # the open model sets the users, not the file
    parsed = parse_arrival_stages(stages)
    assert [s.start_rps for s in parsed] == [5, 10, 20, 40, 80, 160]
    slo = load_slo(ROOT / slo_file, [e.path for e in ENDPOINTS])
    lowest = parsed[0].area
    for rule in slo.rules:
        if rule.metric not in NOT_PER_STAGE:
            assert lowest >= rule.needed(), f"{rule.metric} needs {rule.needed()}, gets {lowest}"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_scenario_parses_with_locusts_parser(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (
        "LOCUST_USERS",
        "LOCUST_SPAWN_RATE",
        "LOCUST_RUN_TIME",
        "ANALYTICS_USER_WEIGHT",
        "SLO_FILE",
        "LOCUST_HEADLESS",
        "LOCUST_LOCUSTFILE",
    ):
        monkeypatch.delenv(var, raising=False)  # the file's values, not the environment's
    path = SCENARIOS / f"{name}.conf"
    users, rate, run_time, weight = EXPECTED[name]
    options = locust_parser().parse_args(["--config", str(path), "--host", "http://127.0.0.1:1"])
    assert (options.num_users, options.spawn_rate, options.run_time) == (users, rate, run_time)
    assert options.headless is True
    assert options.locustfile == "locustfile.py" and (ROOT / options.locustfile).is_file()
    assert options.scenario == name
    assert options.slo_file == SLO_OF[name] and (ROOT / options.slo_file).is_file()
    assert options.analytics_user_weight == weight
    assert options.load_shape is None
    # Locust's first pass (finding the locustfile) reads the file too
    first_pass: Any = parse_locustfile_option(["--config", str(path)])  # mis-annotated upstream
    assert first_pass.locustfile == "locustfile.py"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_scenario_header_names_and_versions(name: str) -> None:
    first = (SCENARIOS / f"{name}.conf").read_text().splitlines()[0]
    assert re.fullmatch(rf"# scenario: {name}, version \d+", first)


def test_command_line_overrides_the_file() -> None:
    options = locust_parser().parse_args(
        ["--config", str(SCENARIOS / "smoke.conf"), "-u", "2", "-t", "5s", "--load-shape", "spike"]
    )
    assert (options.num_users, options.run_time, options.load_shape) == (2, 5, "spike")


def test_scenarios_match_the_options_the_locustfile_registers() -> None:
    """Locust's full parser with the project's own listeners (a subprocess: they are global)."""
    code = (
        "import sys\n"
        "import panacea_locust.event_handlers\n"
        "from locust.argument_parser import get_parser\n"
        "for path in sys.argv[1:]:\n"
        "    o = get_parser(default_config_files=[]).parse_args(['--config', path])\n"
        "    print(o.scenario, o.num_users, o.slo_file, o.analytics_user_weight)\n"
    )
    paths = [str(SCENARIOS / f"{name}.conf") for name in sorted(EXPECTED)]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", code, *paths],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert len(lines) == len(EXPECTED), result.stdout
    for name, line in zip(sorted(EXPECTED), lines, strict=True):
        scenario, users, slo_file, weight = line.split()
        assert (scenario, int(users), slo_file) == (name, EXPECTED[name][0], SLO_OF[name])
        if EXPECTED[name][3] is not None:
            assert int(weight) == EXPECTED[name][3]


def _expected_requests(name: str) -> dict[str, float]:
    """Requests a scenario sends per endpoint (and in total), from its users, the default
    user weights, wait times and task weights; each request's own time is left out, so this
    is an upper bound that the test divides by a safety factor."""
    settings = load_settings()
    users, _rate, run_time, analytics = EXPECTED[name]
    kinds = {  # user type -> (weight, mean wait s, task weights by endpoint)
        "heavy": (settings.heavy_user_weight,
                  (settings.heavy_wait_min + settings.heavy_wait_max) / 2,
                  {e.path: e.weight for e in ENDPOINTS}),
        "light": (settings.light_user_weight,
                  (settings.light_wait_min + settings.light_wait_max) / 2,
                  {e.path: e.weight for e in ENDPOINTS}),
        "analytics": (analytics or 0,
                      (settings.standard_wait_min + settings.standard_wait_max) / 2,
                      {e.path: e.analytics_weight for e in ENDPOINTS}),
    }  # fmt: skip
    total_weight = sum(w for w, _, _ in kinds.values())
    out = dict.fromkeys([TOTAL_SCOPE, *(e.path for e in ENDPOINTS)], 0.0)
    for weight, wait, tasks in kinds.values():
        sent = users * weight / total_weight * run_time / wait
        out[TOTAL_SCOPE] += sent
        for path, w in tasks.items():
            out[path] += sent * w / sum(tasks.values())
    return out


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_scenario_judges_only_what_its_run_can_measure(name: str) -> None:
    """Every rule of a scenario's SLO file gets at least twice the requests it needs (a
    percentile's tail samples, or one request), so a healthy run is not INCONCLUSIVE."""
    slo = load_slo(ROOT / SLO_OF[name], [e.path for e in ENDPOINTS])
    expected = _expected_requests(name)
    short = [
        f"{r.scope} {r.metric}: needs {r.needed()}, gets about {expected[r.scope]:.0f}"
        for r in slo.rules
        if expected[r.scope] < 2 * r.needed()
    ]
    assert not short, f"{name}: " + "; ".join(short)
