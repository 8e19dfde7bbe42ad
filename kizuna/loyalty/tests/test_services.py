from __future__ import annotations

import dataclasses
import threading
from datetime import date, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction

from kizuna.core import events as bus
from kizuna.core.timeutil import now
from kizuna.customers.models import Event
from kizuna.customers.services import event_record
from kizuna.loyalty import selectors, services
from kizuna.loyalty.models import (
    Account,
    Coupon,
    CouponDefinition,
    CouponUse,
    EntryKind,
    LedgerEntry,
    Lot,
    Reward,
)

pytestmark = pytest.mark.django_db(transaction=True)


def assert_projections_equal_ledger() -> None:
    for account in Account.objects.all():
        balance, lots = selectors.ledger_replay(account=account)
        assert account.balance == balance
        stored = dict(Lot.objects.filter(account=account).values_list("id", "remaining"))
        assert stored == {k: v for k, v in lots.items()} | {k: 0 for k in stored if k not in lots}
        assert sum(stored.values()) == max(balance, 0)


PRICES = {"LATTE": 500, "BEANS": 1600}
_orders = {"n": 0}


class Placed:
    """What commerce publishes as `order.placed` (this app does not import commerce)."""

    def __init__(self, customer, number, lines):
        _orders["n"] += 1
        self.pk = 10_000 + _orders["n"]
        self.customer = customer
        self.lines = [
            {
                "sku": x["sku"],
                "quantity": x.get("quantity", 1),
                "total": PRICES[x["sku"]] * x.get("quantity", 1),
            }
            for x in lines
        ]
        self.total = sum(x["total"] for x in self.lines)
        event_record(
            type="order.placed",
            customer=customer,
            message_id=f"order.placed:{number}",
            properties={
                "order_id": self.pk,
                "number": number,
                "total": self.total,
                "currency": "JPY",
                "skus": [x["sku"] for x in self.lines],
                "lines": self.lines,
            },
        )


def place(customer, number, lines):
    return Placed(customer, number, lines)


def refund(order, amount, key):
    event_record(
        type="order.refunded",
        customer=order.customer,
        message_id=f"order.refunded:{key}",
        properties={"order_id": order.pk, "amount": amount, "currency": "JPY", "reason": ""},
    )


def test_order_earns_with_category_multiplier_and_refund_reverses(programme, shop, customer):
    order = place(customer, "A-1", [{"sku": "LATTE", "quantity": 2}, {"sku": "BEANS"}])
    entry = LedgerEntry.objects.get(idempotency_key=f"earn:order:{order.pk}")
    assert entry.points == 10 + 32  # ¥1000 at 1/100 + ¥1600 at 2/100
    assert entry.spend_minor == 2600
    lot = Lot.objects.get(entry=entry)
    assert lot.expires_on is not None and lot.expires_on.day >= 28
    assert Event.objects.filter(type="points.earned", customer=customer).count() == 1
    refund(order, 1300, "r1")
    refund(order, 1300, "r2")
    account = Account.objects.get(customer=customer)
    assert account.balance == 0
    assert LedgerEntry.objects.filter(kind=EntryKind.REVERSAL).count() == 2
    assert_projections_equal_ledger()


def test_refund_after_spending_is_capped_unless_negative_allowed(programme, shop, customer, other):
    reward = Reward.objects.create(code="cookie", name="Cookie", points_price=30)
    order = place(customer, "A-2", [{"sku": "BEANS", "quantity": 2}])  # 64 points
    services.reward_redeem(customer=customer, reward=reward, idempotency_key="k1")
    refund(order, 3200, "r")
    assert Account.objects.get(customer=customer).balance == 0
    programme.allow_negative = True
    programme.save()
    order2 = place(other, "A-3", [{"sku": "BEANS", "quantity": 2}])
    services.reward_redeem(customer=other, reward=reward, idempotency_key="k2")
    refund(order2, 3200, "r2")
    acc = Account.objects.get(customer=other)
    assert acc.balance == 34 - 64
    # new points pay off the debt first
    place(other, "A-4", [{"sku": "LATTE", "quantity": 10}])  # 50 points
    acc.refresh_from_db()
    assert acc.balance == 20
    assert Lot.objects.filter(account=acc, remaining__gt=0).get().remaining == 20
    assert_projections_equal_ledger()


