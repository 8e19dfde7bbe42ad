"""Pure validation and normalisation of customer data; errors are keyed by field name."""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from django.utils.dateparse import parse_date
from django.utils.translation import gettext as _
from email_validator import EmailNotValidError, validate_email

from kizuna.customers.choices import PREFECTURE_NAMES_EN, Gender, IdentityKind, Locale, TraitType

_POSTAL_RE = re.compile(r"^(\d{3})-?(\d{4})$")
MAX_TEXT = 200
MAX_TRAITS_BYTES = 16_384


class FieldErrors(dict[str, list[str]]):
    def add(self, field: str, message: str) -> None:
        self.setdefault(field, []).append(message)


def nfkc(value: str) -> str:
    """Full-width digits and letters to half-width, half-width kana to full-width."""
    return unicodedata.normalize("NFKC", value).strip()


_HIRAGANA_TO_KATAKANA = {code: code + 0x60 for code in range(0x3041, 0x3097)}
KANA_FIELDS = {"family_name_kana", "given_name_kana"}


def katakana(value: str) -> str:
    """Kana readings are stored in full-width katakana, however they were typed."""
    return nfkc(value).translate(_HIRAGANA_TO_KATAKANA)


def normalize_email(value: str) -> str:
    try:
        result = validate_email(nfkc(value), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(_("Enter a valid email address (%(reason)s).") % {"reason": exc}) from exc
    return result.normalized.lower()


def normalize_phone(value: str, region: str = "JP") -> str:
    """E.164 form (+81...). Japanese numbers may be given in domestic form (090-...)."""
    try:
        number = phonenumbers.parse(nfkc(value), region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(_("Enter a valid phone number.")) from exc
    if not phonenumbers.is_valid_number(number):
        raise ValueError(_("Enter a valid phone number."))
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_postal_code(value: str) -> str:
    match = _POSTAL_RE.match(nfkc(value).replace("〒", "").strip())
    if not match:
        raise ValueError(_("Enter a postal code like 123-4567."))
    return f"{match.group(1)}-{match.group(2)}"


def parse_birthday(value: Any, today: date) -> date:
    if isinstance(value, date):
        parsed: date | None = value
    elif isinstance(value, str):
        try:
            parsed = parse_date(value.strip())
        except ValueError:
            parsed = None
    else:
        parsed = None
    if parsed is None:
        raise ValueError(_("Enter a date as YYYY-MM-DD."))
    if parsed > today:
        raise ValueError(_("A birthday cannot be in the future."))
    if parsed.year < 1900:
        raise ValueError(_("A birthday must be after 1900."))
    return parsed


def normalize_identity(kind: str, value: str) -> str:
    if kind not in IdentityKind.values:
        raise ValueError(_("Unknown identity kind %(kind)s.") % {"kind": kind})
    if not isinstance(value, str) or not value.strip():
        raise ValueError(_("This field is required."))
    if kind == IdentityKind.EMAIL:
        return normalize_email(value)
    if kind == IdentityKind.PHONE:
        return normalize_phone(value)
    if len(value) > 255:
        raise ValueError(_("At most 255 characters."))
    if kind == IdentityKind.LINE and not re.fullmatch(r"U[0-9a-f]{32}", value.strip()):
        raise ValueError(_("A LINE user ID is 'U' followed by 32 hexadecimal characters."))
    return value.strip()


def validate_trait_value(definition: dict[str, Any], value: Any) -> Any:
    kind = definition["type"]
    if value is None:
        return None
    if kind == TraitType.STRING:
        if not isinstance(value, str):
            raise ValueError(_("Expected text."))
        if len(value) > 1000:
            raise ValueError(_("At most 1000 characters."))
        return value
    if kind == TraitType.INTEGER:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(_("Expected a whole number."))
        return value
    if kind == TraitType.NUMBER:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(_("Expected a number."))
        return value
    if kind == TraitType.BOOLEAN:
        if not isinstance(value, bool):
            raise ValueError(_("Expected true or false."))
        return value
    if kind == TraitType.DATE:
        if not isinstance(value, str) or parse_date(value) is None:
            raise ValueError(_("Enter a date as YYYY-MM-DD."))
        return value
    if kind == TraitType.CHOICE:
        if value not in definition.get("choices", []):
            raise ValueError(
                _("Choose one of: %(choices)s.")
                % {"choices": ", ".join(map(str, definition["choices"]))}
            )
        return value
    raise ValueError(_("Unsupported trait type %(type)s.") % {"type": kind})


def validate_traits(
    traits: Any, definitions: dict[str, dict[str, Any]], errors: FieldErrors
) -> dict[str, Any]:
    """Keep only declared keys with values of their declared type; record the rest as errors."""
    if not isinstance(traits, dict):
        errors.add("traits", _("Traits must be an object of key/value pairs."))
        return {}
    clean: dict[str, Any] = {}
    for key, value in traits.items():
        definition = definitions.get(key)
        if definition is None:
            errors.add(
                f"traits.{key}", _("Unknown trait %(key)s; declare it first.") % {"key": key}
            )
            continue
        try:
            clean[key] = validate_trait_value(definition, value)
        except ValueError as exc:
            errors.add(f"traits.{key}", str(exc))
    return clean


TEXT_FIELDS = {
    "family_name": 100,
    "given_name": 100,
    "family_name_kana": 100,
    "given_name_kana": 100,
    "city": 100,
    "address_line": MAX_TEXT,
    "timezone": 64,
}
PROFILE_FIELDS = {
    *TEXT_FIELDS,
    "email",
    "phone",
    "birthday",
    "gender",
    "postal_code",
    "prefecture",
    "locale",
    "traits",
}


def clean_profile(
    data: dict[str, Any],
    *,
    definitions: dict[str, dict[str, Any]],
    today: date,
    existing_traits: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], FieldErrors]:
    """Validate a (partial) profile. Returns the cleaned values and errors keyed by field."""
    errors = FieldErrors()
    clean: dict[str, Any] = {}
    for field, value in data.items():
        if field not in PROFILE_FIELDS:
            errors.add(field, _("Unknown field %(field)s.") % {"field": field})
            continue
        if field == "traits":
            merged = {**(existing_traits or {}), **(value if isinstance(value, dict) else {})}
            if not isinstance(value, dict):
                validate_traits(value, definitions, errors)
                continue
            # A null value removes the trait.
            clean["traits"] = {
                k: v
                for k, v in validate_traits(merged, definitions, errors).items()
                if v is not None
            }
            continue
        if value is None or value == "":
            clean[field] = None if field == "birthday" else ""
            if field == "gender":
                clean[field] = Gender.UNSPECIFIED
            if field == "locale":
                clean[field] = Locale.JA
            continue
        if field in TEXT_FIELDS:
            if not isinstance(value, str):
                errors.add(field, _("Expected text."))
            elif len(nfkc(value)) > TEXT_FIELDS[field]:
                errors.add(field, _("At most %(n)d characters.") % {"n": TEXT_FIELDS[field]})
            else:
                clean[field] = katakana(value) if field in KANA_FIELDS else nfkc(value)
            continue
        try:
            if not isinstance(value, str) and field != "birthday":
                raise ValueError(_("Expected text."))
            if field == "email":
                clean[field] = normalize_email(value)
            elif field == "phone":
                clean[field] = normalize_phone(value)
            elif field == "postal_code":
                clean[field] = normalize_postal_code(value)
            elif field == "birthday":
                clean[field] = parse_birthday(value, today)
            elif field == "gender":
                if value not in Gender.values:
                    raise ValueError(_("Choose one of: %(c)s.") % {"c": ", ".join(Gender.values)})
                clean[field] = value
            elif field == "locale":
                if value not in Locale.values:
                    raise ValueError(_("Choose one of: %(c)s.") % {"c": ", ".join(Locale.values)})
                clean[field] = value
            elif field == "prefecture":
                if value not in PREFECTURE_NAMES_EN:
                    raise ValueError(_("Use an ISO 3166-2:JP code such as JP-13."))
                clean[field] = value
        except ValueError as exc:
            errors.add(field, str(exc))
    if clean.get("timezone"):
        try:
            ZoneInfo(clean["timezone"])
        except (ZoneInfoNotFoundError, ValueError):
            errors.add("timezone", _("Unknown time zone %(tz)s.") % {"tz": clean["timezone"]})
    return clean, errors
