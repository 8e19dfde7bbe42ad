from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from kizuna.accounts import selectors, services
from kizuna.accounts.models import Account, Activity, CustomerCare, Deal
from kizuna.accounts.tests.conftest import make_pipeline, score
from kizuna.catalog.services import product_create
from kizuna.commerce.services import order_place
from kizuna.core.timeutil import now
from kizuna.customers.services import event_record

pytestmark = pytest.mark.django_db


def test_account_hierarchy_cycle_refused(admin_user) -> None:
    group = services.account_create(data={"name": "Kizuna Holdings", "owner": admin_user})
    child = services.account_create(data={"name": "Kizuna Japan", "parent": group.pk})
    grandchild = services.account_create(data={"name": "Kizuna Osaka", "parent": child})
    with pytest.raises(ValidationError) as exc:
        services.account_update(account=group, data={"parent": grandchild.pk})
    message = exc.value.message_dict["parent"][0]
    assert "cycle" in message and "Kizuna Osaka" in message
    with pytest.raises(ValidationError):
        services.account_update(account=group, data={"parent": group.pk})
    group.refresh_from_db()
    assert group.parent_id is None
    assert selectors.descendant_ids(group) == [group.pk, child.pk, grandchild.pk]
    assert [a.name for a in selectors.ancestors(grandchild)] == ["Kizuna Holdings", "Kizuna Japan"]
    with pytest.raises(IntegrityError), transaction.atomic():
        Account.objects.filter(pk=group.pk).update(parent_id=group.pk)


def test_owner_must_be_active_staff(make_staff) -> None:
    gone = make_staff("marketer", username="gone")
    gone.is_active = False
    gone.save()
    with pytest.raises(ValidationError) as exc:
        services.account_create(data={"name": "Acme", "owner": gone.pk})
    assert exc.value.message_dict == {
        "owner": ["gone is deactivated: choose an active staff member."]
    }
    assert Account.objects.count() == 0


def test_deal_moved_to_another_pipelines_stage_refused(pipeline, admin_user, customer) -> None:
    renewals = make_pipeline("Renewals")
    account = services.account_create(data={"name": "Acme"})
    lead = pipeline.stages.get(name="Lead")
    deal = services.deal_create(
        data={"title": "Pilot", "account": account.pk, "stage": lead.pk, "amount_yen": 500000},
        actor=admin_user,
    )
    assert deal.owner == admin_user and deal.pipeline == pipeline
    foreign = renewals.stages.get(name="Proposal")
    with pytest.raises(ValidationError) as exc:
        services.deal_move(deal=deal, stage=foreign)
    message = exc.value.message_dict["stage"][0]
    assert "Renewals" in message and "New business" in message
    deal.refresh_from_db()
    assert deal.stage == lead


def test_deal_amount_and_stage_checks(pipeline, admin_user) -> None:
    account = services.account_create(data={"name": "Acme"})
    won = pipeline.stages.get(outcome="won")
    with pytest.raises(ValidationError) as exc:
        services.deal_create(
            data={"title": "X", "account": account.pk, "stage": won.pk, "amount_yen": -1}
        )
    assert set(exc.value.message_dict) == {"stage", "amount_yen"}
    with pytest.raises(ValidationError) as exc:
        services.deal_create(data={"title": "X", "stage": pipeline.stages.first().pk})
    assert "account" in exc.value.message_dict
    assert Deal.objects.count() == 0


def test_won_lost_with_reason_and_reopen(pipeline, admin_user) -> None:
    account = services.account_create(data={"name": "Acme"})
    deal = services.deal_create(
        data={"title": "Pilot", "account": account, "stage": pipeline.stages.first().pk}
    )
    with pytest.raises(ValidationError) as exc:
        services.deal_close(deal=deal, won=False)
    assert "reason" in exc.value.message_dict
    deal = services.deal_close(deal=deal, won=False, reason="budget cut")
    assert (deal.status, deal.close_reason) == ("lost", "budget cut") and deal.closed_at
    deal = services.deal_move(deal=deal, stage=pipeline.stages.get(name="Proposal"))
    assert (deal.status, deal.close_reason, deal.closed_at) == ("open", "", None)
    deal = services.deal_close(deal=deal, won=True, reason="signed")
    assert deal.status == "won"


