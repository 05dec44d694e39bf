"""Operator actions that run against the database directly (not over the API)."""

from __future__ import annotations

import secrets

from hotline.server.context import token_hash
from hotline.store import Store

ENROLMENT_TTL = 7 * 24 * 3600.0


async def issue_enrolment(store: Store, handle: str, now: float, ttl: float = ENROLMENT_TTL) -> str:
    """Create a single-use enrolment token for ``handle``; only its hash is stored."""
    token = secrets.token_urlsafe(24)
    await store.create_enrolment(token_hash(token), handle, now + ttl)
    return token
