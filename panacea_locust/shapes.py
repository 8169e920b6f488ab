"""Step and spike load shapes, chosen by ``LOAD_SHAPE`` or ``--load-shape`` (step|spike).

How Locust finds a shape (locust 2.47, ``locust/util/load_locustfile.py``): when it imports the
locustfile, every non-abstract ``LoadTestShape`` subclass in the module's namespace is
instantiated; headless runs and the web UI use the first one found. Several may coexist (the
web UI's ``--class-picker`` lets a person choose among them) but the command line has no option
to choose one by name, and the locustfile is imported *before* Locust parses its options. So
the choice has to be made at import time, and the locustfile must hold only the chosen class,
as ``panacea_locust/locustfile.py`` does with ``selected_shape()`` (None: no shape).

``selected_shape`` reads the shape settings the way Locust reads its own options (command line
> environment variable > ``--config`` file or locust.conf), so ``--load-shape step``,
``LOAD_SHAPE=step`` and ``load-shape = step`` in a scenario file all work. The options must
also be registered with Locust's parser (``add_shape_arguments`` from an
``init_command_line_parser`` listener) or Locust rejects them as unknown.

The classes here are abstract (importing them by name activates nothing); ``shape_class_for``
returns a concrete subclass bound to validated settings, so a bad stage list fails at import
with one line instead of inside Locust's shape greenlet.

Stage syntax (``LOAD_SHAPE_STAGES``): comma-separated ``USERS[@RATE]:DURATION`` run in order,
e.g. ``10:30s,25:1m,50@5:2m``; DURATION is ``90``, ``90s``, ``5m``, ``1h`` or ``1h30m``; RATE
(users started or stopped per second) defaults to ``LOCUST_SPAWN_RATE`` (default 2). The run
ends after the last stage. The parser (``parse_stages``, with ``Stage`` and ``ShapeError``) is
pure and lives in ``verdict/stages.py``, so ``panacea-locust run --stages`` checks a list
without loading Locust; this module imports it from there.

What a run recorded: ``describe_stages`` gives the selected shape's stages as plain data (what
``verdict/stages.py`` measures and judges), ``shape_record`` the run's ``run.shape`` and
``shape_length_s`` the length of a shaped run (the progress line's total).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import configargparse
from locust import LoadTestShape
from locust.argument_parser import DEFAULT_CONFIG_FILES, LocustArgumentParser, LocustConfigParser

from panacea_locust.verdict.stages import ShapeError, Stage, parse_stages

SHAPE_NAMES: tuple[str, ...] = ("step", "spike")
DEFAULT_STAGES = "5:1m,10:1m,25:2m"
DEFAULT_SPAWN_RATE = 2.0  # LOCUST_SPAWN_RATE's documented default

#: Every setting a shape reads: environment variable -> (command-line option, default, help).
SHAPE_SETTINGS: dict[str, tuple[str, str | None, str]] = {
    "LOAD_SHAPE": ("--load-shape", None, "load shape: step or spike (default: none, use -u/-r/-t)"),
    "LOAD_SHAPE_STAGES": (
        "--load-shape-stages",
        DEFAULT_STAGES,
        "step stages USERS[@RATE]:DURATION,... e.g. 10:30s,25:1m,50@5:2m",
    ),
    "SPIKE_BASE_USERS": ("--spike-base-users", "5", "spike: users before and after the spike"),
    "SPIKE_PEAK_USERS": ("--spike-peak-users", "50", "spike: users during the spike"),
    "SPIKE_AT_S": ("--spike-at-s", "60", "spike: seconds from the start to the spike"),
    "SPIKE_DURATION_S": ("--spike-duration-s", "60", "spike: seconds the spike lasts"),
    "SPIKE_TOTAL_S": ("--spike-total-s", "180", "spike: length of the whole run, seconds"),
    "SPIKE_SPAWN_RATE": ("--spike-spawn-rate", "50", "spike: users started/stopped per second"),
}
#: Read from the environment only: it is also Locust's own variable for ``--spawn-rate``.
SPAWN_RATE_VAR = "LOCUST_SPAWN_RATE"


@dataclass(frozen=True)
class Spike:
    base_users: int
    peak_users: int
    at_s: float
    duration_s: float
    total_s: float
    spawn_rate: float


# --- pure schedules ----------------------------------------------------------------------


def step_at(
    stages: Sequence[Stage], run_time_s: float, default_spawn_rate: float
) -> tuple[int, float] | None:
    """(users, spawn rate) at ``run_time_s`` seconds into a step run; None once it is over."""
    end = 0.0
    for stage in stages:
        end += stage.duration_s
        if run_time_s < end:
            rate = stage.spawn_rate if stage.spawn_rate is not None else default_spawn_rate
            return stage.users, rate
    return None


def spike_at(spike: Spike, run_time_s: float) -> tuple[int, float] | None:
    """(users, spawn rate) at ``run_time_s``: base, then peak, then base; None once over."""
    if run_time_s >= spike.total_s:
        return None
    in_spike = spike.at_s <= run_time_s < spike.at_s + spike.duration_s
    return (spike.peak_users if in_spike else spike.base_users), spike.spawn_rate


def step_plan(stages: Sequence[Stage], default_spawn_rate: float) -> list[dict[str, Any]]:
    """A step shape's stages as plain data: ``{"index", "start_s", "end_s", "users",
    "spawn_rate"}``, seconds from the start of the run, index from 1."""
    plan, start = [], 0.0
    for index, stage in enumerate(stages, 1):
        end = start + stage.duration_s
        rate = stage.spawn_rate if stage.spawn_rate is not None else default_spawn_rate
        plan.append(
            {"index": index, "start_s": start, "end_s": end, "users": stage.users,
             "spawn_rate": rate}
        )  # fmt: skip
        start = end
    return plan


def spike_plan(spike: Spike) -> list[dict[str, Any]]:
    """A spike's stages as plain data (as ``step_plan``): base, peak, base again; a part that
    lasts no time (a spike at 0 s, or one that ends with the run) is left out."""
    parts = (
        (0.0, spike.at_s, spike.base_users),
        (spike.at_s, spike.at_s + spike.duration_s, spike.peak_users),
        (spike.at_s + spike.duration_s, spike.total_s, spike.base_users),
    )
    plan: list[dict[str, Any]] = []
    for start, end, users in parts:
        if end > start:
            plan.append(
                {"index": len(plan) + 1, "start_s": start, "end_s": end, "users": users,
                 "spawn_rate": spike.spawn_rate}
            )  # fmt: skip
    return plan


def _number(
    settings: Mapping[str, str], var: str, *, integer: bool = False, positive: bool = False
) -> float:
    raw = settings.get(var)
    if raw is None or not str(raw).strip():
        raw = SHAPE_SETTINGS[var][1] if var in SHAPE_SETTINGS else str(DEFAULT_SPAWN_RATE)
    kind = "a whole number" if integer else "a number"
    bound = "> 0" if positive else ">= 0"
    try:
        value = float(str(raw).strip())
    except ValueError:
        value = math.nan
    if (
        not math.isfinite(value)
        or (integer and not value.is_integer())
        or value < 0
        or (positive and value == 0)
    ):
        raise ShapeError(f"{var} = {raw!r} must be {kind} {bound}")
    return value


def parse_spike(settings: Mapping[str, str]) -> Spike:
    """Validate the ``SPIKE_*`` settings (missing or empty ones take their defaults)."""
    spike = Spike(
        base_users=int(_number(settings, "SPIKE_BASE_USERS", integer=True)),
        peak_users=int(_number(settings, "SPIKE_PEAK_USERS", integer=True)),
        at_s=_number(settings, "SPIKE_AT_S"),
        duration_s=_number(settings, "SPIKE_DURATION_S", positive=True),
        total_s=_number(settings, "SPIKE_TOTAL_S", positive=True),
        spawn_rate=_number(settings, "SPIKE_SPAWN_RATE", positive=True),
    )
    if spike.at_s + spike.duration_s > spike.total_s:
        raise ShapeError(
            f"SPIKE_TOTAL_S = {spike.total_s:g} must be at least SPIKE_AT_S + "
            f"SPIKE_DURATION_S = {spike.at_s + spike.duration_s:g}"
        )
    return spike


def default_spawn_rate(settings: Mapping[str, str]) -> float:
    """``LOCUST_SPAWN_RATE`` (default 2), the step shape's rate for stages without ``@RATE``."""
    return _number(settings, SPAWN_RATE_VAR, positive=True)


