"""Email end to end against a real SMTP server on loopback: MIME for Japanese, DKIM verified
offline, one-click unsubscribe headers, VERP, the plain-text part, ISO-2022-JP."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from typing import Any

import dkim
import pytest

from kizuna.customers.models import Event
from kizuna.messaging import links, services
from kizuna.messaging.channels import OutboundMessage
from kizuna.messaging.channels.email import build_message, serialise
from kizuna.messaging.models import Delivery
from kizuna.messaging.tests.conftest import ADDRESS, make_customer, make_email_channel


def _dns(txt: bytes):
    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        return txt if name == b"kz1._domainkey.kizuna.example." else None

    return lookup


_run: Any = None


@pytest.fixture(autouse=True)
def _commit(commit: Any) -> None:
    global _run
    _run = commit


def _send(customer, channel, template, source="campaign:1") -> Delivery:
    delivery, _created = _run(
        services.delivery_enqueue,
        source=source,
        customer=customer,
        channel=channel,
        template=template,
    )
    delivery.refresh_from_db()
    return delivery


@pytest.mark.django_db
def test_marketing_email_is_signed_encoded_and_unsubscribable(
    smtp_server, email_channel, newsletter, dkim_key
) -> None:
    customer = make_customer()
    delivery = _send(customer, email_channel, newsletter)  # Huey runs immediately in tests
    assert delivery.status == "sent", delivery.reason
    (received,) = smtp_server[1].messages
    raw = received.raw
    # DKIM: verified offline with the published key; it covers the unsubscribe headers.
    assert dkim.verify(raw, dnsfunc=_dns(dkim_key[1]))
    signature = raw.split(b"\r\n\r\n", 1)[0].split(b"DKIM-Signature:", 1)[1]
    assert b"list-unsubscribe-post" in signature.replace(b"\r\n", b"").replace(b" ", b"")
    tampered = raw.replace(b"List-Unsubscribe=One-Click", b"List-Unsubscribe=Two-Click")
    assert tampered != raw
    assert not dkim.verify(tampered, dnsfunc=_dns(dkim_key[1]))
    msg = received.message
    assert str(msg["Subject"]) == "山田 花子様へ 秋のセールのお知らせ"
    assert b"=?utf-8?" in raw.split(b"\r\n\r\n", 1)[0]  # RFC 2047 encoded, not raw 8-bit
    assert msg["From"].addresses[0].display_name == "絆商店"
    assert msg["To"].addresses[0].display_name == "山田 花子"
    # VERP envelope sender names the delivery; RFC 8058 headers point at a signed POST URL.
    assert links.delivery_from_verp(received.envelope_from) == delivery.pk
    assert received.recipients == ["hanako@example.jp"]
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsub = msg["List-Unsubscribe"].strip()
    assert unsub.startswith("<http://localhost:8000/t/u/") and unsub.endswith("/>")
    assert links.unsign(links.UNSUB, unsub.rsplit("/", 2)[-2]) == delivery.pk
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert "山田 花子様、こんにちは。" in text and "<" not in text.split("--")[0]
    assert ADDRESS in text and ADDRESS in html  # sender's physical address, both parts
    assert unsub[1:-1] in text
    assert 'style="' in html and "color: #7c4a2d" in html  # CSS inlined
    assert "https://shop.example.jp/sale" not in html  # links go through the click redirect
    assert "/t/c/" in html and "/t/o/" in html
    # Status history, provider id, rendered snapshot, timeline
    assert list(delivery.history.values_list("status", flat=True)) == ["queued", "sent"]
    assert delivery.provider_id == f"<{delivery.idempotency_key}.{delivery.pk}@kizuna.example>"
    assert delivery.rendered["subject"] == "山田 花子様へ 秋のセールのお知らせ"
    assert Event.objects.filter(customer=customer, type="email.sent").count() == 1


@pytest.mark.django_db
def test_enqueue_is_idempotent_and_locale_variant_is_used(smtp_server, email_channel, newsletter):
    customer = make_customer(
        "john@example.com", locale="en", family_name="Smith", given_name="John"
    )
    first, created = _run(
        services.delivery_enqueue,
        source="campaign:7",
        customer=customer,
        channel=email_channel,
        template=newsletter,
    )
    again, created_again = _run(
        services.delivery_enqueue,
        source="campaign:7",
        customer=customer,
        channel=email_channel,
        template=newsletter,
    )
    assert created and not created_again and first.pk == again.pk
    assert len(smtp_server[1].messages) == 1
    assert str(smtp_server[1].messages[0].message["Subject"]) == "Autumn sale for John"


@pytest.mark.django_db
def test_iso_2022_jp_headers_and_body(smtp_server, newsletter):
    channel = make_email_channel(smtp_server[0].port, charset="iso-2022-jp")
    customer = make_customer()
    delivery = _send(customer, channel, newsletter)
    assert delivery.status == "sent", delivery.reason
    raw = smtp_server[1].messages[0].raw
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert b"=?iso-2022-jp?b?" in head
    assert b'charset="iso-2022-jp"' in raw
    assert max(raw) < 0x80  # 7-bit clean
    subject = str(make_header(decode_header(smtp_server[1].messages[0].message["Subject"])))
    assert subject == "山田 花子様へ 秋のセールのお知らせ"


@pytest.mark.django_db
def test_iso_2022_jp_refuses_unencodable_characters_by_name(smtp_server, newsletter):
    channel = make_email_channel(smtp_server[0].port, charset="iso-2022-jp")
    template = services.template_save(
        slug="circled",
        name="Circled",
        channel_kind="email",
        body_format="html",
        variants={"ja": {"subject": "セール①", "body": "<p>{{ customer.name }}様</p>"}},
    )
    customer = make_customer(family_name="髙橋")  # the profile keeps 髙 (NFKC has no fold)
    delivery = _send(customer, channel, template)
    assert delivery.status == "failed"
    assert "髙" in delivery.reason and "①" in delivery.reason and "iso-2022-jp" in delivery.reason
    assert smtp_server[1].messages == []


@pytest.mark.django_db
def test_rejected_recipient_fails_and_temporary_error_defers(
    smtp_server, email_channel, newsletter
):
    smtp_server[1].reject["gone@example.jp"] = "550 5.1.1 no such user"
    smtp_server[1].reject["busy@example.jp"] = "451 4.3.0 try again later"
    gone = _send(make_customer("gone@example.jp"), email_channel, newsletter)
    busy = _send(make_customer("busy@example.jp"), email_channel, newsletter)
    assert gone.status == "failed" and "550" in gone.reason
    assert busy.status == "deferred" and "451" in busy.reason and busy.not_before is not None
    assert list(busy.history.values_list("status", flat=True)) == ["queued", "deferred"]
    assert smtp_server[1].messages == []


@pytest.mark.django_db
def test_transactional_email_has_no_unsubscribe_header_but_needs_no_opt_in(
    smtp_server, email_channel
):
    receipt = services.template_save(
        slug="receipt",
        name="Receipt",
        channel_kind="email",
        body_format="html",
        purpose="transactional",
        variants={"ja": {"subject": "ご注文ありがとうございます", "body": "<p>{{ order_no }}</p>"}},
    )
    customer = make_customer(opt_in=False)
    delivery, _ = _run(
        services.delivery_enqueue,
        source="order:1",
        customer=customer,
        channel=email_channel,
        template=receipt,
        extra_context={"order_no": "A-100"},
    )
    delivery.refresh_from_db()
    assert delivery.status == "sent"
    msg = smtp_server[1].messages[0].message
    assert msg["List-Unsubscribe"] is None
    assert "A-100" in msg.get_body(("plain",)).get_content()


@pytest.mark.parametrize("charset", ["utf-8", "iso-2022-jp"])
def test_serialisation_is_the_standard_librarys_byte_for_byte(charset: str) -> None:
    """`serialise` takes shortcuts (short ASCII headers, payloads written whole): the bytes
    are those of `as_bytes` with compat32 and CRLF, long and encoded headers included."""
    text = "山田花子様、いつもありがとうございます。\n" * 40 + "最後の行"
    message = OutboundMessage(
        delivery_id=7,
        idempotency_key="d_" + "a" * 40,
        to="hanako@example.jp",
        rendered={
            "subject": "山田 花子様へ 秋のセールのお知らせ。" * 4,
            "html": "<p>" + text.replace("\n", "<br>\r\n") + "</p>",
            "text": text,
        },
        marketing=True,
        customer_name="山田 花子" * 6,
    )
    settings = {
        "from_address": "news@kizuna.example",
        "from_name": "絆商店 渋谷本店",
        "charset": charset,
        "reply_to": "support-" + "x" * 70 + "@kizuna.example",
    }
    root = build_message(
        channel_settings=settings,
        message=message,
        unsubscribe_url="https://shop.example.jp/t/u/" + "A" * 120 + "/",
    )
    raw = serialise(root)
    stock = policy.compat32.clone(linesep="\r\n")
    assert raw == root.as_bytes(policy=stock)
    # ... and the parts are those MIMEText makes.
    reference = MIMEMultipart("alternative", boundary=root.get_boundary())
    reference.attach(MIMEText(message.rendered["text"], "plain", charset))
    reference.attach(MIMEText(message.rendered["html"], "html", charset))
    for name, value in root.items():
        if name not in ("Content-Type", "MIME-Version"):
            reference[name] = value
    assert raw == reference.as_bytes(policy=stock)
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998


def test_the_boundary_never_occurs_in_a_part(monkeypatch) -> None:
    from kizuna.messaging.channels import email

    drawn = iter(["a" * 20, "b" * 20])
    monkeypatch.setattr(email.secrets, "token_hex", lambda n: next(drawn))
    taken = "=" * 15 + "a" * 20 + "=="
    message = OutboundMessage(
        delivery_id=1,
        idempotency_key="k",
        to="x@example.jp",
        rendered={"subject": "s", "text": f"line\n--{taken}\n", "html": ""},
        marketing=False,
    )
    root = build_message(
        channel_settings={"from_address": "n@kizuna.example", "charset": "iso-2022-jp"},
        message=message,
    )
    assert root.get_boundary() == "=" * 15 + "b" * 20 + "=="
    parsed = message_from_bytes(serialise(root), policy=policy.default)
    (part,) = parsed.iter_parts()
    assert part.get_content().replace("\r\n", "\n") == f"line\n--{taken}\n"


def test_dkim_signature_is_dkimpys_own(monkeypatch, dkim_key) -> None:
    """`dkim_sign` parses only the header block: the signature is the one `dkim.sign` makes
    of the whole message (also with bare LFs, where dkimpy's parsing is used)."""
    from kizuna.messaging.channels import email

    monkeypatch.setattr(dkim.time, "time", lambda: 1_764_000_000)
    message = OutboundMessage(
        delivery_id=3,
        idempotency_key="k3",
        to="hanako@example.jp",
        rendered={"subject": "秋のセール", "text": "本文\n" * 30, "html": "<p>本文</p>\n" * 30},
        marketing=True,
        customer_name="山田 花子",
    )
    root = build_message(
        channel_settings={"from_address": "news@kizuna.example", "from_name": "絆商店"},
        message=message,
        unsubscribe_url="https://shop.example.jp/t/u/x/",
    )
    crlf = serialise(root)
    for raw in (crlf, crlf.replace(b"\r\n", b"\n"), crlf + b"tail\nwith a bare LF\r\n"):
        head = raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0].lower()
        expected = dkim.sign(
            raw,
            b"kz1",
            b"kizuna.example",
            dkim_key[0].encode(),
            include_headers=[h for h in email.DKIM_HEADERS if h in head],
        )
        signed = email.dkim_sign(
            raw, selector="kz1", domain="kizuna.example", private_key=dkim_key[0]
        )
        assert signed == expected + raw
    assert dkim.verify(
        email.dkim_sign(crlf, selector="kz1", domain="kizuna.example", private_key=dkim_key[0]),
        dnsfunc=_dns(dkim_key[1]),
    )
