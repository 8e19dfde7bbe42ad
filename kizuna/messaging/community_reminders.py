"""Community messages sent for the community app: event reminders (the subscriber of
`community.event_reminder_due`) and the idea author's notice when staff change their idea's
status (`community.idea_status_changed`).

The community app (activity layer) publishes that event for every confirmed guest once an
event enters its reminder window; it sits below messaging and cannot send. This module
(messaging may import community: a higher layer imports a lower one) turns each one into a
real delivery through `kizuna.messaging.services.delivery_enqueue`:

- **Channel**: LINE when the customer follows an active LINE account (as campaigns'
  "LINE, else email"), else email when they have an address and an email channel is active;
  otherwise nothing is queued (logged).
- **Guardrails**: the reminder templates are created as *marketing* messages, so the send-time
  checks of `kizuna.messaging.guardrails` apply: recorded consent on the channel, the
  suppression list, the customer's frequency cap, LINE quiet hours (deferred, not dropped).
  Staff may edit the two templates (slugs below) in the console, including their purpose.
- **Idempotent**: the delivery's idempotency key names the event and the registration, so a
  reminder published twice (a retried task, a replayed bus event) queues one message.
- **Language**: the template variant of the customer's language (ja/en); the event's title,
  date and place are given in that language, times in the installation's time zone.

Idea status notices go the same way (LINE, else email; marketing guardrails; templates
`community-idea-status-email` / `-line`), once per idea and new status.
"""

from __future__ import annotations

import logging
from typing import Any

from django.utils import timezone, translation
from django.utils.formats import date_format

from kizuna.community.models import EventStatus, IdeaStatus, Registration, RegistrationStatus
from kizuna.core import events as bus
from kizuna.customers.models import Customer
from kizuna.messaging import services
from kizuna.messaging.choices import BodyFormat, ChannelKind, Purpose
from kizuna.messaging.models import Channel, Delivery, LineContact, Template

logger = logging.getLogger(__name__)

EVENT_TYPE = "community.event_reminder_due"
IDEA_EVENT_TYPE = "community.idea_status_changed"
TEMPLATES: dict[str, str] = {
    ChannelKind.EMAIL: "community-event-reminder-email",
    ChannelKind.LINE: "community-event-reminder-line",
}
_EMAIL_BODY = {
    "ja": (
        "<p>{{ customer.name }}様</p>"
        "<p>ご登録いただいた「{{ event_title }}」が近づいてまいりました。</p>"
        "<p>日時: {{ starts }}〜{{ ends }}<br>"
        "{% if venue %}会場: {{ venue }}{% endif %}"
        '{% if online_url %}参加リンク: <a href="{{ online_url }}">{{ online_url }}</a>{% endif %}'
        "</p><p>当日は会員ページのQRコードを受付でご提示ください。お会いできるのを楽しみにしております。</p>"
    ),
    "en": (
        "<p>Dear {{ customer.name }},</p>"
        "<p>“{{ event_title }}”, which you registered for, is coming up soon.</p>"
        "<p>When: {{ starts }} – {{ ends }}<br>"
        "{% if venue %}Where: {{ venue }}{% endif %}"
        '{% if online_url %}Join: <a href="{{ online_url }}">{{ online_url }}</a>{% endif %}'
        "</p><p>Please show the QR code on your member page at the entrance. See you there!</p>"
    ),
}
_EMAIL_SUBJECT = {
    "ja": "【リマインダー】{{ event_title }}（{{ starts }}）",
    "en": "Reminder: {{ event_title }} ({{ starts }})",
}
_LINE_BODY = {
    "ja": (
        "{{ customer.name }}様\n「{{ event_title }}」は{{ starts }}からです。"
        "{% if venue %}\n会場: {{ venue }}{% endif %}"
        "{% if online_url %}\n参加リンク: {{ online_url }}{% endif %}"
        "\n当日は会員ページのQRコードを受付でご提示ください。"
    ),
    "en": (
        "Dear {{ customer.name }}, “{{ event_title }}” starts {{ starts }}."
        "{% if venue %}\nWhere: {{ venue }}{% endif %}"
        "{% if online_url %}\nJoin: {{ online_url }}{% endif %}"
        "\nPlease show the QR code on your member page at the entrance."
    ),
}

