"""Every field kind, AND/OR nesting and the one-query evaluation, on the database the suite
runs on (SQLite by default, PostgreSQL with KIZUNA_TEST_DB=postgresql: the same expected
sets on both)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError

from kizuna.segments.selectors import rules_preview, segment_customers
from kizuna.segments.services import segment_save, segment_upload_static

from .conftest import World

PV = {"field": "event.count", "event_type": "Product Viewed"}


def doc(*conditions: dict[str, Any], match: str = "all") -> dict[str, Any]:
    return {"version": 1, "match": match, "conditions": list(conditions)}


def members(world: World, rules: dict[str, Any]) -> set[str]:
    return world.names(set(rules_preview(rules=rules).values_list("pk", flat=True)))


CASES: list[tuple[dict[str, Any], set[str]]] = [
    # profile
    ({"field": "profile.prefecture", "op": "eq", "value": "JP-13"}, {"a"}),
    ({"field": "profile.prefecture", "op": "neq", "value": "JP-13"}, {"b", "c"}),
    ({"field": "profile.gender", "op": "in", "value": ["female", "male"]}, {"a", "b"}),
    ({"field": "profile.gender", "op": "not_in", "value": ["female"]}, {"b", "c"}),
    ({"field": "profile.email", "op": "is_set"}, {"a", "c"}),
    ({"field": "profile.email", "op": "is_not_set"}, {"b"}),
    ({"field": "profile.email", "op": "contains", "value": "A@X"}, {"a"}),
    ({"field": "profile.email", "op": "not_contains", "value": "a@"}, {"b", "c"}),
    ({"field": "profile.email", "op": "starts_with", "value": "c@"}, {"c"}),
    ({"field": "profile.birthday_month", "op": "eq", "value": 5}, {"a"}),
    ({"field": "profile.birthday_month", "op": "in", "value": [5, 12]}, {"a", "b"}),
    ({"field": "profile.birthday_month", "op": "neq", "value": 5}, {"b", "c"}),
    ({"field": "profile.birthday", "op": "is_not_set"}, {"c"}),
    ({"field": "profile.birthday", "op": "before", "value": "1989-01-01"}, {"b"}),
    (
        {"field": "profile.birthday", "op": "between", "value": ["1985-01-01", "1990-12-31"]},
        {"a", "b"},
    ),
    ({"field": "profile.locale", "op": "eq", "value": "en"}, {"b"}),
    ({"field": "profile.created_at", "op": "within_last_days", "value": 1}, {"a", "b", "c"}),
    ({"field": "profile.created_at", "op": "more_than_days_ago", "value": 1}, set()),
    ({"field": "profile.first_seen_at", "op": "more_than_days_ago", "value": 30}, {"b"}),
    # traits (per the trait schema)
    ({"field": "trait.vip", "op": "is", "value": True}, {"a"}),
    ({"field": "trait.vip", "op": "is", "value": False}, {"b", "c"}),
    ({"field": "trait.shoe", "op": "gt", "value": 25}, {"b"}),
    ({"field": "trait.shoe", "op": "neq", "value": 24}, {"b", "c"}),
    ({"field": "trait.shoe", "op": "between", "value": [20, 25]}, {"a"}),
    ({"field": "trait.shoe", "op": "is_set"}, {"a", "b"}),
    ({"field": "trait.plan", "op": "eq", "value": "gold"}, {"a"}),
    ({"field": "trait.plan", "op": "not_in", "value": ["gold"]}, {"b", "c"}),
    ({"field": "trait.since", "op": "before", "value": "2024-02-01"}, {"a"}),
    ({"field": "trait.since", "op": "after", "value": "2024-02-01"}, set()),
    # identities and consent
    ({"field": "identity", "op": "includes", "value": "line"}, {"a"}),
    ({"field": "identity", "op": "excludes", "value": "line"}, {"b", "c"}),
    ({"field": "identity", "op": "includes", "value": ["line", "email"]}, {"a", "c"}),
    (
        {"field": "consent", "purpose": "marketing", "channel": "email", "op": "is", "value": True},
        {"a", "c"},
    ),
    (
        {
            "field": "consent",
            "purpose": "marketing",
            "channel": "email",
            "op": "is",
            "value": False,
        },
        {"b"},
    ),
    (
        {"field": "consent", "purpose": "marketing", "channel": "line", "op": "is", "value": True},
        {"c"},
    ),
    # events
    ({**PV, "op": "gte", "value": 3}, {"a"}),
    ({**PV, "within_days": 30, "op": "gte", "value": 1}, {"a"}),
    ({**PV, "op": "eq", "value": 0}, {"c"}),
    ({**PV, "op": "lt", "value": 2}, {"b", "c"}),
    ({**PV, "op": "between", "value": [1, 2]}, {"b"}),
    (
        {
            **PV,
            "where": [{"property": "category", "op": "eq", "value": "shoes"}],
            "op": "gte",
            "value": 1,
        },
        {"a"},
    ),
    (
        {
            **PV,
            "where": [{"property": "price", "op": "gt", "value": 1000}],
            "op": "gte",
            "value": 3,
        },
        {"a"},
    ),
    (
        {
            **PV,
            "where": [{"property": "category", "op": "in", "value": ["bags"]}],
            "op": "gte",
            "value": 1,
        },
        {"b"},
    ),
    (
        {
            **PV,
            "where": [{"property": "category", "op": "neq", "value": "shoes"}],
            "op": "gte",
            "value": 1,
        },
        {"b"},
    ),
    ({**PV, "field": "event.performed", "op": "is", "value": False}, {"c"}),
    ({**PV, "field": "event.performed", "within_days": 30, "op": "is", "value": False}, {"b", "c"}),
    ({**PV, "field": "event.last_at", "op": "more_than_days_ago", "value": 30}, {"b"}),
    ({**PV, "field": "event.last_at", "op": "is_not_set"}, {"c"}),
    # orders
    ({"field": "order.count", "op": "gte", "value": 2}, {"a"}),
    ({"field": "order.count", "op": "eq", "value": 0}, {"c"}),
    ({"field": "order.count", "op": "between", "value": [1, 1]}, {"b"}),
    ({"field": "order.count", "within_days": 30, "op": "gte", "value": 1}, {"a"}),
    ({"field": "order.total_spend", "op": "gte", "value": 2000}, {"a"}),
    ({"field": "order.total_spend", "op": "eq", "value": 0}, {"b", "c"}),
    ({"field": "order.last_at", "op": "within_last_days", "value": 30}, {"a"}),
    ({"field": "order.last_at", "op": "more_than_days_ago", "value": 100}, {"b"}),
    ({"field": "order.last_at", "op": "is_not_set"}, {"c"}),
    ({"field": "order.first_at", "op": "is_set"}, {"a", "b"}),
    ({"field": "order.bought_sku", "op": "includes", "value": "BEANS"}, {"a"}),
    ({"field": "order.bought_sku", "op": "excludes", "value": ["BEANS"]}, {"b", "c"}),
    ({"field": "order.bought_category", "op": "includes", "value": "drinks"}, {"a", "b"}),
    ({"field": "order.bought_category", "op": "includes", "value": "beverages"}, {"a", "b"}),
    (
        {"field": "order.bought_category", "within_days": 30, "op": "includes", "value": "drinks"},
        {"a"},
    ),
    # scores
    ({"field": "score.rfm_segment", "op": "eq", "value": "champions"}, {"a"}),
    ({"field": "score.rfm_segment", "op": "neq", "value": "champions"}, {"b", "c"}),
    ({"field": "score.clv", "op": "gte", "value": 10000}, {"a"}),
    ({"field": "score.clv", "op": "is_not_set"}, {"c"}),
    ({"field": "score.p_alive", "op": "lt", "value": 0.5}, {"b"}),
    ({"field": "score.churn_risk", "op": "gt", "value": 0.5}, {"b"}),
    ({"field": "score.churn_risk", "op": "lte", "value": 0.1}, {"a"}),
    ({"field": "score.at_risk", "op": "is", "value": True}, {"b"}),
    ({"field": "score.at_risk", "op": "is", "value": False}, {"a", "c"}),
    # loyalty
    ({"field": "loyalty.member", "op": "is", "value": True}, {"a", "b"}),
    ({"field": "loyalty.member", "op": "is", "value": False}, {"c"}),
    ({"field": "loyalty.tier", "op": "eq", "value": "gold"}, {"a"}),
    ({"field": "loyalty.tier", "op": "neq", "value": "gold"}, {"b", "c"}),
    ({"field": "loyalty.balance", "op": "gte", "value": 100}, {"a"}),
    ({"field": "loyalty.balance", "op": "lt", "value": 100}, {"b"}),
]


@pytest.mark.parametrize(("condition", "expected"), CASES, ids=lambda v: str(v)[:70])
def test_each_field_and_operator_selects_exactly(
    world: World, condition: dict[str, Any], expected: set[str]
) -> None:
    assert members(world, doc(condition)) == expected


def test_and_or_nesting_and_negated_groups(world: World) -> None:
    kansai_or_tokyo = {"field": "profile.prefecture", "op": "in", "value": ["JP-13", "JP-27"]}
    vip = {"field": "trait.vip", "op": "is", "value": True}
    at_risk = {"field": "score.at_risk", "op": "is", "value": True}
    assert members(world, doc(kansai_or_tokyo, {"match": "any", "conditions": [vip, at_risk]})) == {
        "a",
        "b",
    }
    assert members(world, doc(kansai_or_tokyo, vip, at_risk)) == set()
    gold_woman = {
        "match": "all",
        "conditions": [
            {"field": "profile.gender", "op": "eq", "value": "female"},
            {"field": "loyalty.tier", "op": "eq", "value": "gold"},
        ],
    }
    never_viewed = {**PV, "op": "eq", "value": 0}
    assert members(world, doc(gold_woman, never_viewed, match="any")) == {"a", "c"}
    not_tokyo = {
        "match": "any",
        "negate": True,
        "conditions": [{"field": "profile.prefecture", "op": "eq", "value": "JP-13"}],
    }
    assert members(world, doc(not_tokyo)) == {"b", "c"}
    # three levels deep
    deep = doc(
        {"match": "any", "conditions": [{"match": "all", "conditions": [vip, gold_woman]}, at_risk]}
    )
    assert members(world, deep) == {"a", "b"}
    assert members(world, doc()) == {"a", "b", "c"}  # the empty AND: everyone
    assert members(world, doc(match="any")) == set()  # the empty OR: nobody


def test_membership_of_other_segments_dynamic_and_static(world: World) -> None:
    tokyo = segment_save(
        data={
            "name": "Tokyo",
            "rules": doc({"field": "profile.prefecture", "op": "eq", "value": "JP-13"}),
        }
    )
    listed = segment_save(data={"name": "Listed", "kind": "static"})
    segment_upload_static(segment=listed, text="email\nc@x.jp\n")
    assert members(world, doc({"field": "segment", "op": "includes", "value": tokyo.pk})) == {"a"}
    assert members(world, doc({"field": "segment", "op": "excludes", "value": [listed.pk]})) == {
        "a",
        "b",
    }
    either = doc({"field": "segment", "op": "includes", "value": [tokyo.pk, listed.pk]})
    assert members(world, either) == {"a", "c"}
    nested = segment_save(
        data={
            "name": "Tokyo VIPs",
            "rules": doc(
                {"field": "segment", "op": "includes", "value": tokyo.pk},
                {"field": "trait.vip", "op": "is", "value": True},
            ),
        }
    )
    assert members(world, doc({"field": "segment", "op": "includes", "value": nested.pk})) == {"a"}


def test_evaluating_a_segment_of_every_field_kind_is_one_query(
    world: World, django_assert_num_queries: Any
) -> None:
    listed = segment_save(data={"name": "Listed", "kind": "static"})
    segment_upload_static(segment=listed, text="email\na@x.jp\nc@x.jp\n")
    every_kind = [condition for condition, _expected in CASES[::3]]
    every_kind.append({"field": "segment", "op": "excludes", "value": listed.pk})
    segment = segment_save(data={"name": "Everything", "rules": doc(*every_kind, match="any")})
    qs = segment_customers(segment=segment)
    with django_assert_num_queries(1):
        found = world.names(set(qs.values_list("pk", flat=True)))
    assert found == {"a", "b", "c"}
    with django_assert_num_queries(1):
        assert qs.count() == 3


BAD: list[tuple[Any, dict[str, list[str]]]] = [
    (
        doc({"field": "foo", "op": "eq", "value": 1}),
        {"conditions[0].field": ["unknown field 'foo'"]},
    ),
    (
        doc(
            {"field": "profile.email", "op": "eq", "value": "x"},
            {"field": "profile.gender", "op": "gt", "value": 1},
        ),
        {
            "conditions[1].op": [
                "operator 'gt' is not allowed for profile.gender (a choice); use one of: "
                "eq, neq, in, not_in, is_set, is_not_set"
            ]
        },
    ),
    (
        doc(
            {
                "match": "any",
                "conditions": [{"field": "profile.gender", "op": "eq", "value": "robot"}],
            }
        ),
        {"conditions[0].conditions[0].value": ["'robot' is not one of the allowed values."]},
    ),
    (
        doc({"field": "order.count", "op": "gte", "value": "3"}),
        {"conditions[0].value": ["Expected a number."]},
    ),
    (
        doc({"field": "event.count", "op": "gte", "value": 1}),
        {"conditions[0].event_type": ["This is required."]},
    ),
    (
        doc({**PV, "within_days": 0, "op": "gte", "value": 1}),
        {"conditions[0].within_days": ["Expected a whole number of days (1 to 36500)."]},
    ),
    (
        doc({"field": "trait.nope", "op": "eq", "value": 1}),
        {"conditions[0].field": ["unknown field 'trait.nope'"]},
    ),
    (
        doc({"field": "survey.nps_category", "op": "eq", "value": "promoter"}),
        {"conditions[0].field": ["unknown field 'survey.nps_category'"]},
    ),
    (
        doc({"field": "trait.vip", "op": "gt", "value": 1}),
        {
            "conditions[0].op": [
                "operator 'gt' is not allowed for trait.vip (a boolean); use one of: is"
            ]
        },
    ),
    (
        doc({"field": "loyalty.tier", "op": "eq", "value": "platinum"}),
        {"conditions[0].value": ["'platinum' is not one of the allowed values."]},
    ),
    (
        doc({"field": "profile.birthday", "op": "before", "value": "10/05/1990"}),
        {"conditions[0].value": ["Expected a date as YYYY-MM-DD."]},
    ),
    (
        doc({"field": "order.count", "op": "between", "value": [3, 1]}),
        {"conditions[0].value": ["The first value must not be greater than the second."]},
    ),
    (
        doc({"field": "segment", "op": "includes", "value": 999999}),
        {"conditions[0].value": ["999999 is not one of the allowed values."]},
    ),
    (
        {"version": 2, "match": "either", "conditions": []},
        {"version": ["Expected version 1."], "match": ['Expected "all" or "any".']},
    ),
    ([1, 2], {"rules": ["Expected an object."]}),
]


@pytest.mark.parametrize(("rules", "errors"), BAD, ids=lambda v: str(v)[:60])
def test_bad_rules_are_refused_by_path_and_nothing_is_saved(
    world: World, rules: Any, errors: dict[str, list[str]]
) -> None:
    from kizuna.segments.models import Segment

    with pytest.raises(ValidationError) as info:
        segment_save(data={"name": "Bad", "rules": rules})
    assert info.value.message_dict == errors
    assert not Segment.objects.filter(name="Bad").exists()


def test_cycles_of_segments_are_refused(world: World) -> None:
    first = segment_save(
        data={"name": "First", "rules": doc({"field": "profile.email", "op": "is_set"})}
    )
    second = segment_save(
        data={
            "name": "Second",
            "rules": doc({"field": "segment", "op": "includes", "value": first.pk}),
        }
    )
    third = segment_save(
        data={
            "name": "Third",
            "rules": doc({"field": "segment", "op": "excludes", "value": second.pk}),
        }
    )
    with pytest.raises(ValidationError) as info:
        segment_save(
            segment=first,
            data={
                "rules": doc(
                    {
                        "match": "any",
                        "conditions": [
                            {"field": "profile.email", "op": "is_set"},
                            {"field": "segment", "op": "includes", "value": third.pk},
                        ],
                    }
                )
            },
        )
    assert info.value.message_dict == {
        "conditions[0].conditions[1].value": [
            "segments refer to each other in a cycle: 'First' → 'Third' → 'Second' → 'First'"
        ]
    }
    with pytest.raises(ValidationError) as info:
        segment_save(
            segment=first,
            data={"rules": doc({"field": "segment", "op": "includes", "value": first.pk})},
        )
    assert list(info.value.message_dict) == ["conditions[0].value"]
    first.refresh_from_db()
    assert first.rules == doc({"field": "profile.email", "op": "is_set"})
