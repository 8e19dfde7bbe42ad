"""Writes of support: inquiries and their thread (inbound messages, replies sent through
messaging, internal notes, attachments), status/priority/assignee changes with SLA due times,
SLA policies, canned answers and FAQ articles.

Every change that concerns a known customer is also written to the customer's timeline (the
event stream) as a `support.*` event. Replies go out through `kizuna.messaging` as
transactional messages (no marketing consent needed; suppression and LINE reachability still
apply) with an idempotency key, so a retried reply makes no second message nor delivery.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from kizuna.core.audit import acting_as
from kizuna.core.timeutil import now
from kizuna.customers import selectors as customer_selectors
from kizuna.customers import services as customer_services
from kizuna.customers.choices import IdentityKind
from kizuna.customers.models import Customer
from kizuna.messaging import services as messaging
from kizuna.messaging.choices import BodyFormat, ChannelKind, Purpose
from kizuna.messaging.models import Channel, Delivery, Template
from kizuna.support import conf
from kizuna.support.choices import (
    ACTIVE_STATUSES,
    DEFAULT_SLA_MINUTES,
    Direction,
    InquiryStatus,
    Origin,
    Priority,
)
from kizuna.support.models import (
    Attachment,
    CannedAnswer,
    FaqArticle,
    Inquiry,
    Message,
    SlaPolicy,
)

MAX_BODY = 20_000
FLOOD_WINDOW = timedelta(hours=1)
REPLY_TEMPLATES: dict[str, str] = {
    ChannelKind.EMAIL: "support-reply-email",
    ChannelKind.LINE: "support-reply-line",
}


@dataclass(frozen=True)
class NewAttachment:
    filename: str
    content_type: str
    data: bytes


def _raise(errors: dict[str, list[str]]) -> None:
    if errors:
        raise ValidationError(errors)


def _timeline(inquiry: Inquiry, type: str, **properties: Any) -> None:
    """One entry on the customer's timeline (only for inquiries of a known customer)."""
    if inquiry.customer_id is None:
        return
    customer_services.event_record(
        type=type,
        customer=inquiry.customer,
        source="support",
        properties={"inquiry_id": inquiry.pk, "subject": inquiry.subject, **properties},
    )


# --- SLA ----------------------------------------------------------------------------------


def sla_minutes(priority: str) -> tuple[int, int]:
    """(first response, resolution) minutes for `priority`: its policy, or the default."""
    policy = SlaPolicy.objects.filter(priority=priority).first()
    if policy is not None:
        return policy.first_response_minutes, policy.resolution_minutes
    return DEFAULT_SLA_MINUTES[priority]


def sla_due(priority: str, opened_at: datetime) -> tuple[datetime, datetime]:
    first, resolution = sla_minutes(priority)
    return opened_at + timedelta(minutes=first), opened_at + timedelta(minutes=resolution)


@transaction.atomic
def sla_policy_save(
    *,
    priority: str,
    first_response_minutes: int,
    resolution_minutes: int,
    actor: AbstractBaseUser | None = None,
) -> SlaPolicy:
    errors: dict[str, list[str]] = {}
    if priority not in Priority.values:
        errors["priority"] = [_("Choose one of: %(c)s.") % {"c": ", ".join(Priority.values)}]
    if not isinstance(first_response_minutes, int) or first_response_minutes <= 0:
        errors["first_response_minutes"] = [_("A whole number of minutes above 0.")]
    elif not isinstance(resolution_minutes, int) or resolution_minutes < first_response_minutes:
        errors["resolution_minutes"] = [_("At least the first-response time.")]
    _raise(errors)
    with acting_as(actor):
        policy, _created = SlaPolicy.objects.update_or_create(
            priority=priority,
            defaults={
                "first_response_minutes": first_response_minutes,
                "resolution_minutes": resolution_minutes,
            },
        )
    return policy


# --- validation helpers -------------------------------------------------------------------


def _check_body(body: str, errors: dict[str, list[str]], field: str = "body") -> str:
    body = (body or "").strip()
    if not body:
        errors[field] = [_("A message is required.")]
    elif len(body) > MAX_BODY:
        errors[field] = [_("At most %(n)d characters.") % {"n": MAX_BODY}]
    return body


