"""Money as integer minor units with an ISO 4217 currency code (JPY has no minor unit)."""

from __future__ import annotations

from decimal import Decimal

CURRENCY_EXPONENTS = {"JPY": 0, "USD": 2, "EUR": 2, "GBP": 2, "TWD": 2, "KRW": 0, "CNY": 2}
CURRENCY_SYMBOLS = {"JPY": "¥", "USD": "$", "EUR": "€", "GBP": "£", "KRW": "₩", "CNY": "CN¥"}
DEFAULT_CURRENCY = "JPY"
CURRENCY_CHOICES = [(code, code) for code in CURRENCY_EXPONENTS]


def exponent(currency: str) -> int:
    try:
        return CURRENCY_EXPONENTS[currency]
    except KeyError as exc:
        raise ValueError(f"unsupported currency {currency!r}") from exc


def to_decimal(amount_minor: int, currency: str) -> Decimal:
    return Decimal(amount_minor).scaleb(-exponent(currency))


def format_money(amount_minor: int | None, currency: str = DEFAULT_CURRENCY) -> str:
    """'¥12,345' for JPY, '$12.34' for USD; negative amounts keep their sign in front."""
    if amount_minor is None:
        return ""
    exp = exponent(currency)
    value = to_decimal(abs(amount_minor), currency)
    body = f"{value:,.{exp}f}"
    sign = "-" if amount_minor < 0 else ""
    return f"{sign}{CURRENCY_SYMBOLS.get(currency, currency + ' ')}{body}"