def test_stage_probability_and_pipeline_shape() -> None:
    with pytest.raises(ValidationError) as exc:
        services.pipeline_create(
            name="Bad", stages=[{"name": "A", "probability": 120}, {"name": "A", "probability": 5}]
        )
    assert set(exc.value.message_dict) == {"stages[0].probability", "stages[1].name", "stages"}


def test_forecast_weights_amounts_by_stage(pipeline, admin_user) -> None:
    account = services.account_create(data={"name": "Acme"})
    stages = {s.name: s for s in pipeline.stages.all()}
    for stage, amount, month in (
        ("Lead", 100000, 1),
        ("Proposal", 200000, 1),
        ("Negotiation", 1000000, 2),
    ):
        services.deal_create(
            data={
                "title": stage,
                "account": account.pk,
                "stage": stages[stage].pk,
                "amount_yen": amount,
                "expected_close": f"2026-0{month}-15",
            },
            actor=admin_user,
        )
    forecast = selectors.forecast(principal=admin_user, pipeline=pipeline)
    assert [(r.stage.name, r.count, r.weighted_yen) for r in forecast.rows] == [
        ("Lead", 1, 10000),
        ("Proposal", 1, 100000),
        ("Negotiation", 1, 800000),
    ]
    assert (forecast.total_yen, forecast.weighted_yen) == (1300000, 910000)
    assert [(r["month"].month, r["weighted"]) for r in forecast.by_month] == [
        (1, 110000),
        (2, 800000),
    ]


def test_sales_sees_only_own_deals(pipeline, sales, admin_user) -> None:
    a, b = sales("sato"), sales("suzuki")
    account = services.account_create(data={"name": "Acme"})
    lead = pipeline.stages.first()
    mine = services.deal_create(
        data={"title": "Mine", "account": account, "stage": lead.pk}, actor=a
    )
    services.deal_create(data={"title": "Theirs", "account": account, "stage": lead.pk}, actor=b)
    assert [d.title for d in selectors.deal_list(principal=a)] == ["Mine"]
    assert selectors.deal_list(principal=admin_user).count() == 2
    assert selectors.access_deal(principal=a, deal_id=mine.pk) == mine
    from kizuna.core.errors import NotFound

    theirs = Deal.objects.get(title="Theirs")
    with pytest.raises(NotFound):
        selectors.access_deal(principal=a, deal_id=theirs.pk)
    board = selectors.kanban(principal=a, pipeline=pipeline)
    assert [c.count for c in board] == [1, 0, 0]


def test_task_for_deactivated_user_refused(customer, make_staff, admin_user) -> None:
    gone = make_staff("marketer", username="retired")
    gone.is_active = False
    gone.save()
    with pytest.raises(ValidationError) as exc:
        services.activity_log(
            data={
                "kind": "task",
                "subject": "Call back",
                "customer": customer.pk,
                "due_at": now() + timedelta(days=1),
                "assigned_to": gone.pk,
            },
            actor=admin_user,
        )
    assert exc.value.message_dict == {
        "assigned_to": ["retired is deactivated: choose an active staff member."]
    }
    with pytest.raises(ValidationError) as exc:
        services.activity_log(data={"kind": "task", "subject": "x", "customer": customer.pk})
    assert set(exc.value.message_dict) == {"due_at", "assigned_to"}
    assert Activity.objects.count() == 0


