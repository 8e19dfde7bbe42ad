"""Merging duplicates and finding them."""

from __future__ import annotations

from datetime import date

import pytest
from auditlog.models import LogEntry
from django.core.exceptions import ValidationError
from django.test import Client

from kizuna.core import events as bus
from kizuna.customers import services
from kizuna.customers.merge import (
    customer_merge,
    customer_unmerge,
    duplicate_groups,
    merge_plan,
    suspected_duplicates,
)
from kizuna.customers.models import ConsentEntry, Customer, CustomerMerge, Event, Identity


def test_merge_plan_fills_only_empty_fields() -> None:
    plan = merge_plan(
        {"family_name": "山田", "email": "", "traits": {"a": 1}},
        {"family_name": "佐藤", "email": "x@example.com", "traits": {"a": 2, "b": 3}},
    )
    assert plan == {"email": "x@example.com", "traits": {"a": 1, "b": 3}}


def test_duplicate_groups_by_email_phone_and_name_birthday_postcode() -> None:
    rows = [
        {
            "id": 1,
            "email": "a@example.com",
            "phone": "",
            "family_name": "山田",
            "given_name": "花子",
            "birthday": date(1990, 1, 1),
            "postal_code": "100-0001",
        },
        {
            "id": 2,
            "email": "A@example.com ",
            "phone": "+819011112222",
            "family_name": "山田",
            "given_name": "花子",
            "birthday": date(1990, 1, 1),
            "postal_code": "100-0001",
        },
        {
            "id": 3,
            "email": "",
            "phone": "+819011112222",
            "family_name": "",
            "given_name": "",
            "birthday": None,
            "postal_code": "",
        },
        {
            "id": 4,
            "email": "z@example.com",
            "phone": "",
            "family_name": "山田",
            "given_name": "花子",
            "birthday": date(1991, 1, 1),
            "postal_code": "100-0001",
        },
    ]
    groups = {(g.reason, tuple(g.customer_ids)) for g in duplicate_groups(rows)}
    assert groups == {
        ("email", (1, 2)),
        ("phone", (2, 3)),
        ("name_birthday_postcode", (1, 2)),
    }


@pytest.mark.django_db
def test_merge_moves_everything_records_and_publishes_inside_the_transaction(admin_user) -> None:
    survivor = services.customer_create(data={"family_name": "山田", "email": "s@example.com"})
    merged = services.customer_create(
        data={"family_name": "山田", "phone": "090-1111-2222", "birthday": "1990-01-01"}
    )
    services.consent_record(
        customer=merged, purpose="marketing", channel="email", status="granted", source="test"
    )
    seen: list[bus.DomainEvent] = []

    def in_tx(event: bus.DomainEvent) -> None:
        # Runs inside the merge: the merged customer's rows have already moved.
        assert not Identity.objects.filter(customer=merged).exists()
        seen.append(event)

    bus.subscribe("customer.merged", in_tx, in_transaction=True)
    record = customer_merge(
        survivor=survivor, merged=merged, actor=admin_user, reason="same person"
    )
    assert seen[0].properties == {
        "survivor_id": survivor.pk,
        "merged_id": merged.pk,
        "merge_id": record.pk,
    }
    survivor.refresh_from_db()
    merged.refresh_from_db()
    assert merged.merged_into_id == survivor.pk
    assert (survivor.phone, survivor.birthday) == ("+819011112222", date(1990, 1, 1))
    assert survivor.email == "s@example.com"
    assert set(Identity.objects.filter(customer=survivor).values_list("kind", flat=True)) == {
        "email",
        "phone",
    }
    assert ConsentEntry.objects.filter(customer=survivor).count() == 1
    assert Event.objects.filter(customer=merged).count() == 0
    assert Event.objects.filter(customer=survivor, type="customer.merged").count() == 1
    snap = record.snapshot
    assert snap["survivor_before"]["phone"] == "" and snap["moved"]["identities"]
    assert LogEntry.objects.get_for_object(record).get().actor == admin_user
    with pytest.raises(ValidationError) as exc:
        customer_merge(survivor=survivor, merged=merged)
    assert "merged" in exc.value.message_dict


@pytest.mark.django_db
def test_unmerge_restores_both_customers_from_the_snapshot(admin_user) -> None:
    survivor = services.customer_create(data={"family_name": "山田", "email": "s@example.com"})
    merged = services.customer_create(
        data={"family_name": "山田", "phone": "090-1111-2222", "birthday": "1990-01-01"}
    )
    services.consent_record(
        customer=merged, purpose="marketing", channel="email", status="granted", source="test"
    )
    own_events = set(Event.objects.filter(customer=merged).values_list("pk", flat=True))
    record = customer_merge(survivor=survivor, merged=merged, reason="same person")
    # After the merge the survivor gets a new event; it is the survivor's and stays.
    later, _created = services.event_record(type="Page Viewed", customer=survivor)
    seen: list[bus.DomainEvent] = []
    bus.subscribe("customer.unmerged", seen.append, in_transaction=True)

    customer_unmerge(merge=record, actor=admin_user, reason="different people")

    survivor.refresh_from_db()
    merged.refresh_from_db()
    record.refresh_from_db()
    assert merged.merged_into_id is None and record.undone_at is not None
    assert (survivor.phone, survivor.birthday) == ("", None)  # the filled fields went back
    assert (merged.phone, merged.birthday) == ("+819011112222", date(1990, 1, 1))
    assert set(Identity.objects.filter(customer=survivor).values_list("kind", flat=True)) == {
        "email"
    }
    assert set(Identity.objects.filter(customer=merged).values_list("kind", flat=True)) == {"phone"}
    assert ConsentEntry.objects.get().customer_id == merged.pk
    assert own_events <= set(Event.objects.filter(customer=merged).values_list("pk", flat=True))
    assert Event.objects.get(pk=later.pk).customer_id == survivor.pk
    assert merged.first_seen_at is not None and merged.last_seen_at is not None
    assert merged.first_seen_at <= merged.last_seen_at
    assert [e.properties["merge_id"] for e in seen] == [record.pk]
    assert Event.objects.filter(customer=merged, type="customer.unmerged").count() == 1
    entries = LogEntry.objects.get_for_object(record)
    assert any(e.actor == admin_user and "undone_at" in e.changes_dict for e in entries)
    with pytest.raises(ValidationError) as exc:
        customer_unmerge(merge=record)
    assert "merge" in exc.value.message_dict


