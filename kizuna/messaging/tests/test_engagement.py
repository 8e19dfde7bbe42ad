"""Machine opens and clicks (Apple MPP, image proxies, link scanners) through the real
public endpoints: every one stored and classified, only people's count as engagement."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client

from kizuna.core.timeutil import now
from kizuna.customers.models import Event
from kizuna.messaging import engagement, links, services
from kizuna.messaging.models import Delivery, Engagement
from kizuna.messaging.tests.conftest import make_customer

pytestmark = pytest.mark.django_db
SAFARI = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Safari/604.1"


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
    return delivery


def _path(pattern: str, html: str) -> str:
    match = re.search(pattern, html)
    assert match is not None
    return match.group(1).removeprefix("http://localhost:8000")


def _age(delivery: Delivery, minutes: int = 10) -> None:
    Delivery.objects.filter(pk=delivery.pk).update(sent_at=now() - timedelta(minutes=minutes))


def test_apple_mpp_and_gmail_proxy_opens_are_machines(commit, sent) -> None:
    pixel = _path(r'src="([^"]*/t/o/[^"]+)"', sent.rendered["html"])
    _age(sent)
    apple = Client(REMOTE_ADDR="17.58.101.5", HTTP_USER_AGENT="Mozilla/5.0")
    assert commit(apple.get, pixel).status_code == 200
    gmail = Client(HTTP_USER_AGENT="Mozilla/5.0 Firefox/11.0 (via ggpht.com GoogleImageProxy)")
    assert commit(gmail.get, pixel).status_code == 200
    sent.refresh_from_db()
    assert sent.status == "sent"  # no person opened it yet
    assert not Event.objects.filter(type="email.opened").exists()
    rows = list(
        Engagement.objects.filter(delivery=sent).order_by("id").values_list("machine", "rule")
    )
    assert rows == [(True, "apple_mpp"), (True, "image_proxy")]
    assert sent.history.filter(status="machine_opened").count() == 1
    person = Client(REMOTE_ADDR="203.0.113.9", HTTP_USER_AGENT=SAFARI)
    commit(person.get, pixel)
    sent.refresh_from_db()
    assert sent.status == "opened"
    assert Event.objects.filter(type="email.opened", customer=sent.customer).count() == 1
    assert Engagement.objects.filter(delivery=sent).count() == 3  # every open kept


def test_scanner_clicks_are_classified_and_change_nothing(commit, sent) -> None:
    link = _path(r'href="([^"]*/t/c/[^"]+)"', sent.rendered["html"])
    # Seconds after delivery, with a browser's user agent: a security gateway's prefetch.
    early = Client(REMOTE_ADDR="198.51.100.1", HTTP_USER_AGENT=SAFARI)
    assert commit(early.get, link).status_code == 302
    _age(sent)
    head = Client(HTTP_USER_AGENT=SAFARI)
    response = commit(head.head, link)
    assert response.status_code == 302  # a checker still gets the redirect
    scanner = Client(HTTP_USER_AGENT="Mozilla/5.0 (compatible; Barracuda Sentinel)")
    commit(scanner.get, link)
    sent.refresh_from_db()
    assert sent.status == "sent"
    assert not Event.objects.filter(type="email.clicked").exists()
    rules = list(
        Engagement.objects.filter(delivery=sent).order_by("id").values_list("rule", flat=True)
    )
    assert rules == ["early", "head", "scanner_ua"]
    commit(Client(REMOTE_ADDR="203.0.113.9", HTTP_USER_AGENT=SAFARI).get, link)
    sent.refresh_from_db()
    assert sent.status == "clicked"
    assert Event.objects.filter(type="email.clicked").count() == 1


def test_every_link_clicked_at_once_is_a_scanner() -> None:
    sent_at = now() - timedelta(hours=1)
    at = now()
    verdict = engagement.classify_click(
        ip="203.0.113.9",
        user_agent=SAFARI,
        method="GET",
        sent_at=sent_at,
        at=at,
        other_links=[("https://a.example/", at - timedelta(seconds=1))],
        url="https://b.example/",
    )
    assert verdict == engagement.Verdict(True, "burst")
    alone = engagement.classify_click(
        ip="203.0.113.9",
        user_agent=SAFARI,
        method="GET",
        sent_at=sent_at,
        at=at,
        other_links=[("https://a.example/", at - timedelta(minutes=3))],
        url="https://b.example/",
    )
    assert alone == engagement.Verdict(False)


def test_a_scanner_get_on_the_unsubscribe_link_changes_nothing(commit, sent) -> None:
    path = links.unsubscribe_url(sent.pk).removeprefix("http://localhost:8000")
    scanner = Client(HTTP_USER_AGENT="Mozilla/5.0 (compatible; Proofpoint)")
    response = commit(scanner.get, path, follow=True)
    assert response.status_code == 200  # the confirmation page
    sent.refresh_from_db()
    assert sent.status == "sent"
    assert not Event.objects.filter(type="message.unsubscribed").exists()
