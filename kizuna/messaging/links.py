"""Signed tokens in the links of messages: open pixel, click redirect, one-click
unsubscribe, preference centre, VERP bounce address. Each kind has its own salt, so a token
of one kind is worthless as another; click targets are inside the signature (no open
redirect)."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import time
import zlib
from typing import Any

from django.conf import settings
from django.core import signing
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.encoding import force_bytes
from django.utils.translation import get_language

OPEN, CLICK, UNSUB, PREFS, BOUNCE = (
    "kizuna.msg.open",
    "kizuna.msg.click",
    "kizuna.msg.unsub",
    "kizuna.msg.prefs",
    "kizuna.msg.bounce",
)
PREFS_MAX_AGE = 60 * 60 * 24 * 180


@functools.lru_cache(maxsize=32)
def _keyed(salt: str, secret: bytes) -> Any:
    """HMAC-SHA256 keyed as `django.core.signing.Signer(salt=salt)` keys it (the key derived
    from salt + "signer" and the secret), made once per salt and copied for each token."""
    return hmac.new(hashlib.sha256(force_bytes(salt + "signer") + secret).digest(), None, "sha256")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _signed(salt: str, value: str) -> str:
    """`Signer(salt=salt).sign(value)`: the same string, one HMAC and no per-call set-up."""
    mac = _keyed(salt, force_bytes(settings.SECRET_KEY)).copy()
    mac.update(value.encode())
    return f"{value}:{_b64(mac.digest())}"


def _object(data: Any) -> str:
    """The payload of `Signer.sign_object(data, compress=True)`: compact JSON, zlib when it
    is shorter, URL-safe base64 ('.' marks compressed)."""
    raw = json.dumps(data, separators=(",", ":")).encode("latin-1")
    packed = zlib.compress(raw)
    if len(packed) < len(raw) - 1:
        return "." + _b64(packed)
    return _b64(raw)


def sign(salt: str, data: Any) -> str:
    """Deterministic (no timestamp): the same delivery always gets the same link, so the
    header and the body of one message carry identical unsubscribe URLs. The same token as
    `signing.Signer(salt=salt).sign_object(data, compress=True)` (read back with it)."""
    return _signed(salt, _object(data))


def unsign(salt: str, token: str, max_age: int | None = None) -> Any:
    """The signed data, or None for a forged or altered token."""
    try:
        return signing.Signer(salt=salt).unsign_object(token)
    except (signing.BadSignature, ValueError):
        return None


def absolute(path: str) -> str:
    return f"{settings.KIZUNA_PUBLIC_URL}{path}"


_MARK = "KZTOKEN0"


@functools.lru_cache(maxsize=64)
def _route(name: str, prefix: str, urlconf: Any, language: str | None) -> tuple[str, str]:
    head, found, tail = reverse(name, args=[_MARK], urlconf=urlconf).partition(_MARK)
    if not found:
        raise ValueError(f"the route {name} does not take its token as a path segment")
    return head, tail


def path_with_token(name: str, token: str) -> str:
    """`reverse(name, args=[token])` for a route whose one argument is a signed token, from
    the route reversed once (a message carries several links; reversing each costs more
    than signing it). Signed tokens hold only characters `reverse` leaves unquoted."""
    head, tail = _route(name, get_script_prefix(), get_urlconf(), get_language())
    return f"{head}{token}{tail}"


def open_url(delivery_id: int) -> str:
    return absolute(path_with_token("messaging:open", sign(OPEN, delivery_id)))


def click_url(delivery_id: int, target: str) -> str:
    return absolute(path_with_token("messaging:click", sign(CLICK, [delivery_id, target])))


def unsubscribe_url(delivery_id: int) -> str:
    return absolute(path_with_token("messaging:unsubscribe", sign(UNSUB, delivery_id)))


def preferences_token(customer_id: int) -> str:
    """`signing.dumps({"c": customer_id}, salt=PREFS, compress=True)`: the same token (a
    TimestampSigner's: the payload, the time in base 62, the signature)."""
    value = f"{_object({'c': customer_id})}:{signing.b62_encode(int(time.time()))}"
    return _signed(PREFS, value)


def customer_from_preferences_token(token: str) -> int | None:
    try:
        data = signing.loads(token, salt=PREFS, max_age=PREFS_MAX_AGE)
    except signing.BadSignature:  # also expired
        return None
    value = data.get("c") if isinstance(data, dict) else None
    return value if isinstance(value, int) else None


def preferences_url(customer_id: int) -> str:
    # The page itself belongs to the portal (a face above messaging): named, not imported.
    return absolute(path_with_token("portal:preferences", preferences_token(customer_id)))


def verp_address(delivery_id: int, bounce_domain: str) -> str:
    """`bounces+TOKEN@domain`: the DSN comes back to an address naming the delivery."""
    token = _signed(BOUNCE, str(delivery_id)).replace(":", "=")
    return f"bounces+{token}@{bounce_domain}"


def delivery_from_verp(address: str) -> int | None:
    local = address.strip().strip("<>").split("@", 1)[0]
    if not local.startswith("bounces+"):
        return None
    token = local.removeprefix("bounces+").replace("=", ":")
    try:
        return int(signing.Signer(salt=BOUNCE).unsign(token))
    except (signing.BadSignature, ValueError):
        return None
