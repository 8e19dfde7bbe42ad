"""Field-level masking of customers' personal data for roles that analyse rather than serve
customers (issue 11; docs/privacy.md, "Masking").

One policy, used by every surface that shows a customer's profile: the console's customer
list and 360 (the ``{% pd %}`` tag of ``kizuna.console.templatetags.privacy_mask``), the
customer API schemas (``CustomerOut``, ``IdentityOut``) and the customer CSV exports.

* ``masks_personal_data(principal)``: True for a staff user or API key whose role is in
  ``KIZUNA_MASKED_ROLES`` (default ``["analyst"]``); superusers see everything.
* ``mask(field, value)``: the masked form of one field's value, e.g.
  ``t***@example.com``, ``090-****-5678``, ``山***``, ``150-****``; the prefecture stays
  (it is what analysts group by), the rest of an address becomes ``***``, a birthday
  ``None`` (the age band is what analysis needs; the console shows the age).
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from django.conf import settings
from pydantic import ValidationInfo, model_validator

HIDDEN = "***"

NAME_FIELDS = frozenset(
    {
        "display_name",
        "family_name",
        "given_name",
        "family_name_kana",
        "given_name_kana",
        "kana_name",
        "contact_name",
    }
)
ADDRESS_FIELDS = frozenset({"city", "address_line", "address"})
# Every field of a customer's profile (and identity values) that `mask` changes.
MASKED_FIELDS = NAME_FIELDS | ADDRESS_FIELDS | {"email", "phone", "postal_code", "birthday"}
# JSON of free-form properties (events, forms): masked key by key (`mask_property`).
FREE_FORM_FIELDS = frozenset({"properties"})


def masked_roles() -> set[str]:
    return set(getattr(settings, "KIZUNA_MASKED_ROLES", ["analyst"]))


def masks_personal_data(principal: Any) -> bool:
    """Whether `principal` (a staff user, an API key, None or anonymous) sees masked data."""
    if principal is None:
        return True
    roles = masked_roles()
    if not roles:
        return False
    from kizuna.iam.models import ApiKey

    if isinstance(principal, ApiKey):
        return principal.role in roles
    if not getattr(principal, "is_authenticated", False):
        return True
    if getattr(principal, "is_superuser", False):
        return False
    role = user_role_cached(principal)  # no role: masked
    return role is None or role in roles


def user_role_cached(user: Any) -> str | None:
    """`iam.selectors.user_role`, looked up once per user object (one request)."""
    if not hasattr(user, "_kizuna_role"):
        from kizuna.iam.selectors import user_role

        user._kizuna_role = user_role(user)
    return user._kizuna_role


def mask_email(value: str) -> str:
    local, at, domain = value.partition("@")
    if not at:
        return mask_text(value)
    return f"{local[:1]}{HIDDEN}@{domain}"


def mask_phone(value: str) -> str:
    digits = "".join(c for c in value if c.isdigit())
    if value.startswith("+81"):
        digits = "0" + digits[2:]
    if len(digits) < 8:
        return HIDDEN
    return f"{digits[:3]}-****-{digits[-4:]}"


def mask_text(value: str) -> str:
    """A name or other short text: its first character, then ***."""
    return f"{value[:1]}{HIDDEN}" if value else ""


def mask_postal_code(value: str) -> str:
    digits = "".join(c for c in value if c.isdigit())
    return f"{digits[:3]}-****" if len(digits) >= 3 else HIDDEN


def mask_identity(kind: str, value: str) -> str:
    if kind == "email":
        return mask_email(value)
    if kind == "phone":
        return mask_phone(value)
    return f"{value[:2]}{HIDDEN}" if value else ""


def mask(field: str, value: Any) -> Any:
    """`value` of the customer field `field`, masked (empty values stay empty)."""
    if value in (None, ""):
        return value
    if field == "birthday":
        return None
    text = str(value)
    if field == "email":
        return mask_email(text)
    if field == "phone":
        return mask_phone(text)
    if field == "postal_code":
        return mask_postal_code(text)
    if field in NAME_FIELDS:
        return mask_text(text)
    if field in ADDRESS_FIELDS:
        return HIDDEN
    return value


_EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_PHONE_RE = re.compile(r"^\+?[\d\-() ]{10,}$")
_PERSONAL_KEY_PARTS = ("name", "email", "mail", "phone", "tel", "address", "birth", "postal", "zip")


def mask_property(key: str, value: Any, known: tuple[str, ...] = ()) -> Any:
    """A free-form property (an event's, a form's): masked when its key names personal data
    (name, email, phone, address, birthday, postal code) or its text looks like an email
    address or a phone number; `known` texts (the customer's own names) are masked wherever
    they appear; numbers, flags and other text stay."""
    if isinstance(value, dict):
        return {k: mask_property(str(k), v, known) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_property(key, v, known) for v in value]
    if not isinstance(value, str) or not value:
        return value
    for text in known:
        if text and len(text) > 1 and text in value:
            value = value.replace(text, mask_text(text))
    lowered = key.lower()
    if any(part in lowered for part in _PERSONAL_KEY_PARTS):
        if "mail" in lowered or _EMAIL_RE.fullmatch(value):
            return mask_email(value)
        if "phone" in lowered or "tel" in lowered:
            return mask_phone(value)
        return mask_text(value)
    if _EMAIL_RE.search(value):
        return _EMAIL_RE.sub(lambda m: mask_email(m.group(0)), value)
    if _PHONE_RE.match(value.strip()):
        return mask_phone(value)
    return value


def mask_row(row: dict[str, Any]) -> dict[str, Any]:
    """A dict of customer fields with every personal one masked."""
    return {k: mask(k, v) if k in MASKED_FIELDS else v for k, v in row.items()}


def request_masks(request: Any) -> bool:
    """Whether the API caller of `request` (its API key or staff session) sees masked data."""
    principal = getattr(request, "auth", None)
    if principal is None:
        principal = getattr(request, "user", None)
    return masks_personal_data(principal)


class MaskedForRoles:
    """Mixin for a ninja output schema of customer data: after validation, the fields named
    in `MASKED_FIELDS` are masked when the caller's role is a masked one (the request is in
    the validation context ninja passes); `properties` JSON key by key. Identity-like
    schemas set `identity_kind_field` to mask their `value` by kind."""

    identity_kind_field: ClassVar[str | None] = None

    @model_validator(mode="after")
    def _mask_personal_data(self, info: ValidationInfo) -> Any:
        context = info.context or {}
        request = context.get("request") if isinstance(context, dict) else None
        if request is None or not request_masks(request):
            return self
        kind_field = type(self).identity_kind_field
        for name in type(self).model_fields:  # type: ignore[attr-defined]
            if name in MASKED_FIELDS:
                object.__setattr__(self, name, mask(name, getattr(self, name)))
            elif name in FREE_FORM_FIELDS:
                object.__setattr__(self, name, mask_property(name, getattr(self, name)))
        if kind_field is not None:
            value = getattr(self, "value", "")
            object.__setattr__(self, "value", mask_identity(getattr(self, kind_field), value))
        return self
