from __future__ import annotations

import re

import pytest
from django.core.cache import cache
from django.test import Client

from kizuna.support.models import Inquiry

pytestmark = pytest.mark.django_db
URL = "/m/support/contact/"


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    cache.clear()


def _form(**kw) -> dict:
    return {
        "name": "Alex",
        "email": "alex@example.com",
        "subject": "Shipping",
        "body": "How much is shipping for coffee beans?",
        "website": "",
        **kw,
    }


def test_contact_form_needs_csrf() -> None:
    client = Client(enforce_csrf_checks=True)
    assert client.post(URL, _form()).status_code == 403
    assert not Inquiry.objects.exists()


def test_contact_form_auto_answer_then_handover(articles) -> None:
    client = Client()
    page = client.get(URL + "?lang=en")
    assert page.status_code == 200 and "Contact us" in page.content.decode()
    r = client.post(URL + "?lang=en", _form())
    html = r.content.decode()
    assert r.status_code == 200 and "This may answer your question" in html
    assert "shipping is 500 yen" in html
    inquiry = Inquiry.objects.get()
    assert inquiry.origin == "portal" and inquiry.status == "pending"
    action = re.search(r'action="([^"]+/handover/[^"]*)"', html)
    assert action is not None
    r = client.post(action.group(1).replace("&amp;", "&"))
    assert r.status_code == 200 and "A member of our team will answer you" in r.content.decode()
    inquiry.refresh_from_db()
    assert inquiry.status == "open"
    assert client.post("/m/support/contact/forged/handover/").status_code == 404


def test_contact_form_escapes_refuses_bots_and_floods(articles, settings) -> None:
    client = Client()
    r = client.post(
        URL + "?lang=ja", _form(subject="<script>x</script>", body="<img src=x onerror=alert(1)>")
    )
    html = r.content.decode()
    assert r.status_code == 200 and "<img src=x" not in html and "<script>x" not in html
    inquiry = Inquiry.objects.get()
    assert inquiry.subject == "<script>x</script>"  # stored as written, escaped when shown
    r = client.post(URL + "?lang=en", _form(website="http://spam.example"))
    assert r.status_code == 422 and "could not be sent" in r.content.decode()
    r = client.post(URL + "?lang=en", _form(email="not-an-email"))
    assert r.status_code == 422
    settings.KIZUNA_SUPPORT_FLOOD_LIMIT = 1
    r = client.post(URL + "?lang=en", _form(subject="again"))
    assert r.status_code == 422 and "Too many inquiries" in r.content.decode()
    assert Inquiry.objects.count() == 1


@pytest.mark.usefixtures("ratelimit_clock_pinned")
def test_contact_form_is_rate_limited_per_ip(articles) -> None:
    client = Client()
    codes = [
        client.post(URL + "?lang=en", _form(email=f"p{n}@example.com")).status_code
        for n in range(11)
    ]
    assert codes[:10] == [200] * 10 and codes[10] in (403, 429)
    assert Inquiry.objects.count() == 10
