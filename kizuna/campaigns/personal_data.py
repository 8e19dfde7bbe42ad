"""Campaign recipients for data-subject export (kizuna/core/personal_data.py). The rows hold
no personal data beyond the customer link and stay, so campaign statistics do not change."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.utils.translation import gettext_lazy as _

from kizuna.campaigns.models import Recipient
from kizuna.core.personal_data import register, row_dict


def _export(customer_id: int) -> Iterable[dict[str, Any]]:
    return [row_dict(r) for r in Recipient.objects.filter(customer_id=customer_id).order_by("pk")]


def _erase(customer_id: int, *, pseudonym: str) -> int:
    return 0


register("campaigns.recipient", export=_export, erase=_erase, label=_("Campaign recipients"))
