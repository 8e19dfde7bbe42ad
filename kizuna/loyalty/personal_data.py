"""The loyalty account, its ledger and coupons for data-subject export and erasure
(kizuna/core/personal_data.py). The ledger is kept, so balances and sums do not change;
only the free-text reasons are scrubbed."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.utils.translation import gettext_lazy as _

from kizuna.core.personal_data import register, row_dict
from kizuna.loyalty.models import Account, Coupon, CouponUse, LedgerEntry, Redemption


def _account_export(customer_id: int) -> Iterable[dict[str, Any]]:
    return [row_dict(a) for a in Account.objects.filter(customer_id=customer_id)]


def _ledger_export(customer_id: int) -> Iterable[dict[str, Any]]:
    entries = LedgerEntry.objects.filter(account__customer_id=customer_id)
    for entry in entries.order_by("pk"):
        yield row_dict(entry, exclude=("payload_hash", "allocations"))
    for redemption in Redemption.objects.filter(account__customer_id=customer_id).order_by("pk"):
        yield {"redemption": True, **row_dict(redemption)}


def _ledger_erase(customer_id: int, *, pseudonym: str) -> int:
    entries = LedgerEntry.objects.filter(account__customer_id=customer_id).exclude(reason="")
    return entries.update(reason="")


def _coupon_export(customer_id: int) -> Iterable[dict[str, Any]]:
    for coupon in Coupon.objects.filter(customer_id=customer_id).order_by("pk"):
        yield row_dict(coupon, exclude=("issue_key",))
    for use in CouponUse.objects.filter(customer_id=customer_id).order_by("pk"):
        yield {"use": True, **row_dict(use, exclude=("payload_hash", "idempotency_key"))}


def _nothing(customer_id: int, *, pseudonym: str) -> int:
    return 0  # member numbers, balances, codes: pseudonymous once the profile is scrubbed


register("loyalty.account", export=_account_export, erase=_nothing, label=_("Loyalty account"))
register("loyalty.ledger", export=_ledger_export, erase=_ledger_erase, label=_("Points ledger"))
register("loyalty.coupon", export=_coupon_export, erase=_nothing, label=_("Coupons"))
