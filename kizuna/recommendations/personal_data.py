"""Recommendations for data-subject export (kizuna/core/personal_data.py): the products
currently recommended to the customer, with the model that made them (profiling output).

Nothing to erase in the database: the models hold a customer id with factors and which
products they bought, derived from orders that commerce keeps (pseudonymised) after an
erasure; the next training run rebuilds them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.utils.translation import gettext_lazy as _

from kizuna.core.personal_data import register
from kizuna.customers.models import Customer
from kizuna.recommendations import selectors


def _export(customer_id: int) -> Iterable[dict[str, Any]]:
    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None:
        return []
    result = selectors.recommendations_for(customer=customer, n=10)
    if result.model is None:
        return []
    return [
        {
            "rank": rank,
            "product_id": item.product_id,
            "sku": item.sku,
            "name": item.name,
            "score": item.score,
            "model": result.model.kind,
            "model_version": result.model.version,
            "trained_at": result.model.trained_at.isoformat(),
            "fallback": result.fallback,
        }
        for rank, item in enumerate(result.items, start=1)
    ]


def _erase(customer_id: int, *, pseudonym: str) -> int:
    return 0


register("recommendations.products", export=_export, erase=_erase, label=_("Recommended products"))
