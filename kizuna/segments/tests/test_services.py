"""Materialised membership, entered/left events, static lists, refresh triggers."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError

from kizuna.core import events as bus
from kizuna.customers.merge import customer_merge, customer_unmerge
from kizuna.customers.models import Customer, Event
from kizuna.customers.services import customer_create, customer_update
from kizuna.segments import services, subscribers, tasks
from kizuna.segments.models import Segment, SegmentMembership, SegmentSnapshot
from kizuna.segments.selectors import segment_customers

from .conftest import World

pytestmark = pytest.mark.django_db


def doc(*conditions: dict[str, Any], match: str = "all") -> dict[str, Any]:
    return {"version": 1, "match": match, "conditions": list(conditions)}


TOKYO = {"field": "profile.prefecture", "op": "eq", "value": "JP-13"}


def member_ids(segment: Segment) -> set[int]:
    return set(
        SegmentMembership.objects.filter(segment=segment).values_list("customer_id", flat=True)
    )


def timeline(customer: Customer) -> list[tuple[str, Any]]:
    return list(
        Event.objects.filter(customer=customer, type__startswith="segment.")
        .order_by("id")
        .values_list("type", "properties__segment")
    )


def test_refresh_materialises_and_records_entered_and_left_once(world: World) -> None:
    published: list[bus.DomainEvent] = []
    bus.subscribe("segment.entered", published.append)
    bus.subscribe("segment.left", published.append)
    segment = services.segment_save(data={"name": "Tokyo", "rules": doc(TOKYO)})
    seen_before = Customer.objects.get(pk=world.a.pk).last_seen_at

    first = services.segment_refresh(segment=segment)
    assert (first.size, first.entered, first.left) == (1, 1, 0)
    assert member_ids(segment) == {world.a.pk}  # the merged-away profile is not a member
    assert timeline(world.a) == [("segment.entered", "tokyo")]
    # being computed into a segment is not being seen
    assert Customer.objects.get(pk=world.a.pk).last_seen_at == seen_before

    again = services.segment_refresh(segment=segment)
    assert (again.size, again.entered, again.left) == (1, 0, 0)
    assert timeline(world.a) == [("segment.entered", "tokyo")]

    customer_update(customer=world.a, data={"prefecture": "JP-27"})
    customer_update(customer=world.c, data={"prefecture": "JP-13"})
    third = services.segment_refresh(segment=segment)
    assert (third.size, third.entered, third.left) == (1, 1, 1)
    assert member_ids(segment) == {world.c.pk}
    assert timeline(world.a) == [("segment.entered", "tokyo"), ("segment.left", "tokyo")]
    assert timeline(world.c) == [("segment.entered", "tokyo")]
    assert timeline(world.b) == []
    sizes = list(
        SegmentSnapshot.objects.filter(segment=segment)
        .order_by("id")
        .values_list("size", "entered", "left")
    )
    assert sizes == [(1, 1, 0), (1, 0, 0), (1, 1, 1)]
    segment.refresh_from_db()
    assert segment.member_count == 1 and segment.refreshed_at == third.at
    # on the bus only after commit (this test's transaction never commits)
    assert published == []


def test_entered_and_left_are_published_after_commit(
    world: World, django_capture_on_commit_callbacks: Any
) -> None:
    published: list[bus.DomainEvent] = []
    bus.subscribe("segment.entered", published.append)
    segment = services.segment_save(data={"name": "Tokyo", "rules": doc(TOKYO)})
    with django_capture_on_commit_callbacks(execute=True):
        services.segment_refresh(segment=segment)
    assert [(e.type, e.customer_id, e.properties["segment_id"]) for e in published] == [
        ("segment.entered", world.a.pk, segment.pk)
    ]


def test_a_failing_refresh_writes_nothing(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    segment = services.segment_save(data={"name": "Tokyo", "rules": doc(TOKYO)})

    def broken(rows: Any) -> int:
        raise RuntimeError("disk full")

    monkeypatch.setattr(services, "events_insert", broken)
    with pytest.raises(RuntimeError):
        services.segment_refresh(segment=segment)
    assert member_ids(segment) == set()
    assert not SegmentSnapshot.objects.filter(segment=segment).exists()


def test_static_upload_by_email_external_id_and_customer_id(world: World) -> None:
    from kizuna.customers.services import identity_add

    identity_add(customer=world.b, kind="external", value="POS-42")
    segment = services.segment_save(data={"name": "Fair visitors", "kind": "static"})
    result = services.segment_upload_static(
        segment=segment, text="Name,Email\nA,A@X.JP\nC,c@x.jp\n"
    )
    assert (result.matched, result.entered, result.left) == (2, 2, 0)
    assert set(segment_customers(segment=segment).values_list("pk", flat=True)) == {
        world.a.pk,
        world.c.pk,
    }
    result = services.segment_upload_static(segment=segment, text="external_id\nPOS-42\n")
    assert (result.entered, result.left) == (1, 2)
    assert timeline(world.a) == [
        ("segment.entered", "fair-visitors"),
        ("segment.left", "fair-visitors"),
    ]
    result = services.segment_upload_static(
        segment=segment, text=f"{world.a.pk}\n{world.merged.pk}\n", key="customer_id", replace=False
    )
    # the merged profile resolves to its survivor: a once
    assert (result.matched, result.entered, result.left) == (1, 1, 0)
    assert member_ids(segment) == {world.a.pk, world.b.pk}


def test_static_upload_refuses_unknown_rows_unless_asked_to_skip(world: World) -> None:
    segment = services.segment_save(data={"name": "List", "kind": "static"})
    with pytest.raises(ValidationError) as info:
        services.segment_upload_static(
            segment=segment, text="email\na@x.jp\nnobody@x.jp\nnot-an-email\n"
        )
    assert set(info.value.message_dict) == {"rows[3]", "rows[4]"}
    assert member_ids(segment) == set()
    assert not Event.objects.filter(type__startswith="segment.").exists()
    result = services.segment_upload_static(
        segment=segment, text="email\na@x.jp\nnobody@x.jp\n", skip_unknown=True
    )
    assert result.entered == 1 and result.unknown == ["rows[3]: No customer with nobody@x.jp."]
    dynamic = services.segment_save(data={"name": "Dyn", "rules": doc(TOKYO)})
    with pytest.raises(ValidationError) as info:
        services.segment_upload_static(segment=dynamic, text="email\na@x.jp\n")
    assert list(info.value.message_dict) == ["kind"]


def test_save_validates_fields_and_kind_cannot_change(world: World) -> None:
    with pytest.raises(ValidationError) as info:
        services.segment_save(data={"name": "", "kind": "magic", "colour": "red"})
    assert set(info.value.message_dict) == {"name", "kind", "colour"}
    static = services.segment_save(data={"name": "Static", "kind": "static"})
    with pytest.raises(ValidationError) as info:
        services.segment_save(segment=static, data={"kind": "dynamic"})
    assert list(info.value.message_dict) == ["kind"]
    with pytest.raises(ValidationError) as info:
        services.segment_save(data={"name": "S2", "kind": "static", "rules": doc(TOKYO)})
    assert list(info.value.message_dict) == ["rules"]
    services.segment_save(data={"name": "Tokyo", "rules": doc(TOKYO)})
    second = services.segment_save(data={"name": "Tokyo", "rules": doc(TOKYO)})
    assert second.slug == "tokyo-2"
    japanese = services.segment_save(data={"name": "休眠顧客", "rules": doc(TOKYO)})
    assert japanese.slug == "segment"
    with pytest.raises(ValidationError) as info:
        services.segment_save(data={"name": "X", "slug": "tokyo", "rules": doc(TOKYO)})
    assert list(info.value.message_dict) == ["slug"]


def test_merge_moves_static_memberships_to_the_survivor(world: World) -> None:
    segment = services.segment_save(data={"name": "List", "kind": "static"})
    other = customer_create(data={"family_name": "重複", "email": "dup@x.jp"})
    services.segment_upload_static(segment=segment, text="email\ndup@x.jp\n")
    customer_merge(survivor=world.c, merged=other)
    assert member_ids(segment) == {world.c.pk}


def test_unmerge_gives_the_static_lists_back(world: World) -> None:
    only_other = services.segment_save(data={"name": "Fair", "kind": "static"})
    both = services.segment_save(data={"name": "Newsletter", "kind": "static"})
    only_survivor = services.segment_save(data={"name": "VIP", "kind": "static"})
    other = customer_create(data={"family_name": "重複", "email": "dup@x.jp"})
    services.segment_upload_static(segment=only_other, text="email\ndup@x.jp\n")
    services.segment_upload_static(segment=both, text=f"customer_id\n{other.pk}\n{world.c.pk}\n")
    services.segment_upload_static(segment=only_survivor, text=f"customer_id\n{world.c.pk}\n")
    record = customer_merge(survivor=world.c, merged=other)
    assert member_ids(only_other) == member_ids(both) == {world.c.pk}

    customer_unmerge(merge=record)

    assert member_ids(only_other) == {other.pk}
    assert member_ids(both) == {other.pk, world.c.pk}
    assert member_ids(only_survivor) == {world.c.pk}


def test_delete_refuses_a_segment_others_refer_to(world: World) -> None:
    base = services.segment_save(data={"name": "Base", "rules": doc(TOKYO)})
    services.segment_save(
        data={
            "name": "User",
            "rules": doc({"field": "segment", "op": "includes", "value": base.pk}),
        }
    )
    with pytest.raises(ValidationError):
        services.segment_delete(segment=base)
    assert Segment.objects.filter(pk=base.pk).exists()


def test_domain_events_request_one_debounced_refresh(world: World) -> None:
    from huey.contrib.djhuey import HUEY

    HUEY.get(tasks.PENDING_KEY)  # no refresh pending
    HUEY.storage.flush_schedule()
    subscribers._skip_until["at"] = float("-inf")
    event = bus.DomainEvent(type="order.placed", occurred_at=world.a.created_at, customer_id=1)
    subscribers.refresh_on_event(event)
    subscribers.refresh_on_event(event)
    subscribers.refresh_on_event(
        bus.DomainEvent(type="segment.entered", occurred_at=world.a.created_at, customer_id=1)
    )
    assert [t.name for t in HUEY.scheduled()] == ["segments_refresh_soon"]
    # another process (or this one, later) finds the refresh already pending
    subscribers._skip_until["at"] = float("-inf")
    subscribers.refresh_on_event(event)
    assert len(HUEY.scheduled()) == 1
    # the refresh runs: the next event asks for the next one
    segment = services.segment_save(data={"name": "Tokyo", "rules": doc(TOKYO)})
    tasks.segments_refresh_soon.call_local()
    assert member_ids(segment) == {world.a.pk}
    subscribers._skip_until["at"] = float("-inf")
    subscribers.refresh_on_event(event)
    assert len(HUEY.scheduled()) == 2
    HUEY.storage.flush_schedule()
    HUEY.get(tasks.PENDING_KEY)


def test_a_referred_segment_whose_rules_no_longer_compile_is_reported(world: World) -> None:
    from kizuna.customers.models import TraitDefinition
    from kizuna.segments.selectors import segment_customers

    vip = services.segment_save(
        data={"name": "VIP", "rules": doc({"field": "trait.vip", "op": "is", "value": True})}
    )
    user = services.segment_save(
        data={
            "name": "Uses VIP",
            "rules": doc({"field": "segment", "op": "includes", "value": vip.pk}),
        }
    )
    assert set(segment_customers(segment=user).values_list("pk", flat=True)) == {world.a.pk}
    TraitDefinition.objects.filter(key="vip").delete()
    with pytest.raises(ValidationError) as info:
        segment_customers(segment=user)
    assert info.value.message_dict == {
        f"segment[{vip.pk}].conditions[0].field": ["unknown field 'trait.vip'"]
    }
    # the scheduled refresh skips it and goes on
    assert [r.segment_id for r in services.segments_refresh_all()] == []


def test_refresh_of_rules_with_subqueries_finds_who_left(world: World) -> None:
    """The left/entered statements nest the compiled condition (with its own EXISTS and
    IN subqueries) inside another query: members are still judged one by one correctly."""
    from kizuna.analytics.models import CustomerScore

    rules = doc(
        {"field": "score.churn_risk", "op": "gt", "value": 0.05},
        {"field": "event.count", "event_type": "Product Viewed", "op": "gte", "value": 1},
        {"field": "consent", "purpose": "marketing", "channel": "email", "op": "is", "value": True},
    )
    segment = services.segment_save(data={"name": "Mixed", "rules": rules})
    assert (services.segment_refresh(segment=segment).entered, member_ids(segment)) == (
        1,
        {world.a.pk},
    )
    CustomerScore.objects.filter(customer=world.a).update(p_alive=0.99)
    result = services.segment_refresh(segment=segment)
    assert (result.entered, result.left, member_ids(segment)) == (0, 1, set())