# --- Locust shape classes ----------------------------------------------------------------


class _SettingsShape(LoadTestShape):
    abstract = True
    #: Settings snapshot bound by ``shape_class_for``; None reads ``os.environ`` at creation.
    settings: ClassVar[Mapping[str, str] | None] = None

    def _settings(self) -> Mapping[str, str]:
        return os.environ if self.settings is None else self.settings


class StepLoadShape(_SettingsShape):
    """Stages of constant user counts, one after the other (``LOAD_SHAPE_STAGES``)."""

    abstract = True

    def __init__(
        self, stages: Sequence[Stage] | None = None, spawn_rate: float | None = None
    ) -> None:
        super().__init__()
        settings = self._settings()
        spec = settings.get("LOAD_SHAPE_STAGES") or DEFAULT_STAGES
        self.stages = list(stages) if stages is not None else parse_stages(spec)
        self.spawn_rate = spawn_rate if spawn_rate is not None else default_spawn_rate(settings)

    def tick(self) -> tuple[int, float] | None:
        return step_at(self.stages, self.get_run_time(), self.spawn_rate)


class SpikeLoadShape(_SettingsShape):
    """Base users, a sudden peak at ``SPIKE_AT_S`` for ``SPIKE_DURATION_S``, base again."""

    abstract = True

    def __init__(self, spike: Spike | None = None) -> None:
        super().__init__()
        self.spike = spike if spike is not None else parse_spike(self._settings())

    def tick(self) -> tuple[int, float] | None:
        return spike_at(self.spike, self.get_run_time())


