"""``panacea-locust reference-api``: serve the reference Panacea API."""

from __future__ import annotations

from collections.abc import Sequence

from panacea_locust.reference_api.server import main as _serve


def main(argv: Sequence[str]) -> int:
    return int(_serve(list(argv)) or 0)
