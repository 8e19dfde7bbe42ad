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


def _random_texts(alphabet: str, count: int, seed: int) -> list[str]:
    import random

    rng = random.Random(seed)
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 240))) for _ in range(count)]


@pytest.mark.parametrize(
    "alphabet",
    [
        "山田花子様へ秋のセールのお知らせ",  # Japanese only
        "aZ 09,;:=?_\t山田花子様へｶﾅ😀é€\u00a0-",  # mixed widths, 1-4 byte characters
        "abc def 山",  # mostly ASCII: quoted-printable wins for many of them
        "😀𠮷é",  # 4-byte characters at the word boundaries
    ],
)
def test_subject_shortcut_is_the_compat32_fold(alphabet: str) -> None:
    from email.header import Header

    shortcut = 0
    for subject in [*_random_texts(alphabet, 400, seed=len(alphabet)), "山田様", "a", "😀" * 40]:
        expected = email_channel.SMTP_POLICY.fold_binary("Subject", Header(subject, "utf-8"))  # type: ignore[arg-type]
        fast = email_channel._b_encoded_subject(subject)
        if fast is not None:
            shortcut += 1
            assert fast == expected, subject
        assert email_channel._subject_header(subject, "utf-8") == expected
    assert shortcut > 100  # the shortcut is what these subjects take
    for odd in ["", "二行\n目", "line\u2028break", "abc"]:  # not taken: the stdlib folds them
        assert email_channel._b_encoded_subject(odd) is None


def test_base64_lines_are_encodebytes() -> None:
    import base64

    for text in ["", "a", "ab", "abc", *_random_texts("山田 abc\n<p>", 200, seed=3)]:
        data = text.encode()
        assert email_channel._base64_crlf(data) == base64.encodebytes(data).replace(b"\n", b"\r\n")
