"""Step and spike load shapes: stage parsing, tick() sequences on a fake clock, selection."""

from __future__ import annotations

import subprocess
import sys
import uuid
from argparse import Namespace
from pathlib import Path
from typing import Any

import pytest
from conftest import clean_env
from locust import LoadTestShape
from locust.argument_parser import get_empty_argument_parser, setup_parser_arguments
from locust.util.load_locustfile import is_shape_class, load_locustfile

from panacea_locust.cli import run as cli_run
from panacea_locust.shapes import (
    ShapeError,
    Spike,
    SpikeLoadShape,
    Stage,
    StepLoadShape,
    add_shape_arguments,
    describe_stages,
    parse_spike,
    parse_stages,
    selected_shape,
    shape_class_for,
    shape_length_s,
    shape_record,
    shape_settings,
    spike_at,
    spike_plan,
    step_at,
)
from panacea_locust.verdict.stages import parse_duration


def test_parse_stages_syntax() -> None:
    assert parse_stages("10:30s, 25:1m,50@5:2m") == [
        Stage(10, 30.0),
        Stage(25, 60.0),
        Stage(50, 120.0, 5.0),
    ]
    assert parse_stages("0@0.5:90") == [Stage(0, 90.0, 0.5)]
    assert parse_stages("3:1h30m") == [Stage(3, 5400.0)]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90.0),
        ("90s", 90.0),
        ("1.5m", 90.0),
        ("2h", 7200.0),
        ("1h1m1s", 3661.0),
        ("5M", 300.0),
        ("", None),
        ("abc", None),
        ("10x", None),
        ("m", None),
    ],
)
def test_parse_duration(text: str, seconds: float | None) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("", "must be a comma-separated list"),
        ("10:30s,,20:5s", "must be a comma-separated list"),
        ("10", "stage 1 '10' is not USERS[@RATE]:DURATION"),
        ("10:30s,a:30s", "stage 2 'a:30s'"),
        ("10:abc", "stage 1 '10:abc'"),
        ("-5:10s", "stage 1 '-5:10s'"),
        ("10:0s", "must last more than 0 seconds"),
        ("10@0:5s", "needs a spawn rate > 0"),
    ],
)
def test_parse_stages_errors_are_one_line(spec: str, fragment: str) -> None:
    with pytest.raises(ShapeError) as err:
        parse_stages(spec)
    assert str(err.value).startswith("LOAD_SHAPE_STAGES")
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_step_schedule() -> None:
    stages = parse_stages("10:30s,25@5:60s,0:10s")
    assert step_at(stages, 0, 2.0) == (10, 2.0)
    assert step_at(stages, 29.99, 2.0) == (10, 2.0)
    assert step_at(stages, 30, 2.0) == (25, 5.0)
    assert step_at(stages, 89.9, 2.0) == (25, 5.0)
    assert step_at(stages, 90, 2.0) == (0, 2.0)
    assert step_at(stages, 100, 2.0) is None


def test_spike_schedule() -> None:
    spike = Spike(base_users=5, peak_users=50, at_s=60, duration_s=30, total_s=120, spawn_rate=25)
    assert [spike_at(spike, t) for t in (0, 59.9, 60, 89.9, 90, 119.9, 120)] == [
        (5, 25),
        (5, 25),
        (50, 25),
        (50, 25),
        (5, 25),
        (5, 25),
        None,
    ]


def drive(shape: LoadTestShape, times: list[float]) -> list[object]:
    """tick() at each fake run time (LoadTestShape.get_run_time reads the real clock)."""
    out: list[object] = []
    for t in times:
        shape.get_run_time = lambda t=t: t  # type: ignore[method-assign,misc]
        out.append(shape.tick())
    return out


def test_step_tick_sequence_from_settings() -> None:
    cls = shape_class_for("step", {"LOAD_SHAPE_STAGES": "2:10s,4@4:10s", "LOCUST_SPAWN_RATE": "3"})
    assert cls is not None
    shape = cls()
    assert drive(shape, [0, 5, 10, 19, 20, 25]) == [
        (2, 3.0),
        (2, 3.0),
        (4, 4.0),
        (4, 4.0),
        None,
        None,
    ]


