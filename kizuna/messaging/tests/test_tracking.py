"""Opens, clicks, one-click unsubscribe (RFC 8058) and bounces (RFC 3464), through the real
public endpoints; forged tokens and malformed reports change nothing."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client

from kizuna.core.timeutil import now
from kizuna.customers.models import Event
from kizuna.customers.selectors import has_consent
from kizuna.messaging import links, services
from kizuna.messaging.models import Delivery, Suppression
from kizuna.messaging.tests.conftest import make_customer

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(commit, smtp_server, email_channel, newsletter) -> Delivery:
    delivery, _ = commit(
        services.delivery_enqueue,
        source="campaign:1",
        customer=make_customer(),
        channel=email_channel,
        template=newsletter,
    )
    delivery.refresh_from_db()
    assert delivery.status == "sent"
    # Opened and clicked by a person, some minutes later (seconds after delivery it would
    # be a scanner's: see test_engagement.py).
    Delivery.objects.filter(pk=delivery.pk).update(sent_at=now() - timedelta(minutes=10))
    return delivery


BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120 Safari/537.36"


def _find(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    assert match is not None, pattern
    return match.group(1)


def _path(url: str) -> str:
    return url.removeprefix("http://localhost:8000")


def test_open_pixel_records_once_and_always_answers_a_gif(commit, sent) -> None:
    pixel = _find(r'src="([^"]*/t/o/[^"]+)"', sent.rendered["html"])
    client = Client(HTTP_USER_AGENT=BROWSER)
    for _ in range(2):
        response = commit(client.get, _path(pixel))
        assert response.status_code == 200 and response["Content-Type"] == "image/gif"
        assert response["Cache-Control"] == "no-store, private"
    assert Event.objects.filter(type="email.opened", customer=sent.customer).count() == 1
    sent.refresh_from_db()
    assert sent.status == "opened"
    forged = client.get("/t/o/MQ:forged.gif")
    assert forged.status_code == 200  # same answer, nothing recorded
    assert Event.objects.filter(type="email.opened").count() == 1


def test_click_redirects_only_to_the_signed_target(commit, sent) -> None:
    link = _find(r'href="([^"]*/t/c/[^"]+)"', sent.rendered["html"])
    client = Client(HTTP_USER_AGENT=BROWSER)
    response = commit(client.get, _path(link))
    assert response.status_code == 302
    assert response["Location"] == "https://shop.example.jp/sale?utm=mail&x=1"
    assert Event.objects.get(type="email.clicked").properties["url"] == response["Location"]
    sent.refresh_from_db()
    assert sent.status == "clicked"
    commit(services.unsubscribe, delivery_id=sent.pk)
    sent.refresh_from_db()
    assert sent.status == "unsubscribed"
    # An attacker re-signing with another target, or editing the token, gets a 404.
    token = _path(link).split("/")[3]
    payload, _sep, signature = token.rpartition(":")
    evil = links.sign("wrong-salt", [sent.pk, "https://evil.example/"])
    assert client.get(f"/t/c/{evil}/").status_code == 404
    assert client.get(f"/t/c/{payload}:AAAA{signature[4:]}/").status_code == 404
    assert client.get("/t/c/https:%2F%2Fevil.example/").status_code == 404
    bad_scheme = links.sign(links.CLICK, [sent.pk, "javascript:alert(1)"])
    assert client.get(f"/t/c/{bad_scheme}/").status_code == 404


def test_one_click_unsubscribe_is_post_only_and_immediate(commit, sent) -> None:
    client = Client(enforce_csrf_checks=True)
    url = _path(links.unsubscribe_url(sent.pk))
    get = client.get(url)
    assert get.status_code == 302 and get["Location"].startswith("/m/u/")  # a page that asks
    assert has_consent(customer=sent.customer, purpose="marketing", channel="email")
    # RFC 8058: the mail provider POSTs "List-Unsubscribe=One-Click" without cookies/CSRF
    response = commit(
        client.post,
        url,
        "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    assert not has_consent(customer=sent.customer, purpose="marketing", channel="email")
    assert Suppression.objects.filter(reason="unsubscribe").count() == 1
    assert Event.objects.filter(type="message.unsubscribed", customer=sent.customer).count() == 1
    sent.refresh_from_db()
    assert sent.status == "unsubscribed"
    assert client.post("/t/u/MQ:forged/").status_code == 404


def _dsn(to: str, status: str = "5.1.1", action: str = "failed") -> bytes:
    return (
        "From: MAILER-DAEMON@mx.example.jp\r\n"
        f"To: {to}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n'
        "\r\n--B\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.jp\r\n\r\n"
        "Final-Recipient: rfc822; hanako@example.jp\r\n"
        f"Action: {action}\r\nStatus: {status}\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n"
        "\r\n--B--\r\n"
    ).encode()


def test_hard_bounce_via_verp_suppresses_the_address(commit, sent, email_channel) -> None:
    verp = links.verp_address(sent.pk, "bounce.kizuna.example")
    client = Client(HTTP_USER_AGENT=BROWSER)
    url = f"/hooks/bounce/{email_channel.pk}/"
    unauthorised = client.post(url, _dsn(verp), content_type="message/rfc822")
    assert unauthorised.status_code == 401
    response = commit(
        client.post,
        url,
        _dsn(verp),
        content_type="message/rfc822",
        HTTP_AUTHORIZATION="Bearer bounce-secret",
    )
    assert response.status_code == 200 and response.json()["deliveries"] == [sent.pk]
    sent.refresh_from_db()
    assert sent.status == "bounced" and sent.reason.startswith("5.1.1")
    assert services.is_suppressed(channel_kind="email", address="hanako@example.jp")
    assert Event.objects.filter(type="email.bounced").count() == 1
    # the same report again is not a second bounce
    commit(services.bounce_process, raw=_dsn(verp))
    assert sent.history.filter(status="bounced").count() == 1


def test_temporary_failure_report_is_recorded_not_suppressed(sent) -> None:
    verp = links.verp_address(sent.pk, "bounce.kizuna.example")
    services.bounce_process(raw=_dsn(verp, status="4.2.2", action="delayed"))
    sent.refresh_from_db()
    assert sent.status == "sent"
    assert sent.history.filter(status="deferred").exists()
    assert not Suppression.objects.exists()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "empty"),
        (b"Subject: hi\r\n\r\nnot a report", "not a multipart/report"),
        (_dsn("bounces+1=forged@bounce.kizuna.example"), "names no delivery"),
        (_dsn("someone@example.jp", status="banana"), "Action/Status"),
    ],
)
def test_malformed_reports_are_rejected_and_change_nothing(
    sent, email_channel, raw, message
) -> None:
    response = Client().post(
        f"/hooks/bounce/{email_channel.pk}/",
        raw,
        content_type="message/rfc822",
        HTTP_AUTHORIZATION="Bearer bounce-secret",
        HTTP_ACCEPT_LANGUAGE="en",  # the assertion reads English text
    )
    assert response.status_code == 422
    assert message in str(response.json()["detail"])
    assert not Suppression.objects.exists()
    sent.refresh_from_db()
    assert sent.status == "sent"


def test_complaint_suppresses_for_every_purpose(sent) -> None:
    services.complaint_record(delivery_id=sent.pk)
    assert services.is_suppressed(
        channel_kind="email", address="hanako@example.jp", purpose="transactional"
    )


def test_link_paths_are_what_reverse_makes() -> None:
    from django.urls import reverse, set_script_prefix

    tokens = [
        ("messaging:open", links.sign(links.OPEN, 12)),
        ("messaging:click", links.sign(links.CLICK, [3, "https://shop.example.jp/?a=1&b=抹茶"])),
        ("messaging:unsubscribe", links.sign(links.UNSUB, 99)),
        ("portal:preferences", links.preferences_token(5)),
    ]
    try:
        for prefix in ("/", "/kizuna/"):
            set_script_prefix(prefix)
            for name, token in tokens:
                assert links.path_with_token(name, token) == reverse(name, args=[token])
    finally:
        set_script_prefix("/")
    assert links.click_url(3, "https://x.jp/").startswith("http")