def test_my_tasks_and_reminders(customer, admin_user, make_staff) -> None:
    admin_user.email = "owner@example.jp"
    admin_user.save()
    other = make_staff("marketer")
    due = now() + timedelta(hours=2)
    task = services.activity_log(
        data={
            "kind": "task",
            "subject": "Send the quote",
            "customer": customer.pk,
            "due_at": due,
            "remind_at": now() - timedelta(minutes=1),
        },
        actor=admin_user,
    )
    late = services.activity_log(
        data={
            "kind": "task",
            "subject": "Late",
            "customer": customer.pk,
            "due_at": now() - timedelta(days=1),
        },
        actor=admin_user,
    )
    services.activity_log(
        data={"kind": "task", "subject": "Not mine", "customer": customer.pk, "due_at": due},
        actor=other,
    )
    queue = list(selectors.my_tasks(user=admin_user))
    assert [(t.subject, t.__dict__["overdue"]) for t in queue] == [
        ("Late", 1),
        ("Send the quote", 0),
    ]
    assert services.reminders_send() == 1 and services.reminders_send() == 0
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["owner@example.jp"]
    assert "Send the quote" in mail.outbox[0].subject
    services.task_complete(activity=late)
    assert [t.pk for t in selectors.my_tasks(user=admin_user)] == [task.pk]


def test_account_rollup_and_timeline(admin_user, customer, other, pipeline) -> None:
    product_create(data={"sku": "SEAT", "name": "Seat", "price_minor": 10000})
    parent = services.account_create(data={"name": "Holdings"})
    child = services.account_create(data={"name": "Japan", "parent": parent})
    services.contact_add(account=parent, customer=customer, role="decision_maker")
    services.contact_add(account=child, customer=other, role="user")
    with pytest.raises(ValidationError):
        services.contact_add(account=parent, customer=customer)
    order_place(customer=customer, number="A-1", lines=[{"sku": "SEAT", "quantity": 3}])
    order_place(customer=other, number="A-2", lines=[{"sku": "SEAT", "quantity": 1}])
    score(customer, clv=50000)
    score(other, clv=20000, p_alive=0.5)
    services.deal_create(
        data={
            "title": "Expand",
            "account": child,
            "stage": pipeline.stages.first().pk,
            "amount_yen": 90000,
        }
    )
    rollup = selectors.account_rollup(account=parent)
    assert (rollup.accounts, rollup.contacts, rollup.orders, rollup.revenue_minor) == (
        2,
        2,
        2,
        40000,
    )
    assert rollup.clv_minor == 70000 and rollup.average_p_alive == pytest.approx(0.7)
    assert (rollup.open_deals, rollup.open_pipeline_yen) == (1, 90000)
    only = selectors.account_rollup(account=parent, include_children=False)
    assert (only.orders, only.revenue_minor, only.open_deals) == (1, 30000, 0)
    services.activity_log(
        data={"kind": "call", "subject": "Kick-off call", "account": parent.pk}, actor=admin_user
    )
    event_record(type="Webinar Attended", customer=customer)
    items = selectors.account_timeline(account=parent)
    assert [i.title for i in items][:2] == ["Webinar Attended", "Kick-off call"]
    assert "order.placed" in [i.title for i in items]


def test_follow_up_cadence_from_activities(admin_user, customer) -> None:
    account = services.account_create(
        data={"name": "Acme", "follow_up_days": 14, "owner": admin_user}
    )
    assert account.next_follow_up_at is None
    earlier = now() - timedelta(days=20)
    services.activity_log(
        data={"kind": "meeting", "subject": "QBR", "account": account.pk, "occurred_at": earlier}
    )
    account.refresh_from_db()
    assert account.next_follow_up_at == earlier + timedelta(days=14)
    assert list(selectors.overdue_accounts(owner=admin_user)) == [account]
    services.activity_log(data={"kind": "note", "subject": "Emailed", "account": account.pk})
    assert list(selectors.overdue_accounts(owner=admin_user)) == []