_CLASSES: dict[str, type[_SettingsShape]] = {"step": StepLoadShape, "spike": SpikeLoadShape}


def shape_class_for(
    name: str | None, settings: Mapping[str, str] | None = None
) -> type[LoadTestShape] | None:
    """The concrete shape class for ``name`` (step|spike), or None for ``None``/""/"none".

    The settings (default: ``os.environ``) are validated now, and the returned class keeps a
    snapshot of them, so Locust can instantiate it without arguments.
    """
    key = (name or "").strip().lower()
    if key in ("", "none"):
        return None
    if key not in _CLASSES:
        raise ShapeError(
            f"LOAD_SHAPE = {name!r} is not a load shape; allowed: "
            f"{', '.join(SHAPE_NAMES)} (or empty for none)"
        )
    source = os.environ if settings is None else settings
    snapshot = {
        var: str(source[var])
        for var in (*SHAPE_SETTINGS, SPAWN_RATE_VAR)
        if source.get(var) not in (None, "")
    }
    base = _CLASSES[key]
    concrete = type(
        base.__name__,
        (base,),
        {
            "abstract": False,
            "settings": snapshot,
            "__doc__": base.__doc__,
            "__module__": __name__,
            "__qualname__": base.__qualname__,
        },
    )
    concrete()  # validate now: errors surface at import, not in Locust's shape greenlet
    return concrete


# --- selecting the shape from options ----------------------------------------------------


def shape_settings(
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    default_config_files: Sequence[str] = DEFAULT_CONFIG_FILES,
) -> dict[str, str]:
    """Shape settings keyed by variable name, as Locust would resolve them for its own options.

    Precedence: command line (``--load-shape step``) > environment (``LOAD_SHAPE``) > config
    file (``load-shape = step`` in ``--config FILE``, locust.conf, ~/.locust.conf or
    pyproject.toml's [tool.locust]). Unrelated options are ignored.
    """
    env = dict(os.environ if environ is None else environ)
    parser = configargparse.ArgParser(
        add_help=False,
        allow_abbrev=False,
        default_config_files=list(default_config_files),
        config_file_parser_class=LocustConfigParser,
        ignore_unknown_config_file_keys=True,
    )
    parser.add_argument("--config", is_config_file_arg=True)
    for var, (option, _default, _help) in SHAPE_SETTINGS.items():
        parser.add_argument(option, dest=var, env_var=var, default=None)
    options, _unknown = parser.parse_known_args(args=argv, env_vars=env)
    resolved = {
        var: value
        for var, value in vars(options).items()
        if var in SHAPE_SETTINGS and value not in (None, "")
    }
    if env.get(SPAWN_RATE_VAR):
        resolved[SPAWN_RATE_VAR] = env[SPAWN_RATE_VAR]
    return resolved


