"""Property filters on the event trigger and on wait-for-event (both the `filters` list and
the `where` object), and waits that land on a Japanese business day (jp_calendar)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from kizuna.core.timeutil import JST, now
from kizuna.customers.models import Customer, Event
from kizuna.customers.services import event_record
from kizuna.journeys import selectors, services
from kizuna.journeys.models import Enrolment
from kizuna.journeys.services import Entrant
from kizuna.journeys.tests.conftest import graph, live, make_customer
from kizuna.loyalty.models import LedgerEntry
from kizuna.messaging.models import Channel, Template


def order(customer: Customer, commit: Any, **props: Any) -> None:
    commit(event_record, type="order.placed", customer=customer, properties=props)


def test_event_trigger_where_filter(mail: Channel, thanks: Template, commit: Any) -> None:
    live(
        graph(
            mail,
            trigger={"type": "event", "event": "order.placed", "where": {"total": {"gte": 5000}}},
        )
    )
    small, big = make_customer("s@example.jp"), make_customer("b@example.jp")
    order(small, commit, total=4999)
    order(big, commit, total=5000)
    assert list(Enrolment.objects.values_list("customer_id", flat=True)) == [big.pk]


def test_wait_event_only_ends_on_an_event_that_passes_its_filters(
    mail: Channel, thanks: Template, commit: Any
) -> None:
    data = graph(mail)
    data["nodes"][1] = {
        "id": "wait",
        "type": "wait_event",
        "event": "email.clicked",
        "where": {"link": {"contains": "/sale"}},
        "timeout": "2d",
        "next": "points",
        "timeout_next": "done",
    }
    live(data)
    hanako = make_customer("h@example.jp")
    order(hanako, commit, total=100)
    enrolment = Enrolment.objects.get(customer=hanako)
    assert (enrolment.state, enrolment.node) == ("waiting", "wait")
    commit(event_record, type="email.clicked", customer=hanako, properties={"link": "/about"})
    enrolment.refresh_from_db()
    assert (enrolment.state, enrolment.event_seen) == ("waiting", False)  # filter refused it
    commit(event_record, type="email.clicked", customer=hanako, properties={"link": "/sale/1"})
    enrolment.refresh_from_db()
    assert (enrolment.state, enrolment.node) == ("completed", "done")
    assert LedgerEntry.objects.filter(account__customer_id=hanako.pk).count() == 1  # event exit


def test_simulation_applies_wait_event_and_goal_filters(
    mail: Channel, thanks: Template, commit: Any
) -> None:
    data = graph(mail, goal={"event": "order.placed", "where": {"total": {"gte": 10000}}})
    data["nodes"][1] = {
        "id": "wait",
        "type": "wait_event",
        "event": "email.clicked",
        "filters": [{"property": "link", "op": "eq", "value": "/sale"}],
        "timeout": "1h",
        "next": "points",
        "timeout_next": "done",
    }
    a, b = make_customer("a@example.jp"), make_customer("b@example.jp")
    order(a, commit, total=100)
    order(b, commit, total=100)
    commit(event_record, type="email.clicked", customer=a, properties={"link": "/sale"})
    commit(event_record, type="email.clicked", customer=b, properties={"link": "/faq"})
    placed = now() - timedelta(hours=2)
    Event.objects.filter(type="order.placed").update(occurred_at=placed)
    Event.objects.filter(type="email.clicked").update(occurred_at=placed + timedelta(minutes=5))
    result = selectors.journey_simulate(graph=data, days=1)
    steps = {row["node"]: row["count"] for row in result["steps"]}
    assert result["entrants"] == 2 and steps["points"] == 1  # only a's click passes
    assert result["converted_treated"] == 0  # the 100-yen orders are not the 10,000 goal


def _business(mail: Channel, day: str, time: str = "10:00") -> Any:
    data = graph(mail)
    data["nodes"][1] = {"id": "wait", "type": "wait_until", "time": time, "day": day}
    data["nodes"][1]["next"] = "points"
    return live(data)


@pytest.mark.parametrize(
    ("day", "entered", "due"),
    [
        # Friday afternoon -> the next business day skips the weekend and Monday 23 Nov
        # (勤労感謝の日): Tuesday 10:00.
        ("next_business_day", datetime(2026, 11, 20, 15, 0), datetime(2026, 11, 24, 10, 0)),
        # Friday morning: a business day with 10:00 still ahead -> today.
        ("business_day", datetime(2026, 11, 20, 9, 0), datetime(2026, 11, 20, 10, 0)),
        # ... but next_business_day is never today.
        ("next_business_day", datetime(2026, 11, 20, 9, 0), datetime(2026, 11, 24, 10, 0)),
        # Saturday -> Tuesday (Monday is a holiday).
        ("business_day", datetime(2026, 11, 21, 9, 0), datetime(2026, 11, 24, 10, 0)),
        # 30 Dec -> past the New Year break (31 Dec - 3 Jan) to Monday 4 Jan.
        ("next_business_day", datetime(2026, 12, 30, 15, 0), datetime(2027, 1, 4, 10, 0)),
        # "any" keeps the plain next 10:00, weekend or not.
        ("any", datetime(2026, 11, 20, 15, 0), datetime(2026, 11, 21, 10, 0)),
    ],
)
def test_wait_until_a_business_day(
    mail: Channel, thanks: Template, day: str, entered: datetime, due: datetime
) -> None:
    journey = _business(mail, day)
    customer = make_customer("t@example.jp", timezone="Asia/Tokyo")
    at = entered.replace(tzinfo=JST)
    services.enrol_many(journey=journey, entrants=[Entrant(customer.pk)], at=at)
    services.journeys_run_due(at=at)
    enrolment = Enrolment.objects.get(customer=customer)
    assert enrolment.state == "waiting"
    assert enrolment.next_due_at == due.replace(tzinfo=JST)
    services.journeys_run_due(at=due.replace(tzinfo=JST) - timedelta(seconds=1))
    assert Enrolment.objects.get(customer=customer).node == "wait"  # not before
    services.journeys_run_due(at=due.replace(tzinfo=JST))
    assert Enrolment.objects.get(customer=customer).state == "completed"


def test_business_day_is_the_customers_local_day(mail: Channel, thanks: Template) -> None:
    """A customer in Los Angeles: Sunday 22 Nov 20:00 there is Monday morning in Tokyo, but
    their next business day is their Monday 23 Nov (a Japanese holiday: skipped) -> Tue."""
    customer = make_customer("la@example.jp", timezone="America/Los_Angeles")
    node = {"id": "w", "type": "wait_until", "time": "09:00", "day": "next_business_day"}
    from zoneinfo import ZoneInfo

    la = ZoneInfo("America/Los_Angeles")
    due = services.wait_until_time(customer, node, datetime(2026, 11, 22, 20, 0, tzinfo=la))
    assert due == datetime(2026, 11, 24, 9, 0, tzinfo=la)