def test_step_defaults() -> None:
    cls = shape_class_for("step", {})
    assert cls is not None
    shape = cls()
    assert drive(shape, [0, 60, 120, 239, 240]) == [(5, 2.0), (10, 2.0), (25, 2.0), (25, 2.0), None]


def test_spike_tick_sequence_from_settings() -> None:
    settings = {
        "SPIKE_BASE_USERS": "3",
        "SPIKE_PEAK_USERS": "30",
        "SPIKE_AT_S": "10",
        "SPIKE_DURATION_S": "5",
        "SPIKE_TOTAL_S": "20",
        "SPIKE_SPAWN_RATE": "15",
    }
    cls = shape_class_for("spike", settings)
    assert cls is not None
    assert drive(cls(), [0, 9, 10, 14, 15, 19, 20]) == [
        (3, 15.0),
        (3, 15.0),
        (30, 15.0),
        (30, 15.0),
        (3, 15.0),
        (3, 15.0),
        None,
    ]


@pytest.mark.parametrize(
    ("settings", "fragment"),
    [
        ({"SPIKE_TOTAL_S": "100", "SPIKE_AT_S": "90"}, "SPIKE_TOTAL_S = 100 must be at least"),
        ({"SPIKE_PEAK_USERS": "2.5"}, "SPIKE_PEAK_USERS = '2.5' must be a whole number >= 0"),
        ({"SPIKE_BASE_USERS": "-1"}, "SPIKE_BASE_USERS = '-1' must be a whole number >= 0"),
        ({"SPIKE_SPAWN_RATE": "0"}, "SPIKE_SPAWN_RATE = '0' must be a number > 0"),
        ({"SPIKE_AT_S": "soon"}, "SPIKE_AT_S = 'soon' must be a number >= 0"),
        ({"SPIKE_DURATION_S": "inf"}, "SPIKE_DURATION_S = 'inf' must be a number > 0"),
    ],
)
def test_spike_errors(settings: dict[str, str], fragment: str) -> None:
    with pytest.raises(ShapeError, match=fragment.replace("[", r"\[").replace(".", r"\.")):
        parse_spike(settings)
    with pytest.raises(ShapeError):  # surfaces when the class is chosen, not at the first tick
        shape_class_for("spike", settings)


def test_shape_class_for_names_and_safety() -> None:
    assert shape_class_for(None) is None
    assert shape_class_for("") is None
    assert shape_class_for(" None ") is None
    with pytest.raises(
        ShapeError, match="LOAD_SHAPE = 'ramp' is not a load shape; allowed: step, spike"
    ):
        shape_class_for("ramp", {})
    with pytest.raises(ShapeError, match="LOCUST_SPAWN_RATE = 'fast'"):
        shape_class_for("step", {"LOCUST_SPAWN_RATE": "fast"})
    # importing the base classes by name must not give Locust a shape
    assert not is_shape_class(StepLoadShape) and not is_shape_class(SpikeLoadShape)
    cls = shape_class_for("Step", {"LOAD_SHAPE_STAGES": "1:1s", "UNRELATED": "x"})
    assert cls is not None and is_shape_class(cls) and issubclass(cls, StepLoadShape)
    assert cls.__name__ == "StepLoadShape"
    assert cls.settings == {"LOAD_SHAPE_STAGES": "1:1s"}  # a snapshot of shape settings only


def test_environment_is_snapshotted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOAD_SHAPE_STAGES", "7:5s")
    cls = shape_class_for("step")
    monkeypatch.setenv("LOAD_SHAPE_STAGES", "9:5s")
    assert cls is not None and drive(cls(), [0]) == [(7, 2.0)]


