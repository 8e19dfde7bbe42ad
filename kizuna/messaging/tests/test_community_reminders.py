"""Community event reminders (`kizuna.messaging.community_reminders`): the community's
`community.event_reminder_due` becomes one real delivery per registration, by email through
the loopback SMTP server or by LINE through the local Messaging API, in the customer's
language, with consent, frequency caps and quiet hours applied."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from kizuna.community import services as community
from kizuna.community.tests.conftest import make_event
from kizuna.core import events as bus
from kizuna.core.timeutil import now
from kizuna.customers import services as customer_services
from kizuna.messaging.community_reminders import EVENT_TYPE, TEMPLATES, idempotency_key
from kizuna.messaging.models import Delivery, Preference
from kizuna.messaging.tests.conftest import follow, make_customer

pytestmark = pytest.mark.django_db
USER = "U" + "5bf4980629" * 3 + "cd"


def _reminders(commit: Any, event: Any) -> int:
    """Move the event into its reminder window and run the community's periodic step."""
    return int(commit(community.reminders_publish, at=event.starts_at - timedelta(hours=1)))


def test_email_reminder_in_the_customer_language_once_per_registration(
    commit: Any, smtp_server: Any, email_channel: Any
) -> None:
    event = make_event(slug="tasting-en", starts_in=timedelta(hours=20), capacity=5)
    english = make_customer("mary@example.jp", given_name="Mary", locale="en")
    japanese = make_customer("hanako@example.jp")
    first = community.register(event=event, customer=english)
    community.register(event=event, customer=japanese)
    assert _reminders(commit, event) == 2
    messages = {r.recipients[0]: r.message for r in smtp_server[1].messages}
    assert set(messages) == {"mary@example.jp", "hanako@example.jp"}
    english_mail = messages["mary@example.jp"]
    assert str(english_mail["Subject"]).startswith("Reminder: Autumn tasting (")
    text = english_mail.get_body(("plain",)).get_content()
    assert "which you registered for" in text and "渋谷店" in text
    japanese_mail = messages["hanako@example.jp"]
    assert str(japanese_mail["Subject"]).startswith("【リマインダー】秋の試飲会（")
    start = event.starts_at.astimezone(ZoneInfo("Asia/Tokyo"))
    assert f"{start.year}年{start.month}月{start.day}日" in str(japanese_mail["Subject"])
    html = japanese_mail.get_body(("html",)).get_content()
    assert "ご登録いただいた「秋の試飲会」" in html
    delivery = Delivery.objects.get(customer=english)
    assert delivery.status == "sent", delivery.reason
    assert delivery.source == f"community:event:{event.pk}"
    assert delivery.template is not None and delivery.template.slug == TEMPLATES["email"]
    assert delivery.locale == "en"
    assert delivery.idempotency_key == idempotency_key(event.pk, first.pk)

    # The same reminder published twice more (a replayed bus event, a retried task): still
    # one delivery per registration and no second email.
    replay = bus.DomainEvent(
        type=EVENT_TYPE,
        occurred_at=now(),
        customer_id=english.pk,
        properties={"event_id": event.pk, "registration_id": first.pk},
    )
    commit(bus.publish, replay)
    commit(bus.publish, replay)
    assert Delivery.objects.filter(customer=english).count() == 1
    assert len(smtp_server[1].messages) == 2
    # The community's own step does not publish an event's reminders again either.
    assert _reminders(commit, event) == 0
    assert Delivery.objects.count() == 2


def test_line_followers_get_it_on_line_in_japanese(
    commit: Any, line_api: Any, line_channel: Any, email_channel: Any, smtp_server: Any
) -> None:
    event = make_event(
        slug="online-1", kind="online", venue="", online_url="https://meet.example/x"
    )
    customer = make_customer("line@example.jp")
    follow(line_channel, customer, USER)
    community.register(event=event, customer=customer)
    assert _reminders(commit, event) == 1
    (request,) = line_api.requests
    assert request.body["to"] == USER
    text = request.body["messages"][0]["text"]
    assert text.startswith("山田 花子様\n「秋の試飲会」は")
    assert "参加リンク: https://meet.example/x" in text
    assert smtp_server[1].messages == []  # LINE first, not both
    assert Delivery.objects.get().status == "sent"


