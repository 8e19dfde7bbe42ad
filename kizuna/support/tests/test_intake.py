from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils.translation import gettext as _

from kizuna.core import events as bus
from kizuna.customers.models import Customer, Identity
from kizuna.messaging.models import Delivery
from kizuna.support import intake, services
from kizuna.support.choices import Direction, InquiryStatus, Origin
from kizuna.support.models import Inquiry, Message

pytestmark = pytest.mark.django_db
USER = "U" + "1234abcdef" * 3 + "01"


def _sign(body: bytes, secret: str = "line-secret") -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _line(channel, event_id: str, text: str, user: str = USER):
    events = [
        {
            "type": "follow",
            "mode": "active",
            "timestamp": 1700000000000,
            "source": {"type": "user", "userId": user},
            "webhookEventId": f"F{event_id}",
            "replyToken": "r",
            "deliveryContext": {"isRedelivery": False},
        },
        {
            "type": "message",
            "mode": "active",
            "timestamp": 1700000000000,
            "source": {"type": "user", "userId": user},
            "webhookEventId": event_id,
            "replyToken": "r",
            "deliveryContext": {"isRedelivery": False},
            "message": {"type": "text", "id": "1", "quoteToken": "q", "text": text},
        },
    ]
    body = json.dumps({"destination": "U" + "0" * 32, "events": events}).encode()
    return Client().post(
        f"/hooks/line/{channel.pk}/",
        body,
        content_type="application/json",
        HTTP_X_LINE_SIGNATURE=_sign(body),
    )


def _pushed_texts(line_api) -> list[str]:
    return [
        m["text"] for r in line_api.requests if r.path.endswith("/push") for m in r.body["messages"]
    ]


def test_line_question_is_answered_by_the_faq_assistant(commit, articles, line_channel, line_api):
    response = commit(_line, line_channel, "E1", "ポイントの有効期限はいつまでですか？")
    assert response.status_code == 200
    inquiry = Inquiry.objects.get()
    assert inquiry.origin == Origin.LINE and inquiry.contact_line_user_id == USER
    assert inquiry.locale == "ja" and inquiry.status == InquiryStatus.PENDING
    answer = inquiry.messages.get(direction=Direction.OUTBOUND)
    assert answer.auto and answer.faq_article is not None
    assert answer.faq_article.key == "points-expiry"
    [text] = _pushed_texts(line_api)
    assert "12か月で失効" in text
    # the LINE user became a customer profile, so staff see them on the 360 page
    assert Identity.objects.filter(kind="line", value=USER, customer=inquiry.customer).exists()
    assert inquiry.first_responded_at is None  # an automatic answer is not a staff response

    # a follow-up the FAQ cannot answer continues the same conversation, for a person
    commit(_line, line_channel, "E2", "昨日お店で傘を忘れました")
    inquiry.refresh_from_db()
    assert Inquiry.objects.count() == 1 and inquiry.status == InquiryStatus.OPEN
    assert inquiry.messages.filter(direction=Direction.INBOUND).count() == 2
    note = inquiry.messages.filter(direction=Direction.NOTE).last()
    handed_over = _("FAQ assistant: no confident answer (%(c).2f); handed over to staff.")
    assert note is not None and note.body == handed_over % {"c": 0.0}
    assert len(_pushed_texts(line_api)) == 1

    # LINE redelivers an event: nothing twice
    commit(_line, line_channel, "E2", "昨日お店で傘を忘れました")
    assert inquiry.messages.filter(direction=Direction.INBOUND).count() == 2


def test_line_question_without_a_confident_answer_goes_to_staff(
    commit, articles, line_channel, line_api, make_staff
):
    commit(_line, line_channel, "E9", "店員さんの対応について意見があります")
    inquiry = Inquiry.objects.get()
    assert inquiry.status == InquiryStatus.OPEN
    assert not inquiry.messages.filter(direction=Direction.OUTBOUND).exists()
    assert _pushed_texts(line_api) == []
    # staff answer on LINE through messaging
    agent = make_staff("support")
    commit(
        services.reply_send,
        inquiry=inquiry,
        body="ご意見ありがとうございます",
        idempotency_key="x",
        actor=agent,
    )
    assert _pushed_texts(line_api) == ["ご意見ありがとうございます"]
    assert Delivery.objects.get().channel == line_channel


