from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from kizuna.core.timeutil import now
from kizuna.customers.models import Customer, Event
from kizuna.messaging.models import Delivery
from kizuna.support import selectors, services
from kizuna.support.choices import Direction, InquiryStatus, Origin
from kizuna.support.models import Attachment, Inquiry, Message

pytestmark = pytest.mark.django_db


def _open(customer, **kw):
    inquiry, created = services.inquiry_open(
        subject=kw.pop("subject", "注文が届きません"),
        body=kw.pop("body", "先週注文した豆がまだ届いていません。"),
        origin=kw.pop("origin", Origin.CONSOLE),
        customer=customer,
        **kw,
    )
    assert created
    return inquiry


def test_open_sets_sla_due_times_from_policy_and_writes_the_timeline(customer) -> None:
    inquiry = _open(customer, priority="high")
    assert inquiry.status == "open" and inquiry.contact_email == "hanako@example.jp"
    assert inquiry.first_response_due - inquiry.created_at == timedelta(hours=4)
    assert inquiry.resolution_due - inquiry.created_at == timedelta(hours=24)
    assert len(inquiry.reply_token) == 8
    [message] = inquiry.messages.all()
    assert message.direction == Direction.INBOUND and "届いていません" in message.body
    event = Event.objects.get(type="support.inquiry_opened", customer=customer)
    assert event.properties["inquiry_id"] == inquiry.pk

    services.sla_policy_save(priority="high", first_response_minutes=30, resolution_minutes=120)
    other = _open(customer, priority="high")
    assert other.first_response_due - other.created_at == timedelta(minutes=30)
    assert other.resolution_due - other.created_at == timedelta(minutes=120)


def test_bad_input_is_refused_by_field_and_nothing_is_written(customer) -> None:
    with pytest.raises(ValidationError) as exc:
        services.inquiry_open(
            subject=" ", body="", origin="fax", priority="asap", contact_email="not-an-address"
        )
    errors = exc.value.message_dict
    assert set(errors) == {"subject", "body", "origin", "priority", "contact_email"}
    with pytest.raises(ValidationError) as exc:
        services.inquiry_open(subject="s", body="b", origin=Origin.CONSOLE)
    assert "customer" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        services.sla_policy_save(priority="high", first_response_minutes=60, resolution_minutes=5)
    assert "resolution_minutes" in exc.value.message_dict
    assert not Inquiry.objects.exists() and not Message.objects.exists()


def test_a_deactivated_user_cannot_be_assigned(customer, make_staff) -> None:
    agent, gone = make_staff("support"), make_staff("support")
    gone.is_active = False
    gone.save()
    with pytest.raises(ValidationError) as exc:
        _open(customer, assignee=gone)
    assert "deactivated" in exc.value.message_dict["assignee"][0]
    assert gone.username in exc.value.message_dict["assignee"][0]
    inquiry = _open(customer, assignee=agent)
    with pytest.raises(ValidationError) as exc:
        services.inquiry_update(inquiry=inquiry, data={"assignee": gone.pk})
    assert "deactivated" in exc.value.message_dict["assignee"][0]
    inquiry.refresh_from_db()
    assert inquiry.assignee == agent
    services.inquiry_update(inquiry=inquiry, data={"assignee": None})
    inquiry.refresh_from_db()
    assert inquiry.assignee is None


def test_attachments_past_the_size_limit_are_refused(customer, settings) -> None:
    settings.KIZUNA_SUPPORT_MAX_ATTACHMENT_BYTES = 1000
    big = services.NewAttachment("receipt.pdf", "application/pdf", b"x" * 1001)
    with pytest.raises(ValidationError) as exc:
        _open(customer, attachments=[big])
    message = exc.value.message_dict["attachments.0"][0]
    assert "receipt.pdf" in message and "1001" in message and "1000" in message
    assert not Inquiry.objects.exists()
    small = services.NewAttachment("photo.jpg", "image/jpeg", b"y" * 1000)
    inquiry = _open(customer, attachments=[small])
    attachment = Attachment.objects.get(message__inquiry=inquiry)
    assert attachment.size == 1000 and bytes(attachment.data) == b"y" * 1000


def test_reply_goes_out_by_email_once_even_when_retried(
    commit, customer, email_channel, smtp_server, make_staff
) -> None:
    agent = make_staff("support")
    inquiry = _open(customer, subject="豆の配送")
    message, created = commit(
        services.reply_send,
        inquiry=inquiry,
        body="ご迷惑をおかけしております。\n本日発送いたしました。",
        idempotency_key="reply-1",
        actor=agent,
    )
    assert created and message.direction == Direction.OUTBOUND and message.delivery_id
    again, created_again = commit(
        services.reply_send, inquiry=inquiry, body="ignored", idempotency_key="reply-1", actor=agent
    )
    assert not created_again and again.pk == message.pk
    assert Delivery.objects.count() == 1
    [sent] = smtp_server[1].messages
    assert sent.recipients == ["hanako@example.jp"]
    mail = sent.message
    assert f"[#{inquiry.reply_token}]" in mail["Subject"] and "豆の配送" in mail["Subject"]
    text = mail.get_body(preferencelist=("plain",)).get_content()
    assert "本日発送いたしました" in text
    assert "配信停止" not in text  # transactional: no marketing footer
    delivery = Delivery.objects.get()
    assert delivery.status == "sent" and delivery.purpose == "transactional"
    inquiry.refresh_from_db()
    assert inquiry.status == InquiryStatus.PENDING and inquiry.first_responded_at is not None
    assert Event.objects.filter(type="support.reply_sent", customer=customer).count() == 1


