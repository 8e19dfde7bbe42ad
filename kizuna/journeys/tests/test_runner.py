"""The runner: triggers enter customers, steps run once each (keyed by enrolment + step +
visit), waits hold, goals convert, pause/resume and live edits keep everyone's place."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from kizuna.core import events as bus
from kizuna.core.timeutil import JST, now
from kizuna.customers.models import Customer
from kizuna.customers.services import event_record
from kizuna.journeys import services
from kizuna.journeys.models import Enrolment, StepExecution
from kizuna.journeys.services import Entrant
from kizuna.journeys.tests.conftest import graph, live, make_customer
from kizuna.loyalty.models import LedgerEntry
from kizuna.messaging.models import Channel, Delivery, Template


def order(customer: Customer, commit: Any, **props: Any) -> None:
    commit(
        event_record, type="order.placed", customer=customer, properties={"total": 5000, **props}
    )


def later(days: float) -> datetime:
    return now() + timedelta(days=days)


@pytest.fixture
def hanako(db: None) -> Customer:
    return make_customer("hanako@example.jp")


def test_an_event_enters_and_the_runner_stops_at_the_wait(
    mail: Channel, thanks: Template, hanako: Customer, commit: Any
) -> None:
    journey = live(graph(mail))
    order(hanako, commit)
    enrolment = Enrolment.objects.get(journey=journey, customer=hanako)
    assert (enrolment.state, enrolment.node, enrolment.steps) == ("waiting", "wait", 2)
    assert enrolment.next_due_at is not None and enrolment.next_due_at > later(2.9)
    assert list(StepExecution.objects.order_by("id").values_list("node", "outcome")) == [
        ("send", "queued"),
        ("wait", "waiting"),
    ]
    delivery = Delivery.objects.get()
    assert delivery.idempotency_key == f"journey:j{enrolment.pk}:send:1"
    assert delivery.source == f"journey:{journey.pk}" and delivery.status == "sent"
    assert services.journeys_run_due().claimed == 0  # nothing due before the wait is over

    result = services.journeys_run_due(at=later(3.1))
    assert (result.claimed, result.steps, result.finished) == (1, 2, 1)
    enrolment.refresh_from_db()
    assert (enrolment.state, enrolment.node, enrolment.next_due_at) == ("completed", "done", None)
    assert (
        LedgerEntry.objects.filter(idempotency_key=f"journey:j{enrolment.pk}:points:1").count() == 1
    )
    assert services.journeys_run_due(at=later(30)).claimed == 0
    assert Delivery.objects.count() == 1 and StepExecution.objects.count() == 4


def test_a_step_run_again_never_sends_or_awards_twice(
    mail: Channel, thanks: Template, hanako: Customer, commit: Any
) -> None:
    journey = live(graph(mail))
    order(hanako, commit)
    services.journeys_run_due(at=later(4))
    enrolment = Enrolment.objects.get(journey=journey)
    # As if the step records were lost and the enrolment put back at the start: the side
    # effects are keyed by the same enrolment + step + visit, so nothing happens twice.
    StepExecution.objects.all().delete()
    Enrolment.objects.filter(pk=enrolment.pk).update(
        state="active", node="send", visits={}, steps=0, next_due_at=now(), finished_at=None
    )
    services.journeys_run_due()
    services.journeys_run_due(at=later(4))
    assert Delivery.objects.count() == 1
    assert LedgerEntry.objects.filter(account__customer_id=hanako.pk).count() == 1
    assert StepExecution.objects.count() == 4


def test_entry_rules(mail: Channel, thanks: Template, hanako: Customer, commit: Any) -> None:
    once = live(graph(mail), name="once")
    again = live(graph(mail, entry={"rule": "reentry"}), name="again")
    order(hanako, commit)
    order(hanako, commit)  # inside both journeys already: no second entry
    assert Enrolment.objects.filter(journey=once).count() == 1
    assert Enrolment.objects.filter(journey=again).count() == 1
    services.journeys_run_due(at=later(4))  # both finish
    order(hanako, commit)
    assert Enrolment.objects.filter(journey=once).count() == 1  # once ever
    assert Enrolment.objects.filter(journey=again).count() == 2  # re-entry after finishing


def test_once_per_period(mail: Channel, thanks: Template, hanako: Customer) -> None:
    journey = live(graph(mail, entry={"rule": "once_per_period", "period_days": 30}))
    assert services.enrol_many(journey=journey, entrants=[Entrant(hanako.pk)]) == 1
    assert services.enrol_many(journey=journey, entrants=[Entrant(hanako.pk)], at=later(10)) == 0
    assert services.enrol_many(journey=journey, entrants=[Entrant(hanako.pk)], at=later(31)) == 1


def test_holdout_gets_no_steps_and_goal_converts_both_groups(
    mail: Channel, thanks: Template, commit: Any
) -> None:
    data = graph(
        mail,
        trigger={"type": "event", "event": "Cart Abandoned"},
        goal={"event": "order.placed", "within_days": 7},
        holdout_percent=50,
    )
    journey = live(data)
    customers = [make_customer(f"c{i}@example.jp") for i in range(16)]
    for c in customers:
        commit(event_record, type="Cart Abandoned", customer=c, properties={})
    held = set(Enrolment.objects.filter(holdout=True).values_list("customer_id", flat=True))
    treated = set(Enrolment.objects.filter(holdout=False).values_list("customer_id", flat=True))
    assert held and treated and len(held | treated) == 16
    assert set(Delivery.objects.values_list("customer_id", flat=True)) == treated
    assert set(Enrolment.objects.filter(holdout=True).values_list("state", flat=True)) == {
        "holdout"
    }
    buyer_t, buyer_h = min(treated), min(held)
    order(Customer.objects.get(pk=buyer_t), commit)
    order(Customer.objects.get(pk=buyer_h), commit)
    converted = Enrolment.objects.filter(journey=journey, converted_at__isnull=False)
    assert set(converted.values_list("customer_id", "state")) == {
        (buyer_t, "converted"),
        (buyer_h, "converted"),
    }
    # the rest of the holdout leaves when the goal window ends
    services.journeys_run_due(at=later(8))
    assert set(Enrolment.objects.filter(holdout=True).values_list("state", flat=True)) == {
        "completed",
        "converted",
    }


def test_wait_for_event_takes_the_event_exit_or_the_timeout(
    mail: Channel, thanks: Template, commit: Any
) -> None:
    data = graph(mail)
    data["nodes"][1] = {
        "id": "wait",
        "type": "wait_event",
        "event": "email.clicked",
        "timeout": "2d",
        "next": "points",
        "timeout_next": "done",
    }
    live(data)
    clicker, idle = make_customer("a@example.jp"), make_customer("b@example.jp")
    order(clicker, commit)
    order(idle, commit)
    # the event marks the wait as over and wakes the runner (Huey runs in-process in tests)
    commit(event_record, type="email.clicked", customer=clicker, properties={})
    e_click = Enrolment.objects.get(customer=clicker)
    assert (e_click.state, e_click.node) == ("completed", "done")
    assert LedgerEntry.objects.filter(account__customer_id=clicker.pk).count() == 1
    services.journeys_run_due(at=later(1))
    assert Enrolment.objects.get(customer=idle).state == "waiting"
    services.journeys_run_due(at=later(2.1))
    assert Enrolment.objects.get(customer=idle).state == "completed"
    assert not LedgerEntry.objects.filter(account__customer_id=idle.pk).exists()


def test_branch_split_trait_coupon_segment_and_support_task(
    mail: Channel, thanks: Template, commit: Any
) -> None:
    from kizuna.customers.services import trait_definition_create
    from kizuna.loyalty.models import Coupon
    from kizuna.loyalty.services import coupon_definition_create
    from kizuna.segments.models import SegmentMembership
    from kizuna.segments.services import segment_save

    trait_definition_create(key="vip", label="VIP", type="boolean")
    trait_definition_create(key="journey_a", label="A", type="boolean")
    coupon_definition_create(data={"name": "10% off", "kind": "percent", "value": 10})
    vip_list = segment_save(data={"name": "VIP list", "kind": "static"})
    tasks: list[bus.DomainEvent] = []
    bus.subscribe(services.SUPPORT_TASK_EVENT, tasks.append)
    data = {
        "trigger": {
            "type": "event",
            "event": "order.placed",
            "filters": [{"property": "total", "op": "gte", "value": 3000}],
        },
        "start": "vip",
        "nodes": [
            {
                "id": "vip",
                "type": "branch",
                "condition": {"field": "traits.vip", "op": "eq", "value": True},
                "yes": "coupon",
                "no": "split",
            },
            {"id": "coupon", "type": "issue_coupon", "coupon": "10% off", "next": "add"},
            {"id": "add", "type": "add_to_segment", "segment": vip_list.slug, "next": "task"},
            {"id": "task", "type": "support_task", "title": "Call this VIP", "next": "end"},
            {"id": "split", "type": "split", "percent": 50, "a": "mark", "b": "end"},
            {"id": "mark", "type": "set_trait", "key": "journey_a", "value": True, "next": "end"},
            {"id": "end", "type": "exit"},
        ],
    }
    live(data)
    vip = make_customer("vip@example.jp", traits={"vip": True})
    small = make_customer("small@example.jp")
    order(small, commit, total=1000)  # the filter refuses it
    assert not Enrolment.objects.exists()
    order(vip, commit)
    others = [make_customer(f"o{i}@example.jp") for i in range(12)]
    for c in others:
        order(c, commit)
    assert Coupon.objects.filter(customer=vip).count() == 1
    assert list(SegmentMembership.objects.values_list("customer_id", flat=True)) == [vip.pk]
    assert [(t.customer_id, t.properties["title"], t.properties["step"]) for t in tasks] == [
        (vip.pk, "Call this VIP", "task")
    ]
    marked = {
        c.pk
        for c in Customer.objects.filter(pk__in=[c.pk for c in others])
        if c.traits.get("journey_a")
    }
    sides = dict(StepExecution.objects.filter(node="split").values_list("customer_id", "outcome"))
    assert marked == {cid for cid, side in sides.items() if side == "a"}
    assert 0 < len(marked) < len(others)
    assert set(Enrolment.objects.values_list("state", flat=True)) == {"completed"}

    leave = {
        **data,
        "start": "out",
        "nodes": [
            {"id": "out", "type": "remove_from_segment", "segment": vip_list.slug, "next": "end"},
            {"id": "end", "type": "exit"},
        ],
    }
    journey = live(leave, name="leave")
    services.enrol_many(journey=journey, entrants=[Entrant(vip.pk)])
    services.journeys_run_due()
    assert not SegmentMembership.objects.exists()


def test_frequency_cap_skips_the_send(mail: Channel, thanks: Template, hanako: Customer) -> None:
    data = graph(mail, frequency_cap={"sends": 1, "days": 7})
    data["nodes"][1] = {
        "id": "wait",
        "type": "send",
        "channel": mail.name,
        "template": "thanks",
        "next": "points",
    }
    journey = live(data)
    services.enrol_many(journey=journey, entrants=[Entrant(hanako.pk)])
    services.journeys_run_due()
    assert list(StepExecution.objects.order_by("id").values_list("node", "outcome")) == [
        ("send", "queued"),
        ("wait", "capped"),
        ("points", "awarded"),
        ("done", "exited"),
    ]
    assert Delivery.objects.count() == 1


def test_pause_and_resume(mail: Channel, thanks: Template, hanako: Customer) -> None:
    journey = live(graph(mail))
    services.enrol_many(journey=journey, entrants=[Entrant(hanako.pk)])
    services.journey_pause(journey=journey)
    assert services.enrol_many(journey=journey, entrants=[Entrant(hanako.pk)]) == 0
    assert services.journeys_run_due().claimed == 0
    with pytest.raises(ValidationError) as caught:
        services.journey_pause(journey=journey)
    assert "status" in caught.value.message_dict
    services.journey_resume(journey=journey)
    assert services.journeys_run_due().steps == 2


def test_a_live_edit_migrates_enrolments_by_step_id(
    mail: Channel, thanks: Template, commit: Any
) -> None:
    journey = live(graph(mail))
    waiting, early = make_customer("w@example.jp"), make_customer("e@example.jp")
    services.enrol_many(journey=journey, entrants=[Entrant(waiting.pk)])
    services.journeys_run_due()  # at the wait
    data = graph(mail)
    data["nodes"][2] = {"id": "bonus", "type": "award_points", "points": 80, "next": "done"}
    data["nodes"][1]["next"] = "bonus"
    services.enrol_many(journey=journey, entrants=[Entrant(early.pk)])
    Enrolment.objects.filter(customer=early).update(node="points", state="active")
    services.journey_save(journey=journey, data={"graph": data})
    v2 = services.journey_publish(journey=journey)
    assert v2.number == 2
    w = Enrolment.objects.get(customer=waiting)
    e = Enrolment.objects.get(customer=early)
    assert (w.version_id, w.state, w.node) == (v2.pk, "waiting", "wait")
    assert (e.state, e.exit_reason) == ("exited", "step_removed")
    services.journeys_run_due(at=later(4))
    assert LedgerEntry.objects.get(account__customer_id=waiting.pk).points == 80
    assert Delivery.objects.count() == 1  # nobody was sent the first message again


def test_segment_and_score_triggers(mail: Channel, thanks: Template, commit: Any) -> None:
    from kizuna.segments.services import segment_save, segment_upload_static

    seg = segment_save(data={"name": "Hand-picked", "kind": "static"})
    by_segment = live(graph(mail, trigger={"type": "segment_entered", "segment": seg.slug}), "s")
    by_score = live(
        graph(mail, trigger={"type": "score", "score": "churn_risk", "threshold": 0.7}), "r"
    )
    a, b = make_customer("a@example.jp"), make_customer("b@example.jp")
    commit(segment_upload_static, segment=seg, text=f"customer_id\n{a.pk}\n")
    assert list(
        Enrolment.objects.filter(journey=by_segment).values_list("customer_id", flat=True)
    ) == [a.pk]

    def at_risk(customer: Customer, risk: float) -> None:
        bus.publish(
            bus.DomainEvent(
                type="customer.at_risk",
                occurred_at=now(),
                customer_id=customer.pk,
                event_id=customer.pk,
                properties={"churn_risk": risk},
            )
        )

    commit(at_risk, a, 0.5)
    commit(at_risk, b, 0.82)
    assert list(
        Enrolment.objects.filter(journey=by_score).values_list("customer_id", flat=True)
    ) == [b.pk]


def test_daily_birthday_and_inactivity_triggers(mail: Channel, thanks: Template) -> None:
    at = datetime(2026, 6, 15, 0, 30, tzinfo=JST)
    bday = live(graph(mail, trigger={"type": "date", "field": "birthday"}), "b")
    lapsed = live(graph(mail, trigger={"type": "inactivity", "days": 60}), "i")
    today = make_customer("today@example.jp", birthday=date(1990, 6, 15))
    make_customer("other@example.jp", birthday=date(1990, 6, 16))
    gone = make_customer("gone@example.jp")
    Customer.objects.filter(pk=gone.pk).update(last_seen_at=at - timedelta(days=61))
    Customer.objects.filter(pk=today.pk).update(last_seen_at=at - timedelta(days=3))
    entered = services.journeys_daily_triggers(at=at)
    assert entered == {bday.pk: 1, lapsed.pk: 1}
    assert Enrolment.objects.get(journey=bday).customer_id == today.pk
    assert Enrolment.objects.get(journey=lapsed).customer_id == gone.pk
    assert services.journeys_daily_triggers(at=at) == {bday.pk: 0, lapsed.pk: 0}


def test_archive_ends_every_enrolment(mail: Channel, thanks: Template, hanako: Customer) -> None:
    journey = live(graph(mail))
    services.enrol_many(journey=journey, entrants=[Entrant(hanako.pk)])
    services.journey_archive(journey=journey)
    assert Enrolment.objects.get().exit_reason == "archived"
    with pytest.raises(ValidationError):
        services.journey_publish(journey=journey)


def test_stream_catch_up_enters_on_events_not_published_on_the_bus(
    mail: Channel, thanks: Template, commit: Any
) -> None:
    from kizuna.customers.bulk import EventRow, events_insert

    journey = live(
        graph(
            mail,
            trigger={
                "type": "event",
                "event": "tier.changed",
                "filters": [{"property": "to", "op": "exists", "value": True}],
            },
            entry={"rule": "reentry"},
        )
    )
    up, down, bus_entered = (make_customer(f"{x}@example.jp") for x in ("up", "down", "bus"))
    events_insert(
        [
            EventRow(
                type="tier.changed",
                customer_id=c.pk,
                occurred_at=now(),
                properties={"from": None, "to": to},
                message_id=f"t:{c.pk}",
            )
            for c, to in ((up, "gold"), (down, None))
        ]
    )
    commit(event_record, type="tier.changed", customer=bus_entered, properties={"to": "gold"})
    assert services.journeys_poll_stream() == {journey.pk: 1}
    assert set(Enrolment.objects.values_list("customer_id", flat=True)) == {up.pk, bus_entered.pk}
    assert services.journeys_poll_stream() == {}  # the cursor moved on
