"""The per-customer privacy export, assembled from every app without the exporter knowing
them: each app that keeps data about a customer registers a provider (in its
`AppConfig.ready`), and the export calls them all.

    from kizuna.customers.export_providers import register_export_provider
    register_export_provider("orders", orders_for_export)

A provider takes the customer and returns JSON-ready data (dicts, lists, strings, numbers;
`json_value` and `json_rows` help). The profile's own data (profile, identities, consents,
events, merges) is assembled by the exporter itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from kizuna.customers.models import Customer

ExportProvider = Callable[[Customer], Any]
_providers: dict[str, ExportProvider] = {}
RESERVED = frozenset(
    {"exported_at", "customer", "identities", "consents", "events", "merged_profiles", "merges"}
)


def register_export_provider(key: str, provider: ExportProvider) -> None:
    """Add `provider`'s data under `key` in every customer export. Re-registering the same
    provider is a no-op; another provider for a taken key is a programming error."""
    if key in RESERVED:
        raise ValueError(f"export key {key!r} is reserved for the profile's own data")
    existing = _providers.get(key)
    if existing is not None and existing is not provider:
        raise ValueError(f"export key {key!r} is already provided by {existing!r}")
    _providers[key] = provider


def unregister_export_provider(key: str) -> None:
    _providers.pop(key, None)


def export_sections(customer: Customer) -> dict[str, Any]:
    """Every registered provider's data for `customer`, by key (in key order)."""
    return {key: _providers[key](customer) for key in sorted(_providers)}


def json_value(value: Any) -> Any:
    """A model field's value as JSON: times and dates in ISO 8601, decimals as text,
    None as "" (as in the CSV exports); dicts and lists unchanged."""
    if value is None:
        return ""
    if isinstance(value, dict | list | bool | int | float):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return str(value)


def json_rows(rows: Iterable[Any], fields: list[str]) -> list[dict[str, Any]]:
    """`fields` of each model instance, as JSON values."""
    return [{f: json_value(getattr(row, f)) for f in fields} for row in rows]