def _check_attachments(attachments: Sequence[NewAttachment], errors: dict[str, list[str]]) -> None:
    limit = int(conf.get("KIZUNA_SUPPORT_MAX_ATTACHMENT_BYTES"))
    for n, item in enumerate(attachments):
        if len(item.data) > limit:
            errors[f"attachments.{n}"] = [
                _("%(name)s is %(size)s bytes; attachments may be at most %(limit)s bytes.")
                % {"name": item.filename or "?", "size": len(item.data), "limit": limit}
            ]
        elif not item.filename or len(item.filename) > 200:
            errors[f"attachments.{n}"] = [_("A file name of 1 to 200 characters is required.")]


def _check_assignee(assignee: Any, errors: dict[str, list[str]]) -> None:
    if assignee is None:
        return
    if not getattr(assignee, "is_active", False) or not getattr(assignee, "is_staff", True):
        errors["assignee"] = [
            _("%(user)s is deactivated and cannot be assigned inquiries.")
            % {"user": getattr(assignee, "username", "?")}
        ]


def _save_attachments(message: Message, attachments: Sequence[NewAttachment]) -> None:
    Attachment.objects.bulk_create(
        [
            Attachment(
                message=message,
                filename=a.filename[:200],
                content_type=(a.content_type or "application/octet-stream")[:100],
                size=len(a.data),
                data=a.data,
            )
            for a in attachments
        ]
    )


def _user(user: AbstractBaseUser | None) -> Any:
    """A staff user for a foreign key to the user model (typed as the abstract base)."""
    return user


def _reply_token() -> str:
    return "".join(secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(8))


# --- inquiries ----------------------------------------------------------------------------


@transaction.atomic
def inquiry_open(
    *,
    subject: str,
    body: str,
    origin: str,
    customer: Customer | None = None,
    contact_name: str = "",
    contact_email: str = "",
    contact_line_user_id: str = "",
    line_channel_id: int | None = None,
    priority: str = Priority.NORMAL,
    locale: str | None = None,
    assignee: AbstractBaseUser | None = None,
    source_ref: str | None = None,
    email_message_id: str = "",
    attachments: Sequence[NewAttachment] = (),
    body_direction: str = Direction.INBOUND,
    actor: AbstractBaseUser | None = None,
) -> tuple[Inquiry, bool]:
    """Open an inquiry with its first message. Returns (inquiry, created): a `source_ref`
    already used returns the inquiry it opened (a retried LINE event, survey answer or
    journey step). Contact-form inquiries are limited per contact address and hour."""
    if source_ref:
        existing = Inquiry.objects.filter(source_ref=source_ref).first()
        if existing is not None:
            return existing, False
    errors: dict[str, list[str]] = {}
    subject = " ".join((subject or "").split())
    if not subject:
        errors["subject"] = [_("A subject is required.")]
    elif len(subject) > 200:
        errors["subject"] = [_("At most %(n)d characters.") % {"n": 200}]
    body = _check_body(body, errors)
    if origin not in Origin.values:
        errors["origin"] = [_("Choose one of: %(c)s.") % {"c": ", ".join(Origin.values)}]
    if priority not in Priority.values:
        errors["priority"] = [_("Choose one of: %(c)s.") % {"c": ", ".join(Priority.values)}]
    if body_direction not in Direction.values:
        errors["body_direction"] = [_("Choose one of: %(c)s.") % {"c": ", ".join(Direction.values)}]
    contact_email = (contact_email or "").strip().lower()
    if contact_email:
        try:
            validate_email(contact_email)
        except ValidationError:
            errors["contact_email"] = [_("Enter a valid email address.")]
    if len(contact_name) > 150:
        errors["contact_name"] = [_("At most %(n)d characters.") % {"n": 150}]
    if customer is None and not contact_email and not contact_line_user_id:
        errors["customer"] = [_("Choose a customer or give a contact email address.")]
    _check_assignee(assignee, errors)
    _check_attachments(attachments, errors)
    if origin == Origin.PORTAL and contact_email and "contact_email" not in errors:
        recent = Inquiry.objects.filter(
            origin=Origin.PORTAL, contact_email=contact_email, created_at__gte=now() - FLOOD_WINDOW
        ).count()
        if recent >= int(conf.get("KIZUNA_SUPPORT_FLOOD_LIMIT")):
            errors["contact_email"] = [
                _("Too many inquiries from this address in the last hour; please try later.")
            ]
    _raise(errors)
    if customer is None and contact_email:
        customer = customer_selectors.customer_find_by_identity(
            kind=IdentityKind.EMAIL, value=contact_email
        )
    opened = now()
    first_due, resolution_due = sla_due(priority, opened)
    locale = locale if locale in ("ja", "en") else (customer.locale if customer else "ja")
    try:
        with transaction.atomic(), acting_as(actor):
            inquiry = Inquiry.objects.create(
                customer=customer,
                contact_name=contact_name.strip(),
                contact_email=contact_email or (customer.email if customer else ""),
                contact_line_user_id=contact_line_user_id,
                line_channel_id=line_channel_id,
                origin=origin,
                subject=subject,
                locale=locale,
                priority=priority,
                assignee=_user(assignee),
                reply_token=_reply_token(),
                source_ref=source_ref or None,
                first_response_due=first_due,
                resolution_due=resolution_due,
                created_at=opened,
            )
    except IntegrityError:
        if source_ref:
            return Inquiry.objects.get(source_ref=source_ref), False
        raise
    message = Message.objects.create(
        inquiry=inquiry,
        direction=body_direction,
        author=_user(actor) if body_direction == Direction.NOTE else None,
        body=body,
        email_message_id=email_message_id[:250],
        created_at=opened,
    )
    _save_attachments(message, attachments)
    _timeline(inquiry, "support.inquiry_opened", origin=origin, priority=priority)
    return inquiry, True


