"""Latency model and fault injection, per endpoint, changeable at run time (``POST /__config``).

Delays are returned to the caller, which awaits ``asyncio.sleep``: nothing here blocks the loop.
The default latencies are this server's behaviour, not the contract's, so they live here.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from panacea_locust.contract import ENDPOINTS, Endpoint, resolve_endpoint

Rate = float
_NOTHING = (False, False, 0.0)

#: endpoint key -> default (low, high) milliseconds of the triangular latency model
DEFAULT_LATENCY_MS: dict[str, tuple[float, float]] = {
    "LOGS_ANALYZE": (30.0, 120.0),
    "LOGS_INFO": (5.0, 20.0),
    "LOGS_SEVERITY_COUNT": (15.0, 60.0),
    "LOGS_HISTOGRAM": (20.0, 80.0),
    "LOGS_HEATMAP": (25.0, 90.0),
    "LOGS_SEARCH": (20.0, 80.0),
    "LOGS_FILTER_OPTIONS": (5.0, 25.0),
    "EVENTS": (10.0, 40.0),
    "AI_REPORT_SUMMARY": (50.0, 200.0),
    "AI_ASK_AI": (300.0, 1500.0),
    "REPORTS": (15.0, 60.0),
    "BUNDLE_PATHS_BY_CASE": (5.0, 20.0),
}
assert set(DEFAULT_LATENCY_MS) == {e.key for e in ENDPOINTS}


class EndpointOverride(BaseModel):
    """Per-endpoint settings; a missing key means "use the global value"."""

    model_config = ConfigDict(extra="forbid")

    error_rate: float | None = Field(default=None, ge=0, le=1)
    slow_rate: float | None = Field(default=None, ge=0, le=1)
    slow_ms: float | None = Field(default=None, ge=0)
    latency_ms: tuple[float, float] | None = None

    @field_validator("latency_ms")
    @classmethod
    def _low_high(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None and not 0 <= v[0] <= v[1]:
            raise ValueError("must be [low, high] with 0 <= low <= high")
        return v


class ConfigChange(BaseModel):
    """Body of ``POST /__config`` and content of a ``--faults`` file (any subset of keys)."""

    model_config = ConfigDict(extra="forbid")

    latency: Literal["on", "off"] | None = None
    latency_scale: float | None = Field(default=None, ge=0)
    error_rate: float | None = Field(default=None, ge=0, le=1)
    slow_rate: float | None = Field(default=None, ge=0, le=1)
    slow_ms: float | None = Field(default=None, ge=0)
    #: endpoint (contract path or short name) -> override, or null to drop its override
    endpoints: dict[str, EndpointOverride | None] | None = None


@dataclass
class Behaviour:
    """Current latency and fault settings, plus the random source for fault decisions."""

    latency_on: bool = True
    latency_scale: float = 1.0
    error_rate: Rate = 0.0
    slow_rate: Rate = 0.0
    slow_ms: float = 2000.0
    overrides: dict[str, EndpointOverride] = field(default_factory=dict)
    seed: int = 42

    def __post_init__(self) -> None:
        self.rng = Random(f"panacea-faults:{self.seed}")
        self._eff: dict[str, tuple[float, float, float, float, float, float]] = {}
        self._compile()

    def _compile(self) -> None:
        """Precompute (low s, high s, mode s, error rate, slow rate, slow s) per endpoint."""
        for ep in ENDPOINTS:
            o = self.overrides.get(ep.path) or EndpointOverride()
            lo, hi = o.latency_ms or DEFAULT_LATENCY_MS[ep.key]
            scale = self.latency_scale / 1000.0 if self.latency_on else 0.0
            self._eff[ep.path] = (
                lo * scale,
                hi * scale,
                (lo + (hi - lo) * 0.3) * scale,
                self.error_rate if o.error_rate is None else o.error_rate,
                self.slow_rate if o.slow_rate is None else o.slow_rate,
                (self.slow_ms if o.slow_ms is None else o.slow_ms) / 1000.0,
            )
        #: latency off and no faults anywhere: decide() has nothing to draw
        self._idle = all(e[1] == 0 and e[3] == 0 and e[4] == 0 for e in self._eff.values())

    def apply(self, change: ConfigChange) -> None:
        if change.latency is not None:
            self.latency_on = change.latency == "on"
        if change.latency_scale is not None:
            self.latency_scale = change.latency_scale
        if change.error_rate is not None:
            self.error_rate = change.error_rate
        if change.slow_rate is not None:
            self.slow_rate = change.slow_rate
        if change.slow_ms is not None:
            self.slow_ms = change.slow_ms
        for key, o in (change.endpoints or {}).items():
            ep = resolve_endpoint(key)
            if o is None:
                self.overrides.pop(ep.path, None)
            else:
                merged = self.overrides.get(ep.path, EndpointOverride()).model_dump()
                merged.update(o.model_dump(exclude_unset=True))
                self.overrides[ep.path] = EndpointOverride(**merged)
        self._compile()

    def decide(self, path: str) -> tuple[bool, bool, float]:
        """(inject a 500?, inject a slow response?, seconds to wait) for one request to the
        endpoint whose contract path is ``path``."""
        if self._idle:
            return _NOTHING
        lo, hi, mode, err, slow, slow_s = self._eff[path]
        delay = 0.0
        if hi > 0:
            delay = self.rng.triangular(lo, hi, mode)
        is_slow = slow > 0 and self.rng.random() < slow
        if is_slow:
            delay += slow_s
        is_error = err > 0 and self.rng.random() < err
        return is_error, is_slow, delay

    def describe(self) -> dict[str, Any]:
        """The ``GET /__config`` document."""
        eps = {}
        for ep in ENDPOINTS:
            lo, hi, _, err, slow, slow_s = self._eff[ep.path]
            o = self.overrides.get(ep.path)
            base = o.latency_ms if o and o.latency_ms else DEFAULT_LATENCY_MS[ep.key]
            eps[ep.path] = {
                "name": ep.alias,
                "latency_ms": list(base),
                "effective_latency_ms": [round(lo * 1000, 3), round(hi * 1000, 3)],
                "error_rate": err,
                "slow_rate": slow,
                "slow_ms": slow_s * 1000,
                "override": o.model_dump(exclude_none=True) if o else None,
            }
        return {
            "latency": "on" if self.latency_on else "off",
            "latency_scale": self.latency_scale,
            "error_rate": self.error_rate,
            "slow_rate": self.slow_rate,
            "slow_ms": self.slow_ms,
            "endpoints": eps,
        }


def parse_fault_spec(spec: str) -> tuple[Endpoint, EndpointOverride]:
    """``PATH=error:0.1,slow:0.2,slow_ms:500,latency:10-50`` -> (endpoint, override)."""
    if "=" not in spec:
        raise ValueError(f"expected PATH=error:RATE,slow:RATE,..., got {spec!r}")
    key, _, rest = spec.partition("=")
    ep = resolve_endpoint(key)
    names = {
        "error": "error_rate",
        "slow": "slow_rate",
        "slow_ms": "slow_ms",
        "latency": "latency_ms",
        "error_rate": "error_rate",
        "slow_rate": "slow_rate",
        "latency_ms": "latency_ms",
    }
    values: dict[str, Any] = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        name, sep, raw = item.partition(":")
        if not sep or name not in names:
            raise ValueError(f"bad item {item!r} (use error:R, slow:R, slow_ms:MS, latency:LO-HI)")
        try:
            if names[name] == "latency_ms":
                lo, _, hi = raw.partition("-")
                values["latency_ms"] = (float(lo), float(hi or lo))
            else:
                values[names[name]] = float(raw)
        except ValueError:
            raise ValueError(f"bad number in {item!r}") from None
    try:
        return ep, EndpointOverride(**values)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ValueError(f"{'.'.join(map(str, err['loc']))}: {err['msg']}") from None


def load_faults_file(path: str) -> ConfigChange:
    """A ``--faults`` file: TOML if it ends in .toml, JSON otherwise; same keys as /__config."""
    p = Path(path)
    text = p.read_text(encoding="utf-8")
    data: Any
    try:
        if p.suffix.lower() == ".toml":
            if sys.version_info >= (3, 11):
                import tomllib
            else:  # pragma: no cover - Python 3.10
                import tomli as tomllib
            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except ValueError as exc:  # JSONDecodeError and TOMLDecodeError are ValueErrors
        raise ValueError(f"cannot parse: {exc}") from None
    try:
        change = ConfigChange.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"]) or "file"
        raise ValueError(f"{where}: {err['msg']}") from None
    for key in change.endpoints or {}:
        resolve_endpoint(key)
    return change
