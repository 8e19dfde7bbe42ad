"""Pure validation and normalisation of customer data; errors are keyed by field name."""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import email_validator
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
_KATAKANA_TO_HIRAGANA = {code + 0x60: code for code in range(0x3041, 0x3097)}
KANA_FIELDS = {"family_name_kana", "given_name_kana"}


def hiragana(value: str) -> str:
    """NFKC, then katakana to hiragana (for kana-insensitive matching of names)."""
    return nfkc(value).translate(_KATAKANA_TO_HIRAGANA)


def katakana(value: str) -> str:
    """Kana readings are stored in full-width katakana, however they were typed."""
    return nfkc(value).translate(_HIRAGANA_TO_KATAKANA)


# --- fast paths -----------------------------------------------------------------------------
# Most imported emails and phone numbers are plain: an ASCII dot-atom address at an LDH domain,
# a Japanese number with hyphens. For those, the checks the full libraries make reduce to a few
# exact conditions, tested below at a fraction of the cost; anything else (and anything the fast
# path does not accept) goes through the libraries. The fast paths only ever *accept*: every
# error comes from the libraries, so the messages stay theirs. `tests/test_validation_fast.py`
# checks both paths give the same result over many generated and tricky inputs.

_ATEXT = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~\-"  # RFC 5322 atext, as email-validator's DOT_ATOM_TEXT
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_TLD = r"(?:[A-Za-z0-9][A-Za-z0-9-]{0,61})?[A-Za-z]"  # email-validator: TLDs end with a letter
_PLAIN_EMAIL_RE = re.compile(rf"[{_ATEXT}]+(?:\.[{_ATEXT}]+)*@((?:{_LABEL}\.)+{_TLD})", re.ASCII)


def _plain_email(value: str) -> str | None:
    """The normalised form email-validator gives a plain ASCII address (`check_deliverability`
    off, its defaults otherwise), or None when the address is not plain or not valid."""
    if len(value) > 254 or not email_validator.GLOBALLY_DELIVERABLE:
        return None
    if email_validator.TEST_ENVIRONMENT:
        return None
    match = _PLAIN_EMAIL_RE.fullmatch(value)
    if match is None:
        return None
    domain = match.group(1).lower()
    # No "--" at all: no Punycode label to decode and no R-LDH label ("ab--c") to reject.
    if len(domain) > 253 or "--" in domain:
        return None
    for special in email_validator.SPECIAL_USE_DOMAIN_NAMES:
        if domain == special or domain.endswith("." + special):
            return None
    # email-validator keeps a dot-atom local part as given and lower-cases an ASCII domain;
    # kizuna lower-cases the whole address.
    return value.lower()


def _jp_valid_patterns() -> dict[int, re.Pattern[str]]:
    """For each length, one pattern that a national number of that length fully matches
    exactly when it matches JP's general description and the description of any number
    type, read from phonenumbers' own metadata (how `phonenumbers.is_valid_number` decides:
    a description applies to the lengths it lists, or to any length when it lists none)."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region("JP")
    assert metadata is not None and metadata.country_code == 81
    general = metadata.general_desc
    types = [
        d
        for d in (
            getattr(metadata, name)
            for name in (
                "premium_rate",
                "toll_free",
                "shared_cost",
                "voip",
                "personal_number",
                "pager",
                "uan",
                "voicemail",
                "fixed_line",
                "mobile",
            )
        )
        if d is not None and d.national_number_pattern
    ]
    by_length: dict[int, re.Pattern[str]] = {}
    if general is None or not general.national_number_pattern:
        return by_length
    for length in range(1, 18):
        if general.possible_length and length not in general.possible_length:
            continue
        alternatives = [
            f"(?:{d.national_number_pattern})"
            for d in types
            if not d.possible_length or length in d.possible_length
        ]
        if alternatives:
            by_length[length] = re.compile(
                f"(?=(?:{general.national_number_pattern})$)(?:{'|'.join(alternatives)})"
            )
    return by_length


_JP_VALID_BY_LENGTH = _jp_valid_patterns()
# A number written domestically ("090-1234-5678", "03(1234)5678", "(03) 1234-5678") or with
# +81 ("+81 90-1234-5678"): digit groups with at most one separator between them.
_PLAIN_JP_PHONE_RE = re.compile(r"(\+81[- ]?)?\(?[0-9]{1,5}\)?(?:[- ]?\(?[0-9]{1,5}\)?){0,3}")
_PHONE_SEPARATORS = str.maketrans("", "", "-() ")


def _plain_jp_phone(value: str) -> str | None:
    """The E.164 form phonenumbers gives a valid Japanese number in a plain format (parsed
    with region JP), or None when the number is not plain or not valid."""
    if len(value) > 30 or _PLAIN_JP_PHONE_RE.fullmatch(value) is None:
        return None
    if value.count("(") != value.count(")") or value.count("(") > 1:
        return None
    international = value.startswith("+")
    digits = (value[3:] if international else value).translate(_PHONE_SEPARATORS)
    if international:
        nsn = digits  # after +81; a leading 0 (a national prefix) is left to the library
    elif digits[:1] == "0":
        # The national prefix 0; "00" and "010" (the international prefix) are not plain.
        nsn = digits[1:]
    else:
        return None
    if not (9 <= len(nsn) <= 10) or nsn[0] == "0":
        return None
    valid = _JP_VALID_BY_LENGTH.get(len(nsn))
    if valid is None or valid.fullmatch(nsn) is None:
        return None
    return "+81" + nsn


def normalize_email(value: str) -> str:
    value = nfkc(value)
    plain = _plain_email(value)
    if plain is not None:
        return plain
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(_("Enter a valid email address (%(reason)s).") % {"reason": exc}) from exc
    return result.normalized.lower()


def normalize_phone(value: str, region: str = "JP") -> str:
    """E.164 form (+81...). Japanese numbers may be given in domestic form (090-...)."""
    value = nfkc(value)
    if region == "JP":
        plain = _plain_jp_phone(value)
        if plain is not None:
            return plain
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(_("Enter a valid phone number.")) from exc
    if not phonenumbers.is_valid_number(number):
        raise ValueError(_("Enter a valid phone number."))
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# Dash look-alikes typed between the two parts of a postal code with a Japanese IME: the
# long vowel mark ー (what ｰ becomes under NFKC), hyphens, minus and dashes.
_POSTAL_DASHES = str.maketrans(dict.fromkeys("ー‐‑‒–—―−", "-"))


def normalize_postal_code(value: str) -> str:
    match = _POSTAL_RE.match(nfkc(value).replace("〒", "").translate(_POSTAL_DASHES).strip())
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
                continue
            text = nfkc(value)  # (katakana() is nfkc() then the kana translation)
            if len(text) > TEXT_FIELDS[field]:
                errors.add(field, _("At most %(n)d characters.") % {"n": TEXT_FIELDS[field]})
            else:
                clean[field] = (
                    text.translate(_HIRAGANA_TO_KATAKANA) if field in KANA_FIELDS else text
                )
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