def _reopen(inquiry: Inquiry) -> None:
    if inquiry.status != InquiryStatus.OPEN:
        inquiry.status = InquiryStatus.OPEN
        inquiry.resolved_at = None
        inquiry.closed_at = None
        inquiry.save(update_fields=["status", "resolved_at", "closed_at", "updated_at"])


@transaction.atomic
def message_receive(
    *,
    inquiry: Inquiry,
    body: str,
    email_message_id: str = "",
    idempotency_key: str | None = None,
    attachments: Sequence[NewAttachment] = (),
) -> tuple[Message, bool]:
    """A further message from the customer: appended to the thread, the inquiry (re)opened
    for staff. The same idempotency key (a retried webhook) returns the first message."""
    if idempotency_key:
        existing = Message.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing, False
    errors: dict[str, list[str]] = {}
    body = _check_body(body, errors)
    _check_attachments(attachments, errors)
    _raise(errors)
    inquiry = Inquiry.objects.select_for_update().get(pk=inquiry.pk)
    message = Message.objects.create(
        inquiry=inquiry,
        direction=Direction.INBOUND,
        body=body,
        email_message_id=email_message_id[:250],
        idempotency_key=idempotency_key or None,
        created_at=now(),
    )
    _save_attachments(message, attachments)
    _reopen(inquiry)
    _timeline(inquiry, "support.message_received")
    return message, True


@transaction.atomic
def note_add(
    *,
    inquiry: Inquiry,
    body: str,
    actor: AbstractBaseUser | None = None,
    attachments: Sequence[NewAttachment] = (),
) -> Message:
    """An internal note: staff only, never sent, not on the customer's timeline."""
    errors: dict[str, list[str]] = {}
    body = _check_body(body, errors)
    _check_attachments(attachments, errors)
    _raise(errors)
    with acting_as(actor):
        message = Message.objects.create(
            inquiry=inquiry,
            direction=Direction.NOTE,
            author=_user(actor),
            body=body,
            created_at=now(),
        )
    _save_attachments(message, attachments)
    return message


