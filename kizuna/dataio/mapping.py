"""Column mapping: file column names to kizuna fields, with the names HubSpot and
Salesforce contact exports use (and common Japanese headers) recognised automatically."""

from __future__ import annotations

import re
import unicodedata

CUSTOMER_FIELDS = [
    "external_id",
    "family_name",
    "given_name",
    "family_name_kana",
    "given_name_kana",
    "email",
    "phone",
    "birthday",
    "gender",
    "postal_code",
    "prefecture",
    "city",
    "address_line",
    "locale",
]
PRODUCT_FIELDS = ["sku", "name", "price_minor", "currency", "category", "description", "active"]
ORDER_FIELDS = [
    "number",
    "customer_external_id",
    "customer_email",
    "placed_at",
    "sku",
    "quantity",
    "unit_price_minor",
    "discount_minor",
    "channel",
    "store",
    "currency",
]
FIELDS = {"customers": CUSTOMER_FIELDS, "products": PRODUCT_FIELDS, "orders": ORDER_FIELDS}


def _key(name: str) -> str:
    return re.sub(r"[\s_\-/().]", "", unicodedata.normalize("NFKC", name).lower())


_ALIASES: dict[str, dict[str, str]] = {
    "customers": {
        # HubSpot contact export
        "recordid": "external_id",
        "contactid": "external_id",
        "firstname": "given_name",
        "lastname": "family_name",
        "email": "email",
        "emailaddress": "email",
        "phonenumber": "phone",
        "mobilephonenumber": "phone",
        "postalcode": "postal_code",
        "zip": "postal_code",
        "city": "city",
        "streetaddress": "address_line",
        "dateofbirth": "birthday",
        # Salesforce contact export
        "id": "external_id",
        "phone": "phone",
        "mobilephone": "phone",
        "birthdate": "birthday",
        "mailingpostalcode": "postal_code",
        "mailingcity": "city",
        "mailingstreet": "address_line",
        # Japanese headers
        "顧客id": "external_id",
        "会員番号": "external_id",
        "姓": "family_name",
        "名": "given_name",
        "セイ": "family_name_kana",
        "メイ": "given_name_kana",
        "メールアドレス": "email",
        "メール": "email",
        "電話番号": "phone",
        "生年月日": "birthday",
        "性別": "gender",
        "郵便番号": "postal_code",
        "市区町村": "city",
        "住所": "address_line",
    },
    "products": {"productsku": "sku", "productname": "name", "price": "price_minor"},
    "orders": {
        "ordernumber": "number",
        "orderid": "number",
        "customerid": "customer_external_id",
        "email": "customer_email",
        "orderdate": "placed_at",
        "qty": "quantity",
        "price": "unit_price_minor",
    },
}


def auto_mapping(kind: str, columns: list[str]) -> dict[str, str]:
    """{file column: kizuna field} for the columns recognised; the first column wins when
    two map to one field (Phone before Mobile Phone)."""
    fields = FIELDS[kind]
    own = {_key(f): f for f in fields}
    aliases = _ALIASES.get(kind, {})
    mapping: dict[str, str] = {}
    taken: set[str] = set()
    # kizuna's own field names first (an export re-imports as is), then known aliases.
    for lookup in (own, aliases):
        for column in columns:
            target = lookup.get(_key(column))
            if column not in mapping and target and target not in taken:
                mapping[column] = target
                taken.add(target)
    return mapping


def parse_mapping(text: str) -> dict[str, str]:
    """`--mapping "Kundennr=external_id,Mail=email"` → {column: field}."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        column, _sep, target = part.partition("=")
        if column.strip() and target.strip():
            out[column.strip()] = target.strip()
    return out