def test_reply_to_an_anonymous_contact_creates_their_profile(commit, email_channel, smtp_server):
    inquiry, _c = services.inquiry_open(
        subject="Question",
        body="Do you sell decaf?",
        origin=Origin.PORTAL,
        contact_name="Alex",
        contact_email="Alex@Example.com",
        locale="en",
    )
    assert inquiry.customer is None and inquiry.contact_email == "alex@example.com"
    commit(services.reply_send, inquiry=inquiry, body="Yes, we do.", idempotency_key="r")
    inquiry.refresh_from_db()
    assert inquiry.customer is not None and inquiry.customer.email == "alex@example.com"
    assert Customer.objects.count() == 1
    assert smtp_server[1].messages[0].recipients == ["alex@example.com"]


def test_reply_refusals(customer) -> None:
    inquiry = _open(customer)
    with pytest.raises(ValidationError) as exc:
        services.reply_send(inquiry=inquiry, body="hello", idempotency_key="k")
    assert "No active email channel" in exc.value.message_dict["body"][0]
    services.inquiry_update(inquiry=inquiry, data={"status": "closed"})
    with pytest.raises(ValidationError) as exc:
        services.reply_send(inquiry=inquiry, body="", idempotency_key="k2")
    assert {"inquiry", "body"} <= set(exc.value.message_dict)
    assert not Message.objects.filter(direction=Direction.OUTBOUND).exists()


def test_status_priority_changes_and_customer_message_reopens(customer) -> None:
    inquiry = _open(customer, priority="low")
    services.inquiry_update(inquiry=inquiry, data={"priority": "urgent"})
    inquiry.refresh_from_db()
    assert inquiry.first_response_due - inquiry.created_at == timedelta(hours=1)
    services.inquiry_update(inquiry=inquiry, data={"status": "resolved"})
    inquiry.refresh_from_db()
    assert inquiry.resolved_at is not None
    services.message_receive(inquiry=inquiry, body="まだ届いていません", idempotency_key="m1")
    _m, created = services.message_receive(inquiry=inquiry, body="dup", idempotency_key="m1")
    assert not created
    inquiry.refresh_from_db()
    assert inquiry.status == "open" and inquiry.resolved_at is None
    assert inquiry.messages.filter(direction="inbound").count() == 2
    with pytest.raises(ValidationError) as exc:
        services.inquiry_update(inquiry=inquiry, data={"status": "done", "colour": "red"})
    assert set(exc.value.message_dict) == {"status", "colour"}
    note = services.note_add(inquiry=inquiry, body="配送業者に確認中")
    assert note.direction == "note"
    assert not Event.objects.filter(
        type="support.message_received", properties__icontains="配送業者"
    )
    types = list(
        Event.objects.filter(customer=customer, type__startswith="support.").values_list(
            "type", flat=True
        )
    )
    assert "support.status_changed" in types and "support.message_received" in types


def test_breaches_and_kpis(customer) -> None:
    fresh = _open(customer, subject="fresh")
    late = _open(customer, subject="late")
    answered = _open(customer, subject="answered")
    t0 = now() - timedelta(days=2)
    Inquiry.objects.filter(pk=late.pk).update(
        created_at=t0,
        first_response_due=t0 + timedelta(hours=8),
        resolution_due=t0 + timedelta(days=1),
    )
    Inquiry.objects.filter(pk=answered.pk).update(
        created_at=t0,
        first_response_due=t0 + timedelta(hours=8),
        resolution_due=t0 + timedelta(days=3),
        first_responded_at=t0 + timedelta(minutes=30),
        resolved_at=t0 + timedelta(hours=2),
        status="resolved",
    )
    late.refresh_from_db()
    fresh.refresh_from_db()
    state = selectors.sla_state(late)
    assert state.first_response_breached and state.resolution_breached and state.breached
    assert not selectors.sla_state(fresh).breached
    # answered after its due time: a breach that stays a breach
    Inquiry.objects.filter(pk=fresh.pk).update(
        first_responded_at=fresh.first_response_due + timedelta(minutes=1)
    )
    fresh.refresh_from_db()
    assert selectors.sla_state(fresh).first_response_breached

    assert list(selectors.inquiry_list(breached=True)) == [late]
    assert set(selectors.inquiry_list()) == {fresh, late}
    assert set(selectors.inquiry_list(status="all")) == {fresh, late, answered}

    k = selectors.kpis()
    assert k.opened == 3 and k.active == 2 and k.breached_now == 1
    assert k.first_response_breaches == 2 and k.resolution_breaches == 1
    assert k.resolution_median_minutes == 120.0
    assert k.first_response_mean_minutes is not None and k.first_response_mean_minutes > 30


def test_personal_data_export_and_erase(customer) -> None:
    from kizuna.core.personal_data import get_handler

    inquiry = _open(customer, attachments=[services.NewAttachment("a.txt", "text/plain", b"hi")])
    services.note_add(inquiry=inquiry, body="電話あり")
    handler = get_handler("support.inquiry")
    [exported] = list(handler.export(customer.pk))
    assert exported["contact_email"] == "hanako@example.jp"
    assert [m["body"] for m in exported["messages"]] == [
        "先週注文した豆がまだ届いていません。",
        "電話あり",
    ]
    assert handler.erase(customer.pk, pseudonym="erased-1") > 0
    inquiry.refresh_from_db()
    assert inquiry.subject == "erased-1" and inquiry.contact_email == ""
    assert set(inquiry.messages.values_list("body", flat=True)) == {""}
    assert not Attachment.objects.exists()
    handler.erase(customer.pk, pseudonym="erased-1")  # idempotent
