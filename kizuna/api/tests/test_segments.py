"""The segments API: create, read, live counts, members, refresh, static lists, roles."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from kizuna.api.tests.helpers import ApiClient, fields
from kizuna.customers.models import Event
from kizuna.customers.services import customer_create
from kizuna.segments.models import Segment, SegmentMembership

pytestmark = pytest.mark.django_db

TOKYO = {
    "version": 1,
    "match": "all",
    "conditions": [{"field": "profile.prefecture", "op": "eq", "value": "JP-13"}],
}


@pytest.fixture
def people() -> list[Any]:
    made = [
        customer_create(data={"family_name": f"東京{i}", "prefecture": "JP-13"}) for i in range(3)
    ]
    made.append(
        customer_create(data={"family_name": "大阪", "prefecture": "JP-27", "email": "o@x.jp"})
    )
    return made


def test_create_get_count_members_refresh(admin_api: ApiClient, people: list[Any]) -> None:
    created = admin_api.post("/api/v1/segments", {"name": "Tokyo", "rules": TOKYO})
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["slug"], body["kind"], body["rules"]) == ("tokyo", "dynamic", TOKYO)
    segment_id = body["id"]
    got = admin_api.get(f"/api/v1/segments/{segment_id}")
    assert got.status_code == 200 and got.json()["name"] == "Tokyo"
    count = admin_api.get(f"/api/v1/segments/{segment_id}/count")
    assert count.json() == {"count": 3, "segment_id": segment_id}
    page = admin_api.get(f"/api/v1/segments/{segment_id}/members", page_size=2)
    assert page.status_code == 200
    assert page.json()["count"] == 3
    assert [m["id"] for m in page.json()["items"]] == [people[2].pk, people[1].pk]
    second = admin_api.get(f"/api/v1/segments/{segment_id}/members", page_size=2, page=2)
    assert [m["id"] for m in second.json()["items"]] == [people[0].pk]
    refreshed = admin_api.post(f"/api/v1/segments/{segment_id}/refresh")
    assert refreshed.status_code == 200
    assert {k: refreshed.json()[k] for k in ("size", "entered", "left")} == {
        "size": 3,
        "entered": 3,
        "left": 0,
    }
    assert Event.objects.filter(type="segment.entered").count() == 3
    patched = admin_api.patch(
        f"/api/v1/segments/{segment_id}", {"description": "Customers in Tokyo"}
    )
    assert patched.status_code == 200 and patched.json()["rules"] == TOKYO
    preview = admin_api.post(
        "/api/v1/segments/count",
        {
            "rules": {
                "version": 1,
                "match": "all",
                "conditions": [{"field": "profile.email", "op": "is_set"}],
            }
        },
    )
    assert preview.json() == {"count": 1, "segment_id": None}


def test_bad_rules_are_422_naming_the_condition_path(admin_api: ApiClient) -> None:
    bad = {
        "version": 1,
        "match": "all",
        "conditions": [
            {"field": "profile.email", "op": "is_set"},
            {"match": "any", "conditions": [{"field": "foo", "op": "eq", "value": 1}]},
        ],
    }
    response = admin_api.post("/api/v1/segments", {"name": "Bad", "rules": bad})
    assert response.status_code == 422
    assert fields(response) == ["conditions[1].conditions[0].field"]
    assert not Segment.objects.exists()
    response = admin_api.post("/api/v1/segments/count", {"rules": bad})
    assert response.status_code == 422
    assert fields(response) == ["conditions[1].conditions[0].field"]
    assert admin_api.get("/api/v1/segments/999/count").status_code == 404


def test_static_list_upload(admin_api: ApiClient, people: list[Any]) -> None:
    created = admin_api.post("/api/v1/segments", {"name": "Fair", "kind": "static"}).json()
    response = admin_api.post(
        f"/api/v1/segments/{created['id']}/list", {"csv": "email\no@x.jp\nnobody@x.jp\n"}
    )
    assert response.status_code == 422 and fields(response) == ["rows[3]"]
    response = admin_api.post(
        f"/api/v1/segments/{created['id']}/list",
        {"csv": f"{people[0].pk}\n", "key": "customer_id"},
    )
    assert response.json() == {"matched": 1, "entered": 1, "left": 0, "unknown": []}
    assert list(SegmentMembership.objects.values_list("customer_id", flat=True)) == [people[0].pk]


@pytest.mark.parametrize(
    ("role", "can_read", "can_write"),
    [
        ("admin", True, True),
        ("marketer", True, True),
        ("analyst", True, False),
        ("support", False, False),
    ],
)
def test_roles(
    api_as: Callable[[str], ApiClient], role: str, can_read: bool, can_write: bool
) -> None:
    client = api_as(role)
    created = client.post("/api/v1/segments", {"name": "Tokyo", "rules": TOKYO})
    assert created.status_code == (201 if can_write else 403)
    segment = Segment.objects.first() or Segment.objects.create(name="X", slug="x", rules=TOKYO)
    assert client.get(f"/api/v1/segments/{segment.pk}").status_code == (200 if can_read else 403)
    assert client.get(f"/api/v1/segments/{segment.pk}/members").status_code == (
        200 if can_read else 403
    )
    assert client.post(f"/api/v1/segments/{segment.pk}/refresh").status_code == (
        200 if can_write else 403
    )
    assert ApiClient(None).get(f"/api/v1/segments/{segment.pk}").status_code == 401