def test_idempotency_replay_and_conflict(programme, customer):
    e1 = services.points_award(customer=customer, points=50, idempotency_key="k", reason="x")
    e2 = services.points_award(customer=customer, points=50, idempotency_key="k", reason="x")
    assert e1.pk == e2.pk
    with pytest.raises(ValidationError) as exc:
        services.points_award(customer=customer, points=60, idempotency_key="k", reason="x")
    assert "idempotency_key" in exc.value.message_dict
    assert LedgerEntry.objects.count() == 1
    assert Account.objects.get().balance == 50


@pytest.mark.parametrize(
    ("points", "key", "field"),
    [(-5, "a", "points"), (0, "a", "points"), (True, "a", "points"), (5, "", "idempotency_key")],
)
def test_bad_award_writes_nothing(programme, customer, points, key, field):
    with pytest.raises(ValidationError) as exc:
        services.points_award(customer=customer, points=points, idempotency_key=key, reason="x")
    assert field in exc.value.message_dict
    assert LedgerEntry.objects.count() == 0


def test_redeeming_more_than_the_balance_is_refused(programme, customer, admin_user):
    services.points_award(customer=customer, points=20, idempotency_key="a", reason="x")
    reward = Reward.objects.create(code="mug", name="Mug", points_price=30, stock=5)
    with pytest.raises(ValidationError) as exc:
        services.reward_redeem(customer=customer, reward=reward, idempotency_key="r")
    assert "points" in exc.value.message_dict
    with pytest.raises(ValidationError):
        services.points_adjust(
            customer=customer, points=-21, idempotency_key="adj", reason="fix", actor=admin_user
        )
    with pytest.raises(ValidationError) as exc:
        services.points_adjust(
            customer=customer, points=-5, idempotency_key="adj2", reason="", actor=admin_user
        )
    assert "reason" in exc.value.message_dict
    reward.refresh_from_db()
    assert reward.stock == 5
    assert LedgerEntry.objects.count() == 1
    assert Account.objects.get().balance == 20
    entry = services.points_adjust(
        customer=customer, points=-5, idempotency_key="adj3", reason="typo", actor=admin_user
    )
    assert entry.staff == admin_user and entry.points == -5


def test_rewards_respect_tier_stock_and_validity(programme, customer):
    services.points_award(customer=customer, points=500, idempotency_key="a", reason="x")
    gold = programme.tiers.get(code="gold")
    vip = Reward.objects.create(code="vip", name="VIP", points_price=10)
    vip.eligible_tiers.add(gold)
    with pytest.raises(ValidationError, match="tier"):
        services.reward_redeem(customer=customer, reward=vip, idempotency_key="v")
    gone = Reward.objects.create(code="gone", name="Gone", points_price=10, stock=0)
    with pytest.raises(ValidationError, match="stock"):
        services.reward_redeem(customer=customer, reward=gone, idempotency_key="g")
    old = Reward.objects.create(
        code="old", name="Old", points_price=10, valid_until=now() - timedelta(days=1)
    )
    with pytest.raises(ValidationError, match="ended"):
        services.reward_redeem(customer=customer, reward=old, idempotency_key="o")
    assert Account.objects.get().balance == 500
    assert LedgerEntry.objects.count() == 1


def test_fifo_expiry_and_tier_evaluation(programme, customer, other):
    old = now() - timedelta(days=500)
    services.points_award(
        customer=customer, points=30, idempotency_key="old", reason="x", occurred_at=old
    )
    services.points_award(customer=customer, points=40, idempotency_key="new", reason="x")
    reward = Reward.objects.create(code="c", name="C", points_price=10)
    services.reward_redeem(
        customer=customer, reward=reward, idempotency_key="r"
    )  # takes old lot first
    result = services.points_expire()
    assert (result.accounts, result.points) == (1, 20)
    assert services.points_expire().entries == 0  # nothing left to expire
    assert Account.objects.get(customer=customer).balance == 40
    assert Event.objects.filter(type="points.expired", customer=customer).count() == 1
    assert_projections_equal_ledger()
    # tiers from 12-month spend
    services.points_earn_for_order(customer_id=other.pk, order_id=999, number="X", total=25000)
    result = services.tiers_evaluate()
    acc = Account.objects.get(customer=other)
    assert acc.tier is not None
    assert acc.tier.code == "silver" and acc.tier_value == 25000
    assert Event.objects.filter(type="tier.changed", customer=other).count() == 1
    assert services.tiers_evaluate().entries == 0