def test_settings_precedence_cli_env_config(tmp_path: Path) -> None:
    conf = tmp_path / "run.conf"
    conf.write_text(
        "users = 5\nload-shape = spike\nspike-peak-users = 40\nload-shape-stages = 1:1s\n"
    )
    got = shape_settings(
        ["--config", str(conf), "-u", "3", "--spike-peak-users", "60"],
        {"SPIKE_AT_S": "5", "LOAD_SHAPE_STAGES": "2:2s"},
        [],
    )
    assert got == {
        "LOAD_SHAPE": "spike",
        "SPIKE_PEAK_USERS": "60",
        "SPIKE_AT_S": "5",
        "LOAD_SHAPE_STAGES": "2:2s",
    }
    assert shape_settings([], {}, []) == {}
    cls = selected_shape(["--config", str(conf)], {})
    assert cls is not None and cls.__name__ == "SpikeLoadShape"
    chosen = selected_shape(["--load-shape=step"], {"LOAD_SHAPE": "spike"})
    assert chosen is not None and chosen.__name__ == "StepLoadShape"


def test_a_bad_shape_setting_stops_the_locustfile_with_one_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "import panacea_locust.locustfile"],
        cwd=tmp_path,  # no locust.conf from elsewhere
        env=clean_env(LOAD_SHAPE="step", LOAD_SHAPE_STAGES="x"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("panacea-locust: LOAD_SHAPE_STAGES")
    assert proc.stderr.count("\n") == 1


def test_locust_parser_accepts_the_shape_options() -> None:
    parser = get_empty_argument_parser(default_config_files=[])
    setup_parser_arguments(parser)
    add_shape_arguments(parser)
    options = parser.parse_args(
        ["--load-shape", "step", "--load-shape-stages", "1:1s", "--spike-total-s", "30"]
    )
    assert (options.load_shape, options.load_shape_stages, options.spike_total_s) == (
        "step",
        "1:1s",
        "30",
    )
    assert "load_shape" not in parser.args_included_in_web_ui


def test_locust_discovers_only_the_selected_shape(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real discovery code of Locust, on a locustfile written like the project's."""
    name = f"shape_probe_{uuid.uuid4().hex}"
    path = tmp_path / f"{name}.py"
    path.write_text(
        "from locust import User, constant, task\n"
        "from panacea_locust.shapes import StepLoadShape, SpikeLoadShape, selected_shape\n"
        "LoadShape = selected_shape([])\n"
        "class Idle(User):\n"
        "    wait_time = constant(1)\n"
        "    @task\n"
        "    def noop(self):\n"
        "        pass\n"
    )
    monkeypatch.chdir(tmp_path)  # no locust.conf from elsewhere
    monkeypatch.setattr(sys, "path", list(sys.path))  # load_locustfile prepends the cwd
    try:
        monkeypatch.setenv("LOAD_SHAPE", "spike")
        users, shapes = load_locustfile(str(path))
        assert list(users) == ["Idle"]
        assert [type(s).__name__ for s in shapes] == ["SpikeLoadShape"]
        assert shapes[0].tick() == (5, 50.0)
        monkeypatch.delenv("LOAD_SHAPE")
        assert load_locustfile(str(path))[1] == []
    finally:
        sys.modules.pop(name, None)


# --- what a shaped run records (run.shape, the stages, its length) ---------------------------


def test_describe_stages_of_a_step_shape() -> None:
    cls = shape_class_for("step", {"LOAD_SHAPE_STAGES": "5:30s,10@4:1m,0:10s"})
    assert cls is not None
    expected = [
        {"index": 1, "start_s": 0.0, "end_s": 30.0, "users": 5, "spawn_rate": 2.0},
        {"index": 2, "start_s": 30.0, "end_s": 90.0, "users": 10, "spawn_rate": 4.0},
        {"index": 3, "start_s": 90.0, "end_s": 100.0, "users": 0, "spawn_rate": 2.0},
    ]
    assert describe_stages(cls()) == expected  # what Locust holds: an instance
    assert describe_stages(cls) == expected  # or the class shape_class_for returns
    # the plan agrees with the schedule the shape runs: each stage's users from its start to
    # just before its end
    shape = cls()
    for stage in expected:
        times = [stage["start_s"], stage["end_s"] - 0.01]
        assert drive(shape, times) == [(stage["users"], stage["spawn_rate"])] * 2
    assert drive(shape, [expected[-1]["end_s"]]) == [None]
    assert describe_stages(None) == []
    assert describe_stages(StepLoadShape) == []  # abstract: no stages


def test_describe_stages_of_a_spike() -> None:
    settings = {"SPIKE_AT_S": "10", "SPIKE_DURATION_S": "5", "SPIKE_TOTAL_S": "30"}
    cls = shape_class_for("spike", settings)
    assert cls is not None
    expected = [
        {"index": 1, "start_s": 0.0, "end_s": 10.0, "users": 5, "spawn_rate": 50.0},
        {"index": 2, "start_s": 10.0, "end_s": 15.0, "users": 50, "spawn_rate": 50.0},
        {"index": 3, "start_s": 15.0, "end_s": 30.0, "users": 5, "spawn_rate": 50.0},
    ]
    assert describe_stages(cls()) == expected
    shape = cls()
    for stage in expected:
        times = [stage["start_s"], stage["end_s"] - 0.01]
        assert drive(shape, times) == [(stage["users"], stage["spawn_rate"])] * 2
    # parts that last no time are left out: a spike at 0 s that ends with the run
    at_once = Spike(base_users=1, peak_users=9, at_s=0, duration_s=20, total_s=20, spawn_rate=3)
    assert spike_plan(at_once) == [
        {"index": 1, "start_s": 0, "end_s": 20, "users": 9, "spawn_rate": 3}
    ]


class _OtherShape(LoadTestShape):
    """A shape of someone else's: its stages are unknown."""

    def tick(self) -> tuple[int, float] | None:
        return None


def test_shape_record() -> None:
    cls = shape_class_for("step", {"LOAD_SHAPE_STAGES": "2:3s,4:3s"})
    assert cls is not None
    assert shape_record(cls()) == {
        "name": "step",
        "class": "StepLoadShape",
        "stages": describe_stages(cls()),
        "length_s": 6.0,
    }
    assert shape_record(None) is None
    assert shape_record(_OtherShape()) == {
        "name": "_OtherShape",
        "class": "_OtherShape",
        "stages": [],
        "length_s": None,
    }


def test_shape_length_from_an_environment_or_options() -> None:
    cls = shape_class_for("spike", {"SPIKE_TOTAL_S": "240"})
    assert cls is not None
    assert shape_length_s(Namespace(shape_class=cls())) == 240.0  # an Environment's attribute
    assert shape_length_s(Namespace(shape_class=None)) is None
    assert shape_length_s(Namespace(shape_class=_OtherShape())) is None
    # Locust's parsed options (add_shape_arguments' destinations)
    parser = get_empty_argument_parser(default_config_files=[])
    setup_parser_arguments(parser)
    add_shape_arguments(parser)
    options = parser.parse_args(["--load-shape", "step", "--load-shape-stages", "1:1m,2:30s"])
    assert shape_length_s(options) == 90.0
    assert shape_length_s(parser.parse_args([])) is None  # no shape
    assert shape_length_s(parser.parse_args(["--load-shape", "step"])) == 240.0  # defaults
    bad = parser.parse_args(["--load-shape", "step", "--load-shape-stages", "x"])
    assert shape_length_s(bad) is None
    assert shape_length_s(None) is None


# --- panacea-locust run with a shape ---------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "stages", "extra", "environ", "expected"),
    [
        (None, None, [], {}, None),
        (None, "1:1s", [], {}, "step"),
        ("spike", None, [], {"LOAD_SHAPE": "step"}, "spike"),
        (None, None, [], {"LOAD_SHAPE": " Spike "}, "spike"),
        (None, None, [], {"LOAD_SHAPE": "none"}, None),
        (None, None, ["--load-shape", "step"], {"LOAD_SHAPE": "spike"}, "step"),
        (None, None, ["--load-shape=spike"], {}, "spike"),
        (None, None, ["--load-shape="], {"LOAD_SHAPE": "step"}, None),
    ],
)
def test_cli_knows_when_a_shape_is_chosen(
    shape: str | None,
    stages: str | None,
    extra: list[str],
    environ: dict[str, str],
    expected: str | None,
) -> None:
    assert cli_run.shape_name(shape, stages, extra, environ) == expected


def cli_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *args: str, **environ: str
) -> tuple[int, list[str], Any]:
    """``panacea-locust run ARGS`` up to the locust command line it would run (not run)."""
    seen: dict[str, Any] = {}

    def fake_child(cmd: list[str], env: dict[str, str]) -> int:
        seen["cmd"], seen["env"] = cmd, env
        return 0

    monkeypatch.setattr(cli_run, "_run_child", fake_child)
    monkeypatch.chdir(tmp_path)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    argv = ["--host", "http://127.0.0.1:9", "--results-dir", str(tmp_path / "results"), *args]
    code = cli_run.main(argv)
    return code, seen.get("cmd", []), seen.get("env")


