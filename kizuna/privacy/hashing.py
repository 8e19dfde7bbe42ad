"""Keyed hashes of erased identifiers (pure)."""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings


def _key() -> bytes:
    key = getattr(settings, "PRIVACY_HASH_KEY", "") or settings.SECRET_KEY
    return hashlib.sha256(("kizuna.privacy.erased:" + key).encode()).digest()


def normalise(kind: str, value: str) -> str:
    value = value.strip()
    if kind == "email":
        return value.lower()
    if kind == "phone":
        return "".join(ch for ch in value if ch.isdigit() or ch == "+")
    return value


def identifier_digest(kind: str, value: str) -> str:
    """HMAC-SHA256 of the normalised identifier, keyed by PRIVACY_HASH_KEY (or SECRET_KEY):
    without the key a list of hashes cannot be checked against guessed addresses."""
    message = f"{kind}:{normalise(kind, value)}".encode()
    return hmac.new(_key(), message, hashlib.sha256).hexdigest()
