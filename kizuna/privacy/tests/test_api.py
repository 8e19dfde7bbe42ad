"""The privacy REST API: requests opened by support, exported as a zip, erased only by an
administrator; notices versioned."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import pytest
from django.test import Client

from kizuna.customers.models import Customer
from kizuna.iam.services import api_key_create
from kizuna.privacy.models import DataSubjectRequest, ErasureRecord
from kizuna.privacy.tests.conftest import EMAIL, World


def _client(role: str, user: Any) -> Client:
    issued = api_key_create(name=role, role=role, created_by=user)
    return Client(HTTP_AUTHORIZATION=f"Bearer {issued.secret}", HTTP_ACCEPT_LANGUAGE="en")


@pytest.fixture
def staff(db: None, django_user_model: Any) -> Any:
    return django_user_model.objects.create_user("dpo", is_staff=True)


def test_support_opens_and_exports_admin_erases(world: World, staff: Any) -> None:
    support, admin = _client("support", staff), _client("admin", staff)
    body = {"kind": "export", "customer_id": world.subject.pk, "note": "by phone"}
    response = support.post("/api/v1/privacy/requests", body, "application/json")
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["status"] == "open" and [e["action"] for e in created["log"]] == ["created"]

    response = support.post(f"/api/v1/privacy/requests/{created['id']}/export")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert EMAIL in archive.read("customers.profile.json").decode()
    assert support.get(f"/api/v1/privacy/requests/{created['id']}").json()["status"] == "completed"

    body = {"kind": "erase", "customer_id": world.subject.pk}
    erase_id = support.post("/api/v1/privacy/requests", body, "application/json").json()["id"]
    response = support.post(f"/api/v1/privacy/requests/{erase_id}/erase")
    assert response.status_code == 403
    assert Customer.objects.get(pk=world.subject.pk).email == EMAIL

    response = admin.post(f"/api/v1/privacy/requests/{erase_id}/erase")
    assert response.status_code == 200, response.content
    assert response.json()["kinds"]["customers.profile"] == 2
    assert Customer.objects.get(pk=world.subject.pk).email == ""
    assert admin.get("/api/v1/privacy/erasures").json()["count"] == 1
    assert support.get("/api/v1/privacy/erasures").status_code == 403


def test_bad_request_input_is_a_422_naming_the_field(world: World, staff: Any) -> None:
    support = _client("support", staff)
    body = {"kind": "forget", "customer_id": world.subject.pk}
    response = support.post("/api/v1/privacy/requests", body, "application/json")
    assert response.status_code == 422
    assert {d["field"] for d in response.json()["detail"]} == {"kind"}
    response = support.post(
        "/api/v1/privacy/requests", {"kind": "erase", "customer_id": 999999}, "application/json"
    )
    assert response.status_code == 404
    assert not DataSubjectRequest.objects.exists() and not ErasureRecord.objects.exists()


def test_notices_are_versioned(db: None, staff: Any) -> None:
    admin, marketer = _client("admin", staff), _client("marketer", staff)
    body = {"purpose": "marketing", "title": "メール配信", "text": "お知らせを送ります。"}
    first = admin.post("/api/v1/privacy/notices", body, "application/json")
    second = admin.post("/api/v1/privacy/notices", {**body, "text": "改訂版"}, "application/json")
    assert (first.status_code, second.status_code) == (201, 201)
    assert [first.json()["version"], second.json()["version"]] == [1, 2]
    listed = marketer.get("/api/v1/privacy/notices?purpose=marketing").json()["items"]
    assert [n["version"] for n in listed] == [2, 1]
    assert marketer.post("/api/v1/privacy/notices", body, "application/json").status_code == 403
    response = admin.post(
        "/api/v1/privacy/notices", {**body, "purpose": "spam"}, "application/json"
    )
    assert response.status_code == 422
    assert {d["field"] for d in response.json()["detail"]} == {"purpose"}
