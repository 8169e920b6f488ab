"""What the server received, as ``GET /__stats`` reports it; end-to-end tests assert on this.

What a client controls (user ids, rejection reasons) is kept short and few, so a hostile client
can neither grow the server's memory through its statistics nor make ``/__stats`` fail.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterable
from typing import Any

import orjson

from panacea_locust.contract import SESSION_ID_PATTERN

_UA_RE = re.compile(rb"PanaceaLocust/\S+ User-(\S+)")
SESSION_RE = re.compile(SESSION_ID_PATTERN.encode())
#: per session: user ids kept (more only matter as "several"), and their length
MAX_USER_IDS = 32
MAX_USER_ID_CHARS = 100
#: distinct rejection reasons counted by name; later new reasons share one line
MAX_REASONS = 100
MAX_REASON_CHARS = 200
OTHER_REASONS = f"(other reasons: more than {MAX_REASONS} distinct)"
log = logging.getLogger("panacea_locust.reference_api")


class SessionStats:
    """One ``X-Session-Id``: how many requests carried it, from whom, naming which ids."""

    __slots__ = ("requests", "user_id", "user_ids", "bundle_ids", "combo_ids", "_ua")

    def __init__(self) -> None:
        self.requests = 0
        self.user_id: str | None = None
        self.user_ids: set[str] = set()
        self.bundle_ids: set[int] = set()
        self.combo_ids: set[int] = set()
        self._ua: bytes | None = None

    def see_user_agent(self, ua: bytes | None) -> None:
        if ua is None or ua == self._ua:
            return
        self._ua = ua
        m = _UA_RE.fullmatch(ua.strip())
        if m is not None:
            uid = m.group(1)[:MAX_USER_ID_CHARS].decode("utf-8", "replace")
            if self.user_id is None:
                self.user_id = uid
            if len(self.user_ids) < MAX_USER_IDS:
                self.user_ids.add(uid)

    def add_bundles(self, ids: Iterable[int]) -> None:
        self.bundle_ids.update(ids)


class Stats:
    """Counters per endpoint template, status, session and violation reason."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.started = time.time()
        #: (endpoint template, status) -> count; totals are derived when reported
        self.counts: dict[tuple[str, int], int] = {}
        self.sessions: dict[bytes, SessionStats] = {}
        self.violations: dict[str, int] = {}
        self.injected_errors = 0
        self.injected_slow = 0

    def session(self, raw_id: bytes, user_agent: bytes | None) -> SessionStats | None:
        """The session of a well-formed ``X-Session-Id`` (counting this request), else None."""
        s = self.sessions.get(raw_id)
        if s is None:
            if SESSION_RE.fullmatch(raw_id) is None:
                return None
            s = self.sessions[raw_id] = SessionStats()
        s.requests += 1
        if user_agent != s._ua:
            s.see_user_agent(user_agent)
        return s

    def record(self, template: str, status: int) -> None:
        key = (template, status)
        counts = self.counts
        counts[key] = counts.get(key, 0) + 1

    def violation(self, reason: str) -> None:
        reason = reason[:MAX_REASON_CHARS]
        counts = self.violations
        if reason not in counts and len(counts) >= MAX_REASONS:
            reason = OTHER_REASONS
        counts[reason] = counts.get(reason, 0) + 1

    def snapshot(self) -> dict[str, Any]:
        """The ``/__stats`` document (keys are part of the project's interface)."""
        sessions = {
            sid.decode(): {
                "requests": s.requests,
                "user_id": s.user_id,
                "user_ids": sorted(s.user_ids),
                "bundle_ids": sorted(s.bundle_ids),
                "combo_ids": sorted(s.combo_ids),
            }
            for sid, s in self.sessions.items()
        }
        by_status: dict[int, int] = {}
        endpoints: dict[str, dict[int, int]] = {}
        for (template, status), n in self.counts.items():
            by_status[status] = by_status.get(status, 0) + n
            ep = endpoints.setdefault(template, {})
            ep[status] = ep.get(status, 0) + n
        return {
            "total": sum(by_status.values()),
            "by_status": {str(k): v for k, v in sorted(by_status.items())},
            "endpoints": {
                t: {
                    "count": sum(c.values()),
                    "by_status": {str(k): v for k, v in sorted(c.items())},
                }
                for t, c in sorted(endpoints.items())
            },
            "sessions": sessions,
            "distinct_sessions": len(sessions),
            "sessions_with_several_users": sum(
                1 for s in self.sessions.values() if len(s.user_ids) > 1
            ),
            "violations": dict(sorted(self.violations.items())),
            "violations_total": sum(self.violations.values()),
            "injected": {"error": self.injected_errors, "slow": self.injected_slow},
            "since": self.started,
            "uptime_s": round(time.time() - self.started, 3),
        }


def stats_json(snapshot: dict[str, Any]) -> bytes:
    """``snapshot`` as JSON, whatever it holds: orjson refuses integers beyond 64 bits and
    unpaired surrogates, so those fall back to the standard library (escaped, never a 500)."""
    try:
        return orjson.dumps(snapshot)
    except (TypeError, orjson.JSONEncodeError) as exc:
        log.warning("/__stats: %s; encoded with the standard library instead", exc)
        return json.dumps(snapshot, default=str).encode("ascii")
