"""Raw ingested batches for data-subject erasure (kizuna/core/personal_data.py). Their
messages live on as events (erased by customers.event); a processed batch that names the
customer (email, phone, an identity) is deleted whole. Unprocessed batches are left to the
worker, which turns them into events first; retention deletes processed batches anyway."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from kizuna.core.personal_data import register
from kizuna.customers.models import Customer, Identity
from kizuna.tracking.models import InboxBatch


def _needles(customer_id: int) -> set[str]:
    values = set(Identity.objects.filter(customer_id=customer_id).values_list("value", flat=True))
    for email, phone in Customer.objects.filter(pk=customer_id).values_list("email", "phone"):
        values.update((email, phone))
    return {v for v in values if v and len(v) >= 4}


def _export(customer_id: int) -> Iterable[dict[str, Any]]:
    return []  # the events are exported by customers.event


def _erase(customer_id: int, *, pseudonym: str) -> int:
    needles = _needles(customer_id)
    if not needles:
        return 0
    match = Q()
    for needle in needles:
        match |= Q(payload__contains=needle)
    deleted, _per_model = (
        InboxBatch.objects.filter(processed_at__isnull=False).filter(match).delete()
    )
    return deleted


register("tracking.inbox", export=_export, erase=_erase, label=_("Raw ingested batches"))
