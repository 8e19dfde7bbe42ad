"""LINE Login account linking through the member portal, against the local LINE server
(kizuna.line_marketing.login; the server and fixtures are line_marketing's)."""

from __future__ import annotations

import urllib.parse

import pytest
from django.test import Client

from kizuna.customers.models import Identity
from kizuna.customers.services import customer_create
from kizuna.line_marketing.tests import conftest as line_fixtures
from kizuna.messaging.models import LineContact
from kizuna.portal.links import member_url

# line_marketing's local LINE server and channels, as fixtures of this module.
line_server = line_fixtures.line_server
channel = line_fixtures.channel
login_channel = line_fixtures.login_channel
line_id = line_fixtures.line_id

pytestmark = pytest.mark.django_db

CALLBACK = "http://testserver/m/line/callback/"


def _card_path(client: Client, customer) -> str:
    return member_url(customer.pk)


def _start(client: Client, customer, line_server) -> dict[str, str]:
    response = client.get(_card_path(client, customer) + "line-login/")
    assert response.status_code == 302
    url = urllib.parse.urlsplit(response["Location"])
    assert f"{url.scheme}://{url.netloc}" == line_server.host
    assert url.path == "/oauth2/v2.1/authorize"
    query = dict(urllib.parse.parse_qsl(url.query))
    assert query["response_type"] == "code" and query["scope"] == "profile openid"
    assert query["client_id"] == line_server.login_channel_id
    assert query["redirect_uri"] == CALLBACK
    return query


def test_line_login_links_the_line_user_id(login_channel, line_server) -> None:
    customer = customer_create(data={"family_name": "山田"})
    client = Client()
    query = _start(client, customer, line_server)
    line_server.codes["code-1"] = (line_id(7), CALLBACK)  # the customer logged in at LINE
    response = client.get("/m/line/callback/", {"code": "code-1", "state": query["state"]})
    assert response.status_code == 302
    assert response["Location"].startswith(_card_path(client, customer))
    identity = Identity.objects.get(kind="line")
    assert (identity.customer_id, identity.value, identity.source) == (
        customer.pk,
        line_id(7),
        "line_login",
    )
    contact = LineContact.objects.get(channel=login_channel, line_user_id=line_id(7))
    assert contact.customer_id == customer.pk and contact.following is False
    # The card offers the link.
    page = client.get(_card_path(client, customer)).content.decode()
    assert "line-login/" in page


def test_a_line_id_of_another_customer_is_refused(login_channel, line_server) -> None:
    first = customer_create(data={"family_name": "一"})
    second = customer_create(data={"family_name": "二"})
    client = Client()
    for n, customer in enumerate([first, second]):
        query = _start(client, customer, line_server)
        line_server.codes[f"c{n}"] = (line_id(8), CALLBACK)
        response = client.get(
            "/m/line/callback/",
            {"code": f"c{n}", "state": query["state"]},
            HTTP_ACCEPT_LANGUAGE="en",
        )
    assert response.status_code == 400
    assert "already linked to another customer" in response.content.decode()
    assert list(Identity.objects.filter(kind="line").values_list("customer_id", flat=True)) == [
        first.pk
    ]


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"code": "c", "state": "forged"}, "expired"),
        ({"error": "access_denied", "error_description": "The user cancelled"}, "cancelled"),
    ],
)
def test_bad_callbacks_link_nothing(login_channel, line_server, params, needle) -> None:
    response = Client().get("/m/line/callback/", params, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400 and needle in response.content.decode()
    assert not Identity.objects.filter(kind="line").exists()


def test_an_unknown_code_is_refused_by_the_token_endpoint(login_channel, line_server) -> None:
    customer = customer_create(data={"family_name": "山田"})
    client = Client()
    query = _start(client, customer, line_server)
    response = client.get(
        "/m/line/callback/",
        {"code": "never-issued", "state": query["state"]},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 400 and "(400)" in response.content.decode()
    assert not Identity.objects.filter(kind="line").exists()


def test_without_line_login_the_code_link_page_is_used(db, line_server) -> None:
    customer = customer_create(data={"family_name": "山田"})
    client = Client()
    response = client.get(_card_path(client, customer) + "line-login/")
    assert response.status_code == 302 and "/m/p/" in response["Location"]
    assert client.get("/m/not-a-token/line-login/").status_code == 404


def test_login_channel_set_up_is_validated(channel) -> None:
    from django.core.exceptions import ValidationError

    from kizuna.line_marketing.login import login_channel_save
    from kizuna.line_marketing.models import LoginChannel

    with pytest.raises(ValidationError) as exc:
        login_channel_save(
            channel=channel, login_channel_id="abc", secret="", authorize_host="http://evil"
        )
    assert set(exc.value.message_dict) == {"login_channel_id", "secret", "authorize_host"}
    assert LoginChannel.objects.count() == 0
