"""Loyalty's part of the per-customer privacy export: the membership, its points ledger,
point lots, redemptions and coupons."""

from __future__ import annotations

from typing import Any

from kizuna.customers.export_providers import json_rows, json_value, register_export_provider
from kizuna.customers.models import Customer
from kizuna.loyalty.models import Account, Coupon, LedgerEntry, Lot, Redemption


def loyalty_for_export(customer: Customer) -> dict[str, Any]:
    account = Account.objects.filter(customer=customer).select_related("tier").first()
    coupons = json_rows(
        Coupon.objects.filter(customer=customer).select_related("definition").order_by("pk"),
        ["code", "definition", "issued_at", "valid_until", "used_at"],
    )
    if account is None:
        return {"account": None, "entries": [], "lots": [], "redemptions": [], "coupons": coupons}
    return {
        "account": {
            "member_number": account.member_number,
            "balance": account.balance,
            "tier": json_value(account.tier),
            "tier_value": account.tier_value,
            "tier_kept_until": json_value(account.tier_kept_until),
            "created_at": json_value(account.created_at),
        },
        "entries": json_rows(
            LedgerEntry.objects.filter(account=account).order_by("occurred_at", "pk"),
            ["kind", "points", "balance_after", "reason", "source", "source_ref", "occurred_at"],
        ),
        "lots": json_rows(
            Lot.objects.filter(account=account).order_by("earned_at", "pk"),
            ["kind", "points", "remaining", "value_per_point", "earned_at", "expires_on"],
        ),
        "redemptions": json_rows(
            Redemption.objects.filter(account=account).select_related("reward").order_by("pk"),
            ["reward", "points", "created_at"],
        ),
        "coupons": coupons,
    }


def register() -> None:
    register_export_provider("loyalty", loyalty_for_export)
