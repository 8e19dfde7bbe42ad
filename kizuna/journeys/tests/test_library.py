"""The eight ready-made journeys instantiate into valid drafts and go live; the results
compare the goal against the holdout; the dry run counts without writing anything."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from kizuna.core.timeutil import now
from kizuna.customers.models import Event
from kizuna.customers.services import event_record
from kizuna.journeys import library, selectors, services
from kizuna.journeys.models import Enrolment, Journey, StepExecution
from kizuna.journeys.services import Entrant
from kizuna.journeys.tests.conftest import graph, live, make_customer
from kizuna.messaging.models import Channel, Delivery, Template


@pytest.mark.parametrize("key", library.ORDER)
def test_each_template_instantiates_valid_and_publishes(mail: Channel, key: str) -> None:
    journey = services.journey_from_template(key=key, email_channel=mail)
    assert journey.template_key == key and journey.status == "draft"
    services.graph_validate(graph=journey.draft)
    version = services.journey_publish(journey=journey)
    assert version.number == 1
    sends = [n for n in journey.draft["nodes"] if n["type"] == "send"]
    assert sends and {n["channel"] for n in sends} == {mail.name}
    assert Template.objects.filter(slug__in=[n["template"] for n in sends]).count() == len(
        {n["template"] for n in sends}
    )


def test_eight_templates_and_a_second_instance_reuses_messages(mail: Channel) -> None:
    assert len(library.templates()) == 8
    services.journey_from_template(key="birthday_coupon", email_channel=mail)
    services.journey_from_template(key="birthday_coupon", email_channel=mail, name="Again")
    assert Journey.objects.count() == 2
    assert Template.objects.filter(slug="journey-birthday").count() == 1


def test_unknown_template_and_channel_are_refused(mail: Channel) -> None:
    with pytest.raises(ValidationError) as caught:
        services.journey_from_template(key="nope", email_channel=mail)
    assert "template" in caught.value.message_dict
    with pytest.raises(ValidationError) as caught:
        services.journey_from_template(key="welcome", email_channel=None)
    assert "email_channel" in caught.value.message_dict
    assert not Journey.objects.exists()


def test_results_compare_treated_and_holdout(mail: Channel, thanks: Template, commit: Any) -> None:

    data = graph(
        mail,
        trigger={"type": "event", "event": "Cart Abandoned"},
        goal={"event": "order.placed", "within_days": 7},
        holdout_percent=50,
    )
    journey = live(data)
    people = [make_customer(f"r{i}@example.jp") for i in range(20)]
    services.enrol_many(journey=journey, entrants=[Entrant(c.pk) for c in people])
    services.journeys_run_due()
    treated = list(Enrolment.objects.filter(holdout=False).values_list("customer_id", flat=True))
    Enrolment.objects.filter(customer_id__in=treated).update(converted_at=now())
    results = selectors.journey_results(journey=journey)
    assert results["treated"] + results["holdout"] == 20
    assert results["conversions"] == {"treated": len(treated), "holdout": 0}
    comparison = results["comparison"]
    assert comparison["treated_rate"] == 1.0 and comparison["holdout_rate"] == 0.0
    assert comparison["p_value"] < 0.001 and comparison["significant"] is True
    steps = {row["node"]: row for row in results["steps"]}
    assert steps["send"]["entered"] == len(treated) and steps["send"]["completed"] == len(treated)
    assert steps["wait"]["waiting"] == len(treated)
    assert steps["send"]["conversions"] == len(treated)


def test_revenue_attributed_within_the_goal_window(
    mail: Channel, thanks: Template, commit: Any
) -> None:
    from kizuna.commerce.models import Order

    journey = live(graph(mail, goal={"event": "order.placed", "within_days": 7}))
    buyer = make_customer("buyer@example.jp")
    services.enrol_many(journey=journey, entrants=[Entrant(buyer.pk)])
    entered = Enrolment.objects.get().entered_at
    for number, days, total in (("A1", 1, 4000), ("A2", 10, 9000), ("A0", -1, 7000)):
        Order.objects.create(
            number=number,
            customer=buyer,
            placed_at=entered + timedelta(days=days),
            subtotal_minor=total,
            total_minor=total,
        )
    revenue = selectors.journey_results(journey=journey)["revenue"]
    assert (revenue["treated_minor"], revenue["treated_orders"]) == (4000, 1)


def test_z_test_mirrors_the_textbook_figures() -> None:
    out = selectors.two_proportion_z(120, 1000, 90, 1000)
    assert out["lift"] == 0.03 and out["z"] == pytest.approx(2.1883, abs=1e-3)
    assert out["p_value"] == pytest.approx(0.0286, abs=1e-3)
    assert selectors.two_proportion_z(0, 0, 0, 10)["p_value"] is None


def test_dry_run_counts_past_entrants_without_side_effects(mail: Channel, thanks: Template) -> None:
    data = graph(mail, trigger={"type": "event", "event": "Cart Abandoned"})
    data["nodes"][1] = {
        "id": "wait",
        "type": "wait_event",
        "event": "order.placed",
        "timeout": "2d",
        "next": "points",
        "timeout_next": "done",
    }
    data["goal"] = {"event": "order.placed", "within_days": 7}
    a, b, c = (make_customer(f"{x}@example.jp") for x in "abc")
    past = now() - timedelta(days=10)
    for customer in (a, b, c):
        event_record(type="Cart Abandoned", customer=customer, occurred_at=past, properties={})
    event_record(type="Cart Abandoned", customer=a, occurred_at=past, properties={})  # again
    event_record(type="order.placed", customer=a, occurred_at=past + timedelta(days=1))
    event_record(type="Cart Abandoned", customer=c, occurred_at=now() - timedelta(days=40))
    events_before = Event.objects.count()
    result = selectors.journey_simulate(graph=data, days=30)
    assert (result["entrants"], result["customers"], result["treated"]) == (3, 3, 3)
    assert result["converted_treated"] == 1
    counts = {row["node"]: row["count"] for row in result["steps"]}
    # a bought during the wait (the goal ends their path); b and c time out to the exit
    assert counts == {"send": 3, "wait": 3, "points": 0, "done": 2}
    assert result["sends"] == 3
    assert not Journey.objects.exists() and not Enrolment.objects.exists()
    assert not StepExecution.objects.exists() and not Delivery.objects.exists()
    assert Event.objects.count() == events_before
