"""Signed per-customer links to the member portal: no password, no staff session. The token
names the customer and is signed with the site's secret and a salt; it expires."""

from __future__ import annotations

from django.core import signing
from django.urls import reverse

SALT = "kizuna.portal.member"
MAX_AGE = 60 * 60 * 24 * 90  # 90 days: the link in a message or the app stays usable


def member_token(customer_id: int) -> str:
    return signing.dumps({"c": customer_id}, salt=SALT, compress=True)


def customer_id_from(token: str, *, max_age: int = MAX_AGE) -> int | None:
    try:
        data = signing.loads(token, salt=SALT, max_age=max_age)
    except signing.BadSignature:  # also SignatureExpired
        return None
    value = data.get("c") if isinstance(data, dict) else None
    return value if isinstance(value, int) else None


def member_url(customer_id: int) -> str:
    return reverse("portal:member_card", args=[member_token(customer_id)])
