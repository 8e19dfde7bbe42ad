from __future__ import annotations

import pytest
from django.test import Client

from kizuna.support import services
from kizuna.support.choices import Origin
from kizuna.support.models import CannedAnswer, FaqArticle, Inquiry, Message

pytestmark = pytest.mark.django_db


def login(make_staff, role: str) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(make_staff(role))
    return client


def _inquiry(customer, **kw) -> Inquiry:
    inquiry, _c = services.inquiry_open(
        subject=kw.pop("subject", "<script>alert(1)</script> 配送"),
        body="届きません <b>急ぎ</b>",
        origin=Origin.CONSOLE,
        customer=customer,
        **kw,
    )
    return inquiry


def test_pages_need_login_and_permission(make_staff, customer) -> None:
    inquiry = _inquiry(customer)
    for path in ("/support/", f"/support/{inquiry.pk}/", "/support/faq/", "/support/new/"):
        assert Client().get(path).status_code == 302  # to the login page
    outsider = Client()
    outsider.force_login(make_staff("analyst"))
    assert outsider.get("/support/").status_code == 200  # analysts read
    assert outsider.get("/support/new/").status_code == 403
    assert outsider.get("/support/faq/new/").status_code == 403
    r = outsider.post(f"/support/{inquiry.pk}/reply/", {"body": "x", "kind": "note"})
    assert r.status_code == 403 and not Message.objects.filter(direction="note").exists()


def test_queue_highlights_breaches_and_escapes(make_staff, customer) -> None:
    from datetime import timedelta

    from kizuna.core.timeutil import now

    late = _inquiry(customer, subject="late one")
    Inquiry.objects.filter(pk=late.pk).update(first_response_due=now() - timedelta(minutes=5))
    _inquiry(customer)
    client = login(make_staff, "support")
    html = client.get("/support/").content.decode()
    assert html.count('class="sla-breached"') == 1 and "SLA breached" in html
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert "First response (median)" in html
    breached = client.get("/support/?breached=1").content.decode()
    assert "late one" in breached and "配送" not in breached
    # the customer-360 panel lists the open inquiries
    page = client.get(f"/customers/{customer.pk}/").content.decode()
    assert 'id="support"' in page and late.reply_token in page


def test_inquiry_page_note_reply_error_change_and_suggestions(
    make_staff, customer, articles
) -> None:
    inquiry = _inquiry(customer, subject="ポイントの有効期限")
    CannedAnswer.objects.create(title="お詫び", body_ja="ご迷惑をおかけしました", body_en="Sorry")
    agent = make_staff("support")
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(agent)
    html = client.get(f"/support/{inquiry.pk}/").content.decode()
    assert "FAQ suggestions" in html and "ポイントの有効期限はありますか" in html
    assert "&lt;b&gt;急ぎ&lt;/b&gt;" in html
    canned = CannedAnswer.objects.get()
    assert (
        "ご迷惑をおかけしました"
        in client.get(f"/support/{inquiry.pk}/?canned={canned.pk}").content.decode()
    )

    r = client.post(
        f"/support/{inquiry.pk}/reply/",
        {"body": "調査中", "kind": "note", "status": "pending", "idempotency_key": "n1"},
    )
    assert r.status_code == 302 and inquiry.messages.filter(direction="note").count() == 1
    # no email channel: the reply is refused with the reason, nothing is recorded
    r = client.post(
        f"/support/{inquiry.pk}/reply/",
        {"body": "回答です", "kind": "reply", "status": "pending", "idempotency_key": "r1"},
    )
    assert r.status_code == 422 and "No active email channel" in r.content.decode()
    assert not inquiry.messages.filter(direction="outbound").exists()

    gone = make_staff("support")
    gone.is_active = False
    gone.save()
    r = client.post(
        f"/support/{inquiry.pk}/change/",
        {"status": "open", "priority": "urgent", "assignee": str(gone.pk)},
        follow=True,
    )
    assert "Select a valid choice" in r.content.decode()  # deactivated users are not offered
    client.post(
        f"/support/{inquiry.pk}/change/",
        {"status": "resolved", "priority": "urgent", "assignee": str(agent.pk)},
    )
    inquiry.refresh_from_db()
    assert inquiry.status == "resolved" and inquiry.priority == "urgent"
    assert inquiry.assignee == agent


def test_new_inquiry_and_faq_management(make_staff, customer) -> None:
    client = login(make_staff, "support")
    r = client.post(
        "/support/new/",
        {
            "customer_id": customer.pk,
            "subject": "電話での問い合わせ",
            "body": "メモ",
            "priority": "high",
        },
    )
    inquiry = Inquiry.objects.get()
    assert r.status_code == 302 and r["Location"] == f"/support/{inquiry.pk}/"
    r = client.post("/support/new/", {"subject": "x", "body": "y", "priority": "normal"})
    assert r.status_code == 200 and "Choose a customer" in r.content.decode()
    assert Inquiry.objects.count() == 1

    r = client.post(
        "/support/faq/new/",
        {
            "key": "wifi",
            "locale": "ja",
            "title": "Wi-Fiはありますか",
            "body": "全店で使えます",
            "tags": "wifi, 店舗",
            "published": "on",
        },
    )
    assert r.status_code == 302
    article = FaqArticle.objects.get()
    assert article.tags == ["wifi", "店舗"]
    html = client.get("/support/faq/?q=店でWi-Fiは使えますか").content.decode()
    assert "What the assistant would answer" in html and "Wi-Fiはありますか" in html
    r = client.post(
        "/support/canned/new/", {"title": "挨拶", "body_ja": "お問い合わせありがとうございます"}
    )
    assert r.status_code == 302 and CannedAnswer.objects.get().title == "挨拶"
    client.post(f"/support/faq/{article.pk}/delete/")
    assert not FaqArticle.objects.exists()


def test_sla_policies_page(make_staff, customer) -> None:
    from kizuna.support.models import SlaPolicy

    analyst = login(make_staff, "analyst")
    assert "480" in analyst.get("/support/sla/").content.decode()  # normal: 8 h default
    assert analyst.post("/support/sla/", {}).status_code == 403
    client = login(make_staff, "support")
    form = {
        "urgent-first": "30",
        "urgent-resolution": "240",
        "high-first": "60",
        "high-resolution": "600",
        "normal-first": "120",
        "normal-resolution": "1440",
        "low-first": "600",
        "low-resolution": "10",
    }
    r = client.post("/support/sla/", form, follow=True)
    assert "At least the first-response time" in r.content.decode()
    assert not SlaPolicy.objects.exists()  # all or nothing
    form["low-resolution"] = "6000"
    assert client.post("/support/sla/", form).status_code == 302
    assert SlaPolicy.objects.get(priority="urgent").first_response_minutes == 30
    inquiry = _inquiry(customer, priority="urgent")
    assert (inquiry.first_response_due - inquiry.created_at).total_seconds() == 30 * 60
