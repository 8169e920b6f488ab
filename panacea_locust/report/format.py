"""How a figure reads in the text and Markdown reports: one rule for every table."""

from __future__ import annotations

from typing import Any


def number(value: Any) -> str:
    """``-`` for none, thousands separated and 1 decimal from 100, else 2 decimals."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.2f}"
    return str(value)
