"""Which targets a run may load: an allowlist, protected hosts that need confirming, and a cap.

A load test pointed at the wrong host is an outage. ``PANACEA_ALLOWED_HOSTS`` lists the hosts
a run may target at all (anything else stops with exit 2 before the first request);
``PANACEA_PROTECTED_HOSTS`` lists hosts (production, say) a run may target only when the
command line names the host again (``--confirm-host HOST``), and then with at most
``PROTECTED_MAX_USERS`` users. Patterns are ``host`` or ``host:port``, with shell wildcards
(``*.staging.example.com``); a pattern without a port matches any port. Pure: no Locust.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from urllib.parse import urlsplit


class TargetRefused(ValueError):
    """The target may not be loaded as asked; the message is one line for the user."""


@dataclass(frozen=True)
class Target:
    host: str  #: lower-case host name or address, without brackets
    port: int

    @property
    def name(self) -> str:
        """``host:port``, what ``--confirm-host`` must repeat."""
        return f"{self.host}:{self.port}"


def parse_target(url: str) -> Target:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        shown = url if len(url) <= 80 else url[:77] + "..."
        raise TargetRefused(f"target {shown!r} is not an http:// or https:// URL with a host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise TargetRefused(f"target {url[:80]!r} has a bad port") from None
    return Target(parts.hostname.lower(), port)


def parse_patterns(text: str | None) -> list[str]:
    """``"a.example.com, *.staging.example.com:8443"`` -> the patterns, lower-cased."""
    return [p.strip().lower() for p in (text or "").split(",") if p.strip()]


def matches(target: Target, patterns: list[str]) -> bool:
    """Whether ``target`` matches any of ``patterns`` (``host`` or ``host:port``, wildcards)."""
    for pattern in patterns:
        host, port = pattern, None
        if pattern.count(":") == 1:  # host:port (an IPv6 address has several colons)
            host, port = pattern.split(":")
        if fnmatchcase(target.host, host) and port in (None, "*", str(target.port)):
            return True
    return False


def check_target(
    url: str,
    allowed: str | None,
    protected: str | None,
    confirmed: str | None,
    peak_users: int,
    protected_max_users: int,
) -> Target:
    """The target, if this run may load it; ``TargetRefused`` with one line otherwise."""
    target = parse_target(url)
    allow = parse_patterns(allowed)
    if allow and not matches(target, allow):
        raise TargetRefused(
            f"target {target.name} is not in PANACEA_ALLOWED_HOSTS ({', '.join(allow)[:120]})"
        )
    if matches(target, parse_patterns(protected)):
        given = (confirmed or "").strip().lower()
        if given not in (target.name, target.host):
            raise TargetRefused(
                f"target {target.name} is a protected host (PANACEA_PROTECTED_HOSTS): to load "
                f"it, add --confirm-host {target.name}"
            )
        if peak_users > protected_max_users:
            raise TargetRefused(
                f"target {target.name} is a protected host: at most {protected_max_users} users "
                f"(PROTECTED_MAX_USERS), this run asks for {peak_users}"
            )
    return target