def option(cmd: list[str], name: str) -> str | None:
    return cmd[cmd.index(name) + 1] if name in cmd else None


def test_cli_stages_run_a_step_shape_without_options_nobody_gave(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code, cmd, _env = cli_command(monkeypatch, tmp_path, "--stages", "2:4s,4@2:4s", "--no-slo")
    assert code == 0
    assert option(cmd, "--load-shape") == "step"
    assert option(cmd, "--load-shape-stages") == "2:4s,4@2:4s"
    # the shape sets users and length: no scenario file (smoke's users = 5, run-time = 60s),
    # no -u/-r/-t, which Locust would only warn it ignores
    for flag in ("--config", "-u", "-r", "-t"):
        assert flag not in cmd, cmd
    assert option(cmd, "--label") == "step"
    # the same for --shape, and for a shape chosen in the environment
    code, cmd, _env = cli_command(monkeypatch, tmp_path, "--shape", "spike", "--no-slo")
    assert code == 0 and option(cmd, "--load-shape") == "spike" and "--config" not in cmd
    code, cmd, env = cli_command(monkeypatch, tmp_path, "--no-slo", LOAD_SHAPE="step")
    assert code == 0 and "--config" not in cmd and "-t" not in cmd
    assert option(cmd, "--label") == "step" and env["LOAD_SHAPE"] == "step"


def test_cli_passes_on_what_the_user_gave_with_a_shape(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code, cmd, _env = cli_command(
        monkeypatch, tmp_path, "--stages", "2:4s", "-t", "30s", "--scenario", "smoke"
    )
    assert code == 0
    assert option(cmd, "-t") == "30s" and option(cmd, "--config") is not None
    assert "-u" not in cmd and "-r" not in cmd
    # without a shape, nothing changed: -u gets the default rate and run time
    code, cmd, _env = cli_command(monkeypatch, tmp_path, "-u", "3", "--no-slo")
    assert code == 0 and option(cmd, "-t") == "60s" and option(cmd, "-r") is not None
    assert "--load-shape" not in cmd and "--config" not in cmd
    code, cmd, _env = cli_command(monkeypatch, tmp_path, "--no-slo")
    assert code == 0 and option(cmd, "--config") is not None  # smoke, as before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--stages", "30s:5"],
            "--stages: stage 1 '30s:5' is not USERS[@RATE]:DURATION (e.g. 50@5:2m, durations "
            "like 90s, 5m, 1h); users come first: 5:30s",
        ),
        (
            ["--stages", "5:30s", "--shape", "spike"],
            "--stages sets the stages of the step shape, not of --shape spike",
        ),
        (
            ["--stages", "5:30s,101:1m"],
            "--stages: 101 users is above LOCUST_MAX_USERS (100); raise it to run more users",
        ),
    ],
)
def test_cli_rejects_bad_stages_before_starting_anything(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    code, cmd, _env = cli_command(monkeypatch, tmp_path, *args)
    assert code == 2 and cmd == []
    assert capsys.readouterr().err == f"panacea-locust run: {message}\n"
    assert not (tmp_path / "results").exists()