def _reply_template(kind: str) -> Template:
    slug = REPLY_TEMPLATES[kind]
    template = Template.objects.filter(slug=slug).first()
    if template is not None:
        return template
    if kind == ChannelKind.EMAIL:
        body = '<div style="white-space:pre-wrap">{{ reply }}</div>'
        return messaging.template_save(
            slug=slug,
            name="Support reply (email)",
            channel_kind=ChannelKind.EMAIL,
            body_format=BodyFormat.HTML,
            purpose=Purpose.TRANSACTIONAL,
            variants={
                "ja": {"subject": "Re: {{ subject }} [#{{ reference }}]", "body": body},
                "en": {"subject": "Re: {{ subject }} [#{{ reference }}]", "body": body},
            },
        )
    return messaging.template_save(
        slug=slug,
        name="Support reply (LINE)",
        channel_kind=ChannelKind.LINE,
        body_format=BodyFormat.TEXT,
        purpose=Purpose.TRANSACTIONAL,
        variants={"ja": {"body": "{{ reply }}"}, "en": {"body": "{{ reply }}"}},
    )


def _channel(kind: str, preferred_id: int | None = None) -> Channel | None:
    channels = Channel.objects.filter(kind=kind, active=True)
    if preferred_id is not None:
        found = channels.filter(pk=preferred_id).first()
        if found is not None:
            return found
    name = conf.get(
        "KIZUNA_SUPPORT_EMAIL_CHANNEL"
        if kind == ChannelKind.EMAIL
        else "KIZUNA_SUPPORT_LINE_CHANNEL"
    )
    if name:
        return channels.filter(name=name).first()
    return channels.order_by("pk").first()


def _reply_route(inquiry: Inquiry) -> tuple[str, str]:
    """(channel kind, address) a reply to `inquiry` goes to: LINE for LINE conversations,
    else email."""
    if inquiry.origin == Origin.LINE and inquiry.contact_line_user_id:
        return ChannelKind.LINE, inquiry.contact_line_user_id
    email = inquiry.contact_email or (inquiry.customer.email if inquiry.customer else "")
    if email:
        return ChannelKind.EMAIL, email
    if inquiry.contact_line_user_id:
        return ChannelKind.LINE, inquiry.contact_line_user_id
    return "", ""


def _recipient(inquiry: Inquiry, kind: str, address: str) -> Customer:
    """The customer a reply is addressed to: an anonymous contact becomes a customer profile
    (found by the address, else created) the first time staff answer it."""
    if inquiry.customer is not None:
        return inquiry.customer
    identity_kind = IdentityKind.EMAIL if kind == ChannelKind.EMAIL else IdentityKind.LINE
    customer = customer_selectors.customer_find_by_identity(kind=identity_kind, value=address)
    if customer is None:
        data: dict[str, Any] = {"locale": inquiry.locale}
        if kind == ChannelKind.EMAIL:
            data["email"] = address
        customer = customer_services.customer_create(data=data, source="support")
        if kind == ChannelKind.LINE:
            customer_services.identity_add(
                customer=customer, kind=IdentityKind.LINE, value=address, source="support"
            )
    inquiry.customer = customer
    inquiry.save(update_fields=["customer", "updated_at"])
    return customer


def _delivery_key(idempotency_key: str) -> str:
    return "sup_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]