def test_service_levels_top_clv_and_named_accounts(admin_user, make_staff) -> None:
    from kizuna.customers.services import customer_create

    owner = make_staff("marketer", username="am")
    people = [customer_create(data={"family_name": f"C{i}"}) for i in range(40)]
    for i, person in enumerate(people):
        score(person, clv=(i + 1) * 1000, p_alive=0.9)
    named = services.account_create(data={"name": "Named", "named": True, "owner": owner})
    services.contact_add(account=named, customer=people[0])  # lowest CLV, but named
    services.rule_update(
        data={"top_clv_percent": "5", "cadence_days": 10, "default_owner": admin_user.pk}
    )
    result = services.service_levels_apply()
    assert (result.high, result.entered, result.left) == (3, 3, 0)
    high = dict(CustomerCare.objects.filter(level="high").values_list("customer_id", "owner_id"))
    assert high == {
        people[39].pk: admin_user.pk,
        people[38].pk: admin_user.pk,
        people[0].pk: owner.pk,
    }
    assert CustomerCare.objects.get(customer=people[0]).reason == "named_account"
    # P(alive) falls for one of them, another drops out of the top 5%
    from kizuna.analytics.models import CustomerScore

    CustomerScore.objects.filter(customer=people[39]).update(p_alive=0.4)
    CustomerScore.objects.filter(customer=people[38]).update(clv_minor=1)
    result = services.service_levels_apply()
    assert (result.high, result.entered, result.left) == (3, 1, 1)
    summary = selectors.care_summary(owner=admin_user)
    assert (summary.customers, summary.at_risk) == (2, 1)
    rows = list(selectors.my_customers(owner=admin_user))
    assert {r.customer_id for r in rows} == {people[39].pk, people[37].pk}
    falling = next(r for r in rows if r.customer_id == people[39].pk)
    assert "p_alive_falling" in selectors.risk_signals(falling)
    assert [r.customer_id for r in selectors.my_customers(owner=admin_user, risk_only=True)] == [
        people[39].pk
    ]
    with pytest.raises(ValidationError) as exc:
        services.rule_update(data={"top_clv_percent": "150"})
    assert "top_clv_percent" in exc.value.message_dict


def test_overdue_follow_up_of_a_high_touch_customer(admin_user, customer) -> None:
    care = services.care_assign(customer=customer, owner=admin_user, cadence_days=7)
    services.activity_log(
        data={
            "kind": "call",
            "subject": "Check-in",
            "customer": customer.pk,
            "occurred_at": now() - timedelta(days=9),
        }
    )
    care.refresh_from_db()
    assert care.next_follow_up_at is not None and care.next_follow_up_at < now()
    assert selectors.care_summary(owner=admin_user).overdue == 1
    services.activity_log(data={"kind": "call", "subject": "Again", "customer": customer.pk})
    assert selectors.care_summary(owner=admin_user).overdue == 0


def test_personal_data_export_and_erase(admin_user, customer, pipeline) -> None:
    from kizuna.core.personal_data import get_handler

    account = services.account_create(data={"name": "Acme"})
    services.contact_add(account=account, customer=customer, title="CTO")
    services.activity_log(
        data={
            "kind": "note",
            "subject": "Private remark",
            "body": "lives in Osaka",
            "customer": customer.pk,
        }
    )
    services.deal_create(
        data={
            "title": "Seats",
            "contact": customer.pk,
            "stage": pipeline.stages.first().pk,
            "amount_yen": 5,
        }
    )
    activity = get_handler("accounts.activity")
    assert [r["body"] for r in activity.export(customer.pk)] == ["lives in Osaka"]
    assert [r["title"] for r in get_handler("accounts.contact").export(customer.pk)] == ["CTO"]
    for name in ("accounts.activity", "accounts.contact", "accounts.deal", "accounts.care"):
        get_handler(name).erase(customer.pk, pseudonym="erased-1")
        get_handler(name).erase(customer.pk, pseudonym="erased-1")  # idempotent
    row = Activity.objects.get()
    assert (row.subject, row.body) == ("erased-1", "")
    assert Deal.objects.get().contact_id is None and Deal.objects.get().amount_yen == 5
