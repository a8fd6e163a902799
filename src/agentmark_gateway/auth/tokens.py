"""Opaque session and one-time tokens: random, shown once, stored as SHA-256 digests."""

from __future__ import annotations

import hashlib
import secrets

SESSION_PREFIX = "ses_"


def new_session_token() -> str:
    return SESSION_PREFIX + secrets.token_urlsafe(32)


def new_link_token() -> str:
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
