"""The handshake that keeps two distributed runs apart: master and worker prove they share
``PANACEA_RUN_SECRET`` before any user runs.

When a worker connects, the master sends a fresh nonce and its own proof (an HMAC of the
nonce under the secret); the worker checks that proof (a master of another run cannot make
it, so the worker leaves before it sends anything) and answers with its proof of a second
value, which the master checks in turn (a worker of another run is sent away). The secret
itself never travels. Pure: no Locust.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_nonce() -> str:
    return secrets.token_hex(16)


def proof(secret: str, role: str, nonce: str) -> str:
    """The HMAC-SHA256 of ``role:nonce`` under the secret (a role each way, so a proof cannot
    be sent back as the other side's)."""
    return hmac.new(secret.encode(), f"{role}:{nonce}".encode(), hashlib.sha256).hexdigest()


def valid(secret: str, role: str, nonce: str, given: object) -> bool:
    return isinstance(given, str) and hmac.compare_digest(proof(secret, role, nonce), given)