def test_merge_moves_points_once(programme, customer, other):
    services.points_award(customer=customer, points=100, idempotency_key="a", reason="x")
    services.points_award(customer=other, points=7, idempotency_key="b", reason="x")
    event = bus.DomainEvent(
        type="customer.merged",
        occurred_at=now(),
        properties={"survivor_id": other.pk, "merged_id": customer.pk},
    )
    with transaction.atomic():
        bus.publish(event)
    with transaction.atomic():
        bus.publish(event)
    assert Account.objects.get(customer=customer).balance == 0
    assert Account.objects.get(customer=other).balance == 107
    assert LedgerEntry.objects.filter(kind=EntryKind.TRANSFER_OUT).count() == 1
    assert LedgerEntry.objects.filter(kind=EntryKind.TRANSFER_IN).count() == 1
    assert_projections_equal_ledger()


def test_merge_rolls_back_with_the_merge(programme, customer, other):
    services.points_award(customer=customer, points=100, idempotency_key="a", reason="x")
    with pytest.raises(RuntimeError), transaction.atomic():
        bus.publish(
            bus.DomainEvent(
                type="customer.merged",
                occurred_at=now(),
                properties={"survivor_id": other.pk, "merged_id": customer.pk},
            )
        )
        raise RuntimeError("merge failed later")
    assert Account.objects.get(customer=customer).balance == 100
    assert not Account.objects.filter(customer=other).exists()


def test_engagement_event_points(programme, customer):
    from kizuna.customers.services import event_record

    programme.event_points = {"Store Checked In": 5}
    programme.save()
    event_record(type="Store Checked In", customer=customer, message_id="m1")
    event_record(type="Store Checked In", customer=customer, message_id="m1")
    event_record(type="Page Viewed", customer=customer)
    assert Account.objects.get(customer=customer).balance == 5


def test_engagement_events_without_points_cost_no_query(
    programme, customer, monkeypatch, django_assert_num_queries
):
    monkeypatch.setattr(services, "EVENT_POINTS_TTL", 3600.0)
    programme.event_points = {"Store Checked In": 5}
    programme.save()
    viewed = bus.DomainEvent(
        type="Page Viewed", occurred_at=now(), customer_id=customer.pk, event_id=1
    )
    with django_assert_num_queries(1):  # the snapshot is read once...
        services.on_engagement_event(viewed)
    with django_assert_num_queries(0):  # ...and then costs nothing
        for i in range(2, 200):
            services.on_engagement_event(dataclasses.replace(viewed, event_id=i))
    assert not Account.objects.filter(customer=customer).exists()
    # Saving the programme is seen by the very next event.
    programme.event_points = {"Page Viewed": 2}
    programme.save()
    services.on_engagement_event(dataclasses.replace(viewed, event_id=500))
    assert Account.objects.get(customer=customer).balance == 2
    # Without a snapshot lifetime every event asks the database, as before.
    monkeypatch.setattr(services, "EVENT_POINTS_TTL", 0.0)
    with django_assert_num_queries(1):
        services.on_engagement_event(dataclasses.replace(viewed, type="Other", event_id=501))


def test_event_points_snapshot_not_kept_from_inside_a_transaction(programme, monkeypatch):
    monkeypatch.setattr(services, "EVENT_POINTS_TTL", 3600.0)
    services.programme_changed()
    with transaction.atomic():
        programme.event_points = {"Store Checked In": 7}
        programme.save()
        assert services.programme_event_points() == {"Store Checked In": 7}
        transaction.set_rollback(True)
    assert services.programme_event_points() == {}


