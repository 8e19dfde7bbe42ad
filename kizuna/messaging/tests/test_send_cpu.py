"""The bulk send path's shortcuts produce what the slow paths produce: link tokens equal to
`django.core.signing`'s (and read back by it), MIME bytes equal to `serialise(build_message())`."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.core import signing
from django.test import override_settings

from kizuna.messaging import links
from kizuna.messaging.channels import OutboundMessage
from kizuna.messaging.channels import email as email_channel

DATA: list[Any] = [
    0,
    7,
    123456789,
    [7, "https://shop.example.jp/sale?c=7&utm=秋"],
    [99, "https://shop.example.jp/" + "long/" * 40],
    {"c": 5},
]


@pytest.mark.parametrize("salt", [links.OPEN, links.CLICK, links.UNSUB])
@pytest.mark.parametrize("data", DATA)
def test_link_tokens_are_djangos_signer_tokens(salt: str, data: Any) -> None:
    token = links.sign(salt, data)
    assert token == signing.Signer(salt=salt).sign_object(data, compress=True)
    assert links.unsign(salt, token) == data
    assert links.unsign(links.OPEN if salt != links.OPEN else links.CLICK, token) is None


def test_tokens_follow_the_secret_key() -> None:
    before = links.sign(links.UNSUB, 5)
    with override_settings(SECRET_KEY="another-secret-key-" + "x" * 40):
        after = links.sign(links.UNSUB, 5)
        assert after == signing.Signer(salt=links.UNSUB).sign_object(5, compress=True)
    assert before != after


def test_preferences_token_is_signing_dumps(monkeypatch) -> None:
    monkeypatch.setattr(time, "time", lambda: 1_780_000_000.25)  # both read time.time()
    token = links.preferences_token(42)
    assert token == signing.dumps({"c": 42}, salt=links.PREFS, compress=True)
    monkeypatch.undo()
    assert links.customer_from_preferences_token(links.preferences_token(42)) == 42


def test_verp_address_is_the_signer_one() -> None:
    address = links.verp_address(31, "bounce.kizuna.example")
    token = signing.Signer(salt=links.BOUNCE).sign("31").replace(":", "=")
    assert address == f"bounces+{token}@bounce.kizuna.example"
    assert links.delivery_from_verp(address) == 31


TEXT = "山田花子様、いつもありがとうございます。\n<お知らせ> & 'セール' \"秋\"\n" * 30 + "最後"


@pytest.mark.parametrize(
    ("channel_settings", "message", "unsub"),
    [
        (
            {"from_address": "news@kizuna.example", "from_name": "絆商店 渋谷本店"},
            OutboundMessage(
                delivery_id=7,
                idempotency_key="d_" + "a" * 40,
                to="hanako@example.jp",
                rendered={
                    "subject": "山田 花子様へ 秋のセールのお知らせ。" * 4,
                    "html": "<p>" + TEXT.replace("\n", "<br>\r\n") + "</p>",
                    "text": TEXT,
                },
                marketing=True,
                customer_name="山田 花子" * 6,
            ),
            "https://shop.example.jp/t/u/" + "A" * 120 + "/",
        ),
        (
            {
                "from_address": "news@kizuna.example",
                "from_name": "Kizuna",
                "reply_to": "support-" + "x" * 70 + "@kizuna.example",
            },
            OutboundMessage(
                delivery_id=123456,
                idempotency_key="key",
                to="a@example.com",
                rendered={"subject": "Your receipt A-100", "text": "Thanks.\n", "html": ""},
                marketing=False,
            ),
            "",
        ),
        (
            {"from_address": "", "from_name": ""},
            OutboundMessage(
                delivery_id=1,
                idempotency_key="k",
                to="b@example.jp",
                rendered={"subject": "", "text": "", "html": "<p>x</p>"},
                marketing=True,
                customer_name='O\'Brien, "Jr"',
            ),
            "https://shop.example.jp/u/x/",
        ),
        (
            {"from_address": "n@kizuna.example", "from_name": "絆", "charset": "iso-2022-jp"},
            OutboundMessage(
                delivery_id=2,
                idempotency_key="k2",
                to="c@example.jp",
                rendered={"subject": "秋のセール", "text": "本文\n", "html": "<p>本文</p>"},
                marketing=True,
                customer_name="山田",
            ),
            "https://shop.example.jp/u/y/",
        ),
    ],
)
def test_message_bytes_are_serialise_build_message(
    monkeypatch, channel_settings: dict[str, Any], message: OutboundMessage, unsub: str
) -> None:
    monkeypatch.setattr(email_channel.secrets, "token_hex", lambda n: "5a" * n)
    monkeypatch.setattr(email_channel.time, "time", lambda: 1_795_000_000.5)
    built = email_channel.serialise(
        email_channel.build_message(
            channel_settings=channel_settings, message=message, unsubscribe_url=unsub
        )
    )
    fast = email_channel.message_bytes(
        channel_settings=channel_settings, message=message, unsubscribe_url=unsub
    )
    assert fast == built
    assert (b"\r\nList-Unsubscribe:" in fast) == bool(unsub)


@pytest.mark.parametrize(
    "address",
    [
        "c1@example.jp",
        "bounces+31=AbC-_x@bounce.kizuna.example",
        "first.last+tag@mail.example.co.jp",
        "o'brien@example.com",
        "a..b@example.com",
        ".a@example.com",
        "a.@example.com",
        "<c1@example.jp>",
        "Yamada <c1@example.jp>",
        "山田@example.jp",
        "no-at-sign",
        "",
        "a@b@c",
        "a@-x.example",
        "a b@example.com",
    ],
)
def test_quoteaddr_shortcut_is_smtplibs(address: str) -> None:
    import smtplib

    assert smtplib.quoteaddr is email_channel._fast_quoteaddr
    assert email_channel._fast_quoteaddr(address) == email_channel._quoteaddr(address)
