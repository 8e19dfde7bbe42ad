"""Segment memberships for data-subject export and erasure (kizuna/core/personal_data.py):
an erased customer leaves every audience."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.utils.translation import gettext_lazy as _

from kizuna.core.personal_data import register, row_dict
from kizuna.segments.models import SegmentMembership


def _export(customer_id: int) -> Iterable[dict[str, Any]]:
    rows = SegmentMembership.objects.filter(customer_id=customer_id).order_by("pk")
    return [row_dict(m) for m in rows]


def _erase(customer_id: int, *, pseudonym: str) -> int:
    deleted, _per_model = SegmentMembership.objects.filter(customer_id=customer_id).delete()
    return deleted


register("segments.membership", export=_export, erase=_erase, label=_("Segment memberships"))