def _publish(commit, event: bus.DomainEvent) -> None:
    from django.db import transaction

    def run() -> None:
        with transaction.atomic():
            bus.publish(event)

    commit(run)


def test_survey_detractor_and_journey_task_open_inquiries_once(commit, customer) -> None:
    detractor = bus.DomainEvent(
        type="survey.detractor",
        occurred_at=datetime.now(UTC),
        customer_id=customer.pk,
        event_id=41,
        properties={"response_id": 7, "score": 3, "comment": "<b>Too slow</b>", "survey": "NPS"},
    )
    _publish(commit, detractor)
    _publish(commit, detractor)  # redelivered
    inquiry = Inquiry.objects.get(origin=Origin.SURVEY)
    assert inquiry.customer == customer and inquiry.priority == "high"
    assert "3" in inquiry.subject and "<b>Too slow</b>" in inquiry.messages.get().body

    task = bus.DomainEvent(
        type="journey.support_task_requested",
        occurred_at=datetime.now(UTC),
        customer_id=customer.pk,
        event_id=42,
        properties={
            "journey_id": 3,
            "run_id": 11,
            "subject": "Call about the cancelled order",
            "priority": "urgent",
        },
    )
    _publish(commit, task)
    _publish(commit, task)
    # the shape the journeys app publishes: a title, the journey's name, a message id
    from_journey = bus.DomainEvent(
        type="journey.support_task_requested",
        occurred_at=datetime.now(UTC),
        customer_id=customer.pk,
        message_id="journey:e9:n3",
        properties={"journey_id": 4, "journey": "Win-back", "step": "n3", "title": "電話する"},
    )
    _publish(commit, from_journey)
    _publish(commit, from_journey)
    called = Inquiry.objects.get(subject="電話する")
    assert called.messages.get().body == "[Win-back] 電話する"
    job = Inquiry.objects.get(origin=Origin.JOURNEY, priority="urgent")
    assert job.subject == "Call about the cancelled order" and job.priority == "urgent"
    assert job.messages.get().direction == Direction.NOTE
    assert Inquiry.objects.count() == 3


def test_contact_form_auto_answer_handover_and_flood_limit(articles, settings) -> None:
    result = intake.contact_form_submit(
        name="Alex",
        email="alex@example.com",
        subject="Shipping",
        body="How much is shipping for coffee beans?",
        locale="en",
    )
    assert result.created and result.answer is not None
    assert result.answer.top.key == "beans-delivery"  # type: ignore[union-attr]
    assert result.inquiry.status == InquiryStatus.PENDING and result.message.auto  # type: ignore[union-attr]
    intake.handover(inquiry=result.inquiry)
    result.inquiry.refresh_from_db()
    assert result.inquiry.status == InquiryStatus.OPEN

    other = intake.contact_form_submit(
        name="",
        email="alex@example.com",
        subject="Lost umbrella",
        body="I left my umbrella in the Shibuya store",
        locale="en",
    )
    assert other.answer is None and other.inquiry.status == InquiryStatus.OPEN

    settings.KIZUNA_SUPPORT_FLOOD_LIMIT = 2
    with pytest.raises(ValidationError) as exc:
        intake.contact_form_submit(
            name="", email="ALEX@example.com", subject="again", body="again", locale="en"
        )
    assert "Too many inquiries" in exc.value.message_dict["contact_email"][0]
    assert Inquiry.objects.count() == 2 and not Customer.objects.exists()