@transaction.atomic
def reply_send(
    *,
    inquiry: Inquiry,
    body: str,
    idempotency_key: str,
    actor: AbstractBaseUser | None = None,
    attachments: Sequence[NewAttachment] = (),
    status: str = InquiryStatus.PENDING,
    auto: bool = False,
    faq_article: FaqArticle | None = None,
) -> tuple[Message, bool]:
    """Reply to the customer through messaging (email, or LINE for LINE conversations).

    Returns (message, created). The same `idempotency_key` returns the first reply and
    queues nothing (a double-submitted form, a retried API call). The first reply records the
    first-response time; the inquiry then waits for the customer (`pending`) unless `status`
    says otherwise (`resolved`)."""
    errors: dict[str, list[str]] = {}
    if not idempotency_key or len(idempotency_key) > 100:
        errors["idempotency_key"] = [_("1 to 100 characters.")]
    else:
        existing = Message.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing, False
    body = _check_body(body, errors)
    _check_attachments(attachments, errors)
    if status not in (InquiryStatus.OPEN, InquiryStatus.PENDING, InquiryStatus.RESOLVED):
        errors["status"] = [_("Choose open, pending or resolved.")]
    inquiry = (
        Inquiry.objects.select_for_update(of=("self",))
        .select_related("customer")
        .get(pk=inquiry.pk)
    )
    if inquiry.status == InquiryStatus.CLOSED:
        errors["inquiry"] = [_("This inquiry is closed; reopen it to reply.")]
    kind, address = _reply_route(inquiry)
    channel = None
    if kind:
        channel = _channel(kind, inquiry.line_channel_id if kind == ChannelKind.LINE else None)
    if not kind:
        errors["body"] = [_("This contact has no email address or LINE account to reply to.")]
    elif channel is None:
        errors["body"] = [_("No active %(kind)s channel to send the reply on.") % {"kind": kind}]
    _raise(errors)
    assert channel is not None
    moment = now()
    with acting_as(actor):
        customer = _recipient(inquiry, kind, address)
        try:
            with transaction.atomic():
                message = Message.objects.create(
                    inquiry=inquiry,
                    direction=Direction.OUTBOUND,
                    author=_user(actor),
                    body=body,
                    auto=auto,
                    faq_article=faq_article,
                    idempotency_key=idempotency_key,
                    created_at=moment,
                )
        except IntegrityError:
            return Message.objects.get(idempotency_key=idempotency_key), False
        _save_attachments(message, attachments)
        delivery, _created = messaging.delivery_enqueue(
            source=f"support:{inquiry.pk}",
            customer=customer,
            channel=channel,
            template=_reply_template(kind),
            extra_context={
                "reply": body,
                "subject": inquiry.subject,
                "reference": inquiry.reply_token,
            },
            idempotency_key=_delivery_key(idempotency_key),
            to_address=address,
            actor=actor,
        )
        message.delivery_id = delivery.pk
        # Our Message-ID is <key.delivery@domain>: a customer's answer names it in In-Reply-To.
        message.email_message_id = f"{delivery.idempotency_key}.{delivery.pk}"
        message.save(update_fields=["delivery_id", "email_message_id"])
        fields = ["status", "updated_at"]
        if inquiry.first_responded_at is None and not auto:
            inquiry.first_responded_at = moment
            fields.append("first_responded_at")
        inquiry.status = status
        if status == InquiryStatus.RESOLVED:
            inquiry.resolved_at = moment
            fields.append("resolved_at")
        inquiry.save(update_fields=fields)
    _timeline(inquiry, "support.reply_sent", channel=kind, auto=auto, delivery_id=delivery.pk)
    return message, True


def delivery_of(message: Message) -> Delivery | None:
    return Delivery.objects.filter(pk=message.delivery_id).first() if message.delivery_id else None


@transaction.atomic
def inquiry_update(
    *,
    inquiry: Inquiry,
    data: dict[str, Any],
    actor: AbstractBaseUser | None = None,
) -> Inquiry:
    """Change status, priority, assignee (a user id or None) or subject. A priority change
    moves the SLA due times (counted from when the inquiry was opened)."""
    errors: dict[str, list[str]] = {}
    unknown = set(data) - {"status", "priority", "assignee", "subject"}
    for key in sorted(unknown):
        errors[key] = [_("Unknown field.")]
    inquiry = Inquiry.objects.select_for_update().get(pk=inquiry.pk)
    old_status = inquiry.status
    if "status" in data and data["status"] not in InquiryStatus.values:
        errors["status"] = [_("Choose one of: %(c)s.") % {"c": ", ".join(InquiryStatus.values)}]
    if "priority" in data and data["priority"] not in Priority.values:
        errors["priority"] = [_("Choose one of: %(c)s.") % {"c": ", ".join(Priority.values)}]
    assignee = inquiry.assignee
    if "assignee" in data:
        value = data["assignee"]
        if value in (None, ""):
            assignee = None
        else:
            user_model = get_user_model()
            assignee = (
                value
                if isinstance(value, user_model)
                else user_model.objects.filter(pk=value).first()
                if str(value).isdigit()
                else None
            )
            if assignee is None:
                errors["assignee"] = [_("No such staff user.")]
            else:
                _check_assignee(assignee, errors)
    if "subject" in data:
        subject = " ".join(str(data["subject"] or "").split())
        if not subject or len(subject) > 200:
            errors["subject"] = [_("A subject of 1 to 200 characters is required.")]
    _raise(errors)
    moment = now()
    with acting_as(actor):
        if "subject" in data:
            inquiry.subject = " ".join(str(data["subject"]).split())
        inquiry.assignee = assignee
        if "priority" in data and data["priority"] != inquiry.priority:
            inquiry.priority = data["priority"]
            inquiry.first_response_due, inquiry.resolution_due = sla_due(
                inquiry.priority, inquiry.created_at
            )
        if "status" in data:
            status = data["status"]
            inquiry.status = status
            if status == InquiryStatus.RESOLVED and inquiry.resolved_at is None:
                inquiry.resolved_at = moment
            if status == InquiryStatus.CLOSED:
                inquiry.closed_at = moment
                inquiry.resolved_at = inquiry.resolved_at or moment
            if status in ACTIVE_STATUSES:
                inquiry.resolved_at = None
                inquiry.closed_at = None
        inquiry.save()
    if inquiry.status != old_status:
        _timeline(inquiry, "support.status_changed", status=inquiry.status, previous=old_status)
    return inquiry


