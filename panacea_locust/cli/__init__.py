"""The ``panacea-locust`` console script: one entry point, a sub-command per concept."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from importlib import import_module

#: sub-command -> (module, one-line help); each module exposes ``main(argv) -> int``.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("panacea_locust.cli.run", "run a load test headless and write its results"),
    "reference-api": ("panacea_locust.cli.reference_api", "serve the reference Panacea API"),
    "db": ("panacea_locust.cli.db", "ClickHouse: init, seed and check the reference schema"),
    "compare": ("panacea_locust.cli.compare", "compare two runs and flag regressions"),
    "history": ("panacea_locust.cli.history", "list runs, each compared with the previous one"),
}


def _usage() -> str:
    lines = ["usage: panacea-locust COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<14} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run 'panacea-locust COMMAND --help' for a command's options."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_usage())
        return 0 if args else 2
    if args[0] in ("-V", "--version"):
        from panacea_locust import __version__

        print(f"panacea-locust {__version__}")
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(
            f"panacea-locust: unknown command {name!r}; choose from {', '.join(COMMANDS)}",
            file=sys.stderr,
        )
        return 2
    entry: Callable[[list[str]], int] = import_module(COMMANDS[name][0]).main
    return int(entry(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
