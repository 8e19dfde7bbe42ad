"""Japanese email as messaging builds it (kizuna.messaging.channels.email, unchanged here),
parsed back with the standard library: subject, From display name, To name and body in
UTF-8 and ISO-2022-JP."""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest

from kizuna.messaging.channels import OutboundMessage
from kizuna.messaging.channels.email import build_message, serialise

SUBJECT = "【絆商店】山田 太郎様 冬のポイント２倍キャンペーンのお知らせ"
BODY = "山田 太郎 様\n\nいつもご利用ありがとうございます。カタカナも全角英数字ＡＢＣも届きます。\n"
FOOTER = "絆商店 株式会社\n〒150-0001 東京都渋谷区神宮前1-2-3\ninfo@kizuna.example\n"


@pytest.mark.parametrize("charset", ["utf-8", "iso-2022-jp"])
def test_subject_from_name_and_body_survive_a_round_trip(charset: str) -> None:
    message = OutboundMessage(
        delivery_id=1,
        idempotency_key="jp-1",
        to="taro@example.jp",
        rendered={"subject": SUBJECT, "text": BODY + "--\n" + FOOTER, "html": ""},
        marketing=True,
        customer_name="山田 太郎",
    )
    raw = serialise(
        build_message(
            channel_settings={
                "from_address": "news@kizuna.example",
                "from_name": "絆商店 渋谷本店",
                "charset": charset,
            },
            message=message,
        )
    )
    if charset == "iso-2022-jp":
        assert max(raw) < 0x80  # 7-bit clean for old Japanese mail systems
        assert b"=?iso-2022-jp?b?" in raw.split(b"\r\n\r\n", 1)[0]
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Subject"] == SUBJECT
    assert parsed["From"].addresses[0].display_name == "絆商店 渋谷本店"
    assert parsed["From"].addresses[0].addr_spec == "news@kizuna.example"
    assert parsed["To"].addresses[0].display_name == "山田 太郎"
    body = parsed.get_body(("plain",))
    assert body is not None and body.get_content_charset() == charset
    text = body.get_content().replace("\r\n", "\n")
    assert text == BODY + "--\n" + FOOTER
    assert "〒150-0001 東京都渋谷区神宮前1-2-3" in text


@pytest.mark.parametrize("charset", ["utf-8", "iso-2022-jp"])
def test_support_reads_japanese_mail_in_both_charsets(charset: str) -> None:
    """Inbound mail for support (kizuna.support.intake.parse_email): the same Japanese
    subject, sender name and body come out of a UTF-8 and a 7-bit ISO-2022-JP message."""
    from kizuna.support.intake import parse_email

    message = OutboundMessage(
        delivery_id=2,
        idempotency_key="jp-in",
        to="support@kizuna.example",
        rendered={"subject": "Re: " + SUBJECT, "text": BODY, "html": ""},
        marketing=False,
        customer_name="絆商店 サポート",
    )
    raw = serialise(
        build_message(
            channel_settings={
                "from_address": "hanako@example.jp",
                "from_name": "佐藤 花子",
                "charset": charset,
            },
            message=message,
        )
    )
    parsed = parse_email(raw)
    assert parsed.subject == "Re: " + SUBJECT
    assert (parsed.from_name, parsed.from_address) == ("佐藤 花子", "hanako@example.jp")
    assert parsed.body.replace("\r\n", "\n") == BODY.strip()
