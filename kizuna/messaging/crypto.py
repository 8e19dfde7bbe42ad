"""Channel credentials at rest: Fernet (AES-128-CBC + HMAC-SHA256) with a key from
KIZUNA_ENCRYPTION_KEY, or derived from SECRET_KEY when that is unset."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


class CredentialsError(Exception):
    """Stored credentials cannot be decrypted (the key changed)."""


def _fernet() -> Fernet:
    configured = getattr(settings, "KIZUNA_ENCRYPTION_KEY", "")
    if configured:
        try:
            return Fernet(configured.encode())
        except ValueError:
            # Any passphrase: stretch it to a Fernet key.
            pass
    material = configured or settings.SECRET_KEY
    digest = hashlib.sha256(f"kizuna.messaging.credentials:{material}".encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt(data: dict[str, Any]) -> str:
    return _fernet().encrypt(json.dumps(data, sort_keys=True).encode()).decode()


def decrypt(token: str) -> dict[str, Any]:
    if not token:
        return {}
    try:
        value = json.loads(_fernet().decrypt(token.encode()))
    except InvalidToken as exc:
        raise CredentialsError("channel credentials cannot be decrypted with this key") from exc
    return value if isinstance(value, dict) else {}
