"""Masking beyond the customer profile (issue 11, docs/privacy.md "Masking"): deliveries,
support inquiries, the other apps' panels on the customer 360, the other API routes that
return a customer's name, contact details or free text, and the customer search of masked
roles. Per surface: an analyst sees it masked, a marketer (or an administrator) in clear."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from kizuna.commerce.models import Order
from kizuna.core.timeutil import now
from kizuna.iam import masking
from kizuna.iam.services import api_key_create
from kizuna.messaging.models import Delivery, Template, TemplateVariant
from kizuna.privacy.tests.conftest import EMAIL, EXTERNAL, LINE_ID, NAME, World
from kizuna.segments.models import Segment
from kizuna.support.services import inquiry_open
from kizuna.surveys.models import Answer, Question, Response, Survey

MASKED_EMAIL = "h***@example.jp"
SECOND_PHONE = "080-2222-3333"  # written in free text
SECOND_MASKED = "080-****-3333"
CONTACT = "walkin.guest@example.org"  # an inquiry's contact without a profile


@dataclass
class Extra:
    inquiry_id: int
    walkin_id: int
    survey_id: int
    account_id: int
    segment_id: int
    delivery_id: int


@pytest.fixture
def extra(world: World, make_staff: Any) -> Extra:
    """Free text and contact details about the subject in support, surveys and accounts."""
    subject, t = world.subject, now()
    body = f"{NAME[0]} {NAME[1]}です。{SECOND_PHONE} か {EMAIL} までご連絡ください。"
    inquiry, _ = inquiry_open(
        subject=f"{NAME[0]}様 返品の件", body=body, origin="email", customer=subject
    )
    walkin, _ = inquiry_open(
        subject="在庫の質問",
        body=f"連絡先は {CONTACT} です",
        origin="email",
        contact_name="鈴木 一郎",
        contact_email=CONTACT,
    )
    survey = Survey.objects.create(slug="nps", title="NPS", status="open")
    question = Question.objects.create(
        survey=survey, version=1, position=1, key="why", kind="text", text="Why?"
    )
    response = Response.objects.create(
        survey=survey, version=1, customer=subject, nps=9, submitted_at=t
    )
    Answer.objects.create(
        response=response, question=question, text=f"{NAME[1]}です。電話は{SECOND_PHONE}"
    )
    # accounts is a sibling app of privacy: its data is made through its API.
    admin = Client(HTTP_AUTHORIZATION=f"Bearer {_key(make_staff('admin'), 'admin')}")
    account = admin.post(
        "/api/v1/accounts", {"name": "Yamada Trading"}, content_type="application/json"
    ).json()
    contact = {"customer_id": subject.pk, "title": "CEO"}
    url = f"/api/v1/accounts/{account['id']}/contacts"
    assert admin.post(url, contact, content_type="application/json").status_code == 201
    activity = {
        "kind": "call",
        "subject": f"{NAME[0]}様に電話",
        "body": f"折り返しは {SECOND_PHONE} / {EMAIL}",
        "customer": subject.pk,
        "account": account["id"],
    }
    created = admin.post("/api/v1/activities", activity, content_type="application/json")
    assert created.status_code == 201, created.content
    segment = Segment.objects.get(slug="all")
    delivery = Delivery.objects.get(customer=subject)
    return Extra(inquiry.pk, walkin.pk, survey.pk, account["id"], segment.pk, delivery.pk)


def _clear_needles() -> list[str]:
    return [NAME[1], "ヤマダ", "ハナコ", EMAIL, SECOND_PHONE, LINE_ID, CONTACT, "鈴木 一郎"]


def _page(client: Client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, (url, response.content[:300])
    return response.content.decode()


def test_free_text_masking() -> None:
    text = (
        f"{NAME[0]} {NAME[1]}です。{SECOND_PHONE}、+81 90 1234 5678 か {EMAIL} へ。注文 S-2026-0001"
    )
    masked = masking.mask_free_text(text, ("山田", "花子"))
    assert masked == (
        f"山*** 花***です。{SECOND_MASKED}、090-****-5678 か {MASKED_EMAIL} へ。注文 S-2026-0001"
    )
    assert masking.mask_free_text("2026-12-01 に 12,000円") == "2026-12-01 に 12,000円"
    assert masking.mask_free_text({"t": [f"x {EMAIL}"], "n": 3}) == {
        "t": [f"x {MASKED_EMAIL}"],
        "n": 3,
    }
    assert masking.mask("to_address", EMAIL) == MASKED_EMAIL
    assert masking.mask("to_address", LINE_ID) == "Ua***"
    assert masking.mask("contact_email", CONTACT) == "w***@example.org"


@pytest.mark.parametrize("role", ["analyst", "marketer"])
def test_console_pages_beyond_the_profile(
    world: World, extra: Extra, make_staff: Any, role: str
) -> None:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(make_staff(role))
    pages = {
        "360": _page(client, f"/customers/{world.subject.pk}/"),
        "deliveries": _page(client, "/messaging/"),
        "delivery": _page(client, f"/messaging/deliveries/{extra.delivery_id}/"),
        "queue": _page(client, "/support/"),
        "inquiry": _page(client, f"/support/{extra.inquiry_id}/"),
        "walkin": _page(client, f"/support/{extra.walkin_id}/"),
        "survey": _page(client, f"/surveys/{extra.survey_id}/"),
        "account": _page(client, f"/accounts/{extra.account_id}/"),
        "segment": _page(client, f"/segments/{extra.segment_id}/"),
        "orders": _page(client, "/orders/"),
        "order": _page(client, f"/orders/{Order.objects.get(number='S1').pk}/"),
    }
    if role == "analyst":
        for name, page in pages.items():
            for needle in [*_clear_needles(), f"{NAME[0]}様", f"{NAME[0]} "]:
                assert needle not in page, (name, needle)
        assert SECOND_MASKED in pages["inquiry"] and MASKED_EMAIL in pages["inquiry"]
        assert MASKED_EMAIL in pages["delivery"]  # the "To" address
        assert "w***@example.org" in pages["walkin"] and "鈴***" in pages["queue"]
        assert SECOND_MASKED in pages["360"]  # survey answer and activity on the 360
        assert "山***" in pages["deliveries"] and "山***" in pages["orders"]
        assert "山***様 破損" in pages["order"] and "山***様に電話" in pages["account"]
    else:
        assert EMAIL in pages["delivery"] and NAME[0] in pages["deliveries"]
        assert SECOND_PHONE in pages["inquiry"] and EMAIL in pages["inquiry"]
        assert CONTACT in pages["walkin"] and "鈴木 一郎" in pages["queue"]
        assert SECOND_PHONE in pages["360"] and f"{NAME[0]} {NAME[1]}様へのお詫び" in pages["360"]
        assert SECOND_PHONE in pages["survey"] and EMAIL in pages["segment"]
        assert f"{NAME[0]}様に電話" in pages["account"]
        assert f"{NAME[0]}様 破損" in pages["order"]  # the refund reason


def _key(owner: Any, role: str) -> str:
    return api_key_create(name=role, role=role, created_by=owner).secret


def _api(django_user_model: Any, role: str) -> Client:
    owner = django_user_model.objects.create_user(f"owner-{role}", is_staff=True)
    return Client(HTTP_AUTHORIZATION=f"Bearer {_key(owner, role)}")


@pytest.mark.parametrize("role", ["analyst", "admin"])
def test_api_routes_beyond_the_profile(
    world: World, extra: Extra, django_user_model: Any, role: str
) -> None:
    client = _api(django_user_model, role)
    pk = world.subject.pk
    urls = [
        f"/api/v1/deliveries/{extra.delivery_id}",
        "/api/v1/inquiries",
        f"/api/v1/inquiries/{extra.inquiry_id}",
        f"/api/v1/inquiries/{extra.walkin_id}",
        f"/api/v1/segments/{extra.segment_id}/members",
        f"/api/v1/surveys/{extra.survey_id}/responses",
        "/api/v1/activities",
        f"/api/v1/accounts/{extra.account_id}/timeline",
        f"/api/v1/customers/{pk}/loyalty/ledger",
        "/api/v1/orders",
    ]
    bodies = {}
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, (url, response.content[:300])
        bodies[url] = json.dumps(response.json(), ensure_ascii=False)
    every = "\n".join(bodies.values())
    if role == "analyst":
        for needle in [*_clear_needles(), NAME[0] + "様", NAME[0] + " "]:
            assert needle not in every, needle
        detail = client.get(f"/api/v1/inquiries/{extra.inquiry_id}").json()
        assert detail["subject"] == "山***様 返品の件"
        assert SECOND_MASKED in detail["messages"][0]["body"]
        walkin = client.get(f"/api/v1/inquiries/{extra.walkin_id}").json()
        assert walkin["contact_email"] == "w***@example.org"
        assert walkin["contact_name"] == "鈴***"
        delivery = client.get(f"/api/v1/deliveries/{extra.delivery_id}").json()
        assert delivery["rendered"]["text"] == f"山***様 {MASKED_EMAIL}"
        members = client.get(f"/api/v1/segments/{extra.segment_id}/members").json()["items"]
        assert MASKED_EMAIL in {m["email"] for m in members}
    else:
        for needle in (EMAIL, SECOND_PHONE, CONTACT, "鈴木 一郎", NAME[1]):
            assert needle in every, needle


@pytest.mark.parametrize("role", ["analyst", "marketer"])
def test_search_of_masked_roles_matches_ids_only(
    world: World, make_staff: Any, django_user_model: Any, role: str
) -> None:
    """An analyst typing a clear e-mail, phone or name finds nobody (that would confirm it);
    the customer number and an external id still find the customer."""
    console = Client(HTTP_ACCEPT_LANGUAGE="en")
    console.force_login(make_staff(role))
    api = _api(django_user_model, role)
    pk = world.subject.pk
    link = f'href="/customers/{pk}/"'

    def found(term: str) -> tuple[bool, bool]:
        response = console.get("/customers/", {"q": term})
        assert response.status_code == 200
        page = response.content.decode()
        items = api.get("/api/v1/customers", {"search": term}).json()["items"]
        return link in page, pk in {c["id"] for c in items}

    hint = "Customer number or external ID"
    assert (hint in _page(console, "/customers/")) == (role == "analyst")
    for term in (EMAIL, "hanako", "09012345678", NAME[1], "ハナコ"):
        if role == "analyst":
            assert found(term) == (False, False), term
        else:
            assert found(term) == (True, True), term
    for term in (str(pk), f"#{pk}" if role == "analyst" else str(pk), EXTERNAL):
        assert found(term) == (True, True), term


@pytest.mark.parametrize("role", ["analyst", "marketer"])
def test_export_search_of_masked_roles_matches_ids_only(
    world: World, make_staff: Any, django_user_model: Any, role: str
) -> None:
    console = Client(HTTP_ACCEPT_LANGUAGE="en")
    console.force_login(make_staff(role))
    api = _api(django_user_model, role)

    def exported(term: str) -> tuple[int, int]:
        rows = []
        for response in (
            console.get("/data/customers.csv", {"q": term}),
            api.get("/api/v1/exports/customers.csv", {"search": term}),
        ):
            assert response.status_code == 200
            text = b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]
            rows.append(len(text.strip().splitlines()) - 1)  # without the header
        return rows[0], rows[1]

    assert exported(EXTERNAL) == (1, 1)
    assert exported(EMAIL) == ((0, 0) if role == "analyst" else (1, 1))


@pytest.mark.parametrize("role", ["analyst", "marketer"])
def test_template_preview_for_a_customer(
    world: World, make_staff: Any, django_user_model: Any, role: str
) -> None:
    console = Client(HTTP_ACCEPT_LANGUAGE="en")
    console.force_login(make_staff(role))
    body = "<p>{{ customer.family_name }} {{ customer.given_name }}様 {{ customer.email }}</p>"
    data = {
        "slug": "p",
        "name": "p",
        "channel_kind": "email",
        "body_format": "html",
        "purpose": "marketing",
        "subject_ja": "{{ customer.given_name }}様",
        "body_ja": body,
        "preview_customer": world.subject.pk,
    }
    partial = console.post("/messaging/preview/", data).content.decode()
    frame_url = partial.split('src="', 1)[1].split('"', 1)[0]
    frame = console.get(frame_url).content.decode()
    template = Template.objects.get(slug="hello")
    TemplateVariant.objects.create(template=template, locale="ja", subject="s", body=body)
    api = _api(django_user_model, role)
    payload = {"customer_id": world.subject.pk}
    preview = api.post("/api/v1/templates/hello/preview", payload, content_type="application/json")
    assert preview.status_code == 200, preview.content
    rendered = json.dumps(preview.json(), ensure_ascii=False)
    if role == "analyst":
        for page in (partial, frame):
            assert NAME[1] not in page and EMAIL not in page
        assert "花***様" in partial and MASKED_EMAIL in frame
        assert NAME[1] not in rendered and EMAIL not in rendered
    else:
        assert f"{NAME[1]}様" in partial and EMAIL in frame
        assert NAME[1] in rendered and EMAIL in rendered
