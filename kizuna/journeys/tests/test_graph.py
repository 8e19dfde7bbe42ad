"""Bad graphs are refused at save with the step at fault named, and nothing is written."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from kizuna.journeys import graph as g
from kizuna.journeys import services
from kizuna.journeys.models import Journey
from kizuna.journeys.tests.conftest import graph
from kizuna.messaging.models import Channel, Template


def refused(data: dict[str, Any]) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        services.journey_save(data={"name": "x", "graph": data})
    assert Journey.objects.count() == 0
    return caught.value.message_dict


def test_a_valid_graph_saves(mail: Channel, thanks: Template) -> None:
    journey = services.journey_save(data={"name": "Thanks", "graph": graph(mail)})
    assert journey.status == "draft" and journey.draft["start"] == "send"


def test_unreachable_step_is_named(mail: Channel, thanks: Template) -> None:
    data = graph(mail)
    data["nodes"].append({"id": "orphan", "type": "exit"})
    errors = refused(data)
    assert list(errors) == ["nodes.orphan"]
    assert "cannot be reached" in errors["nodes.orphan"][0]


def test_cycle_without_a_wait_is_named(mail: Channel, thanks: Template) -> None:
    data = graph(mail)
    data["nodes"][2]["next"] = "again"  # points -> again -> points: no wait on the loop
    data["nodes"].append(
        {
            "id": "again",
            "type": "branch",
            "condition": {"field": "traits.vip", "op": "eq", "value": True},
            "yes": "points",
            "no": "done",
        }
    )
    errors = refused(data)
    assert list(errors) in (["nodes.points"], ["nodes.again"])
    assert "loop without a wait" in next(iter(errors.values()))[0]


def test_cycle_through_a_wait_is_allowed(mail: Channel, thanks: Template) -> None:
    data = graph(mail)
    data["nodes"][2]["next"] = "wait"  # points -> wait -> points: the wait breaks the loop
    data["nodes"].pop()
    services.journey_save(data={"name": "loop", "graph": data})


def test_missing_and_unknown_template(mail: Channel, thanks: Template) -> None:
    data = graph(mail)
    del data["nodes"][0]["template"]
    assert refused(data) == {"nodes.send": ["Choose a message template."]}
    data["nodes"][0]["template"] = "no-such"
    assert refused(data) == {"nodes.send": ["There is no message template no-such."]}


def test_unknown_channel_and_wrong_kind(mail: Channel, thanks: Template) -> None:
    data = graph(mail)
    data["nodes"][0]["channel"] = "nope"
    assert refused(data) == {"nodes.send": ["There is no channel nope."]}
    data["nodes"][0]["channel"] = mail.name
    data["nodes"][0]["type"] = "webhook"
    assert "webhook channel" in refused(data)["nodes.send"][0]


def test_trigger_on_unknown_event_type(mail: Channel, thanks: Template) -> None:
    data = graph(mail, trigger={"type": "event", "event": "order.plaecd"})
    errors = refused(data)
    assert list(errors) == ["trigger"] and "order.plaecd" in errors["trigger"][0]


def test_event_type_seen_in_the_stream_is_known(mail: Channel, thanks: Template) -> None:
    from kizuna.customers.services import event_record

    event_record(type="Wishlist Added", anonymous_id="anon-1", properties={})
    services.journey_save(
        data={
            "name": "w",
            "graph": graph(mail, trigger={"type": "event", "event": "Wishlist Added"}),
        }
    )


def test_unknown_event_in_goal_and_wait(mail: Channel, thanks: Template) -> None:
    data = graph(mail, goal={"event": "nothing.ever", "within_days": 7})
    data["nodes"][1] = {
        "id": "wait",
        "type": "wait_event",
        "event": "never.seen",
        "timeout": "2d",
        "next": "points",
        "timeout_next": "done",
    }
    errors = refused(data)
    assert set(errors) == {"goal", "nodes.wait"}


@pytest.mark.parametrize("duration", ["3 days", "0x", -5, "999d", None, True])
def test_bad_durations(mail: Channel, thanks: Template, duration: Any) -> None:
    data = graph(mail)
    data["nodes"][1]["duration"] = duration
    assert list(refused(data)) == ["nodes.wait"]


def test_branch_without_both_exits(mail: Channel, thanks: Template) -> None:
    data = graph(mail)
    data["nodes"][1] = {
        "id": "wait",
        "type": "branch",
        "condition": {"field": "traits.vip", "op": "eq", "value": True},
        "yes": "points",
    }
    data["nodes"].append({"id": "spare", "type": "exit"})
    errors = refused(data)
    assert errors["nodes.wait"] == ["This step needs its no exit."]


def test_exit_to_a_missing_step(mail: Channel, thanks: Template) -> None:
    data = graph(mail)
    data["nodes"][2]["next"] = "ghost"
    errors = refused(data)
    assert errors["nodes.points"] == ["next leads to ghost, which is not a step."]


def test_structure_errors_without_database() -> None:
    assert g.check_structure([]) == {"graph": ["A journey graph is a JSON object."]}
    errors = g.check_structure({"trigger": {"type": "telepathy"}, "nodes": []})
    assert set(errors) == {"trigger", "nodes"}
    errors = g.check_structure(
        {
            "trigger": {"type": "inactivity", "days": 0},
            "start": "a",
            "holdout_percent": 10,
            "nodes": [{"id": "a", "type": "exit"}, {"id": "a", "type": "exit"}],
        }
    )
    assert set(errors) == {"trigger", "holdout_percent", "nodes.a"}


def test_durations_and_buckets() -> None:
    assert g.parse_duration("90m") == timedelta(minutes=90)
    assert g.parse_duration("2d") == timedelta(days=2)
    assert g.parse_duration(30) == timedelta(seconds=30)
    assert g.parse_duration("2w") is None
    assert g.bucket("x", 1) == g.bucket("x", 1)
    shares = sum(g.bucket("split", i, "n") < 30 for i in range(2000)) / 2000
    assert 0.26 < shares < 0.34


def test_reference_checks_for_segments_and_coupons(mail: Channel, thanks: Template) -> None:
    data = copy.deepcopy(graph(mail, trigger={"type": "segment_entered", "segment": "ghosts"}))
    data["nodes"][2] = {"id": "points", "type": "issue_coupon", "coupon": "No such", "next": "seg"}
    data["nodes"].insert(
        3, {"id": "seg", "type": "add_to_segment", "segment": "none", "next": "done"}
    )
    errors = refused(data)
    assert set(errors) == {"trigger", "nodes.points", "nodes.seg"}


def _wait_event(**extra: Any) -> dict[str, Any]:
    return {
        "id": "wait",
        "type": "wait_event",
        "event": "order.placed",
        "timeout": "2d",
        "next": "points",
        "timeout_next": "done",
        **extra,
    }


def test_property_filters_in_both_forms_save(mail: Channel, thanks: Template) -> None:
    data = graph(
        mail,
        trigger={"type": "event", "event": "order.placed", "where": {"total": {"gte": 5000}}},
        goal={"event": "order.placed", "where": {"channel": "web"}},
    )
    data["nodes"][1] = _wait_event(
        where={"total": {"gte": 3000, "lt": 100000}},
        filters=[{"property": "items", "op": "exists", "value": True}],
    )
    services.journey_save(data={"name": "filters", "graph": data})
    assert g.filters_of(data["nodes"][1]) == [
        {"property": "items", "op": "exists", "value": True},
        {"property": "total", "op": "gte", "value": 3000},
        {"property": "total", "op": "lt", "value": 100000},
    ]
    assert g.filters_of(data["goal"]) == [{"property": "channel", "op": "eq", "value": "web"}]


def test_unknown_operator_is_named_on_trigger_goal_and_wait(
    mail: Channel, thanks: Template
) -> None:
    data = graph(
        mail,
        trigger={"type": "event", "event": "order.placed", "where": {"total": {"atleast": 5000}}},
        goal={"event": "order.placed", "filters": [{"property": "total", "op": "over"}]},
    )
    data["nodes"][1] = _wait_event(where={"total": {"bigger": 1}})
    errors = refused(data)
    assert set(errors) == {"trigger", "goal", "nodes.wait"}
    assert errors["trigger"][0].startswith("Unknown operator atleast on total")
    assert errors["goal"][0].startswith("Unknown operator over on total")
    assert errors["nodes.wait"][0].startswith("Unknown operator bigger on total")


@pytest.mark.parametrize(
    ("where", "problem"),
    [
        ({"tier": {"in": "gold"}}, "The operator in on tier needs a list of values."),
        ({"total": {"gte": [1]}}, "The operator gte on total needs a number or a text."),
        ({"coupon": {"exists": "yes"}}, "The operator exists on coupon takes true or false."),
        ("total >= 5000", "where must be an object of property: {operator: value}."),
    ],
)
def test_bad_filter_values_on_a_wait_event(
    mail: Channel, thanks: Template, where: Any, problem: str
) -> None:
    data = graph(mail)
    data["nodes"][1] = _wait_event(where=where)
    assert refused(data) == {"nodes.wait": [problem]}


def test_wait_until_day_option(mail: Channel, thanks: Template) -> None:
    data = graph(mail)
    data["nodes"][1] = {
        "id": "wait",
        "type": "wait_until",
        "time": "10:00",
        "day": "next_business_day",
        "next": "points",
    }
    assert services.graph_errors(data) == {}
    data["nodes"][1]["day"] = "weekday"
    errors = refused(data)
    assert errors == {
        "nodes.wait": ["Unknown day weekday (use any, business_day, next_business_day)."]
    }
