"""Console pages: permissions, channel credentials write-only, the template editor with its
live preview and test send, deliveries with history, the suppression list."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from kizuna.messaging import crypto, services
from kizuna.messaging.models import Channel, Delivery, Suppression, Template
from kizuna.messaging.tests.conftest import make_customer

pytestmark = pytest.mark.django_db


@pytest.fixture
def login(make_staff):
    def make(role: str = "admin") -> Client:
        client = Client()
        client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"  # the assertions read English text
        client.force_login(make_staff(role))
        return client

    return make


PAGES = [
    "/messaging/",
    "/messaging/channels/",
    "/messaging/templates/",
    "/messaging/templates/new/",
    "/messaging/suppressions/",
    "/messaging/channels/new/email/",
]


def test_pages_need_login_and_permission(login) -> None:
    for url in PAGES:
        assert Client().get(url).status_code == 302, url
        assert login("admin").get(url).status_code == 200, url
    analyst = login("analyst")
    assert analyst.get("/messaging/").status_code == 200  # may look
    response = analyst.post("/messaging/channels/new/email/", {"name": "x", "setting_host": "h"})
    assert response.status_code == 403 and not Channel.objects.exists()


def test_channel_secrets_are_write_only(login) -> None:
    client = login("admin")
    response = client.post(
        "/messaging/channels/new/line/",
        {
            "name": "LINE公式",
            "active": "on",
            "secret_access_token": "tok-123",
            "secret_channel_secret": "sec-456",
        },
    )
    channel = Channel.objects.get()
    assert response.status_code == 302
    assert crypto.decrypt(channel.credentials_encrypted) == {
        "access_token": "tok-123",
        "channel_secret": "sec-456",
    }
    page = client.get(f"/messaging/channels/{channel.pk}/").content.decode()
    assert "tok-123" not in page and "sec-456" not in page
    assert f"/hooks/line/{channel.pk}/" in page
    # saving again with blank secrets keeps them
    client.post(f"/messaging/channels/{channel.pk}/", {"name": "LINE公式", "active": "on"})
    channel.refresh_from_db()
    assert crypto.decrypt(channel.credentials_encrypted)["access_token"] == "tok-123"
    bad = client.post("/messaging/channels/new/email/", {"name": "m", "setting_charset": "sjis"})
    assert bad.status_code == 200
    assert "This setting is required." in bad.content.decode()
    assert Channel.objects.count() == 1


def test_template_editor_saves_and_reports_the_line(login) -> None:
    client = login("marketer")
    data = {
        "slug": "welcome",
        "name": "Welcome",
        "channel_kind": "email",
        "body_format": "html",
        "purpose": "marketing",
        "subject_ja": "ようこそ",
        "body_ja": "<p>ok</p>\n<p>{% if %}</p>",
    }
    bad = client.post("/messaging/templates/new/", data)
    assert bad.status_code == 200 and "line 2" in bad.content.decode()
    assert not Template.objects.exists()
    data["body_ja"] = "<p>{{ customer.name }}様</p>"
    assert client.post("/messaging/templates/new/", data).status_code == 302
    assert Template.objects.get().variants.get().body == "<p>{{ customer.name }}様</p>"


def test_live_preview_renders_for_a_chosen_customer(login) -> None:
    client = login("marketer")  # an analyst sees it masked (privacy/tests/test_masking_surfaces)
    customer = make_customer()
    data = {
        "slug": "p",
        "name": "p",
        "channel_kind": "email",
        "body_format": "html",
        "purpose": "marketing",
        "subject_ja": "{{ customer.name }}様",
        "body_ja": "<p>{{ customer.name }}様へ</p>",
        "preview_customer": customer.pk,
    }
    partial = client.post("/messaging/preview/", data).content.decode()
    assert "山田 花子様" in partial
    match = re.search(r'src="(/messaging/preview/[^"]+/)"', partial)
    assert match is not None
    frame = match.group(1)
    response = client.get(frame)
    assert "山田 花子様へ" in response.content.decode()
    assert "sandbox" in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "SAMEORIGIN"
    assert Client().get(frame).status_code == 302  # staff only
    data["body_ja"] = "<p>\n{{ customer.nope }}</p>"
    error = client.post("/messaging/preview/", data).content.decode()
    assert "line 2" in error and "nope" in error


def test_test_send_goes_to_the_staff_address(
    login, commit, smtp_server, email_channel, newsletter
) -> None:
    customer = make_customer(opt_in=False)  # no consent: a test send still goes to staff
    client = login("marketer")
    response = commit(
        client.post,
        f"/messaging/templates/{newsletter.pk}/test/",
        {"channel": email_channel.pk, "customer": customer.pk, "to": "staff@kizuna.example"},
    )
    delivery = Delivery.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"/{delivery.pk}/")
    assert delivery.status == "sent" and delivery.to_address == "staff@kizuna.example"
    (received,) = smtp_server[1].messages
    assert received.recipients == ["staff@kizuna.example"]
    page = client.get(f"/messaging/deliveries/{delivery.pk}/").content.decode()
    assert "山田 花子様へ 秋のセールのお知らせ" in page
    assert (
        login("analyst")
        .post(f"/messaging/templates/{newsletter.pk}/test/", {"channel": email_channel.pk})
        .status_code
        == 403
    )


def test_suppression_list_add(login) -> None:
    client = login("support")
    response = client.post(
        "/messaging/suppressions/",
        {"channel_kind": "email", "address": "x@example.jp", "reason": "manual", "note": "tel"},
    )
    assert response.status_code == 302
    assert services.is_suppressed(channel_kind="email", address="x@example.jp")
    page = client.get("/messaging/suppressions/").content.decode()
    assert "x@example.jp" not in page and Suppression.objects.get().address_hash[:12] in page


def test_customer_360_shows_messages(login, commit, smtp_server, email_channel, newsletter):
    customer = make_customer()
    commit(
        services.delivery_enqueue,
        source="c:1",
        customer=customer,
        channel=email_channel,
        template=newsletter,
    )
    page = login("admin").get(f"/customers/{customer.pk}/").content.decode()
    assert "Newsletter" in page and "/messaging/deliveries/" in page
