"""A customer's subscriptions and their history (kizuna/core/personal_data.py). Erasure
keeps the rows (MRR, churn and cohorts count them) and blanks the free-text reasons."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.utils.translation import gettext_lazy as _

from kizuna.core.personal_data import register, row_dict
from kizuna.subscriptions.models import Subscription, SubscriptionEvent


def _export(customer_id: int) -> Iterable[dict[str, Any]]:
    subs = Subscription.objects.filter(customer_id=customer_id).select_related("plan")
    for sub in subs.order_by("pk"):
        yield {**row_dict(sub), "plan_code": sub.plan.code}
    events = SubscriptionEvent.objects.filter(subscription__customer_id=customer_id)
    for event in events.order_by("pk"):
        yield {"event": True, **row_dict(event)}


def _erase(customer_id: int, *, pseudonym: str) -> int:
    subs = Subscription.objects.filter(customer_id=customer_id)
    touched = subs.exclude(cancel_reason="", external_id=None).update(
        cancel_reason="", external_id=None
    )
    events = SubscriptionEvent.objects.filter(subscription__customer_id=customer_id)
    return touched + events.exclude(reason="").update(reason="")


register("subscriptions.subscription", export=_export, erase=_erase, label=_("Subscriptions"))
