"""Double opt-in for marketing email (kizuna.privacy.double_opt_in), with a real SMTP server:
a subscription records a pending confirmation and emails a signed, expiring link through
messaging; marketing email is held back until the customer confirms; the ledger and the
timeline record both steps; an expired or tampered link grants nothing."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client

from kizuna.customers.models import ConsentEntry, Customer, Event
from kizuna.customers.selectors import has_consent
from kizuna.iam.services import api_key_create
from kizuna.messaging import services as messaging
from kizuna.messaging.models import Delivery
from kizuna.messaging.tests.conftest import (  # noqa: F401 (fixtures)
    _daytime,
    dkim_key,
    email_channel,
    make_customer,
    newsletter,
    smtp_server,
)
from kizuna.privacy import double_opt_in
from kizuna.privacy.models import EmailConfirmation

pytestmark = pytest.mark.django_db

HREF = re.compile(r'href="(https?://[^"]+)"')
CONFIRM = re.compile(r"/m/c/([^/]+)/$")


@pytest.fixture
def api(django_user_model: Any) -> Client:
    owner = django_user_model.objects.create_user("owner", is_staff=True)
    issued = api_key_create(name="crm", role="marketer", created_by=owner)
    return Client(HTTP_AUTHORIZATION=f"Bearer {issued.secret}", HTTP_ACCEPT_LANGUAGE="en")


def _opt_in(api: Client, capture: Any, customer: Customer, source: str = "api") -> Any:
    with capture(execute=True):  # the queued send runs (Huey is immediate in tests)
        return api.post(
            "/api/v1/privacy/opt-ins",
            {"customer_id": customer.pk, "source": source},
            "application/json",
        )


def _marketing(customer: Customer, channel: Any, template: Any, capture: Any, key: str) -> str:
    with capture(execute=True):
        delivery, _created = messaging.delivery_enqueue(
            source="campaign:1",
            customer=customer,
            channel=channel,
            template=template,
            idempotency_key=key,
        )
    delivery.refresh_from_db()
    return delivery.status


def _token(received: Any) -> str:
    """The confirmation token of the emailed link (followed through click tracking)."""
    body = received.message.get_body(preferencelist=("html",)).get_content()
    for href in HREF.findall(body):
        path = "/" + href.split("://", 1)[1].split("/", 1)[1]
        found = CONFIRM.search(path)
        if found is None and "/c/" in path:
            location = Client().get(path).headers.get("Location", "")
            found = CONFIRM.search(location.split("?")[0])
        if found:
            return found.group(1)
    raise AssertionError(body)


def test_pending_until_confirmed_then_granted(
    api: Client,
    settings: Any,
    smtp_server: Any,  # noqa: F811
    email_channel: Any,  # noqa: F811
    newsletter: Any,  # noqa: F811
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.PRIVACY_DOUBLE_OPT_IN = ["api", "portal"]
    capture = django_capture_on_commit_callbacks
    customer = make_customer(opt_in=False)
    sink = smtp_server[1]

    response = _opt_in(api, capture, customer)
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "pending" and body["expires_at"]
    assert not has_consent(customer=customer, purpose="marketing", channel="email")
    assert not ConsentEntry.objects.filter(customer=customer).exists()
    requested = Event.objects.get(customer=customer, type="consent.confirmation_requested")
    assert requested.properties["confirmation_id"] == body["confirmation_id"]
    (received,) = sink.messages
    assert received.recipients == [customer.email]
    token = _token(received)

    # Until the link is confirmed, no marketing email goes out.
    assert _marketing(customer, email_channel, newsletter, capture, "m1") != "sent"
    assert len(sink.messages) == 1
    # Asking again sends no second link while the first is valid.
    assert _opt_in(api, capture, customer).json()["confirmation_id"] == body["confirmation_id"]
    assert len(sink.messages) == 1

    page = Client(HTTP_ACCEPT_LANGUAGE="en")
    shown = page.get(f"/m/c/{token}/?lang=en")
    assert shown.status_code == 200 and b"Confirm" in shown.content
    assert not has_consent(customer=customer, purpose="marketing", channel="email")  # GET only asks
    done = page.post(f"/m/c/{token}/?lang=en")
    assert done.status_code == 200 and b"confirmed" in done.content
    entry = ConsentEntry.objects.get(customer=customer)
    assert (entry.status, entry.source) == ("granted", "double_opt_in")
    assert entry.evidence["confirmation_id"] == body["confirmation_id"]
    assert entry.evidence["requested_source"] == "api"
    assert entry.evidence["requested_at"] < entry.evidence["confirmed_at"]
    confirmation = EmailConfirmation.objects.get(pk=body["confirmation_id"])
    assert confirmation.status == "confirmed" and confirmation.consent_entry_id == entry.pk
    assert page.post(f"/m/c/{token}/").status_code == 200  # twice: nothing more
    assert ConsentEntry.objects.filter(customer=customer).count() == 1

    assert _marketing(customer, email_channel, newsletter, capture, "m2") == "sent"
    assert len(sink.messages) == 2


def test_expired_and_tampered_links_grant_nothing(
    api: Client,
    settings: Any,
    smtp_server: Any,  # noqa: F811
    email_channel: Any,  # noqa: F811
    django_capture_on_commit_callbacks: Any,
    monkeypatch: Any,
) -> None:
    settings.PRIVACY_DOUBLE_OPT_IN = True
    customer = make_customer(opt_in=False)
    assert _opt_in(api, django_capture_on_commit_callbacks, customer).status_code == 202
    token = _token(smtp_server[1].messages[0])
    page = Client(HTTP_ACCEPT_LANGUAGE="en")

    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    for bad in (tampered, "x" + token, "nonsense"):
        response = page.post(f"/m/c/{bad}/")
        assert response.status_code == 400 and b"not valid" in response.content
    assert not ConsentEntry.objects.filter(customer=customer).exists()

    monkeypatch.setattr(double_opt_in, "lifetime", lambda: timedelta(seconds=-1))
    response = page.post(f"/m/c/{token}/")
    assert response.status_code == 400 and b"expired" in response.content
    assert EmailConfirmation.objects.get(customer=customer).status == "expired"
    assert not ConsentEntry.objects.filter(customer=customer).exists()
    assert not Delivery.objects.filter(customer=customer, purpose="marketing").exists()


def test_off_by_default_and_bad_input(api: Client, settings: Any, email_channel: Any) -> None:  # noqa: F811
    customer = make_customer(opt_in=False)
    response = api.post("/api/v1/privacy/opt-ins", {"customer_id": customer.pk}, "application/json")
    assert response.status_code == 201 and response.json()["status"] == "granted"
    assert has_consent(customer=customer, purpose="marketing", channel="email")
    assert not EmailConfirmation.objects.exists()

    settings.PRIVACY_DOUBLE_OPT_IN = ["portal"]  # per source: the API's opt-in is direct
    assert double_opt_in.required("portal") and not double_opt_in.required("api")
    settings.PRIVACY_DOUBLE_OPT_IN = True
    nobody = Customer.objects.create(family_name="無")
    response = api.post("/api/v1/privacy/opt-ins", {"customer_id": nobody.pk}, "application/json")
    assert response.status_code == 422 and "email" in response.content.decode()
    assert not EmailConfirmation.objects.exists() and not Delivery.objects.exists()
    assert (
        Client()
        .post("/api/v1/privacy/opt-ins", {"customer_id": customer.pk}, "application/json")
        .status_code
        == 401
    )


def test_preference_centre_opt_in_waits_for_the_link(
    settings: Any,
    smtp_server: Any,  # noqa: F811
    email_channel: Any,  # noqa: F811
    django_capture_on_commit_callbacks: Any,
) -> None:
    from kizuna.messaging import links

    settings.PRIVACY_DOUBLE_OPT_IN = True
    customer = make_customer(opt_in=False)
    url = f"/m/p/{links.preferences_token(customer.pk)}/?lang=en"
    with django_capture_on_commit_callbacks(execute=True):
        response = Client().post(url, {"email": "on", "frequency": "normal"})
    assert response.status_code == 200
    assert b"open its link to confirm" in response.content
    assert not has_consent(customer=customer, purpose="marketing", channel="email")
    assert EmailConfirmation.objects.get(customer=customer).source == "preference_centre"
    (received,) = smtp_server[1].messages
    assert Client().post(f"/m/c/{_token(received)}/").status_code == 200
    assert has_consent(customer=customer, purpose="marketing", channel="email")
