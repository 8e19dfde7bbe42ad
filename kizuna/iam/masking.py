"""Field-level masking of customers' personal data for roles that analyse rather than serve
customers (issue 11; docs/privacy.md, "Masking").

One policy, used by every surface that shows a customer's personal data: the console's
customer list, 360 (with the other apps' panels), timeline, deliveries, inquiries and other
pages naming customers (the ``{% pd %}`` tags of ``kizuna.console.templatetags.privacy_mask``),
the API schemas that carry a customer's name, contact details or free text (the
``MaskedForRoles`` mixin) and the customer CSV exports.

* ``masks_personal_data(principal)``: True for a staff user or API key whose role is in
  ``KIZUNA_MASKED_ROLES`` (default ``["analyst"]``); superusers see everything.
* ``mask(field, value)``: the masked form of one field's value, e.g.
  ``t***@example.com``, ``090-****-5678``, ``山***``, ``150-****``; the prefecture stays
  (it is what analysts group by), the rest of an address becomes ``***``, a birthday
  ``None`` (the age band is what analysis needs; the console shows the age).
* ``mask_free_text(text, known)``: free text written by or about a customer (an inquiry's
  body, a survey answer, a ledger reason, a message as sent): e-mail addresses and phone
  numbers inside it masked, and the customer's own names (`known`, see `known_names`).
* ``masked_search_q(search)``: masked roles search customers by id and external id
  only (a match on a clear e-mail, phone or name would reveal it).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import Any, ClassVar

from django.conf import settings
from django.db.models import Q
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
        "customer_name",
    }
)
ADDRESS_FIELDS = frozenset({"city", "address_line", "address"})
EMAIL_FIELDS = frozenset({"email", "contact_email"})
PHONE_FIELDS = frozenset({"phone", "contact_phone"})
# A recipient address or messaging id of any kind (email, phone, LINE user id).
CONTACT_FIELDS = frozenset({"to_address", "line_user_id", "contact_line_user_id"})
# Every field of a customer's profile (and identity values) that `mask` changes.
MASKED_FIELDS = (
    NAME_FIELDS
    | ADDRESS_FIELDS
    | EMAIL_FIELDS
    | PHONE_FIELDS
    | CONTACT_FIELDS
    | {"postal_code", "birthday"}
)
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


def mask_contact(value: str) -> str:
    """A recipient of unknown kind: an e-mail address, a phone number or a messaging id."""
    if "@" in value:
        return mask_email(value)
    if _PHONE_RE.match(value.strip()):
        return mask_phone(value)
    return f"{value[:2]}{HIDDEN}" if value else ""


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
    if field in EMAIL_FIELDS:
        return mask_email(text)
    if field in PHONE_FIELDS:
        return mask_phone(text)
    if field in CONTACT_FIELDS:
        return mask_contact(text)
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


# A phone number inside a text: +81 or 0, then 9-10 more digits, optionally grouped.
_PHONE_IN_TEXT_RE = re.compile(
    r"(?<![\d+])(?:\+81[\s\-]?|0)\d{1,4}(?:[\s\-()]{0,2}\d{1,4}){1,3}(?!\d)"
)


def _phone_in_text(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = sum(c.isdigit() for c in text)
    if 10 <= digits <= (12 if text.startswith("+") else 11):
        return mask_phone(text)
    return text


def mask_free_text(value: Any, known: tuple[str, ...] = ()) -> Any:
    """Free text (str, or dicts and lists of it, e.g. a message as sent): e-mail addresses and
    phone numbers in it masked, and each of the `known` texts (a customer's names, contact
    details) wherever it appears. Other text, numbers and flags stay."""
    if isinstance(value, dict):
        return {k: mask_free_text(v, known) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_free_text(v, known) for v in value]
    if not isinstance(value, str) or not value:
        return value
    for text in sorted(known, key=len, reverse=True):
        if text and len(text) > 1 and text in value:
            value = value.replace(text, mask_text(text))
    value = _EMAIL_RE.sub(lambda m: mask_email(m.group(0)), value)
    return _PHONE_IN_TEXT_RE.sub(_phone_in_text, value)


def known_names(customer: Any) -> tuple[str, ...]:
    """The texts of `customer` that free text may quote: names, kana, display name."""
    if customer is None:
        return ()
    fields = ("display_name", "family_name", "given_name", "family_name_kana", "given_name_kana")
    values = {str(getattr(customer, f, "") or "").strip() for f in fields}
    return tuple(v for v in values if len(v) > 1)


def customer_label(customer: Any, masked: bool) -> str:
    """How a customer is named on a page (`str(customer)`), masked for masked roles."""
    if customer is None:
        return ""
    name = str(getattr(customer, "display_name", "") or "")
    if not name:
        return f"#{customer.pk}"
    return mask_text(name) if masked else name


def masked_search_q(search: str) -> Q:
    """The customer search of a masked role (docs/privacy.md, "Masking"): the term matches
    the customer number (``123`` or ``#123``) or an external id exactly, never a name, e-mail
    address or phone number (finding a customer by them would confirm the clear value)."""
    term = unicodedata.normalize("NFKC", search).strip()
    cond = Q(identities__kind="external", identities__value__iexact=term)
    number = term.removeprefix("#")
    if number.isdigit() and 0 < int(number) < 2**62:
        cond |= Q(pk=int(number))
    return cond


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
    schemas set `identity_kind_field` to mask their `value` by kind; schemas with free text
    name those fields in `free_text_fields` (masked with `mask_free_text`) and, when a field
    holds the customer's id, name it in `customer_field` so the customer's own names are
    masked inside the text too, and in the free text of nested masked schemas (messages,
    answers, refunds). The customer is looked up once per request through the resolver
    privacy sets (`set_known_names_resolver`), or primed by the route with
    `prime_known_names`; a schema without `customer_field` uses every customer primed."""

    identity_kind_field: ClassVar[str | None] = None
    free_text_fields: ClassVar[frozenset[str]] = frozenset()
    customer_field: ClassVar[str | None] = None

    @model_validator(mode="after")
    def _mask_personal_data(self, info: ValidationInfo) -> Any:
        context = info.context or {}
        request = context.get("request") if isinstance(context, dict) else None
        if request is None or not request_masks(request):
            return self
        cls = type(self)
        kind_field = cls.identity_kind_field
        known: tuple[str, ...] = ()
        field = cls.customer_field
        if cls.free_text_fields or field:
            known = _request_known_names(request, getattr(self, field, None) if field else None)
        for name in cls.model_fields:  # type: ignore[attr-defined]
            value = getattr(self, name)
            if name in cls.free_text_fields:
                object.__setattr__(self, name, mask_free_text(value, known))
            elif name in MASKED_FIELDS:
                object.__setattr__(self, name, mask(name, value))
            elif name in FREE_FORM_FIELDS:
                object.__setattr__(self, name, mask_property(name, value))
            elif known:
                _mask_nested(value, known)
        if kind_field is not None:
            value = getattr(self, "value", "")
            object.__setattr__(self, "value", mask_identity(getattr(self, kind_field), value))
        return self


def _mask_nested(value: Any, known: tuple[str, ...]) -> None:
    """Nested masked schemas (an inquiry's messages, a response's answers, an order's
    refunds): their free text masked again with the parent's customer's names."""
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, MaskedForRoles):
            for name in type(item).free_text_fields:
                object.__setattr__(item, name, mask_free_text(getattr(item, name), known))