def test_coupons_issue_use_and_bad_input(programme, customer, other):
    d = services.coupon_definition_create(
        data={
            "name": "10% off",
            "kind": "percent",
            "value": 10,
            "min_spend_minor": 1000,
            "valid_days": 30,
        }
    )
    [mine] = services.coupons_issue(definition=d, idempotency_key="i", customers=[customer])
    assert (
        services.coupons_issue(definition=d, idempotency_key="i", customers=[customer])[0].pk
        == mine.pk
    )
    assert Event.objects.filter(type="coupon.issued", customer=customer).count() == 1
    with pytest.raises(ValidationError, match="another customer"):
        services.coupon_redeem(
            customer=other, code=mine.code, order_total_minor=2000, idempotency_key="u0"
        )
    with pytest.raises(ValidationError) as exc:
        services.coupon_redeem(
            customer=customer, code=mine.code, order_total_minor=500, idempotency_key="u1"
        )
    assert "order_total_minor" in exc.value.message_dict
    use = services.coupon_redeem(
        customer=customer, code=mine.code.lower(), order_total_minor=2000, idempotency_key="u2"
    )
    assert use.discount_minor == 200
    assert (
        services.coupon_redeem(
            customer=customer, code=mine.code, order_total_minor=2000, idempotency_key="u2"
        ).pk
        == use.pk
    )
    with pytest.raises(ValidationError, match="already"):
        services.coupon_redeem(
            customer=customer, code=mine.code, order_total_minor=2000, idempotency_key="u3"
        )
    expired = Coupon.objects.create(
        definition=d,
        code="EXPIRED1",
        customer=customer,
        issue_key="e",
        issued_at=now(),
        valid_until=now() - timedelta(seconds=1),
    )
    with pytest.raises(ValidationError, match="expired"):
        services.coupon_redeem(
            customer=customer, code=expired.code, order_total_minor=2000, idempotency_key="u4"
        )
    with pytest.raises(ValidationError, match="Unknown"):
        services.coupon_redeem(
            customer=customer, code="NOPE", order_total_minor=2000, idempotency_key="u5"
        )
    assert CouponUse.objects.count() == 1
    assert CouponDefinition.objects.get().uses == 1
    with pytest.raises(ValidationError) as exc:
        services.coupon_definition_create(data={"name": "", "kind": "percent", "value": 150})
    assert set(exc.value.message_dict) == {"name", "value"}


def test_birthday_coupons_once_per_month(programme, customer, other):
    customer.birthday = date(1990, 11, 3)
    customer.save()
    services.account_for(customer)
    d = services.coupon_definition_create(
        data={"name": "Birthday", "kind": "fixed", "value": 500, "valid_days": 30}
    )
    programme.birthday_coupon = d
    programme.save()
    assert services.birthday_coupons_issue(month=date(2026, 11, 1)) == 1
    assert services.birthday_coupons_issue(month=date(2026, 11, 1)) == 1
    assert Coupon.objects.filter(customer=customer).count() == 1
    assert not Coupon.objects.filter(customer=other).exists()


def _race(n, work):
    barrier = threading.Barrier(n)
    outcomes: list[str] = []
    lock = threading.Lock()

    def run(i):
        try:
            barrier.wait(timeout=20)
            work(i)
            result = "ok"
        except ValidationError as exc:
            result = "refused:" + ",".join(exc.message_dict)
        finally:
            connection.close()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return outcomes


def test_fifty_concurrent_redemptions_never_overspend(programme, customer):
    services.points_award(customer=customer, points=100, idempotency_key="seed", reason="x")
    reward = Reward.objects.create(code="shot", name="Shot", points_price=10, stock=8)
    outcomes = _race(
        50,
        lambda i: services.reward_redeem(customer=customer, reward=reward, idempotency_key=f"k{i}"),
    )
    assert len(outcomes) == 50
    assert outcomes.count("ok") == 8
    assert outcomes.count("refused:reward") == 42
    reward.refresh_from_db()
    assert reward.stock == 0
    assert Account.objects.get().balance == 20
    assert_projections_equal_ledger()


def test_concurrent_retries_of_one_key_redeem_once(programme, customer):
    services.points_award(customer=customer, points=100, idempotency_key="seed", reason="x")
    reward = Reward.objects.create(code="shot", name="Shot", points_price=10, stock=5)
    ids: list[int] = []
    outcomes = _race(
        20,
        lambda i: ids.append(
            services.reward_redeem(customer=customer, reward=reward, idempotency_key="pos-9").pk
        ),
    )
    assert outcomes == ["ok"] * 20  # each retry is answered with the one redemption
    assert len(set(ids)) == 1 and len(ids) == 20
    assert LedgerEntry.objects.filter(idempotency_key="pos-9").count() == 1
    reward.refresh_from_db()
    assert reward.stock == 4
    assert Account.objects.get().balance == 90
    assert_projections_equal_ledger()


