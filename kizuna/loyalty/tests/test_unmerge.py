"""Undoing a customer merge gives the restored customer back the points, lots and tier the
merge moved, with compensating ledger entries (posted entries are never changed)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.core.exceptions import ValidationError

from kizuna.core.timeutil import local_date, now
from kizuna.customers.merge import customer_merge, customer_unmerge
from kizuna.customers.models import Customer, CustomerMerge, Identity
from kizuna.customers.services import customer_create
from kizuna.loyalty import services
from kizuna.loyalty.models import (
    Account,
    Coupon,
    CouponDefinition,
    CouponUse,
    EntryKind,
    LedgerEntry,
    Lot,
    LotKind,
    Programme,
)
from kizuna.loyalty.tests.test_services import assert_projections_equal_ledger


def balance(customer: Customer) -> int:
    return Account.objects.get(customer=customer).balance


def open_lots(customer: Customer) -> list[tuple[str, int, date | None]]:
    return sorted(
        Lot.objects.filter(account__customer=customer, remaining__gt=0).values_list(
            "kind", "remaining", "expires_on"
        ),
        key=lambda row: (row[0], row[1], row[2] or date.max),
    )


def entries_unchanged(before: dict[int, tuple]) -> None:
    """Every entry posted before is still there, exactly as it was."""
    now_rows = {
        e.pk: (e.account_id, e.kind, e.points, e.balance_after, e.allocations)
        for e in LedgerEntry.objects.filter(pk__in=before)
    }
    assert now_rows == before


def ledger() -> dict[int, tuple]:
    return {
        e.pk: (e.account_id, e.kind, e.points, e.balance_after, e.allocations)
        for e in LedgerEntry.objects.all()
    }


def test_unmerge_gives_back_points_lots_and_entries_balance(
    programme: Programme, customer: Customer, other: Customer
) -> None:
    soon = local_date(now()) + timedelta(days=40)
    services.points_award(
        customer=customer, points=100, idempotency_key="a", reason="x", expires_on=soon
    )
    services.points_award(
        customer=customer, points=30, idempotency_key="p", reason="x", kind=LotKind.PAID
    )
    services.points_award(customer=other, points=7, idempotency_key="b", reason="x")
    lots_before = {c.pk: open_lots(c) for c in (customer, other)}
    record = customer_merge(survivor=other, merged=customer)
    assert (balance(customer), balance(other)) == (0, 137)
    moved = CustomerMerge.objects.get(pk=record.pk).snapshot["moved"]
    assert len(moved[services.MERGE_ENTRIES_KEY]) == 2
    posted = ledger()

    customer_unmerge(merge=record)

    assert (balance(customer), balance(other)) == (130, 7)
    assert {c.pk: open_lots(c) for c in (customer, other)} == lots_before
    back = LedgerEntry.objects.filter(idempotency_key__startswith=f"unmerge:{record.pk}:")
    assert sorted((e.account.customer_id, e.kind, e.points) for e in back) == sorted(
        [(other.pk, EntryKind.TRANSFER_OUT, -130), (customer.pk, EntryKind.TRANSFER_IN, 130)]
    )
    entries_unchanged(posted)
    assert_projections_equal_ledger()


def test_a_spend_the_survivor_covers_itself_still_gives_everything_back(
    programme: Programme, customer: Customer, other: Customer
) -> None:
    soon = local_date(now()) + timedelta(days=10)
    services.points_award(
        customer=customer, points=100, idempotency_key="a", reason="x", expires_on=soon
    )
    services.points_award(customer=other, points=500, idempotency_key="b", reason="x")
    own_expiry = Lot.objects.get(account__customer=other).expires_on
    assert own_expiry is not None and own_expiry > soon
    record = customer_merge(survivor=other, merged=customer)
    # FIFO spends the merged customer's sooner-expiring lot first.
    services.points_adjust(customer=other, points=-50, idempotency_key="s", reason="x", actor=None)
    customer_unmerge(merge=record)
    assert (balance(customer), balance(other)) == (100, 450)
    # What is left of the moved lot goes back first (50, with its expiry), then 50 from the
    # survivor's own lot, with that lot's expiry.
    assert open_lots(customer) == [(LotKind.FREE, 50, soon), (LotKind.FREE, 50, own_expiry)]
    assert open_lots(other) == [(LotKind.FREE, 450, own_expiry)]
    assert_projections_equal_ledger()


def test_a_shortfall_refuses_the_unmerge_and_changes_nothing(
    programme: Programme, customer: Customer, other: Customer
) -> None:
    services.points_award(customer=customer, points=100, idempotency_key="a", reason="x")
    services.points_award(customer=other, points=7, idempotency_key="b", reason="x")
    Identity.objects.create(customer=customer, kind="external_id", value="ext-1")
    record = customer_merge(survivor=other, merged=customer)
    services.points_adjust(customer=other, points=-60, idempotency_key="s", reason="x", actor=None)
    posted = ledger()
    with pytest.raises(ValidationError) as caught:
        customer_unmerge(merge=record)
    assert "loyalty" in caught.value.message_dict
    assert "47" in caught.value.message_dict["loyalty"][0]
    assert "53 are missing" in caught.value.message_dict["loyalty"][0]
    # Nothing changed: not undone, identities still with the survivor, the same ledger.
    record.refresh_from_db()
    customer.refresh_from_db()
    assert record.undone_at is None and customer.merged_into_id == other.pk
    assert Identity.objects.get(value="ext-1").customer_id == other.pk
    assert ledger() == posted
    assert (balance(customer), balance(other)) == (0, 47)
    # Once staff make up the shortfall, the unmerge goes through.
    services.points_adjust(customer=other, points=53, idempotency_key="t", reason="x", actor=None)
    customer_unmerge(merge=record)
    assert (balance(customer), balance(other)) == (100, 0)
    assert Identity.objects.get(value="ext-1").customer_id == customer.pk
    assert_projections_equal_ledger()


def test_a_moved_debt_goes_back(programme: Programme, customer: Customer, other: Customer) -> None:
    programme.allow_negative = True
    programme.save()
    services.points_earn_for_order(customer_id=customer.pk, order_id=1, number="A", total=3000)
    services.points_adjust(
        customer=customer, points=-30, idempotency_key="s", reason="x", actor=None
    )
    services.points_reverse_for_refund(
        customer_id=customer.pk, order_id=1, amount=3000, refund_ref="r1"
    )
    assert balance(customer) == -30
    services.points_award(customer=other, points=100, idempotency_key="b", reason="x")
    record = customer_merge(survivor=other, merged=customer)
    assert (balance(customer), balance(other)) == (0, 70)
    customer_unmerge(merge=record)
    assert (balance(customer), balance(other)) == (-30, 100)
    # The survivor's points that paid the debt come back with their own expiry.
    expiry = Lot.objects.filter(account__customer=other).values_list("expires_on", flat=True)[0]
    assert open_lots(other) == [(LotKind.FREE, 30, expiry), (LotKind.FREE, 70, expiry)]
    assert_projections_equal_ledger()


def tier(customer: Customer) -> str | None:
    found = Account.objects.get(customer=customer).tier
    return found.code if found else None


def test_tiers_go_back_and_are_re_evaluated(
    programme: Programme, customer: Customer, other: Customer
) -> None:
    services.points_earn_for_order(customer_id=customer.pk, order_id=1, number="A", total=60000)
    services.points_award(customer=other, points=5, idempotency_key="b", reason="x")
    services.tiers_evaluate()
    assert (tier(customer), tier(other)) == ("gold", "regular")
    record = customer_merge(survivor=other, merged=customer)
    assert tier(other) == "gold"  # the better tier is kept
    assert CustomerMerge.objects.get(pk=record.pk).snapshot[services.MERGE_TIER_KEY]
    customer_unmerge(merge=record)
    assert (tier(customer), tier(other)) == ("gold", "regular")
    assert Account.objects.get(customer=customer).tier_value == 60000
    assert Account.objects.get(customer=other).tier_value == 0


def test_merge_unmerge_merge_again_moves_points_each_time(
    programme: Programme, customer: Customer, other: Customer
) -> None:
    services.points_award(customer=customer, points=100, idempotency_key="a", reason="x")
    first = customer_merge(survivor=other, merged=customer)
    customer_unmerge(merge=first)
    second = customer_merge(survivor=other, merged=customer)
    assert (balance(customer), balance(other)) == (0, 100)
    customer_unmerge(merge=second)
    assert (balance(customer), balance(other)) == (100, 0)
    assert LedgerEntry.objects.filter(kind=EntryKind.TRANSFER_OUT).count() == 4
    assert_projections_equal_ledger()


def test_an_unmerge_behind_a_later_merge_is_refused(
    programme: Programme, customer: Customer, other: Customer
) -> None:
    third = customer_create(data={"family_name": "鈴木", "email": "suzuki@example.jp"})
    services.points_award(customer=customer, points=100, idempotency_key="a", reason="x")
    first = customer_merge(survivor=other, merged=customer)
    later = customer_merge(survivor=third, merged=other)
    assert balance(third) == 100
    posted = ledger()
    with pytest.raises(ValidationError) as caught:
        customer_unmerge(merge=first)
    assert "merge" in caught.value.message_dict
    assert ledger() == posted
    customer_unmerge(merge=later)
    customer_unmerge(merge=first)
    assert (balance(customer), balance(other), balance(third)) == (100, 0, 0)
    assert_projections_equal_ledger()


def test_an_old_merge_without_a_loyalty_note_still_unmerges(
    programme: Programme, customer: Customer, other: Customer
) -> None:
    services.points_award(customer=customer, points=100, idempotency_key="a", reason="x")
    record = customer_merge(survivor=other, merged=customer)
    snapshot = CustomerMerge.objects.get(pk=record.pk).snapshot
    snapshot["moved"].pop(services.MERGE_ENTRIES_KEY)
    snapshot.pop(services.MERGE_TIER_KEY, None)
    CustomerMerge.objects.filter(pk=record.pk).update(snapshot=snapshot)
    record.refresh_from_db()
    customer_unmerge(merge=record)
    customer.refresh_from_db()
    assert customer.merged_into_id is None
    # Nothing noted, nothing restored: the points stay with the survivor.
    assert (balance(customer), balance(other)) == (0, 100)
    assert not LedgerEntry.objects.filter(idempotency_key__startswith="unmerge:").exists()
    assert_projections_equal_ledger()


def test_unmerge_without_loyalty_accounts(db: None, customer: Customer, other: Customer) -> None:
    record = customer_merge(survivor=other, merged=customer)
    customer_unmerge(merge=record)
    assert not Account.objects.exists()
    assert not Programme.objects.exists()


def test_coupons_and_their_uses_follow_the_merge_and_go_back(
    programme: Programme, customer: Customer, other: Customer
) -> None:
    definition = services.coupon_definition_create(
        data={"name": "10% off", "kind": "percent", "value": 10, "valid_days": 30}
    )
    used, kept, spent_later = (
        services.coupons_issue(definition=definition, idempotency_key="i", customers=[customer])
        + services.coupons_issue(definition=definition, idempotency_key="j", customers=[customer])
        + services.coupons_issue(definition=definition, idempotency_key="k", customers=[customer])
    )
    CouponDefinition.objects.filter(pk=definition.pk).update(per_customer_limit=5)
    old_use = services.coupon_redeem(
        customer=customer, code=used.code, order_total_minor=2000, idempotency_key="u1"
    )
    record = customer_merge(survivor=other, merged=customer)
    assert set(Coupon.objects.filter(customer=other).values_list("pk", flat=True)) == {
        used.pk,
        kept.pk,
        spent_later.pk,
    }
    assert CouponUse.objects.get(pk=old_use.pk).customer_id == other.pk
    # The survivor may use the merged customer's coupon now; that use stays its own.
    new_use = services.coupon_redeem(
        customer=other, code=spent_later.code, order_total_minor=2000, idempotency_key="u2"
    )
    customer_unmerge(merge=record)
    owners = dict(Coupon.objects.values_list("pk", "customer_id"))
    assert owners == {used.pk: customer.pk, kept.pk: customer.pk, spent_later.pk: other.pk}
    assert CouponUse.objects.get(pk=old_use.pk).customer_id == customer.pk
    assert CouponUse.objects.get(pk=new_use.pk).customer_id == other.pk


def test_the_api_undo_answers_a_shortfall_with_a_422_keyed_loyalty(
    programme: Programme, customer: Customer, other: Customer, make_staff
) -> None:
    import json

    from django.test import Client

    from kizuna.iam.services import api_key_create

    services.points_award(customer=customer, points=100, idempotency_key="a", reason="x")
    record = customer_merge(survivor=other, merged=customer)
    services.points_adjust(customer=other, points=-10, idempotency_key="s", reason="x", actor=None)
    key = api_key_create(name="admin", role="admin", created_by=make_staff("admin"))
    r = Client().post(
        f"/api/v1/customers/merges/{record.pk}/undo",
        json.dumps({"reason": "two people"}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {key.secret}", "Accept-Language": "en"},
    )
    assert r.status_code == 422, r.content
    assert "10 are missing" in json.dumps(r.json())
    assert "loyalty" in json.dumps(r.json())
    record.refresh_from_db()
    assert record.undone_at is None