def selected_shape(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> type[LoadTestShape] | None:
    """The shape class chosen by ``--load-shape``/``LOAD_SHAPE``/config, or None; may raise
    ``ShapeError``. ``argv`` defaults to ``sys.argv[1:]``."""
    settings = shape_settings(argv, environ)
    return shape_class_for(settings.get("LOAD_SHAPE"), settings)


def _shape_name(shape: object) -> str | None:
    """``step`` or ``spike`` for one of this module's shapes (class or instance), else None."""
    cls = shape if isinstance(shape, type) else type(shape)
    for name, base in _CLASSES.items():
        if issubclass(cls, base):
            return name
    return None


def describe_stages(shape: LoadTestShape | type[LoadTestShape] | None) -> list[dict[str, Any]]:
    """The stages of a run's shape as plain data (``step_plan``), for ``verdict/stages.py``.

    ``shape`` is what Locust holds in ``environment.shape_class`` (an instance, in Locust
    2.47) or a class from ``shape_class_for``; [] for no shape or a shape of another kind,
    whose stages are unknown.
    """
    if isinstance(shape, type):
        if _shape_name(shape) is None or getattr(shape, "abstract", False):
            return []
        shape = shape()
    if isinstance(shape, StepLoadShape):
        return step_plan(shape.stages, shape.spawn_rate)
    if isinstance(shape, SpikeLoadShape):
        return spike_plan(shape.spike)
    return []


def shape_record(shape: LoadTestShape | type[LoadTestShape] | None) -> dict[str, Any] | None:
    """``summary.json`` ``run.shape``: ``{"name", "class", "stages", "length_s"}`` for a run
    with a shape (``name`` step or spike, else the class name, with no stages and no length);
    None without one. Call with ``environment.shape_class``."""
    if shape is None:
        return None
    cls = shape if isinstance(shape, type) else type(shape)
    stages = describe_stages(shape)
    return {
        "name": _shape_name(shape) or cls.__name__,
        "class": cls.__name__,
        "stages": stages,
        "length_s": stages[-1]["end_s"] if stages else None,
    }


def shape_length_s(environment_or_options: Any) -> float | None:
    """Seconds a shaped run lasts (the end of its last stage), or None: no shape, or a shape
    of another kind. Takes a Locust ``Environment`` (its ``shape_class``) or Locust's parsed
    options (``--load-shape`` and the other shape options, as ``add_shape_arguments``
    registered them); for the progress line's total."""
    if environment_or_options is None:
        return None
    if hasattr(environment_or_options, "shape_class"):
        stages = describe_stages(environment_or_options.shape_class)
    else:
        settings = {
            var: str(value)
            for var in SHAPE_SETTINGS
            if (value := getattr(environment_or_options, var.lower(), None)) not in (None, "")
        }
        try:
            stages = describe_stages(shape_class_for(settings.get("LOAD_SHAPE"), settings))
        except ShapeError:
            return None
    return float(stages[-1]["end_s"]) if stages else None


def add_shape_arguments(parser: Any) -> None:
    """Register the shape options on Locust's parser (call from ``init_command_line_parser``).

    Without this, Locust rejects ``--load-shape`` and friends as unrecognized arguments.
    """
    extra = {"include_in_web_ui": False} if isinstance(parser, LocustArgumentParser) else {}
    for var, (option, default, help_) in SHAPE_SETTINGS.items():
        parser.add_argument(
            option,
            dest=var.lower(),
            env_var=var,
            default=None,
            help=f"{help_} [env {var}; default {default or 'none'}]",
            **extra,
        )


__all__ = [
    "ShapeError",
    "Stage",
    "add_shape_arguments",
    "describe_stages",
    "selected_shape",
    "shape_length_s",
    "shape_record",
]