def test_fifty_concurrent_redemptions_limited_by_balance(programme, customer):
    services.points_award(customer=customer, points=95, idempotency_key="seed", reason="x")
    reward = Reward.objects.create(code="shot", name="Shot", points_price=10)
    outcomes = _race(
        50,
        lambda i: services.reward_redeem(customer=customer, reward=reward, idempotency_key=f"k{i}"),
    )
    assert outcomes.count("ok") == 9
    assert outcomes.count("refused:points") == 41
    assert Account.objects.get().balance == 5
    assert_projections_equal_ledger()


def test_fifty_concurrent_coupon_uses_respect_total_limit(programme, customer):
    from kizuna.customers.services import customer_create

    people = [customer_create(data={"family_name": f"客{i}"}) for i in range(50)]
    d = services.coupon_definition_create(
        data={
            "name": "Flash",
            "kind": "fixed",
            "value": 100,
            "shared_code": "FLASH",
            "total_limit": 7,
        }
    )
    outcomes = _race(
        50,
        lambda i: services.coupon_redeem(
            customer=people[i], code="FLASH", order_total_minor=1000, idempotency_key=f"u{i}"
        ),
    )
    assert outcomes.count("ok") == 7 and outcomes.count("refused:code") == 43
    d.refresh_from_db()
    assert d.uses == 7 == CouponUse.objects.count()


@pytest.mark.parametrize("skip_own_fk_checks", [True, False])
def test_earn_batch_matches_the_per_order_rules(
    programme, customer, other, monkeypatch, skip_own_fk_checks
):
    from datetime import datetime

    from kizuna.core.timeutil import JST
    from kizuna.loyalty import bulk

    monkeypatch.setattr(bulk, "SKIP_OWN_FK_CHECKS", skip_own_fk_checks)
    services.points_award(customer=customer, points=50, idempotency_key="seed", reason="x")
    services.points_earn_for_order(customer_id=customer.pk, order_id=1, number="N-1", total=900)
    at = datetime(2026, 10, 1, 12, tzinfo=JST)
    rows = [
        bulk.OrderEarnRow(customer.pk, 1, "N-1", 900, at),  # earned already: skipped
        bulk.OrderEarnRow(customer.pk, 2, "N-2", 1_250, at),
        bulk.OrderEarnRow(customer.pk, 3, "N-3", 0, at),  # nothing to earn
        bulk.OrderEarnRow(other.pk, 4, "N-4", 3_000, at + timedelta(days=1)),
        bulk.OrderEarnRow(other.pk, 5, "N-5", 99, at),  # rounds down to 0
        bulk.OrderEarnRow(other.pk, 6, "N-6", 10_000, at),
    ]
    with transaction.atomic():
        assert bulk.points_earn_batch(rows, events=True) == (3, 12 + 30 + 100)
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SHOW session_replication_role")
                assert cursor.fetchone()[0] == "origin"
    assert Account.objects.get(customer=customer).balance == 50 + 9 + 12
    fresh = Account.objects.get(customer=other)
    assert fresh.balance == 130
    assert fresh.member_number == services.member_number(other.pk)
    batch = {
        e.source_ref: e
        for e in LedgerEntry.objects.filter(source_ref__in=["order:2", "order:4", "order:6"])
    }
    assert [batch[f"order:{n}"].balance_after for n in (2, 6, 4)] == [71, 100, 130]
    for n, total in [(2, 1_250), (4, 3_000), (6, 10_000)]:
        entry = batch[f"order:{n}"]
        assert entry.payload_hash == services.order_digest(n, total)
        assert entry.idempotency_key == f"earn:order:{n}"
        assert entry.reason == f"Order N-{n}"
        [[lot_id, lot_points]] = entry.allocations
        assert lot_points == entry.points
        lot = Lot.objects.get(pk=lot_id)
        assert (lot.entry_id, lot.points, lot.remaining, lot.account_id) == (
            entry.pk,
            entry.points,
            entry.points,
            entry.account_id,
        )
        # The per-order service sees the batch's entry as its own (same key and payload).
        again = services.points_earn_for_order(
            customer_id=lot.account.customer_id, order_id=n, number=f"N-{n}", total=total
        )
        assert again is not None and again.pk == entry.pk
    assert Event.objects.filter(type="points.earned", customer=other).count() == 2
    assert_projections_equal_ledger()
    assert bulk.points_earn_batch(rows) == (0, 0)  # a re-run writes nothing
    assert LedgerEntry.objects.count() == 5
