"""The segment pages: list, builder (HTMX add/remove, live count, sample), save, detail
with the size chart, refresh, static upload, and who may do what. (Here, in the faces
layer; the rule language itself is tested in kizuna/segments/tests.)"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from kizuna.customers.models import Customer
from kizuna.customers.services import customer_create
from kizuna.segments.models import Segment, SegmentMembership
from kizuna.segments.services import segment_refresh, segment_save

pytestmark = pytest.mark.django_db

TOKYO = {
    "version": 1,
    "match": "all",
    "conditions": [{"field": "profile.prefecture", "op": "eq", "value": "JP-13"}],
}


@pytest.fixture
def people(db: None) -> list[Customer]:
    return [
        customer_create(
            data={
                "family_name": "東京",
                "given_name": "一",
                "prefecture": "JP-13",
                "email": "one@x.jp",
            }
        ),
        customer_create(data={"family_name": "東京", "given_name": "二", "prefecture": "JP-13"}),
        customer_create(
            data={
                "family_name": "大阪",
                "given_name": "三",
                "prefecture": "JP-27",
                "email": "three@x.jp",
            }
        ),
    ]


@pytest.fixture
def as_role(client: Client, make_staff: Callable[..., Any]) -> Callable[[str], Client]:
    def login(role: str) -> Client:
        client.force_login(make_staff(role))
        client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
        return client

    return login


def test_builder_adds_and_removes_conditions_with_a_live_count(
    as_role: Callable[[str], Client], people: list[Customer]
) -> None:
    client = as_role("marketer")
    page = client.get("/segments/new/")
    assert page.status_code == 200
    assert b'name="new_field"' in page.content and b"profile.prefecture" in page.content
    inputs = client.get("/segments/builder/field/", {"new_field": "profile.prefecture"})
    assert b'name="new_op"' in inputs.content and "東京都".encode() in inputs.content
    empty = json.dumps({"version": 1, "match": "all", "conditions": []})
    added = client.post(
        "/segments/builder/",
        {
            "rules": empty,
            "action": "add",
            "new_field": "profile.prefecture",
            "new_op": "in",
            "new_values": ["JP-13"],
        },
        HTTP_HX_REQUEST="true",
    )
    assert added.status_code == 200
    text = added.content.decode()
    assert "2 customers match now" in text
    assert "東京 一" in text and "大阪" not in text.split("Sample members")[1]
    rules = json.loads(
        text.split('name="rules"')[1]
        .split(">", 1)[1]
        .split("</textarea>")[0]
        .replace("&quot;", '"')
    )
    assert rules["conditions"] == [{"field": "profile.prefecture", "op": "in", "value": ["JP-13"]}]
    added = client.post(
        "/segments/builder/",
        {
            "rules": json.dumps(rules),
            "action": "add",
            "new_field": "profile.email",
            "new_op": "is_set",
        },
    )
    assert "1 customer matches now" in added.content.decode()
    bad = client.post(
        "/segments/builder/",
        {
            "rules": json.dumps(rules),
            "action": "add",
            "new_field": "order.count",
            "new_op": "gte",
            "new_value": "many",
        },
    )
    assert "new condition.value: Expected a number." in bad.content.decode()
    removed = client.post("/segments/builder/", {"rules": json.dumps(rules), "action": "remove:0"})
    assert "3 customers match now" in removed.content.decode()
    preview = client.post(
        "/segments/preview/",
        {"rules": json.dumps({"version": 1, "conditions": [{"field": "nope", "op": "eq"}]})},
    )
    assert "conditions[0].field: unknown field &#x27;nope&#x27;" in preview.content.decode()


def test_save_refresh_and_detail_with_the_size_chart(
    as_role: Callable[[str], Client], people: list[Customer]
) -> None:
    client = as_role("marketer")
    saved = client.post(
        "/segments/new/",
        {"name": "Tokyo", "description": "In Tokyo", "rules": json.dumps(TOKYO)},
    )
    segment = Segment.objects.get()
    assert saved.status_code == 302 and saved["Location"] == f"/segments/{segment.pk}/"
    refreshed = client.post(f"/segments/{segment.pk}/refresh/", follow=True)
    assert "Refreshed: 2 members (2 entered, 0 left)." in refreshed.content.decode()
    detail = client.get(f"/segments/{segment.pk}/").content.decode()
    assert 'data-figure="fig-segment-size"' in detail
    block = re.search(r'<script id="fig-segment-size"[^>]*>(.*?)</script>', detail, re.S)
    assert block is not None
    figure = json.loads(block.group(1))
    assert figure["data"][0]["y"] == [2]
    assert "<li>Prefecture is JP-13</li>" in detail
    bad = client.post(
        f"/segments/{segment.pk}/edit/",
        {"name": "Tokyo", "rules": json.dumps({"version": 1, "conditions": [{"field": "x"}]})},
    )
    assert bad.status_code == 200 and "conditions[0].field: unknown field" in bad.content.decode()
    segment.refresh_from_db()
    assert segment.rules == TOKYO


def test_static_upload_from_the_page(
    as_role: Callable[[str], Client], people: list[Customer]
) -> None:
    client = as_role("admin")
    segment = segment_save(data={"name": "Fair", "kind": "static"})
    upload = SimpleUploadedFile("list.csv", "email\nONE@x.jp\nthree@x.jp\n".encode("cp932"))
    response = client.post(
        f"/segments/{segment.pk}/list/",
        {"file": upload, "key": "email", "replace": "on"},
        follow=True,
    )
    assert "2 customers matched (2 entered, 0 left)" in response.content.decode()
    assert set(SegmentMembership.objects.values_list("customer_id", flat=True)) == {
        people[0].pk,
        people[2].pk,
    }


@pytest.mark.parametrize(
    ("role", "view", "manage"),
    [("admin", 200, 200), ("marketer", 200, 200), ("analyst", 200, 403), ("support", 403, 403)],
)
def test_permissions(
    as_role: Callable[[str], Client], people: list[Customer], role: str, view: int, manage: int
) -> None:
    segment = segment_save(data={"name": "Tokyo", "rules": TOKYO})
    segment_refresh(segment=segment)
    client = as_role(role)
    assert client.get("/segments/").status_code == view
    assert client.get(f"/segments/{segment.pk}/").status_code == view
    assert client.get("/segments/new/").status_code == manage
    assert client.get(f"/segments/{segment.pk}/edit/").status_code == manage
    refresh = client.post(f"/segments/{segment.pk}/refresh/")
    assert refresh.status_code == (302 if manage == 200 else 403)
    nav = client.get("/").content.decode()
    assert ('href="/segments/"' in nav) == (view == 200)


def test_anonymous_is_sent_to_login(client: Client) -> None:
    response = client.get("/segments/")
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_customer_360_lists_the_segments_of_the_customer(
    as_role: Callable[[str], Client], people: list[Customer]
) -> None:
    segment = segment_save(data={"name": "Tokyo", "rules": TOKYO})
    segment_refresh(segment=segment)
    client = as_role("marketer")
    tokyo = client.get(f"/customers/{people[0].pk}/").content.decode()
    assert 'id="segments"' in tokyo and f'href="/segments/{segment.pk}/">Tokyo</a>' in tokyo
    osaka = client.get(f"/customers/{people[2].pk}/").content.decode()
    assert 'id="segments"' not in osaka
    support = as_role("support").get(f"/customers/{people[0].pk}/").content.decode()
    assert 'id="segments"' not in support