@pytest.mark.django_db
def test_unmerge_keeps_a_field_changed_since_and_refuses_out_of_order() -> None:
    a = services.customer_create(data={"email": "a@example.com"})
    b = services.customer_create(data={"email": "b@example.com", "family_name": "佐藤"})
    c = services.customer_create(data={"email": "c@example.com"})
    first = customer_merge(survivor=a, merged=b)
    Customer.objects.filter(pk=a.pk).update(family_name="鈴木")  # edited after the merge
    second = customer_merge(survivor=c, merged=a)
    with pytest.raises(ValidationError) as exc:
        customer_unmerge(merge=first)  # `a` was merged away since: undo the later one first
    assert "merge" in exc.value.message_dict
    assert Customer.objects.get(pk=b.pk).merged_into_id == a.pk  # nothing was written
    customer_unmerge(merge=second)
    customer_unmerge(merge=first)
    assert Customer.objects.get(pk=a.pk).family_name == "鈴木"
    assert Identity.objects.get(value="b@example.com").customer_id == b.pk


@pytest.mark.django_db
def test_a_failing_subscriber_undoes_the_whole_merge() -> None:
    a = services.customer_create(data={"email": "a@example.com"})
    b = services.customer_create(data={"email": "b@example.com"})

    def broken(event: bus.DomainEvent) -> None:
        raise RuntimeError("points could not move")

    bus.subscribe("customer.merged", broken, in_transaction=True)
    with pytest.raises(RuntimeError):
        customer_merge(survivor=a, merged=b)
    assert CustomerMerge.objects.count() == 0
    assert Identity.objects.get(value="b@example.com").customer_id == b.pk
    assert Customer.objects.get(pk=b.pk).merged_into_id is None


@pytest.mark.django_db
def test_duplicates_review_and_merge_through_the_api(make_staff) -> None:
    a = services.customer_create(
        data={
            "family_name": "山田",
            "given_name": "花子",
            "birthday": "1990-01-01",
            "postal_code": "100-0001",
        }
    )
    b = services.customer_create(
        data={
            "family_name": "山田",
            "given_name": "花子",
            "birthday": "1990-01-01",
            "postal_code": "1000001",
        }
    )
    assert [g.customer_ids for g in suspected_duplicates()] == [[a.pk, b.pk]]
    client = Client()
    client.force_login(make_staff("analyst"))
    assert client.get("/api/v1/customers/duplicates/suspected").status_code == 403
    client.force_login(make_staff("marketer"))
    listed = client.get("/api/v1/customers/duplicates/suspected").json()
    assert listed == [
        {
            "reason": "name_birthday_postcode",
            "key": "山田花子|1990-01-01|100-0001",
            "customer_ids": [a.pk, b.pk],
        }
    ]
    from kizuna.iam.services import api_key_create

    key = api_key_create(name="crm", role="marketer", created_by=make_staff("admin")).secret
    response = Client().post(
        "/api/v1/customers/duplicates/merge",
        {"survivor_id": a.pk, "merged_id": b.pk, "reason": "same person"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 201
    assert response.json()["merged_id"] == b.pk
    assert CustomerMerge.objects.get().reason == "same person"
    assert suspected_duplicates() == []
    again = Client().post(
        "/api/v1/customers/duplicates/merge",
        {"survivor_id": a.pk, "merged_id": b.pk},
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert again.status_code == 422
    merge_id = response.json()["id"]
    undo = Client().post(
        f"/api/v1/customers/merges/{merge_id}/undo",
        {"reason": "not the same"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert undo.status_code == 200 and undo.json()["undone_at"] is not None
    assert Customer.objects.get(pk=b.pk).merged_into_id is None
    assert (
        Client()
        .post(
            f"/api/v1/customers/merges/{merge_id}/undo",
            {},
            content_type="application/json",
            headers={"Authorization": f"Bearer {key}"},
        )
        .status_code
        == 422
    )
    analyst = api_key_create(name="ro", role="analyst", created_by=make_staff("admin")).secret
    missing = Client().post(
        "/api/v1/customers/merges/999999/undo",
        {},
        content_type="application/json",
        headers={"Authorization": f"Bearer {analyst}"},
    )
    assert missing.status_code == 403
