"""Customer scores for data-subject export (kizuna/core/personal_data.py). The numbers stay
after an erasure (they describe a scrubbed, pseudonymous profile and feed the KPIs)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.utils.translation import gettext_lazy as _

from kizuna.analytics.models import CustomerScore
from kizuna.core.personal_data import register, row_dict


def _export(customer_id: int) -> Iterable[dict[str, Any]]:
    return [row_dict(s) for s in CustomerScore.objects.filter(customer_id=customer_id)]


def _erase(customer_id: int, *, pseudonym: str) -> int:
    return 0


register("analytics.score", export=_export, erase=_erase, label=_("Scores"))