def test_consent_and_frequency_caps_apply(
    commit: Any, smtp_server: Any, email_channel: Any, settings: Any
) -> None:
    event = make_event(slug="caps", capacity=5)
    no_consent = make_customer("nobody@example.jp", opt_in=False)
    weekly = make_customer("weekly@example.jp")
    Preference.objects.create(customer=weekly, frequency="weekly")
    # weekly already had its one marketing message this week (the cap counts sent ones).
    earlier = make_event(slug="earlier", capacity=5, starts_in=timedelta(days=1))
    community.register(event=earlier, customer=weekly)
    assert _reminders(commit, earlier) == 1
    assert Delivery.objects.get(customer=weekly).status == "sent"
    for customer in (no_consent, weekly):
        community.register(event=event, customer=customer)
    assert _reminders(commit, event) == 2
    refused = dict(
        Delivery.objects.filter(source=f"community:event:{event.pk}").values_list(
            "customer_id", "reason"
        )
    )
    assert refused[no_consent.pk].startswith("no_consent")
    assert refused[weekly.pk].startswith("frequency_cap")
    assert [m.recipients for m in smtp_server[1].messages] == [["weekly@example.jp"]]


def test_line_quiet_hours_defer_the_reminder(
    commit: Any, line_api: Any, line_channel: Any, settings: Any
) -> None:
    hour = now().astimezone(ZoneInfo("Asia/Tokyo")).hour
    settings.KIZUNA_QUIET_HOURS = f"{hour}-{(hour + 2) % 24}"
    event = make_event(slug="quiet")
    customer = make_customer("quiet@example.jp")
    follow(line_channel, customer, USER)
    community.register(event=event, customer=customer)
    _reminders(commit, event)
    delivery = Delivery.objects.get()
    assert delivery.status == "deferred" and delivery.reason.startswith("quiet_hours")
    assert line_api.requests == []


def test_nothing_is_sent_for_a_cancelled_seat_or_an_unreachable_customer(
    commit: Any, smtp_server: Any, email_channel: Any
) -> None:
    event = make_event(slug="gone", capacity=5)
    cancelled = make_customer("cancel@example.jp")
    no_address = customer_services.customer_create(data={"family_name": "連絡先なし"})
    registration = community.register(event=event, customer=cancelled)
    community.register(event=event, customer=no_address)
    stale = bus.DomainEvent(
        type=EVENT_TYPE,
        occurred_at=now(),
        customer_id=cancelled.pk,
        properties={"event_id": event.pk, "registration_id": registration.pk},
    )
    community.registration_cancel(registration=registration)
    commit(bus.publish, stale)
    assert _reminders(commit, event) == 1  # only the seat still confirmed
    assert Delivery.objects.count() == 0
    assert smtp_server[1].messages == []


def test_idea_author_is_told_the_new_status_once_in_their_language(
    commit: Any, smtp_server: Any, email_channel: Any
) -> None:
    author = make_customer("idea@example.jp", given_name="Ken", locale="en")
    idea = community.idea_post(customer=author, title="<b>Oat latte</b>", body="Please")
    stored: list[bus.DomainEvent] = []
    bus.subscribe("community.idea_status_changed", stored.append)
    try:
        commit(community.idea_set_status, idea=idea, status="adopted", note="Next month")
    finally:
        bus.unsubscribe("community.idea_status_changed", stored.append)
    (received,) = smtp_server[1].messages
    assert received.recipients == ["idea@example.jp"]
    assert str(received.message["Subject"]) == "Your idea “<b>Oat latte</b>” is now Adopted"
    html = received.message.get_body(("html",)).get_content()
    assert "&lt;b&gt;Oat latte&lt;/b&gt;" in html and "From our team: Next month" in html
    commit(bus.publish, stored[0])  # the same change replayed: no second notice
    assert Delivery.objects.filter(source=f"community:idea:{idea.pk}").count() == 1
    assert len(smtp_server[1].messages) == 1