IDEA_TEMPLATES: dict[str, str] = {
    ChannelKind.EMAIL: "community-idea-status-email",
    ChannelKind.LINE: "community-idea-status-line",
}
_IDEA_SUBJECT = {
    "ja": "アイデア「{{ idea_title }}」は「{{ status_label }}」になりました",
    "en": "Your idea “{{ idea_title }}” is now {{ status_label }}",
}
_IDEA_EMAIL_BODY = {
    "ja": (
        "<p>{{ customer.name }}様</p><p>ご投稿いただいたアイデア「{{ idea_title }}」の状況が"
        "「{{ status_label }}」になりました。</p>"
        "{% if note %}<p>担当者より: {{ note }}</p>{% endif %}<p>ご提案ありがとうございます。</p>"
    ),
    "en": (
        "<p>Dear {{ customer.name }},</p><p>The idea you posted, “{{ idea_title }}”, is now "
        "{{ status_label }}.</p>{% if note %}<p>From our team: {{ note }}</p>{% endif %}"
        "<p>Thank you for your suggestion.</p>"
    ),
}
_IDEA_LINE_BODY = {
    "ja": (
        "{{ customer.name }}様\nアイデア「{{ idea_title }}」は「{{ status_label }}」になりました。"
        "{% if note %}\n担当者より: {{ note }}{% endif %}"
    ),
    "en": (
        "Dear {{ customer.name }}, your idea “{{ idea_title }}” is now {{ status_label }}."
        "{% if note %}\nFrom our team: {{ note }}{% endif %}"
    ),
}


def _template(slug: str, name: str, kind: str, subject: dict, email: dict, line: dict) -> Template:
    template = Template.objects.filter(slug=slug).first()
    if template is not None:
        return template
    if kind == ChannelKind.EMAIL:
        return services.template_save(
            slug=slug,
            name=f"{name} (email)",
            channel_kind=ChannelKind.EMAIL,
            body_format=BodyFormat.HTML,
            purpose=Purpose.MARKETING,
            variants={
                lang: {"subject": subject[lang], "body": email[lang]} for lang in ("ja", "en")
            },
        )
    return services.template_save(
        slug=slug,
        name=f"{name} (LINE)",
        channel_kind=ChannelKind.LINE,
        body_format=BodyFormat.TEXT,
        purpose=Purpose.MARKETING,
        variants={lang: {"subject": "", "body": line[lang]} for lang in ("ja", "en")},
    )


def template_for(kind: str) -> Template:
    """The reminder template of a channel kind, created with ja/en variants on first use."""
    return _template(
        TEMPLATES[kind], "Community event reminder", kind, _EMAIL_SUBJECT, _EMAIL_BODY, _LINE_BODY
    )


def idea_template_for(kind: str) -> Template:
    return _template(
        IDEA_TEMPLATES[kind],
        "Community idea status",
        kind,
        _IDEA_SUBJECT,
        _IDEA_EMAIL_BODY,
        _IDEA_LINE_BODY,
    )


def channel_for(customer: Customer) -> Channel | None:
    """LINE when the customer follows an active LINE account, else an active email channel
    when they have an address; None when neither reaches them."""
    followed = (
        LineContact.objects.filter(
            customer=customer, following=True, channel__active=True, channel__kind=ChannelKind.LINE
        )
        .select_related("channel")
        .order_by("channel_id")
        .first()
    )
    if followed is not None:
        return followed.channel
    if customer.email:
        return Channel.objects.filter(kind=ChannelKind.EMAIL, active=True).order_by("pk").first()
    return None


