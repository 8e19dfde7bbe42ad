"""Deliveries, LINE contacts and preferences for data-subject export and erasure
(kizuna/core/personal_data.py). Erasure keeps each delivery's row, status and history (so
campaign statistics stay right) and removes addresses, rendered bodies and details."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.utils.translation import gettext_lazy as _

from kizuna.core.personal_data import register, row_dict
from kizuna.messaging.models import (
    Delivery,
    DeliveryStatus,
    Engagement,
    LineContact,
    LineLinkCode,
    Preference,
)


def _delivery_export(customer_id: int) -> Iterable[dict[str, Any]]:
    rows = Delivery.objects.filter(customer_id=customer_id).prefetch_related("history")
    for delivery in rows.order_by("pk"):
        row = row_dict(delivery, exclude=("claimed_by", "idempotency_key"))
        row["history"] = [row_dict(h) for h in delivery.history.all()]
        yield row


def _delivery_erase(customer_id: int, *, pseudonym: str) -> int:
    rows = Delivery.objects.filter(customer_id=customer_id)
    touched = rows.update(to_address="", rendered={}, extra_context={}, reason="")
    DeliveryStatus.objects.filter(delivery__customer_id=customer_id).update(detail={}, reason="")
    return touched


def _line_export(customer_id: int) -> Iterable[dict[str, Any]]:
    return [row_dict(c) for c in LineContact.objects.filter(customer_id=customer_id)]


def _line_erase(customer_id: int, *, pseudonym: str) -> int:
    LineLinkCode.objects.filter(customer_id=customer_id).delete()
    deleted, _per_model = LineContact.objects.filter(customer_id=customer_id).delete()
    return deleted


def _engagement_export(customer_id: int) -> Iterable[dict[str, Any]]:
    return [row_dict(e) for e in Engagement.objects.filter(delivery__customer_id=customer_id)]


def _engagement_erase(customer_id: int, *, pseudonym: str) -> int:
    """Opens and clicks keep their time and classification (the counts), not the IP or the
    user agent."""
    return Engagement.objects.filter(delivery__customer_id=customer_id).update(
        ip=None, user_agent=""
    )


def _preference_export(customer_id: int) -> Iterable[dict[str, Any]]:
    return [row_dict(p) for p in Preference.objects.filter(customer_id=customer_id)]


def _preference_erase(customer_id: int, *, pseudonym: str) -> int:
    deleted, _per_model = Preference.objects.filter(customer_id=customer_id).delete()
    return deleted


register(
    "messaging.delivery", export=_delivery_export, erase=_delivery_erase, label=_("Messages sent")
)
register("messaging.line_contact", export=_line_export, erase=_line_erase, label=_("LINE contacts"))
register(
    "messaging.preference",
    export=_preference_export,
    erase=_preference_erase,
    label=_("Message preferences"),
)
register(
    "messaging.engagement",
    export=_engagement_export,
    erase=_engagement_erase,
    label=_("Opens and clicks"),
)