# --- canned answers and FAQ articles ------------------------------------------------------


@transaction.atomic
def canned_answer_save(
    *,
    title: str,
    body_ja: str,
    body_en: str = "",
    active: bool = True,
    canned: CannedAnswer | None = None,
    actor: AbstractBaseUser | None = None,
) -> CannedAnswer:
    errors: dict[str, list[str]] = {}
    title = (title or "").strip()
    if not title or len(title) > 150:
        errors["title"] = [_("A title of 1 to 150 characters is required.")]
    elif CannedAnswer.objects.filter(title=title).exclude(pk=canned.pk if canned else 0).exists():
        errors["title"] = [_("Another canned answer has this title.")]
    body_ja = _check_body(body_ja, errors, "body_ja")
    body_en = (body_en or "").strip()
    if len(body_en) > MAX_BODY:
        errors["body_en"] = [_("At most %(n)d characters.") % {"n": MAX_BODY}]
    _raise(errors)
    with acting_as(actor):
        canned = canned or CannedAnswer()
        canned.title, canned.body_ja, canned.body_en, canned.active = (
            title,
            body_ja,
            body_en,
            active,
        )
        canned.save()
    return canned


def _clean_tags(tags: Any, errors: dict[str, list[str]]) -> list[str]:
    if isinstance(tags, str):
        tags = [t for t in (x.strip() for x in tags.replace("、", ",").split(",")) if t]
    if not isinstance(tags, list) or not all(isinstance(t, str) and 0 < len(t) <= 40 for t in tags):
        errors["tags"] = [_("Tags are short texts (at most 40 characters each).")]
        return []
    return sorted(set(tags))


@transaction.atomic
def faq_article_save(
    *,
    key: str,
    locale: str,
    title: str,
    body: str,
    tags: Any = (),
    published: bool = True,
    article: FaqArticle | None = None,
    actor: AbstractBaseUser | None = None,
) -> FaqArticle:
    """Create or update one article (one language of a `key`); the search index follows."""
    from django.utils.text import slugify

    errors: dict[str, list[str]] = {}
    key = (key or "").strip()
    if not key or slugify(key) != key or len(key) > 80:
        errors["key"] = [_("A key of lower-case letters, digits and hyphens is required.")]
    if locale not in ("ja", "en"):
        errors["locale"] = [_("Choose ja or en.")]
    title = (title or "").strip()
    if not title or len(title) > 200:
        errors["title"] = [_("A title of 1 to 200 characters is required.")]
    body = _check_body(body, errors)
    clean_tags = _clean_tags(list(tags) if isinstance(tags, tuple) else tags, errors)
    if (
        "key" not in errors
        and FaqArticle.objects.filter(key=key, locale=locale)
        .exclude(pk=article.pk if article else 0)
        .exists()
    ):
        errors["key"] = [_("This key already has an article in this language.")]
    _raise(errors)
    with acting_as(actor):
        article = article or FaqArticle()
        article.key, article.locale, article.title, article.body = key, locale, title, body
        article.tags, article.published = clean_tags, published
        article.save()
    return article


@transaction.atomic
def faq_article_delete(*, article: FaqArticle, actor: AbstractBaseUser | None = None) -> None:
    with acting_as(actor):
        article.delete()
