"""When requests are due in an open-model run: a rate over time, and arrival times drawn from it.

A run's rate is a list of stages, each holding a rate or ramping linearly from one rate to
another (``ARRIVAL_STAGES``: ``20:1m,20..60:2m,60:1m``; a bare ``--arrival-rate R`` is one
stage as long as the run). Arrivals are a Poisson process by default (independent users: the
gaps are exponential, their count over a window varies as real traffic does) or ``uniform``
(evenly spaced). Either is drawn by inverting the integrated rate, so ramps are exact.

A process generating ``share`` of the run's arrivals (a worker of N: ``1/N``) draws its own
independent Poisson process at ``share`` times the rate; the sum over the workers is again a
Poisson process at the full rate. Uniform arrivals get a phase per worker, so that the
workers' arrivals interleave evenly. Pure: no Locust, no gevent.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from panacea_locust.verdict.stages import parse_duration

PROCESSES = ("poisson", "uniform")
#: the largest rate a stage may ask for (requests a second over the whole run)
MAX_RATE = 1_000_000.0
STAGES_VAR = "ARRIVAL_STAGES"
_STAGE = re.compile(
    r"^(?P<start>\d+(?:\.\d+)?)(?:\.\.(?P<end>\d+(?:\.\d+)?))?:(?P<duration>[^:]+)$"
)


class ScheduleError(ValueError):
    """A rate or stage list that cannot be run; the message is one line for the user."""


@dataclass(frozen=True)
class RateStage:
    """``start_rps`` ramping linearly to ``end_rps`` over ``duration_s`` (equal: a step)."""

    start_rps: float
    end_rps: float
    duration_s: float

    @property
    def mean_rps(self) -> float:
        return (self.start_rps + self.end_rps) / 2

    @property
    def area(self) -> float:
        """Arrivals expected in the stage."""
        return self.mean_rps * self.duration_s


def _rate(text: str, what: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value > MAX_RATE:
        raise ScheduleError(f"{what} must be a rate up to {MAX_RATE:,.0f} requests a second")
    return value


def parse_arrival_stages(spec: str, source: str = STAGES_VAR) -> list[RateStage]:
    """``RATE:DURATION`` (hold) or ``FROM..TO:DURATION`` (linear ramp), comma-separated, e.g.
    ``10:30s,10..50:2m,50:1m``; ``ScheduleError`` with one line naming what is wrong."""
    shown = spec if len(spec) <= 80 else spec[:77] + "..."
    parts = [p.strip().replace(" ", "") for p in spec.split(",")]
    if not spec.strip() or not all(parts):
        raise ScheduleError(
            f"{source} = {shown!r} must be a comma-separated list of RATE:DURATION or "
            "FROM..TO:DURATION, e.g. 10:30s,10..50:2m,50:1m"
        )
    stages = []
    for number, part in enumerate(parts, 1):
        match = _STAGE.match(part.lower())
        duration = parse_duration(match.group("duration")) if match else None
        if match is None or duration is None:
            where = part if len(part) <= 40 else part[:37] + "..."
            raise ScheduleError(
                f"{source}: stage {number} {where!r} is not RATE:DURATION or "
                "FROM..TO:DURATION (rates in requests a second; durations like 90s, 5m, 1h)"
            )
        if duration <= 0:
            raise ScheduleError(f"{source}: stage {number} must last more than 0 seconds")
        what = f"{source}: stage {number}"
        start = _rate(match.group("start"), what)
        end = _rate(match.group("end"), what) if match.group("end") else start
        stages.append(RateStage(start, end, duration))
    if not any(s.area > 0 for s in stages):
        raise ScheduleError(f"{source} = {shown!r} sends nothing: every rate is 0")
    return stages


def constant_rate(rate: float, duration_s: float | None = None) -> list[RateStage]:
    """``--arrival-rate R``: one stage, as long as the run (``duration_s`` None: unbounded)."""
    if not math.isfinite(rate) or not 0 < rate <= MAX_RATE:
        raise ScheduleError(
            f"--arrival-rate {rate:g} must be above 0 and at most {MAX_RATE:,.0f} "
            "(requests a second over the whole run)"
        )
    return [RateStage(rate, rate, math.inf if duration_s is None else duration_s)]


def length_s(stages: Sequence[RateStage]) -> float:
    return sum(s.duration_s for s in stages)


def expected_arrivals(stages: Sequence[RateStage], until_s: float) -> float:
    """Arrivals the rate promises from 0 to ``until_s`` seconds (its integral)."""
    total, start = 0.0, 0.0
    for stage in stages:
        if until_s <= start:
            break
        x = min(until_s - start, stage.duration_s)
        slope = 0.0 if math.isinf(stage.duration_s) else (
            (stage.end_rps - stage.start_rps) / stage.duration_s
        )  # fmt: skip
        total += stage.start_rps * x + slope * x * x / 2
        start += stage.duration_s
    return total


def plan(stages: Sequence[RateStage]) -> list[dict[str, Any]]:
    """The stages as ``verdict/stages.py`` plans them: ``{"index", "start_s", "end_s",
    "target_rps"}`` (a ramp's mean rate), so each stage is judged and a capacity found."""
    out, start = [], 0.0
    for index, stage in enumerate(stages, 1):
        end = start + stage.duration_s
        out.append({"index": index, "start_s": round(start, 3), "end_s": round(end, 3),
                    "target_rps": round(stage.mean_rps, 3)})  # fmt: skip
        start = end
    return out


def _time_for_area(stages: Sequence[RateStage], area: float) -> float | None:
    """The time at which the integrated rate reaches ``area``; None past the last stage."""
    start = 0.0
    for stage in stages:
        r0, d = stage.start_rps, stage.duration_s
        slope = 0.0 if math.isinf(d) else (stage.end_rps - r0) / d
        stage_area = math.inf if math.isinf(d) else r0 * d + slope * d * d / 2
        if area <= stage_area:
            if slope == 0:
                return start + (area / r0 if r0 > 0 else 0.0)
            # r0 x + slope x^2 / 2 = area, the positive root (numerically stable form)
            root = math.sqrt(r0 * r0 + 2 * slope * area)
            return start + 2 * area / (r0 + root) if r0 + root > 0 else start
        area -= stage_area
        start += d
    return None


class ArrivalSchedule:
    """Due times (seconds from the schedule's start) of one process's arrivals."""

    def __init__(
        self,
        stages: Sequence[RateStage],
        process: str = "poisson",
        share: float = 1.0,
        phase: float = 0.0,
        seed: int | None = None,
    ) -> None:
        if process not in PROCESSES:
            raise ScheduleError(f"arrival process {process!r}: choose {' or '.join(PROCESSES)}")
        if not 0 < share <= 1:
            raise ScheduleError(f"a process's share of the arrivals must be in (0, 1], got {share}")
        self.stages = list(stages)
        self.process = process
        self.share = share
        self.phase = phase % 1.0
        self._rng = random.Random(seed)

    def arrivals(self, from_s: float = 0.0) -> Iterator[float]:
        """Due times from ``from_s`` on (a re-split restarts a worker's schedule there: a
        Poisson process has no memory, so starting afresh changes nothing but the share)."""
        area = expected_arrivals(self.stages, from_s) * self.share
        if self.process == "uniform":
            area = math.floor(area - self.phase) + self.phase  # keep this process's phase
        while True:
            area += self._rng.expovariate(1.0) if self.process == "poisson" else 1.0
            due = _time_for_area(self.stages, area / self.share)
            if due is None:
                return
            if due >= from_s:
                yield due


@dataclass(frozen=True)
class OpenPlan:
    """An open-model run as asked for: its rate stages, arrival process and user cap."""

    stages: tuple[RateStage, ...]
    process: str
    max_users: int

    @property
    def unbounded(self) -> bool:
        """A constant rate for as long as the run lasts (``-t`` or Ctrl-C ends it)."""
        return math.isinf(length_s(self.stages))

    def describe(self) -> str:
        if self.unbounded:
            return f"{self.stages[0].start_rps:g} req/s"
        parts = [
            f"{s.start_rps:g}"
            + (f"..{s.end_rps:g}" if s.end_rps != s.start_rps else "")
            + f" req/s for {s.duration_s:g} s"
            for s in self.stages
        ]
        return ", then ".join(parts)


def open_plan_of(
    rate: float | None,
    stages_spec: str,
    process: str,
    max_users: int | None,
    users_limit: int,
) -> OpenPlan | None:
    """The plan ``--arrival-rate``/``--arrival-stages``, ``--arrival-process`` and
    ``--max-users`` ask for (None: a closed run); ``ScheduleError`` with one line."""
    if rate is None and not stages_spec:
        return None
    if rate is not None and stages_spec:
        raise ScheduleError("give --arrival-rate or --arrival-stages, not both")
    stages = parse_arrival_stages(stages_spec) if stages_spec else constant_rate(float(rate or 0))
    if process not in PROCESSES:
        raise ScheduleError(f"--arrival-process {process!r}: choose {' or '.join(PROCESSES)}")
    users = users_limit if max_users is None else max_users
    if users < 1:
        raise ScheduleError(f"--max-users {users} must be at least 1")
    if users > users_limit:
        raise ScheduleError(
            f"--max-users {users} is above LOCUST_MAX_USERS ({users_limit}); raise it to "
            "run more users"
        )
    return OpenPlan(tuple(stages), process, users)


def split_shares(users: dict[str, int]) -> dict[str, float]:
    """Each worker's share of the rate: its users over all users (rounded to 6 places, so a
    re-split happens only on a real change); {} while no worker has users."""
    total = sum(users.values())
    if total <= 0:
        return {}
    return {worker: round(n / total, 6) for worker, n in users.items()}