def _context(registration: Registration, language: str) -> dict[str, Any]:
    event = registration.event
    with translation.override(language):
        starts = date_format(timezone.localtime(event.starts_at), "DATETIME_FORMAT")
        same_day = (
            timezone.localtime(event.starts_at).date() == timezone.localtime(event.ends_at).date()
        )
        ends = date_format(
            timezone.localtime(event.ends_at), "TIME_FORMAT" if same_day else "DATETIME_FORMAT"
        )
    return {
        "event_title": event.title_for(language),
        "starts": starts,
        "ends": ends,
        "venue": event.venue,
        "online_url": event.online_url,
        "event_id": event.pk,
        "registration_id": registration.pk,
    }


def idempotency_key(event_id: int, registration_id: int) -> str:
    return f"community-reminder:{event_id}:{registration_id}"


def reminder_send(*, registration_id: int) -> Delivery | None:
    """Queue the reminder of one registration (once: the same registration returns the
    first delivery). None when the seat is no longer confirmed, the event is not published
    or no channel reaches the customer."""
    registration = (
        Registration.objects.select_related("event", "customer").filter(pk=registration_id).first()
    )
    if registration is None:
        return None
    event, customer = registration.event, registration.customer
    if registration.status != RegistrationStatus.REGISTERED or event.status != (
        EventStatus.PUBLISHED
    ):
        logger.info("community reminder %s skipped: not a confirmed seat", registration_id)
        return None
    channel = channel_for(customer)
    if channel is None:
        logger.info("community reminder %s: no channel reaches the customer", registration_id)
        return None
    language = customer.locale if customer.locale in ("ja", "en") else "ja"
    delivery, _created = services.delivery_enqueue(
        source=f"community:event:{event.pk}",
        customer=customer,
        channel=channel,
        template=template_for(channel.kind),
        extra_context=_context(registration, language),
        idempotency_key=idempotency_key(event.pk, registration.pk),
    )
    return delivery


def on_reminder_due(event: bus.DomainEvent) -> None:
    registration_id = event.properties.get("registration_id")
    if not isinstance(registration_id, int):
        logger.warning("%s without a registration id: %r", EVENT_TYPE, event.properties)
        return
    reminder_send(registration_id=registration_id)


def idea_notice_send(
    *, customer_id: int, idea_id: int, title: str, status: str, note: str, key: str
) -> Delivery | None:
    """Tell an idea's author its new status (once per `key`: idea and change)."""
    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None or status not in IdeaStatus.values:
        return None
    channel = channel_for(customer)
    if channel is None:
        logger.info("idea %s status notice: no channel reaches the author", idea_id)
        return None
    language = customer.locale if customer.locale in ("ja", "en") else "ja"
    with translation.override(language):
        label = str(IdeaStatus(status).label)
    delivery, _created = services.delivery_enqueue(
        source=f"community:idea:{idea_id}",
        customer=customer,
        channel=channel,
        template=idea_template_for(channel.kind),
        extra_context={"idea_title": title, "status_label": label, "note": note},
        idempotency_key=f"community-idea:{key}"[:120],
    )
    return delivery


def on_idea_status_changed(event: bus.DomainEvent) -> None:
    props = event.properties
    if event.customer_id is None or not isinstance(props.get("idea_id"), int):
        return
    idea_notice_send(
        customer_id=event.customer_id,
        idea_id=props["idea_id"],
        title=str(props.get("title", "")),
        status=str(props.get("status", "")),
        note=str(props.get("note", "")),
        # The stream row (or message id) of this change: a replay sends nothing more.
        key=f"{props['idea_id']}:{props.get('status')}:"
        + str(event.event_id or event.message_id or event.occurred_at.isoformat()),
    )


bus.subscribe(EVENT_TYPE, on_reminder_due)
bus.subscribe(IDEA_EVENT_TYPE, on_idea_status_changed)
