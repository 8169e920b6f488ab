"""AI endpoints: generated report summaries and free-form questions (slow by nature).

Each task is a plain function of the user, so user types can weight them differently.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from panacea_locust.base_user import PanaceaAPIUser


def ai_report_summary(user: PanaceaAPIUser) -> None:
    """GET /api/v1/ai/report_summary: the AI summary of a bundle."""
    user.call_endpoint("AI_REPORT_SUMMARY")


def ai_ask_ai(user: PanaceaAPIUser) -> None:
    """POST /api/v1/ai/ask-ai: a support engineer's question about a bundle."""
    user.call_endpoint("AI_ASK_AI")


#: settings key -> task
AI_TASKS: dict[str, Callable[[PanaceaAPIUser], None]] = {
    "AI_REPORT_SUMMARY": ai_report_summary,
    "AI_ASK_AI": ai_ask_ai,
}