def _iso_2022_jp_mail() -> bytes:
    """A mail as a Japanese mail client of the ISO-2022-JP tradition writes it: encoded-word
    headers and a 7-bit ISO-2022-JP body."""
    from email.header import Header

    name = Header("山田 花子", "iso-2022-jp").encode()
    subject = Header("注文した豆が届かない", "iso-2022-jp").encode()
    assert subject.startswith("=?iso-2022-jp?b?")
    return (
        f"From: {name} <hanako@example.jp>\r\n"
        "To: support@kizuna.example\r\n"
        f"Subject: {subject}\r\n"
        "Message-ID: <first@example.jp>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: text/plain; charset="ISO-2022-JP"\r\n'
        "Content-Transfer-Encoding: 7bit\r\n\r\n"
    ).encode() + "注文した豆がまだ届きません。\r\n".encode("iso2022_jp")


ISO_2022_JP_MAIL = _iso_2022_jp_mail()


def test_inbound_email_iso_2022_jp_and_threading(commit, customer, email_channel, smtp_server):
    parsed = intake.parse_email(ISO_2022_JP_MAIL)
    assert parsed.from_address == "hanako@example.jp" and parsed.from_name == "山田 花子"
    assert parsed.subject == "注文した豆が届かない"
    assert parsed.body == "注文した豆がまだ届きません。"
    first = intake.email_receive(raw=ISO_2022_JP_MAIL)
    inquiry = first.inquiry
    assert first.created and inquiry.origin == Origin.EMAIL and inquiry.customer == customer
    assert inquiry.subject == parsed.subject and "届" in inquiry.subject
    assert inquiry.locale == "ja"
    assert not intake.email_receive(raw=ISO_2022_JP_MAIL).created  # redelivered
    assert Inquiry.objects.count() == 1 and Message.objects.count() == 1

    commit(services.reply_send, inquiry=inquiry, body="確認いたします", idempotency_key="r1")
    sent = smtp_server[1].messages[0].message

    reply = EmailMessage()
    reply["From"] = "山田 花子 <hanako@example.jp>"
    reply["To"] = "support@kizuna.example"
    reply["Subject"] = "Re: " + str(sent["Subject"])
    reply["Message-ID"] = "<second@example.jp>"
    reply["In-Reply-To"] = sent["Message-ID"]
    reply.set_content("よろしくお願いします。", charset="utf-8")
    reply.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="領収書.pdf")
    result = intake.email_receive(raw=reply.as_bytes())
    assert result.inquiry == inquiry and not result.created
    inquiry.refresh_from_db()
    assert inquiry.status == InquiryStatus.OPEN
    message = inquiry.messages.filter(direction=Direction.INBOUND).last()
    assert message is not None and message.body == "よろしくお願いします。"
    assert message.attachments.get().filename == "領収書.pdf"

    by_token = EmailMessage()
    by_token["From"] = "hanako@example.jp"
    by_token["To"] = f"support+{inquiry.reply_token.lower()}@kizuna.example"
    by_token["Subject"] = "別件ではありません"
    by_token.set_content("追記です")
    assert intake.email_receive(raw=by_token.as_bytes()).inquiry == inquiry
    by_subject = EmailMessage()
    by_subject["From"] = "hanako@example.jp"
    by_subject["Subject"] = f"Re: [#{inquiry.reply_token}]"
    by_subject.set_content("もう一つ")
    assert intake.email_receive(raw=by_subject.as_bytes()).inquiry == inquiry
    assert Inquiry.objects.count() == 1
    assert inquiry.messages.filter(direction=Direction.INBOUND).count() == 4


def test_inbound_email_bad_input(settings) -> None:
    with pytest.raises(ValidationError) as exc:
        intake.email_receive(raw=b"")
    assert "message" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        intake.email_receive(raw=b"Subject: hi\r\n\r\nbody\r\n")
    assert "from" in exc.value.message_dict
    settings.KIZUNA_SUPPORT_MAX_ATTACHMENT_BYTES = 100
    mail = EmailMessage()
    mail["From"] = "a@example.com"
    mail["Subject"] = "photo"
    mail.set_content("see attached")
    mail.add_attachment(b"x" * 101, maintype="image", subtype="jpeg", filename="big.jpg")
    with pytest.raises(ValidationError) as exc:
        intake.email_receive(raw=mail.as_bytes())
    assert "big.jpg" in exc.value.message_dict["attachments.0"][0]
    assert not Inquiry.objects.exists()
