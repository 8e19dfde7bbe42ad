"""The preference centre, unsubscribe confirmation and LINE linking pages (customer-facing,
signed links, ja/en)."""

from __future__ import annotations

import pytest
from django.test import Client

from kizuna.customers import services as customer_services
from kizuna.customers.selectors import has_consent
from kizuna.messaging import links, services
from kizuna.messaging.models import Channel, Delivery, LineLinkCode, Preference, Suppression

pytestmark = pytest.mark.django_db


@pytest.fixture
def person():
    customer = customer_services.customer_create(
        data={"family_name": "山田", "given_name": "花子", "email": "hanako@example.jp"}
    )
    customer_services.consent_record(
        customer=customer, purpose="marketing", channel="email", status="granted", source="t"
    )
    return customer


def test_preferences_page_in_the_customer_language_and_saves(person) -> None:
    url = f"/m/p/{links.preferences_token(person.pk)}/"
    page = Client().get(url)
    assert page.status_code == 200 and page["Content-Language"] == "ja"
    assert "配信" in page.content.decode() or "Message preferences" in page.content.decode()
    assert page["Referrer-Policy"] == "same-origin"
    english = Client().get(url + "?lang=en")
    assert "Message preferences" in english.content.decode()
    response = Client().post(
        url, {"line": "on", "frequency": "weekly", "interests": "coffee, 抹茶 ,coffee"}
    )
    assert response.status_code == 200
    assert 'role="status"' in response.content.decode()  # "your choices are saved"
    assert not has_consent(customer=person, purpose="marketing", channel="email")  # unticked
    assert has_consent(customer=person, purpose="marketing", channel="line")
    assert Preference.objects.get(customer=person).frequency == "weekly"
    person.refresh_from_db()
    assert person.traits["interests"] == "coffee, 抹茶"


def test_bad_input_and_bad_tokens(person) -> None:
    url = f"/m/p/{links.preferences_token(person.pk)}/"
    bad = Client().post(url, {"email": "on", "frequency": "hourly"})
    assert bad.status_code == 200 and "hourly" in bad.content.decode()
    assert has_consent(customer=person, purpose="marketing", channel="email")  # unchanged
    assert not Preference.objects.exists()
    assert Client().get("/m/p/forged-token/").status_code == 404
    other_salt = links.sign(links.UNSUB, {"c": person.pk})
    assert Client().get(f"/m/p/{other_salt}/").status_code == 404


def test_unsubscribe_confirmation_get_asks_post_unsubscribes(
    person, django_capture_on_commit_callbacks
):
    channel = Channel.objects.create(kind="email", name="m", settings={})
    from kizuna.messaging.models import Template

    template = Template.objects.create(slug="n", name="n", channel_kind="email", body_format="html")
    delivery = Delivery.objects.create(
        idempotency_key="k",
        source="c",
        customer=person,
        channel=channel,
        template=template,
        purpose="marketing",
        status="sent",
        to_address="hanako@example.jp",
    )
    token = links.sign(links.UNSUB, delivery.pk)
    client = Client(enforce_csrf_checks=True)
    page = client.get(f"/m/u/{token}/")
    assert page.status_code == 200 and "<form" in page.content.decode()
    assert has_consent(customer=person, purpose="marketing", channel="email")  # GET changes nothing
    csrf = page.cookies["csrftoken"].value
    import re

    form_token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())
    assert form_token is not None
    done = client.post(
        f"/m/u/{token}/",
        {"csrfmiddlewaretoken": form_token.group(1)},
        HTTP_COOKIE=f"csrftoken={csrf}",
    )
    assert done.status_code == 200
    assert not has_consent(customer=person, purpose="marketing", channel="email")
    assert Suppression.objects.filter(reason="unsubscribe").count() == 1
    assert Client().get("/m/u/forged/").status_code == 404


def test_line_linking_issues_a_one_time_code(person) -> None:
    url = f"/m/p/{links.preferences_token(person.pk)}/line/"
    assert "<form" in Client().get(url).content.decode()
    response = Client().post(url)
    code = LineLinkCode.objects.get(customer=person)
    assert code.code in response.content.decode() and code.code.startswith("KZ-")
    assert code.used_at is None
    assert services.line_link_code_issue(customer=person).code != code.code
