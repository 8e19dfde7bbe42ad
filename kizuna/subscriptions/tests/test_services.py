from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from kizuna.core import events as bus
from kizuna.core.timeutil import JST
from kizuna.customers.models import Event
from kizuna.subscriptions import selectors, services
from kizuna.subscriptions.models import Plan, Status, Subscription, SubscriptionEvent

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 10, 10, 0, tzinfo=JST)


def test_negative_price_refused_and_nothing_saved() -> None:
    with pytest.raises(ValidationError) as exc:
        services.plan_create(data={"code": "bad", "name": "Bad", "price_yen": -1})
    assert "price_yen" in exc.value.message_dict
    assert "non-negative" in exc.value.message_dict["price_yen"][0]
    with pytest.raises(ValidationError) as exc:
        services.plan_create(
            data={"code": "x", "name": "X", "price_yen": 1, "interval": "day", "colour": "red"}
        )
    assert set(exc.value.message_dict) == {"interval", "colour"}
    assert Plan.objects.count() == 0
    with pytest.raises(IntegrityError), transaction.atomic():
        Plan.objects.create(code="raw", name="Raw", price_yen=-5)  # the database refuses too


def test_lifecycle_records_events_for_journeys(
    monthly, customer, django_capture_on_commit_callbacks
) -> None:
    seen: list[bus.DomainEvent] = []
    for kind in ("payment_failed", "cancelled", "renewed"):
        bus.subscribe(f"subscription.{kind}", seen.append, in_transaction=True)
    with django_capture_on_commit_callbacks(execute=True):
        sub = services.subscription_start(customer=customer, plan=monthly, started_at=T0)
        assert sub.status == Status.ACTIVE
        assert sub.current_period_end == datetime(2026, 2, 10, 10, 0, tzinfo=JST)
        sub = services.subscription_renew(subscription=sub, at=T0 + timedelta(days=31))
        assert sub.current_period_start == datetime(2026, 2, 10, 10, 0, tzinfo=JST)
        assert sub.current_period_end == datetime(2026, 3, 10, 10, 0, tzinfo=JST)
        sub = services.subscription_payment_failed(
            subscription=sub, at=T0 + timedelta(days=59), reason="card declined"
        )
        assert sub.status == Status.PAST_DUE
        sub = services.subscription_pause(subscription=sub, at=T0 + timedelta(days=60))
        sub = services.subscription_resume(subscription=sub, at=T0 + timedelta(days=70))
        assert sub.status == Status.ACTIVE
        sub = services.subscription_cancel(
            subscription=sub, at=T0 + timedelta(days=80), reason="too expensive"
        )
        assert (sub.status, sub.cancel_reason) == (Status.CANCELLED, "too expensive")
        kinds = list(
            SubscriptionEvent.objects.filter(subscription=sub)
            .order_by("occurred_at")
            .values_list("kind", flat=True)
        )
        assert kinds == ["started", "renewed", "payment_failed", "paused", "resumed", "cancelled"]
        assert [e.type for e in seen] == [
            "subscription.renewed",
            "subscription.payment_failed",
            "subscription.cancelled",
        ]
        assert seen[1].properties["reason"] == "card declined"
        assert seen[2].customer_id == customer.pk
        assert (
            Event.objects.filter(customer=customer, type__startswith="subscription.").count() == 6
        )
        with pytest.raises(ValidationError) as exc:
            services.subscription_renew(subscription=sub)
        assert "status" in exc.value.message_dict


def test_trial_then_active(customer) -> None:
    plan = services.plan_create(
        data={"code": "box", "name": "Box", "price_yen": 2000, "trial_days": 14}
    )
    sub = services.subscription_start(customer=customer, plan=plan, started_at=T0)
    assert sub.status == Status.TRIAL and sub.trial_ends_at == T0 + timedelta(days=14)
    assert sub.current_period_end == T0 + timedelta(days=14)
    sub = services.subscription_renew(subscription=sub)
    assert sub.status == Status.ACTIVE
    assert sub.current_period_end == datetime(2026, 2, 24, 10, 0, tzinfo=JST)


def test_end_before_start_refused(monthly, customer) -> None:
    sub = services.subscription_start(customer=customer, plan=monthly, started_at=T0)
    with pytest.raises(ValidationError) as exc:
        services.subscription_cancel(subscription=sub, at=T0 - timedelta(days=1), reason="x")
    assert exc.value.message_dict == {"ended_at": ["A subscription cannot end before it started."]}
    sub.refresh_from_db()
    assert sub.status == Status.ACTIVE and sub.ended_at is None
    assert SubscriptionEvent.objects.filter(kind="cancelled").count() == 0
    with pytest.raises(IntegrityError), transaction.atomic():
        Subscription.objects.filter(pk=sub.pk).update(ended_at=T0 - timedelta(days=1))


def test_cancel_needs_a_reason(monthly, customer) -> None:
    sub = services.subscription_start(customer=customer, plan=monthly, started_at=T0)
    with pytest.raises(ValidationError) as exc:
        services.subscription_cancel(subscription=sub, reason="  ")
    assert "reason" in exc.value.message_dict


def test_renewing_soon_once_per_period(
    monthly, yearly, customer, other, django_capture_on_commit_callbacks
) -> None:
    seen: list[bus.DomainEvent] = []
    bus.subscribe("subscription.renewing_soon", seen.append, in_transaction=True)
    with django_capture_on_commit_callbacks(execute=True):
        services.subscription_start(customer=customer, plan=monthly, started_at=T0)  # ends 2/10
        services.subscription_start(customer=other, plan=yearly, started_at=T0)  # ends 2027
        assert services.renewing_soon_notify(days=3, today=date(2026, 2, 7)) == 1
        assert services.renewing_soon_notify(days=3, today=date(2026, 2, 7)) == 0  # idempotent
        assert services.renewing_soon_notify(days=3, today=date(2026, 2, 6)) == 0
        assert len(seen) == 1 and seen[0].customer_id == customer.pk
        assert seen[0].properties["amount"] == 3000