_names_resolver: Callable[[Any], Any] | None = None


def set_known_names_resolver(resolver: Callable[[Any], Any]) -> None:
    """How `MaskedForRoles` finds a customer by id to mask its names in free text (set at
    start-up by an app above customers: iam does not import them)."""
    global _names_resolver
    _names_resolver = resolver


def prime_known_names(request: Any, *customers: Any) -> None:
    """Let `MaskedForRoles` schemas of this request mask these customers' names inside free
    text (the route passes the customers it has loaded anyway; iam does not query them)."""
    cache = getattr(request, "_kizuna_known_names", None)
    if cache is None:
        cache = {}
        request._kizuna_known_names = cache
    for customer in customers:
        if customer is not None:
            cache[customer.pk] = known_names(customer)


def _request_known_names(request: Any, customer_id: Any) -> tuple[str, ...]:
    """The names of `customer_id` (looked up once per request); with no id, of every
    customer the route primed."""
    cache = getattr(request, "_kizuna_known_names", None)
    if cache is None:
        cache = {}
        request._kizuna_known_names = cache
    if customer_id is None:
        return tuple(name for names in cache.values() for name in names)
    if customer_id not in cache:
        found = _names_resolver(customer_id) if _names_resolver is not None else None
        cache[customer_id] = known_names(found)
    return tuple(cache[customer_id])
