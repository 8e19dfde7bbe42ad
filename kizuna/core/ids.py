"""Identifiers: prefixed random tokens and their digests."""

from __future__ import annotations

import hashlib
import hmac
import secrets


def token(prefix: str, nbytes: int = 24) -> str:
    """A random, URL-safe token that says what it is, e.g. 'kzk_3f...'."""
    return f"{prefix}_{secrets.token_urlsafe(nbytes)}"


def digest(secret: str) -> str:
    """SHA-256 hex digest: tokens are high-entropy, so a slow KDF adds nothing."""
    return hashlib.sha256(secret.encode()).hexdigest()


def digests_match(secret: str, expected_digest: str) -> bool:
    return hmac.compare_digest(digest(secret), expected_digest)


def message_id() -> str:
    return secrets.token_hex(16)
