"""How inquiries arrive besides the console: the portal contact form, LINE messages, inbound
email, a survey detractor and a journey's support task; and the FAQ assistant's automatic
answer with hand-over to a person.

LINE messages and the two events come on the domain-event bus (`line.message` is what
messaging records for every LINE message; `survey.detractor` and
`journey.support_task_requested` come from the apps above/beside). Each is idempotent on the
event it came from, so a redelivered event opens nothing twice.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import translation
from django.utils.html import strip_tags
from django.utils.translation import gettext as _

from kizuna.core import events as bus
from kizuna.core.text import detect_language
from kizuna.core.timeutil import now
from kizuna.customers.choices import IdentityKind
from kizuna.customers.models import Customer, Event, Identity
from kizuna.messaging.models import LineContact
from kizuna.support import faq, selectors, services
from kizuna.support.choices import Direction, InquiryStatus, Origin, Priority
from kizuna.support.models import FaqArticle, Inquiry, Message

logger = logging.getLogger(__name__)
_TOKEN_IN_SUBJECT = re.compile(r"\[#([A-Z2-9]{8})\]")
_TOKEN_IN_ADDRESS = re.compile(r"^[^+@]+\+([A-Za-z2-9]{8})@")


@dataclass(frozen=True)
class Intake:
    inquiry: Inquiry
    created: bool
    message: Message | None = None
    answer: faq.Answer | None = None  # the FAQ assistant's answer, when it gave one


# --- the FAQ assistant ----------------------------------------------------------------------


def _humans_involved(inquiry: Inquiry) -> bool:
    return (
        inquiry.assignee_id is not None
        or inquiry.messages.filter(direction=Direction.OUTBOUND, auto=False).exists()
    )


def auto_answer(
    *, inquiry: Inquiry, question: str, key: str, send: bool
) -> tuple[faq.Answer, Message | None]:
    """Ask the FAQ assistant. Confident and no person on the case yet: the answer is added
    to the thread (sent through messaging when `send`, else shown by the caller, e.g. the
    contact form's page) and the inquiry waits for the customer. Otherwise a note records the
    hand-over and the inquiry stays open for staff, conversation kept."""
    answer = faq.search(question, locale=inquiry.locale)
    if not answer.confident or _humans_involved(inquiry):
        services.note_add(
            inquiry=inquiry,
            body=_("FAQ assistant: no confident answer (%(c).2f); handed over to staff.")
            % {"c": answer.confidence},
        )
        return answer, None
    text = faq.answer_text(answer)
    top = answer.top
    article = FaqArticle.objects.filter(pk=top.article_id).first() if top is not None else None
    if send:
        try:
            message, _created = services.reply_send(
                inquiry=inquiry,
                body=text,
                idempotency_key=f"auto:{key}",
                auto=True,
                faq_article=article,
                status=InquiryStatus.PENDING,
            )
        except ValidationError:
            logger.warning("support: automatic answer to inquiry %s not sent", inquiry.pk)
            return answer, None
        return answer, message
    message = Message.objects.create(
        inquiry=inquiry,
        direction=Direction.OUTBOUND,
        body=text,
        auto=True,
        faq_article=article,
        idempotency_key=f"auto:{key}",
        created_at=now(),
    )
    Inquiry.objects.filter(pk=inquiry.pk).update(status=InquiryStatus.PENDING)
    inquiry.refresh_from_db()
    return answer, message


def handover(*, inquiry: Inquiry, reason: str = "") -> Inquiry:
    """The customer says the automatic answer did not help: back to staff."""
    with transaction.atomic():
        services.note_add(
            inquiry=inquiry,
            body=reason or _("The customer asked for a person after the automatic answer."),
        )
        return services.inquiry_update(inquiry=inquiry, data={"status": InquiryStatus.OPEN})


# --- the contact form -----------------------------------------------------------------------


def contact_form_submit(
    *,
    name: str,
    email: str,
    subject: str,
    body: str,
    locale: str,
    attachments: tuple[services.NewAttachment, ...] = (),
) -> Intake:
    """A portal contact-form submission: an inquiry (limited per address and hour), then the
    FAQ assistant's answer shown on the page when it is confident."""
    with transaction.atomic():
        inquiry, created = services.inquiry_open(
            subject=subject,
            body=body,
            origin=Origin.PORTAL,
            contact_name=name,
            contact_email=email,
            locale=locale,
            attachments=attachments,
        )
        answer, message = auto_answer(
            inquiry=inquiry, question=f"{subject}\n{body}", key=f"portal:{inquiry.pk}", send=False
        )
    return Intake(inquiry, created, message, answer if message is not None else None)


# --- LINE -----------------------------------------------------------------------------------


def _line_user(event: bus.DomainEvent) -> str:
    anonymous = (
        Event.objects.filter(pk=event.event_id).values_list("anonymous_id", flat=True).first()
        if event.event_id
        else None
    )
    if anonymous and anonymous.startswith("line:"):
        return anonymous.removeprefix("line:")
    if event.customer_id is None:
        return ""
    channel_id = event.properties.get("channel_id")
    contacts = LineContact.objects.filter(customer_id=event.customer_id)
    if channel_id:
        contacts = contacts.filter(channel_id=int(channel_id))
    contact = contacts.order_by("-following", "-updated_at").first()
    if contact is not None:
        return contact.line_user_id
    identity = Identity.objects.filter(
        customer_id=event.customer_id, kind=IdentityKind.LINE
    ).first()
    return identity.value if identity else ""


def on_line_message(event: bus.DomainEvent) -> None:
    """A LINE text message: continues the user's active LINE inquiry or opens one; the FAQ
    assistant answers when it is confident and nobody from staff is on it yet."""
    props = event.properties
    text = str(props.get("text") or "").strip()
    if not text or props.get("linked") or props.get("message_type") not in ("text", None, ""):
        return
    event_key = str(props.get("line_event_id") or event.event_id or "")
    channel_id = props.get("channel_id")
    user_id = _line_user(event)
    if not user_id or not event_key:
        return
    customer = Customer.objects.filter(pk=event.customer_id).first() if event.customer_id else None
    with transaction.atomic():
        inquiry = selectors.last_inquiry_for_line(line_user_id=user_id, channel_id=channel_id)
        if inquiry is None:
            first_line = text.splitlines()[0][:60]
            inquiry, created = services.inquiry_open(
                subject=first_line,
                body=text,
                origin=Origin.LINE,
                customer=customer,
                contact_line_user_id=user_id,
                line_channel_id=int(channel_id) if channel_id else None,
                locale=detect_language(text),
                source_ref=f"line:{event_key}",
            )
            if not created:
                return
        else:
            _message, created = services.message_receive(
                inquiry=inquiry, body=text, idempotency_key=f"line:{event_key}"
            )
            if not created:
                return
        auto_answer(inquiry=inquiry, question=text, key=f"line:{event_key}", send=True)


# --- events from surveys and journeys -------------------------------------------------------


def on_survey_detractor(event: bus.DomainEvent) -> None:
    """A detractor's NPS answer opens a high-priority follow-up inquiry for the customer."""
    if event.customer_id is None:
        return
    customer = Customer.objects.filter(pk=event.customer_id).first()
    if customer is None:
        return
    props = event.properties
    ref = props.get("response_id") or event.event_id or event.message_id
    if not ref:
        return
    score = props.get("score")
    comment = str(props.get("comment") or props.get("text") or "").strip()
    with translation.override(customer.locale or "ja"):
        subject = _("Detractor follow-up (score %(score)s)") % {"score": score}
        body = comment or _("The customer gave a low score without a comment.")
        if props.get("survey"):
            body = f"[{props['survey']}] {body}"
    services.inquiry_open(
        subject=subject,
        body=body,
        origin=Origin.SURVEY,
        customer=customer,
        priority=Priority.HIGH,
        source_ref=f"survey.detractor:{ref}",
    )


def on_support_task_requested(event: bus.DomainEvent) -> None:
    """A journey step asks staff to act on a customer: a task-like inquiry (its first entry
    is an internal note)."""
    if event.customer_id is None:
        return
    customer = Customer.objects.filter(pk=event.customer_id).first()
    if customer is None:
        return
    props = event.properties
    ref = props.get("task_key") or props.get("run_id") or event.event_id or event.message_id
    if not ref:
        return
    priority = str(props.get("priority") or "")
    priority = priority if priority in Priority.values else Priority.NORMAL
    with translation.override(customer.locale or "ja"):
        subject = str(
            props.get("subject") or props.get("title") or _("Follow-up requested by a journey")
        )[:200]
        body = str(props.get("note") or props.get("body") or subject)
        if props.get("journey"):
            body = f"[{props['journey']}] {body}"
    services.inquiry_open(
        subject=subject,
        body=body,
        origin=Origin.JOURNEY,
        customer=customer,
        priority=priority,
        source_ref=f"journey:{props.get('journey_id', '')}:{ref}"[:120],
        body_direction=Direction.NOTE,
    )


# --- inbound email ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedEmail:
    from_name: str
    from_address: str
    subject: str
    body: str
    message_id: str
    references: list[str]
    recipients: list[str]
    attachments: tuple[services.NewAttachment, ...]


def parse_email(raw: bytes) -> ParsedEmail:
    """Parse an RFC 822 message (any charset the stdlib knows: UTF-8, ISO-2022-JP...)."""
    if not raw or not raw.strip():
        raise ValidationError({"message": [_("The message is empty.")]})
    message = message_from_bytes(raw, policy=policy.default)
    if not isinstance(message, EmailMessage):
        raise ValidationError({"message": [_("Not an email message.")]})
    name, address = parseaddr(str(message.get("From", "")))
    if "@" not in address:
        raise ValidationError({"from": [_("The message has no sender address.")]})
    body_part = message.get_body(preferencelist=("plain", "html"))
    body = ""
    if body_part is not None:
        try:
            content = body_part.get_content()
        except (LookupError, UnicodeError) as exc:
            raise ValidationError(
                {"body": [_("The body's character set cannot be read.")]}
            ) from exc
        body = strip_tags(content) if body_part.get_content_subtype() == "html" else content
    attachments = []
    for part in message.iter_attachments():
        data = part.get_payload(decode=True)
        if isinstance(data, bytes):
            attachments.append(
                services.NewAttachment(
                    filename=str(part.get_filename() or "attachment"),
                    content_type=part.get_content_type(),
                    data=data,
                )
            )
    refs = " ".join(str(message.get(h, "")) for h in ("In-Reply-To", "References"))
    recipients = [
        a
        for _n, a in getaddresses(
            [str(v) for h in ("To", "Cc", "Delivered-To") for v in message.get_all(h, [])]
        )
    ]
    return ParsedEmail(
        from_name=name,
        from_address=address.lower(),
        subject=" ".join(str(message.get("Subject", "")).split()),
        body=body.strip(),
        message_id=str(message.get("Message-ID", "")).strip().strip("<>"),
        references=re.findall(r"<([^>]+)>", refs),
        recipients=recipients,
        attachments=tuple(attachments),
    )


def _thread_of(parsed: ParsedEmail) -> Inquiry | None:
    for address in parsed.recipients:
        match = _TOKEN_IN_ADDRESS.match(address)
        if match:
            found = selectors.inquiry_by_reference(token=match.group(1))
            if found is not None:
                return found
    found = selectors.inquiry_by_email_ids(message_ids=parsed.references)
    if found is not None:
        return found
    match = _TOKEN_IN_SUBJECT.search(parsed.subject.upper())
    return selectors.inquiry_by_reference(token=match.group(1)) if match else None


def email_receive(*, raw: bytes) -> Intake:
    """An inbound email: a reply continues its inquiry (by the reference in the address,
    In-Reply-To/References, or the [#reference] in the subject), anything else opens one.
    A redelivered message (same Message-ID) changes nothing."""
    parsed = parse_email(raw)
    key = f"email:{parsed.message_id}" if parsed.message_id else None
    with transaction.atomic():
        inquiry = _thread_of(parsed)
        if inquiry is not None and inquiry.status != InquiryStatus.CLOSED:
            message, created = services.message_receive(
                inquiry=inquiry,
                body=parsed.body or parsed.subject,
                email_message_id=parsed.message_id,
                idempotency_key=key,
                attachments=parsed.attachments,
            )
            return Intake(inquiry, False, message if created else None)
        inquiry, created = services.inquiry_open(
            subject=parsed.subject or _("(no subject)"),
            body=parsed.body or parsed.subject,
            origin=Origin.EMAIL,
            contact_name=parsed.from_name,
            contact_email=parsed.from_address,
            locale=detect_language(f"{parsed.subject} {parsed.body}"),
            source_ref=key,
            email_message_id=parsed.message_id,
            attachments=parsed.attachments,
        )
        return Intake(inquiry, created)
