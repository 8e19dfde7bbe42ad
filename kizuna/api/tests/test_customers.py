from __future__ import annotations

from typing import Any

import pytest

from kizuna.api.tests.helpers import ApiClient, fields
from kizuna.customers.models import ConsentEntry, Customer, Event, Identity
from kizuna.customers.services import customer_create, event_record, trait_definition_create

# The after-commit subscribers of each request run as in production (no real commit needed:
# nothing here reads from another thread or process), without the flush of transaction=True.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("commit_like_autocommit")]


def counts() -> tuple[int, int, int, int]:
    return (
        Customer.objects.count(),
        Identity.objects.count(),
        Event.objects.count(),
        ConsentEntry.objects.count(),
    )


def test_customer_crud_round_trip(admin_api: ApiClient) -> None:
    trait_definition_create(
        key="favourite_drink", label="好きな飲み物", type="choice", choices=["latte", "drip"]
    )
    created = admin_api.post(
        "/api/v1/customers",
        {
            "family_name": "山田",
            "given_name": "花子",
            "family_name_kana": "ﾔﾏﾀﾞ",
            "email": "Hanako@Example.JP",
            "phone": "090-1234-5678",
            "birthday": "1990-04-01",
            "prefecture": "JP-13",
            "gender": "female",
            "traits": {"favourite_drink": "latte"},
        },
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["email"] == "hanako@example.jp"
    assert body["phone"] == "+819012345678"
    assert body["birthday"] == "1990-04-01"
    assert body["traits"] == {"favourite_drink": "latte"}
    assert body["created_at"].endswith("+09:00")  # ISO 8601 in JST with its offset
    customer_id = body["id"]
    assert Customer.objects.get(pk=customer_id).family_name_kana == "ヤマダ"
    assert Event.objects.get(customer_id=customer_id).source == "api"

    fetched = admin_api.get(f"/api/v1/customers/{customer_id}")
    assert fetched.status_code == 200
    assert fetched.json() == body

    patched = admin_api.patch(
        f"/api/v1/customers/{customer_id}",
        {
            "city": "渋谷区",
            "traits": {"favourite_drink": None},
            "birthday": None,
        },
    )
    assert patched.status_code == 200, patched.json()
    assert patched.json()["city"] == "渋谷区"
    assert patched.json()["traits"] == {}
    assert patched.json()["birthday"] is None
    assert patched.json()["email"] == "hanako@example.jp"  # untouched fields stay

    found = admin_api.get("/api/v1/customers", search="ヤマダ", prefecture="JP-13")
    assert [c["id"] for c in found.json()["items"]] == [customer_id]
    assert admin_api.get("/api/v1/customers", prefecture="JP-27").json()["count"] == 0


def test_missing_customer_is_404(admin_api: ApiClient) -> None:
    for response in (
        admin_api.get("/api/v1/customers/999"),
        admin_api.patch("/api/v1/customers/999", {"city": "x"}),
        admin_api.get("/api/v1/customers/999/identities"),
        admin_api.post(
            "/api/v1/customers/999/consents",
            {"purpose": "marketing", "channel": "email", "status": "granted"},
        ),
    ):
        assert response.status_code == 404
        assert fields(response) == [None]


def test_pagination(admin_api: ApiClient) -> None:
    ids = [customer_create(data={"family_name": f"客{i}"}).pk for i in range(5)]
    first = admin_api.get("/api/v1/customers", page_size=2).json()
    assert first["count"] == 5
    assert (first["page"], first["page_size"]) == (1, 2)
    assert [c["id"] for c in first["items"]] == sorted(ids, reverse=True)[:2]
    third = admin_api.get("/api/v1/customers", page_size=2, page=3).json()
    assert [c["id"] for c in third["items"]] == [min(ids)]
    assert admin_api.get("/api/v1/customers", page_size=2, page=4).json()["items"] == []
    for params, field in (
        ({"page_size": 201}, "page_size"),
        ({"page": 0}, "page"),
        ({"page": "two"}, "page"),
    ):
        response = admin_api.get("/api/v1/customers", **params)
        assert response.status_code == 422
        assert fields(response) == [field]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"phone": "12"}, "phone"),
        ({"birthday": "2999-01-01"}, "birthday"),
        ({"birthday": "1990-02-31"}, "birthday"),
        ({"traits": {"favourite_drink": "latte"}}, "traits.favourite_drink"),
        ({"shoe_size": 27}, "shoe_size"),
        ({"prefecture": "Tokyo"}, "prefecture"),
        ({"gender": "robot"}, "gender"),
        ({"family_name": 12}, "family_name"),
        ({"family_name": "x" * 101}, "family_name"),
        ({"email": "tanaka@example.jp"}, "email"),  # already another customer's
    ],
)
def test_bad_customer_input_is_422_naming_the_field_and_writes_nothing(
    admin_api: ApiClient, data: dict, field: str
) -> None:
    existing = customer_create(data={"email": "tanaka@example.jp"})
    before = counts()
    created = admin_api.post("/api/v1/customers", data)
    assert created.status_code == 422
    assert fields(created) == [field]
    patched = admin_api.patch(f"/api/v1/customers/{existing.pk}", data)
    if field != "email" or data["email"] != "tanaka@example.jp":  # own email is fine on PATCH
        assert patched.status_code == 422
        assert fields(patched) == [field]
    assert counts() == before
    assert Customer.objects.get(pk=existing.pk).updated_at == existing.updated_at