def test_revenue_normalised_by_interval(monthly, yearly, customer, other) -> None:
    weekly = services.plan_create(
        data={"code": "wk", "name": "Weekly", "price_yen": 1200, "interval": "week"}
    )
    a = services.subscription_start(customer=customer, plan=monthly, started_at=T0)
    services.subscription_start(customer=other, plan=yearly, started_at=T0)
    services.subscription_start(customer=other, plan=weekly, started_at=T0)
    trial = services.plan_create(data={"code": "t", "name": "T", "price_yen": 999, "trial_days": 7})
    services.subscription_start(customer=customer, plan=trial, started_at=T0)  # not revenue
    services.subscription_payment_failed(subscription=a)  # past due still counts
    rev = selectors.revenue()
    assert rev.mrr_yen == 3000 + 10000 + 5200
    assert rev.arr_yen == round((3000 + 10000 + 1200 * 52 / 12) * 12)
    assert rev.paying == 3
    assert rev.by_status["trial"] == 1 and rev.by_status["past_due"] == 1
    services.subscription_cancel(subscription=a, reason="moved")
    assert selectors.revenue().mrr_yen == 15200


def test_churn_and_retention_from_the_database(monthly, customer, other) -> None:
    a = services.subscription_start(customer=customer, plan=monthly, started_at=T0)
    services.subscription_start(customer=other, plan=monthly, started_at=T0 + timedelta(days=2))
    services.subscription_cancel(subscription=a, at=datetime(2026, 2, 15, tzinfo=JST), reason="x")
    rows = selectors.retention_by_cohort(today=date(2026, 4, 2))
    assert [(r.cohort, r.size, r.retained) for r in rows] == [
        (date(2026, 1, 1), 2, [1.0, 0.5, 0.5])
    ]
    churn = selectors.churn_by_month(months=3, today=date(2026, 3, 5))
    assert [(c.month.month, c.active_at_start, c.cancelled) for c in churn] == [
        (1, 0, 0),
        (2, 2, 1),
        (3, 1, 0),
    ]


CSV_OK = """external_id,customer_email,plan,status,started_at,ended_at,cancel_reason
S-1,tanaka@example.jp,coffee,active,2026-01-05,,
S-2,sato@example.jp,coffee,cancelled,2026-01-06,2026-03-01,price
"""


def test_csv_import_and_reimport(monthly, customer, other) -> None:
    result = services.subscriptions_import(text=CSV_OK)
    assert (result.rows, result.created, result.unchanged) == (2, 2, 0)
    s2 = Subscription.objects.get(external_id="S-2")
    assert s2.customer == other and s2.status == "cancelled" and s2.cancel_reason == "price"
    assert s2.ended_at == datetime(2026, 3, 1, tzinfo=JST)
    again = services.subscriptions_import(text=CSV_OK)
    assert (again.created, again.unchanged) == (0, 2)
    assert Subscription.objects.count() == 2


def test_csv_bad_rows_name_row_and_field_and_write_nothing(monthly, customer) -> None:
    text = (
        "external_id,customer_email,plan,status,started_at,ended_at\n"
        "S-1,tanaka@example.jp,coffee,active,2026-01-05,\n"
        "S-2,tanaka@example.jp,coffee,cancelled,2026-03-05,2026-03-01\n"
        "S-3,nobody@example.jp,gold,active,yesterday,\n"
    )
    with pytest.raises(ValidationError) as exc:
        services.subscriptions_import(text=text)
    errors = exc.value.message_dict
    assert errors["rows[2].ended_at"] == ["A subscription cannot end before it started."]
    assert set(errors) == {
        "rows[2].ended_at",
        "rows[3].customer_email",
        "rows[3].plan",
        "rows[3].started_at",
    }
    assert Subscription.objects.count() == 0 and SubscriptionEvent.objects.count() == 0
    with pytest.raises(ValidationError) as exc:
        services.subscriptions_import(text="who,what\n1,2\n")
    assert "file" in exc.value.message_dict


def test_personal_data_export_and_erase(monthly, customer) -> None:
    from kizuna.core.personal_data import get_handler

    sub = services.subscription_start(customer=customer, plan=monthly, started_at=T0)
    services.subscription_cancel(subscription=sub, reason="moving abroad")
    handler = get_handler("subscriptions.subscription")
    rows = list(handler.export(customer.pk))
    assert rows[0]["cancel_reason"] == "moving abroad" and rows[0]["plan_code"] == "coffee"
    assert handler.erase(customer.pk, pseudonym="erased-1") == 2
    assert handler.erase(customer.pk, pseudonym="erased-1") == 0
    sub.refresh_from_db()
    assert sub.cancel_reason == "" and sub.status == "cancelled"


def test_csv_structural_errors_are_validation_errors(monthly, customer) -> None:
    with pytest.raises(ValidationError) as exc:
        services.subscriptions_import(
            text=f"customer_id,plan,started_at\n{customer.pk},coffee,2026-01-01,extra\n"
        )
    assert "rows[1]" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        services.subscriptions_import(text='customer_id,plan,started_at\n"1,coffee\r\n')
    assert Subscription.objects.count() == 0
    sub = services.subscription_start(customer=customer, plan=monthly, external_id="X-1")
    with pytest.raises(ValidationError) as exc:
        services.subscription_start(customer=customer, plan=monthly, external_id="X-1")
    assert "external_id" in exc.value.message_dict
    assert Subscription.objects.get() == sub
