"""Two runs' summaries side by side, regressions flagged: the judgement of ``compare``.

A regression is, per endpoint and in total:
- p95 or p99 grew by more than the tolerance (relative, default 10 %) AND by more than the
  noise floor (absolute, default 5 ms): fast endpoints jitter by a few ms, which is no news;
  A percentile is judged only where both runs put at least ``--min-tail-samples`` (default 5)
  requests beyond it (p95 needs 100 requests, p99 500): a p99 of 40 samples is their
  maximum, and a maximum is noise, not a regression;
- or the failure ratio grew by more than ``FAILURE_RATIO_EPSILON`` (0.001 = 0.1 percentage
  point, absolute): any real new failure mode shows up, rounding noise does not.
p50 and RPS are shown for context but never flagged (RPS depends on the user count).
Endpoints present in only one run are listed as added or removed, never flagged.

Pure: the renderers live in ``report.compare``, the command in ``cli.compare``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from panacea_locust.verdict.health import load_generator_warnings
from panacea_locust.verdict.histogram import LatencyHistogram, mixture_percentile
from panacea_locust.verdict.thresholds import (
    DEFAULT_MIN_TAIL_SAMPLES,
    QUANTILES,
    enough_tail,
    tail_requests_needed,
)
from panacea_locust.verdict.thresholds import (
    finite_number as _number,
)

EXIT_OK = 0
EXIT_REGRESSION = 1
EXIT_BAD_INPUT = 2
#: regressions flagged, but measured by a load generator that either run itself distrusts
EXIT_INCONCLUSIVE = 4
#: the run folder's file of whole-run histograms, one per endpoint (``report.summary``)
HISTOGRAMS_FILE = "histograms.json"

TOTAL_SCOPE = "total"
METRICS: tuple[str, ...] = ("p50_ms", "p95_ms", "p99_ms", "rps", "failure_ratio")
GUARDED_LATENCIES: tuple[str, ...] = ("p95_ms", "p99_ms")
CHART_METRICS: tuple[str, ...] = ("p50_ms", "p95_ms", "p99_ms")
DEFAULT_TOLERANCE = 0.10
DEFAULT_NOISE_FLOOR_MS = 5.0
FAILURE_RATIO_EPSILON = 0.001


class CompareInputError(ValueError):
    """Unusable input (missing folder or summary.json, bad JSON, bad option); one line."""


@dataclass(frozen=True)
class MetricDelta:
    metric: str
    base: float | None
    cur: float | None
    #: why this value was not judged (too few samples), None when it was
    unjudged: str | None = None

    @property
    def delta(self) -> float | None:
        if self.base is None or self.cur is None:
            return None
        return self.cur - self.base

    @property
    def delta_pct(self) -> float | None:
        """Relative change in percent; None when the baseline is 0 or missing."""
        if self.delta is None or not self.base:
            return None
        return self.delta / self.base * 100.0


@dataclass
class ScopeComparison:
    """One endpoint (or ``total``): ``status`` is "compared", "added" or "removed"."""

    scope: str
    status: str
    metrics: dict[str, MetricDelta]
    regressions: list[str] = field(default_factory=list)
    #: the total's p95/p99 with the current run re-weighted to the baseline's endpoint mix:
    #: what the total is judged on when both runs have histograms
    on_baseline_mix: dict[str, MetricDelta] | None = None

    @property
    def regressed(self) -> bool:
        return bool(self.regressions)

    def regressed_metrics(self) -> set[str]:
        return {reason.split(" ", 1)[0] for reason in self.regressions}


@dataclass
class Comparison:
    baseline: str
    current: str
    tolerance: float
    noise_floor_ms: float
    scopes: list[ScopeComparison]
    #: how the comparison was made, and why either run's latencies may be doubtful
    notes: list[str] = field(default_factory=list)
    #: either run's load-generator warnings (also in ``notes``): what makes a latency-only
    #: regression inconclusive
    generator_warnings: list[str] = field(default_factory=list)

    @property
    def flagged(self) -> bool:
        return any(scope.regressed for scope in self.scopes)

    @property
    def inconclusive(self) -> bool:
        """Flagged, but only on latency, and either run's load generator was unfit: a
        regression measured by a generator the run itself distrusts is not evidence."""
        latency_only = all(not r.startswith("failure_ratio") for _, r in self.regressions)
        return self.flagged and bool(self.generator_warnings) and latency_only

    @property
    def exit_code(self) -> int:
        if not self.flagged:
            return EXIT_OK
        return EXIT_INCONCLUSIVE if self.inconclusive else EXIT_REGRESSION

    @property
    def regressions(self) -> list[tuple[str, str]]:
        """(scope, reason) for every flagged metric."""
        return [(s.scope, reason) for s in self.scopes for reason in s.regressions]

    def to_dict(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline,
            "current": self.current,
            "tolerance": self.tolerance,
            "noise_floor_ms": self.noise_floor_ms,
            "flagged": self.flagged,
            "inconclusive": self.inconclusive,
            "exit_code": self.exit_code,
            "notes": self.notes,
            "scopes": [
                {
                    "scope": s.scope,
                    "status": s.status,
                    "regressions": s.regressions,
                    "metrics": {
                        m: {
                            "baseline": d.base,
                            "current": d.cur,
                            "delta": d.delta,
                            "delta_pct": d.delta_pct,
                            "unjudged": d.unjudged,
                        }
                        for m, d in s.metrics.items()
                    },
                    "on_baseline_mix": None
                    if s.on_baseline_mix is None
                    else {
                        m: {"baseline": d.base, "current": d.cur}
                        for m, d in s.on_baseline_mix.items()
                    },
                }
                for s in self.scopes
            ],
        }


# --- the comparison (pure) -----------------------------------------------------------------


def _has_requests(stats: Any) -> bool:
    return isinstance(stats, Mapping) and (_number(stats.get("requests")) or 0) > 0


def _failure_ratio(stats: Mapping[str, Any]) -> float | None:
    ratio = _number(stats.get("failure_ratio"))
    if ratio is None:
        failures, requests = (
            _number(stats.get("failures")),
            _number(stats.get("requests")),
        )
        if failures is not None and requests:
            ratio = failures / requests
    return ratio


def _metric(stats: Mapping[str, Any] | None, metric: str) -> float | None:
    if not _has_requests(stats):
        return None
    assert stats is not None
    return _failure_ratio(stats) if metric == "failure_ratio" else _number(stats.get(metric))


def _mark_unjudged(
    metrics: dict[str, MetricDelta],
    requests: tuple[float | None, float | None],
    min_tail_samples: int,
) -> None:
    """Note on each guarded percentile that either run measured on too few samples."""
    if not min_tail_samples:
        return
    for name in GUARDED_LATENCIES:
        if all(enough_tail(n, name, min_tail_samples) for n in requests):
            continue
        need = tail_requests_needed(name, min_tail_samples)
        counts = " and ".join(str(int(n or 0)) for n in requests)
        d = metrics[name]
        metrics[name] = MetricDelta(
            d.metric,
            d.base,
            d.cur,
            f"not judged: too few samples ({counts} requests; needs {need})",
        )


def _regressions(
    metrics: Mapping[str, MetricDelta],
    tolerance: float,
    noise_floor_ms: float,
) -> list[str]:
    reasons = []
    for name in GUARDED_LATENCIES:
        d = metrics[name]
        if d.base is None or d.cur is None or d.delta is None or d.unjudged:
            continue
        if d.cur > d.base * (1.0 + tolerance) and d.delta > noise_floor_ms:
            pct = f"{d.delta_pct:+.1f}%, " if d.delta_pct is not None else ""
            reasons.append(f"{name} {d.base:.1f} -> {d.cur:.1f} ms ({pct}{d.delta:+.1f} ms)")
    fr = metrics["failure_ratio"]
    if fr.delta is not None and fr.delta > FAILURE_RATIO_EPSILON:
        assert fr.base is not None and fr.cur is not None
        reasons.append(
            f"failure_ratio {fr.base:.2%} -> {fr.cur:.2%} ({fr.delta * 100:+.2f} points)"
        )
    return reasons


def compare_summaries(
    base: Mapping[str, Any],
    cur: Mapping[str, Any],
    tolerance: float,
    noise_floor_ms: float,
    min_tail_samples: int = DEFAULT_MIN_TAIL_SAMPLES,
    base_hists: Mapping[str, LatencyHistogram] | None = None,
    cur_hists: Mapping[str, LatencyHistogram] | None = None,
) -> Comparison:
    """Compare two results-contract summaries; ``tolerance`` is a fraction (0.10 = 10 %).

    ``min_tail_samples`` = 0 judges every percentile whatever the sample count.
    """
    for which, summary in (("baseline", base), ("current", cur)):
        if not isinstance(summary.get("total"), Mapping):
            raise CompareInputError(f"the {which} summary has no 'total' section")
        if not isinstance(summary.get("endpoints") or {}, Mapping):
            raise CompareInputError(f"the {which} summary's 'endpoints' is not an object")
    base_eps = base.get("endpoints") or {}
    cur_eps = cur.get("endpoints") or {}
    names = sorted(
        n
        for n in {*base_eps, *cur_eps}
        if _has_requests(base_eps.get(n)) or _has_requests(cur_eps.get(n))
    )
    scopes = []
    notes: list[str] = []
    for name in [TOTAL_SCOPE, *names]:
        b = base["total"] if name == TOTAL_SCOPE else base_eps.get(name)
        c = cur["total"] if name == TOTAL_SCOPE else cur_eps.get(name)
        metrics = {m: MetricDelta(m, _metric(b, m), _metric(c, m)) for m in METRICS}
        mix: dict[str, MetricDelta] | None = None
        if name == TOTAL_SCOPE or (_has_requests(b) and _has_requests(c)):
            status = "compared"
            counts = (
                _number((b or {}).get("requests")),
                _number((c or {}).get("requests")),
            )
            _mark_unjudged(metrics, counts, min_tail_samples)
            judged = metrics
            if name == TOTAL_SCOPE and base_hists and cur_hists:
                mix = _on_baseline_mix(base_eps, base_hists, cur_hists)
            if mix is not None:
                judged = {**metrics, **{m: mix[m] for m in GUARDED_LATENCIES}}
                for m in GUARDED_LATENCIES:
                    judged[m] = MetricDelta(m, mix[m].base, mix[m].cur, metrics[m].unjudged)
                notes.append(
                    "total p95/p99 judged on the baseline's endpoint mix (the current run's "
                    "endpoints re-weighted to the baseline's request shares)"
                )
            reasons = _regressions(judged, tolerance, noise_floor_ms)
        else:
            status, reasons = ("removed" if _has_requests(b) else "added"), []
        scopes.append(ScopeComparison(name, status, metrics, reasons, mix))
    warnings = [
        f"{which}: load generator: {w}"
        for which, summary in (("baseline", base), ("current", cur))
        for w in load_generator_warnings(summary)
    ]
    notes += warnings
    return Comparison(
        baseline=_run_title(base),
        current=_run_title(cur),
        tolerance=tolerance,
        noise_floor_ms=noise_floor_ms,
        scopes=scopes,
        notes=notes,
        generator_warnings=warnings,
    )


def _on_baseline_mix(
    base_eps: Mapping[str, Any],
    base_hists: Mapping[str, LatencyHistogram],
    cur_hists: Mapping[str, LatencyHistogram],
) -> dict[str, MetricDelta] | None:
    """p95/p99 of both runs' endpoints mixed in the baseline's request shares, over the
    endpoints both runs have histograms for; None when they share none."""
    shares = {
        n: float(_number(stats.get("requests")) or 0.0)
        for n, stats in base_eps.items()
        if isinstance(stats, Mapping) and n in base_hists and n in cur_hists
    }
    shares = {n: w for n, w in shares.items() if w > 0}
    if not shares:
        return None
    out = {}
    for m in GUARDED_LATENCIES:
        q = QUANTILES[m] * 100.0
        b = mixture_percentile([(base_hists[n], w) for n, w in shares.items()], q)
        c = mixture_percentile([(cur_hists[n], w) for n, w in shares.items()], q)
        out[m] = MetricDelta(
            m, None if b is None else round(b, 3), None if c is None else round(c, 3)
        )
    return out


def _run_title(summary: Mapping[str, Any]) -> str:
    run = summary.get("run") if isinstance(summary.get("run"), Mapping) else {}
    assert isinstance(run, Mapping)
    parts = [str(run[k]) for k in ("id", "label") if run.get(k)]
    if run.get("started_at"):
        parts.append(f"started {run['started_at']}")
    if run.get("target_version"):
        parts.append(f"target version {run['target_version']}")
    if run.get("git_commit"):
        parts.append(f"load-test code {str(run['git_commit'])[:12]}")
    return ", ".join(dict.fromkeys(parts)) or "unnamed run"


def load_summary(run: str | Path, which: str) -> dict[str, Any]:
    """summary.json of a run folder (or the file itself); ``CompareInputError`` if unusable."""
    path = Path(run)
    if not path.exists():
        raise CompareInputError(f"{which} run folder {str(path)!r} does not exist")
    file = path if path.is_file() else path / "summary.json"
    if not file.is_file():
        raise CompareInputError(f"{which} run folder {str(path)!r} has no summary.json")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise CompareInputError(f"cannot read {file}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise CompareInputError(f"{file} is not valid JSON ({exc})") from None
    except RecursionError:
        raise CompareInputError(f"{file} is nested too deeply to be a summary") from None
    if not isinstance(data, dict) or not isinstance(data.get("total"), Mapping):
        raise CompareInputError(f"{file} is not a panacea-locust summary (no 'total' section)")
    _check_figures(file, data)
    return data


#: the figures of a scope that compare reads; each must be null or a finite number >= 0
_FIGURES = ("requests", "failures", "failure_ratio", "rps", *METRICS, "p90_ms", "max_ms")


def _check_figures(file: Path, data: Mapping[str, Any]) -> None:
    """Refuse a summary whose figures are not finite non-negative numbers (``Infinity``,
    ``NaN``, strings, booleans): read as missing they would compare as 'ok'."""
    endpoints = data.get("endpoints") or {}
    if not isinstance(endpoints, Mapping):
        raise CompareInputError(f"{file}: 'endpoints' is not an object")
    scopes = [(TOTAL_SCOPE, data["total"]), *endpoints.items()]
    for name, stats in scopes:
        where = TOTAL_SCOPE if name == TOTAL_SCOPE else f"endpoints[{json.dumps(name)[:80]}]"
        if not isinstance(stats, Mapping):
            raise CompareInputError(f"{file}: {where} is not an object")
        for key in dict.fromkeys(_FIGURES):
            value = stats.get(key)
            if value is None:
                continue
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not ok or not math.isfinite(value) or value < 0:
                shown = json.dumps(value)[:40]
                raise CompareInputError(
                    f"{file}: {where}.{key} = {shown} is not a finite number >= 0"
                )


def load_histograms(run: str | Path) -> dict[str, LatencyHistogram] | None:
    """The run folder's whole-run endpoint histograms (``histograms.json``), or None when the
    run has none (older runs) or the file is unusable: the total is then judged as recorded."""
    path = Path(run)
    folder = path if path.is_dir() else path.parent
    file = folder / HISTOGRAMS_FILE
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
        return {
            str(name): LatencyHistogram.from_payload(payload)
            for name, payload in data.items()
            if isinstance(payload, str)
        }
    except (OSError, ValueError, AttributeError, RecursionError):
        return None
