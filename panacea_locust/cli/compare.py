"""``panacea-locust compare BASELINE_DIR CURRENT_DIR``: two runs side by side, regressions flagged.

Exit codes: 0 no regression, 1 regressions flagged, 2 bad input (one line on stderr),
4 regressions flagged only on latency while either run's load generator was unfit.
Writes ``compare.md``, ``compare.html`` (self-contained, inline SVG charts) and ``compare.json``
(the same for machines) into ``--out``
(default: CURRENT_DIR).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from panacea_locust.report.compare import render_html, render_md, render_text
from panacea_locust.verdict.compare import (
    DEFAULT_MIN_TAIL_SAMPLES,
    DEFAULT_NOISE_FLOOR_MS,
    DEFAULT_TOLERANCE,
    EXIT_BAD_INPUT,
    CompareInputError,
    Comparison,
    compare_summaries,
    load_histograms,
    load_summary,
)

# --- command line --------------------------------------------------------------------------


def parse_tolerance(text: str) -> float:
    """'10%' or '10' -> 0.10 (a bare number is in percent too)."""
    raw = text.strip().rstrip("%").strip()
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise CompareInputError(f"--tolerance {text!r} must be a percentage >= 0, e.g. 10%")
    return value / 100.0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="panacea-locust compare",
        description="Compare two runs' summary.json per endpoint and overall; flag regressions.",
        epilog="Exit codes: 0 no regression, 1 regressions flagged, 2 bad input, "
        "4 latency regressions measured by an unfit load generator (inconclusive).",
    )
    parser.add_argument("baseline", metavar="BASELINE_DIR", help="run folder of the baseline")
    parser.add_argument("current", metavar="CURRENT_DIR", help="run folder to judge")
    parser.add_argument(
        "--tolerance",
        default=f"{DEFAULT_TOLERANCE:.0%}",
        help="allowed p95/p99 growth, percent (default %(default)s)",
    )
    parser.add_argument(
        "--noise-floor-ms",
        type=float,
        default=DEFAULT_NOISE_FLOOR_MS,
        help="p95/p99 growth below this many ms is never flagged (default 5)",
    )
    parser.add_argument(
        "--min-tail-samples",
        type=int,
        default=DEFAULT_MIN_TAIL_SAMPLES,
        help="judge p95/p99 only where both runs have this many requests "
        "beyond it (default 5: p95 needs 100 requests, p99 500; 0 = always)",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        help="where to write compare.md, .html and .json (default CURRENT_DIR)",
    )
    return parser


def main(argv: Sequence[str]) -> int:
    try:
        args = _parser().parse_args(list(argv))
    except SystemExit as exc:  # --help (0) or a usage error (2), already printed by argparse
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_BAD_INPUT
    try:
        tolerance = parse_tolerance(args.tolerance)
        if not math.isfinite(args.noise_floor_ms) or args.noise_floor_ms < 0:
            raise CompareInputError(f"--noise-floor-ms {args.noise_floor_ms:g} must be >= 0")
        base = load_summary(args.baseline, "baseline")
        cur = load_summary(args.current, "current")
        current = Path(args.current)
        out = Path(args.out) if args.out else (current if current.is_dir() else current.parent)
        if args.min_tail_samples < 0:
            raise CompareInputError(f"--min-tail-samples {args.min_tail_samples} must be >= 0")
        comparison = write_comparison(
            args.baseline, args.current, out, tolerance, args.noise_floor_ms,
            args.min_tail_samples, base, cur,
        )  # fmt: skip
    except CompareInputError as exc:
        print(f"panacea-locust compare: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(render_text(comparison))
    print(f"Report: {out / 'compare.md'}, {out / 'compare.html'}, {out / 'compare.json'}")
    return comparison.exit_code


def write_comparison(
    baseline: str | Path, current: str | Path, out: Path,
    tolerance: float = DEFAULT_TOLERANCE, noise_floor_ms: float = DEFAULT_NOISE_FLOOR_MS,
    min_tail_samples: int = DEFAULT_MIN_TAIL_SAMPLES,
    base: dict[str, Any] | None = None, cur: dict[str, Any] | None = None,
) -> Comparison:  # fmt: skip
    """Compare two run folders and write ``compare.md``, ``.html`` and ``.json`` into
    ``out``: the command's judgement, also what the web UI gives a run with a baseline.
    ``CompareInputError`` (one line) for unreadable runs or an unwritable ``out``."""
    base = base if base is not None else load_summary(baseline, "baseline")
    cur = cur if cur is not None else load_summary(current, "current")
    comparison = compare_summaries(
        base, cur, tolerance, noise_floor_ms, min_tail_samples,
        load_histograms(baseline), load_histograms(current),
    )  # fmt: skip
    comparison.baseline = f"{baseline} ({comparison.baseline})"
    comparison.current = f"{current} ({comparison.current})"
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / "compare.md").write_text(render_md(comparison), encoding="utf-8")
        (out / "compare.html").write_text(render_html(comparison), encoding="utf-8")
        (out / "compare.json").write_text(
            json.dumps(comparison.to_dict(), indent=2) + "\n", encoding="utf-8"
        )
    except OSError as exc:
        raise CompareInputError(
            f"cannot write the report into {str(out)!r}: {exc.strerror or exc}"
        ) from None
    return comparison


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
