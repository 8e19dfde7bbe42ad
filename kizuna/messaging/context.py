"""The personalisation context of a message, assembled from registered providers.

Each provider adds one top-level key (`customer`, `traits`, `loyalty`, `score`, ...) from
plain data (dicts, strings, numbers, lists) — never model instances, so a template can reach
nothing but what a provider chose to expose. Apps register providers at start-up with
`register_provider`; messaging registers the ones of the apps below it that exist.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Set
from typing import Any

from kizuna.customers.models import Customer

logger = logging.getLogger(__name__)

Provider = Callable[[Customer], Any]
_providers: dict[str, Provider] = {}


def register_provider(key: str, provider: Provider) -> None:
    _providers[key] = provider


def providers() -> dict[str, Provider]:
    return dict(_providers)


def build(
    customer: Customer, extra: dict[str, Any] | None = None, keys: Set[str] | None = None
) -> dict[str, Any]:
    """The context for `customer`; with `keys`, only the providers a template refers to run."""
    context: dict[str, Any] = {}
    for key, provider in _providers.items():
        if keys is not None and key not in keys:
            continue
        try:
            context[key] = provider(customer)
        except Exception:  # a broken provider must not stop the message; StrictUndefined
            logger.exception("context provider %s failed for customer %s", key, customer.pk)
    context.update(extra or {})
    return context


def _customer(customer: Customer) -> dict[str, Any]:
    return {
        "id": customer.pk,
        "name": customer.display_name,
        "family_name": customer.family_name,
        "given_name": customer.given_name,
        "email": customer.email,
        "locale": customer.locale,
        "prefecture": customer.prefecture,
        "city": customer.city,
        "birthday": customer.birthday.isoformat() if customer.birthday else "",
    }


def _traits(customer: Customer) -> dict[str, Any]:
    return dict(customer.traits or {})


def _loyalty(customer: Customer) -> dict[str, Any] | None:
    from kizuna.loyalty import selectors as loyalty

    card = loyalty.member_card(customer=customer)
    if card.account is None:
        return {"balance": 0, "tier": "", "to_next": 0}
    return {
        "balance": int(card.balance or 0),
        "tier": str(card.tier.name) if card.tier is not None else "",
        "to_next": int(getattr(card, "to_next", 0) or 0),
    }


def _score(customer: Customer) -> dict[str, Any] | None:
    from kizuna.analytics import selectors as analytics

    score = analytics.customer_score(customer=customer)
    if score is None:
        return None
    fields = ("segment", "r_score", "f_score", "m_score", "p_alive", "clv_minor", "at_risk")
    return {f: _plain(getattr(score, f)) for f in fields if hasattr(score, f)}


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _recommendations(customer: Customer) -> Any:
    from kizuna.recommendations import templating

    return templating.list_function(customer)


def _recommendation_carousel(customer: Customer) -> Any:
    from kizuna.recommendations import templating

    return templating.carousel_function(customer)


def register_builtin_providers() -> None:
    register_provider("customer", _customer)
    register_provider("traits", _traits)
    # Apps below messaging that may not be installed yet: their keys appear once they are.
    from django.apps import apps

    if apps.is_installed("kizuna.loyalty"):
        register_provider("loyalty", _loyalty)
    if apps.is_installed("kizuna.analytics"):
        register_provider("score", _score)
    if apps.is_installed("kizuna.recommendations"):
        # functions: recommendations(customer, n), recommendation_carousel(customer, n)
        register_provider("recommendations", _recommendations)
        register_provider("recommendation_carousel", _recommendation_carousel)
