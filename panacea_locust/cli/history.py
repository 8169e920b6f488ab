"""``panacea-locust history``: every run of a results folder, oldest first, each compared with
the previous run of its label; prints one line per run and writes ``history.html``.

Exit codes: 0 a history was shown (regressions or not: it is a report; ``compare`` gates),
1 no run matched (none readable, or none of ``--label``), 2 bad arguments or a results folder
that cannot be listed (one line on stderr). The judging is ``verdict.history``'s, the layout
``report.history``'s.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from panacea_locust.report.history import render_text, write_history_html
from panacea_locust.verdict.history import HISTORY_HTML, HistoryInputError, build_history

EXIT_SHOWN, EXIT_NO_RUN, EXIT_BAD_INPUT = 0, 1, 2
PROG = "panacea-locust history"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit 2), as for every bad input here."""

    def error(self, message: str) -> NoReturn:
        raise HistoryInputError(message)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be a whole number >= 1")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Every run of a results folder, oldest first, each compared with the "
        "previous run of its label by compare's rules; writes history.html.",
        epilog="Exit codes: 0 history shown, 1 no run matched, 2 bad arguments.",
    )
    parser.add_argument("--label", help="only the runs with this label (scenario)")
    parser.add_argument(
        "--last", type=_positive, metavar="N", help="only the N most recent runs (after --label)"
    )
    parser.add_argument(
        "--results-dir",
        metavar="DIR",
        help="the folder of the run folders (default: RESULTS_DIR, else ./results)",
    )
    parser.add_argument(
        "--html", metavar="PATH", help=f"where to write the page (default: DIR/{HISTORY_HTML})"
    )
    return parser


def main(argv: Sequence[str]) -> int:
    try:
        args = _parser().parse_args(list(argv))
        results = Path(args.results_dir or os.environ.get("RESULTS_DIR") or "results")
        history = build_history(results, args.label, args.last)
    except SystemExit as exc:  # --help
        return int(exc.code) if isinstance(exc.code, int) else EXIT_BAD_INPUT
    except HistoryInputError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for note in history.notes:
        print(f"{PROG}: note: {note}", file=sys.stderr)
    if not history.entries:
        which = f" with label {args.label!r}" if args.label is not None else ""
        print(f"{PROG}: no run{which} under {results}", file=sys.stderr)
        return EXIT_NO_RUN
    print(render_text(history))
    page = Path(args.html) if args.html else results / HISTORY_HTML
    try:
        write_history_html(page, history)
    except OSError as exc:
        print(f"{PROG}: cannot write {page}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"History page: {page}")
    return EXIT_SHOWN


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