def test_identities_list_and_add(admin_api: ApiClient) -> None:
    customer = customer_create(data={"email": "a@example.com"})
    other = customer_create(data={"email": "b@example.com"})
    url = f"/api/v1/customers/{customer.pk}/identities"
    added = admin_api.post(url, {"kind": "line", "value": "U" + "0123456789abcdef" * 2})
    assert added.status_code == 201, added.json()
    assert added.json()["kind"] == "line"
    assert added.json()["source"] == "api"
    listed = admin_api.get(url).json()
    assert [(i["kind"], i["value"]) for i in listed] == [
        ("email", "a@example.com"),
        ("line", "U" + "0123456789abcdef" * 2),
    ]

    before = counts()
    duplicate = admin_api.post(url, {"kind": "email", "value": "B@example.com"})
    assert duplicate.status_code == 422
    assert fields(duplicate) == ["value"]
    bad_kind = admin_api.post(url, {"kind": "fax", "value": "03-1234-5678"})
    assert bad_kind.status_code == 422
    assert fields(bad_kind) == ["kind"]
    bad_line = admin_api.post(url, {"kind": "line", "value": "hello"})
    assert fields(bad_line) == ["value"]
    assert counts() == before
    assert Identity.objects.filter(customer=other).count() == 1


def test_consent_record_and_state_with_history(admin_api: ApiClient) -> None:
    customer = customer_create(data={"email": "c@example.com"})
    url = f"/api/v1/customers/{customer.pk}/consents"
    granted = admin_api.post(
        url,
        {
            "purpose": "marketing",
            "channel": "email",
            "status": "granted",
            "notice_version": "2026-04",
            "recorded_at": "2026-04-01T10:00:00+09:00",
            "evidence": {"form": "signup"},
        },
    )
    assert granted.status_code == 201, granted.json()
    assert granted.json()["recorded_at"] == "2026-04-01T10:00:00+09:00"
    assert granted.json()["source"] == "api"
    assert granted.json()["recorded_by"] is not None
    withdrawn = admin_api.post(
        url,
        {
            "purpose": "marketing",
            "channel": "email",
            "status": "withdrawn",
            "source": "call_centre",
        },
    )
    assert withdrawn.status_code == 201
    state = admin_api.get(url).json()
    assert [(c["purpose"], c["channel"], c["status"]) for c in state["current"]] == [
        ("marketing", "email", "withdrawn")
    ]
    assert [c["status"] for c in state["history"]] == ["withdrawn", "granted"]

    before = counts()
    for body, field in (
        ({"purpose": "spam", "channel": "email", "status": "granted"}, "purpose"),
        ({"purpose": "marketing", "channel": "email"}, "status"),
        (
            {
                "purpose": "marketing",
                "channel": "email",
                "status": "granted",
                "recorded_at": "2026-04-01T10:00:00",
            },
            "recorded_at",
        ),  # no offset
    ):
        response = admin_api.post(url, body)
        assert response.status_code == 422
        assert fields(response) == [field]
    assert counts() == before


def test_timeline_is_paged_newest_first_and_filtered(admin_api: ApiClient) -> None:
    customer = customer_create(data={"family_name": "林"})
    for n in range(3):
        event_record(type="Product Viewed", customer=customer, properties={"n": n})
    url = f"/api/v1/customers/{customer.pk}/events"
    page = admin_api.get(url, page_size=2).json()
    assert page["count"] == 4  # customer.created and three views
    assert [e["properties"].get("n") for e in page["items"]] == [2, 1]
    views = admin_api.get(url, type="customer.created").json()
    assert [e["type"] for e in views["items"]] == ["customer.created"]


def test_unauthorised_reads_of_sub_resources(api_as: Any) -> None:
    customer = customer_create(data={"family_name": "林"})
    marketer = api_as("marketer")
    assert marketer.get(f"/api/v1/customers/{customer.pk}/consents").status_code == 200
    support = api_as("support")
    response = support.post(
        f"/api/v1/customers/{customer.pk}/identities", {"kind": "external", "value": "pos-1"}
    )
    assert response.status_code == 201
