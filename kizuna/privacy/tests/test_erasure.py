"""Erasure leaves no personal data in any table, keeps every total, suppresses the person;
export contains every registered kind."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from typing import Any

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Count, Sum

from kizuna.commerce.models import Order, Refund
from kizuna.core.personal_data import handlers
from kizuna.customers.models import ConsentEntry, Customer, Event, Identity
from kizuna.customers.services import customer_create, identity_add
from kizuna.loyalty.models import Account, LedgerEntry
from kizuna.messaging import services as messaging_services
from kizuna.messaging.models import Delivery, DeliveryStatus
from kizuna.privacy import services
from kizuna.privacy.models import ErasedIdentifier, ErasureRecord, RequestStatus
from kizuna.privacy.tests.conftest import EMAIL, LINE_ID, PHONE, World

TEXT_FIELDS = (models.CharField, models.TextField, models.JSONField)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def scan(needles: list[str]) -> list[str]:
    """Every (table, column, needle) where a needle occurs, over every installed model."""
    found: list[str] = []
    for model in apps.get_models():
        if model._meta.proxy or not model._meta.managed:
            continue
        columns = [f.attname for f in model._meta.concrete_fields if isinstance(f, TEXT_FIELDS)]
        if not columns:
            continue
        for row in model._default_manager.values_list(*columns):
            for column, value in zip(columns, row, strict=True):
                if value is None:
                    continue
                text = _text(value)
                found.extend(
                    f"{model._meta.label}.{column}: {needle}"
                    for needle in needles
                    if needle in text
                )
    return found


def totals() -> dict[str, Any]:
    return {
        "orders": Order.objects.aggregate(
            n=Count("pk"), s=Sum("total_minor"), r=Sum("refunded_minor")
        ),
        "refunds": Refund.objects.aggregate(s=Sum("amount_minor")),
        "ledger": LedgerEntry.objects.aggregate(n=Count("pk"), s=Sum("points")),
        "balances": Account.objects.aggregate(s=Sum("balance")),
        "deliveries": list(
            Delivery.objects.values("status").annotate(n=Count("pk")).order_by("status")
        ),
        "history": DeliveryStatus.objects.count(),
        "events": Event.objects.count(),
        "customers": Customer.objects.count(),
    }


def test_scan_finds_the_data_before_erasure(world: World) -> None:
    # The scan must be able to fail: before erasure it finds every needle somewhere.
    found = scan(world.needles)
    for needle in world.needles:
        assert any(line.endswith(": " + needle) for line in found), needle
    assert any(line.startswith("auditlog.LogEntry.") for line in found)


def test_erasure_leaves_no_personal_data_and_keeps_totals(world: World) -> None:
    before = totals()
    record = services.erase_customer(customer=world.subject)

    assert scan(world.needles) == []
    assert totals() == before
    assert set(record.customer_ids) == {world.subject.pk, world.merged.pk}
    assert record.kinds["customers.profile"] == 2
    assert record.kinds["customers.identity"] >= 4
    assert record.kinds["messaging.delivery"] == 1
    # The record itself holds no personal data (covered by the scan) and names every kind.
    assert set(record.kinds) == {h.name for h in handlers()}

    # The other customer is untouched.
    other = Customer.objects.get(pk=world.other.pk)
    assert other.family_name == "佐藤" and other.email == "sato@example.jp"
    assert Identity.objects.filter(customer=other).count() == 1
    assert Delivery.objects.get(customer=other).to_address == "sato@example.jp"
    assert Event.objects.filter(customer=other).first().properties  # type: ignore[union-attr]
    assert LedgerEntry.objects.get(idempotency_key="adj-2").reason == "goodwill"

    # The consent decisions and the ledger rows stay.
    assert ConsentEntry.objects.filter(customer=world.subject).count() == 1
    assert LedgerEntry.objects.filter(account__customer=world.subject).count() == 1


def test_erasure_suppresses_the_addresses_and_flags_a_returning_person(
    world: World, django_capture_on_commit_callbacks: Any
) -> None:
    services.erase_customer(customer=world.subject)
    assert messaging_services.is_suppressed(
        channel_kind="email", address=EMAIL, purpose="transactional"
    )
    assert messaging_services.is_suppressed(channel_kind="line", address=LINE_ID)
    assert ErasedIdentifier.objects.filter(kind="phone").count() == 1
    assert all(EMAIL not in d.digest for d in ErasedIdentifier.objects.all())

    with django_capture_on_commit_callbacks(execute=True):
        returning = customer_create(data={"email": EMAIL.upper()})
    latest = ConsentEntry.objects.filter(customer=returning).latest("recorded_at", "pk")
    assert (latest.purpose, latest.channel, latest.status) == ("marketing", "any", "withdrawn")
    assert latest.source == "privacy"

    with django_capture_on_commit_callbacks(execute=True):
        stranger = customer_create(data={"email": "someone@example.jp"})
    assert not ConsentEntry.objects.filter(customer=stranger).exists()
    with django_capture_on_commit_callbacks(execute=True):
        identity_add(customer=stranger, kind="phone", value=PHONE)
    assert ConsentEntry.objects.filter(customer=stranger, status="withdrawn").exists()


def test_erasing_a_merged_profile_is_refused(world: World) -> None:
    with pytest.raises(ValidationError) as info:
        services.erase_customer(customer=Customer.objects.get(pk=world.merged.pk))
    assert "customer" in info.value.message_dict
    assert not ErasureRecord.objects.exists()


def test_erasure_is_idempotent(world: World) -> None:
    services.erase_customer(customer=world.subject)
    before = totals()
    services.erase_customer(customer=Customer.objects.get(pk=world.subject.pk))
    assert totals() == before
    assert ErasureRecord.objects.count() == 2


def test_export_contains_every_kind_as_json_and_csv(world: World) -> None:
    data = services.export_customer(world.subject.pk)
    archive = zipfile.ZipFile(io.BytesIO(data))
    names = set(archive.namelist())
    manifest = json.loads(archive.read("manifest.json"))
    for handler in handlers():
        assert f"{handler.name}.json" in names
        assert f"{handler.name}.csv" in names
        assert manifest["kinds"][handler.name]["rows"] == len(
            json.loads(archive.read(f"{handler.name}.json"))
        )
    profile = json.loads(archive.read("customers.profile.json"))
    assert {p["email"] for p in profile} == {EMAIL, "old-" + EMAIL}
    identities = {i["value"] for i in json.loads(archive.read("customers.identity.json"))}
    assert {EMAIL, "+81" + PHONE[1:], LINE_ID} <= identities
    orders = json.loads(archive.read("commerce.order.json"))
    assert [o["number"] for o in orders] == ["S1"] and orders[0]["lines"][0]["quantity"] == 2
    for kind in (
        "customers.consent",
        "customers.event",
        "messaging.delivery",
        "loyalty.ledger",
        "segments.membership",
        "analytics.score",
    ):
        assert manifest["kinds"][kind]["rows"] >= 1, kind
    rows = list(
        csv.DictReader(io.StringIO(archive.read("customers.event.csv").decode("utf-8-sig")))
    )
    assert any(EMAIL in r["properties"] for r in rows)
    # Nothing of the other customer.
    assert b"sato@example.jp" not in b"".join(archive.read(n) for n in names)


def test_request_workflow_export_and_erase(world: World, django_user_model: Any) -> None:
    admin = django_user_model.objects.create_user("dpo", is_staff=True)
    export = services.request_create(kind="export", customer=world.subject, actor=admin)
    assert (export.due_on - export.created_at.date()).days in (29, 30, 31)
    data = services.request_export(request=export, actor=admin)
    assert zipfile.ZipFile(io.BytesIO(data)).namelist()
    export.refresh_from_db()
    assert export.status == RequestStatus.COMPLETED and export.completed_by == admin
    assert [e.action for e in export.log_entries.all()] == ["created", "exported"]
    with pytest.raises(ValidationError) as info:
        services.request_export(request=export, actor=admin)
    assert "status" in info.value.message_dict

    erase = services.request_create(
        kind="erase", customer=world.subject, note=f"phoned in ({EMAIL})", actor=admin
    )
    with pytest.raises(ValidationError):
        services.request_export(request=erase, actor=admin)
    record = services.request_erase(request=erase, actor=admin)
    erase.refresh_from_db()
    assert erase.status == RequestStatus.COMPLETED and erase.note == ""
    assert record.request == erase and record.erased_by == admin
    assert [e.action for e in erase.log_entries.all()] == ["created", "erased"]
    assert scan(world.needles) == []


def test_request_create_rejects_bad_input(world: World) -> None:
    with pytest.raises(ValidationError) as info:
        services.request_create(kind="delete-everything", customer=None, note="x" * 501)
    assert set(info.value.message_dict) == {"kind", "customer", "note"}
    with pytest.raises(ValidationError) as info:
        services.request_create(kind="erase", customer=Customer.objects.get(pk=world.merged.pk))
    assert "customer" in info.value.message_dict
    from kizuna.privacy.models import DataSubjectRequest

    assert not DataSubjectRequest.objects.exists()
