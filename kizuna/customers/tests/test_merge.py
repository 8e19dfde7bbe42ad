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
    assert seen[0].properties == {"survivor_id": survivor.pk, "merged_id": merged.pk}
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
