"""The fast paths for plain emails and Japanese phone numbers give exactly what the full
libraries give: the same normalised value for every input they accept, and the library's own
answer (value or error message) for everything else."""

from __future__ import annotations

import random
import string

import phonenumbers
import pytest
from django.utils import translation
from email_validator import EmailNotValidError, validate_email
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kizuna.customers import validation
from kizuna.customers.validation import (
    _plain_email,
    _plain_jp_phone,
    nfkc,
    normalize_email,
    normalize_phone,
)

PROPERTY = settings(
    max_examples=1000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


# The reference: what normalize_email / normalize_phone did before the fast paths.
def reference_email(value: str) -> str:
    try:
        result = validate_email(nfkc(value), check_deliverability=False)
    except EmailNotValidError as exc:
        return f"error: Enter a valid email address ({exc})."
    return result.normalized.lower()


def reference_phone(value: str) -> str:
    try:
        number = phonenumbers.parse(nfkc(value), "JP")
    except phonenumbers.NumberParseException:
        return "error: Enter a valid phone number."
    if not phonenumbers.is_valid_number(number):
        return "error: Enter a valid phone number."
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def outcome(function, value: str) -> str:
    try:
        return function(value)
    except ValueError as exc:
        return f"error: {exc}"


def same_email(value: str) -> bool:
    expected = reference_email(value)
    assert outcome(normalize_email, value) == expected, value
    plain = _plain_email(nfkc(value))
    # The fast path never accepts what the library rejects, nor normalises differently.
    assert plain is None or plain == expected, value
    return plain is not None


def same_phone(value: str) -> bool:
    expected = reference_phone(value)
    assert outcome(normalize_phone, value) == expected, value
    plain = _plain_jp_phone(nfkc(value))
    assert plain is None or plain == expected, value
    return plain is not None


# --- emails -------------------------------------------------------------------------------

TRICKY_EMAILS = [
    "hanako@example.com",
    "Hanako.Yamada@Example.CO.JP",
    "  taro+tag@mail.example.jp  ",
    "ＨＡＮＡＫＯ＠ＥＸＡＭＰＬＥ．ＪＰ",  # full-width: NFKC makes it plain ASCII
    "a@b.co",
    "x@localhost",
    "x@mail.localhost",
    "x@example.test",
    "x@foo.local",
    "x@foo.invalid",
    "x@foo.onion",
    "x@1.in-addr.arpa",
    "x@example",
    "x@example.123",
    "x@example.c0m",
    "x@example.1a",
    "x@-example.com",
    "x@example-.com",
    "x@exa--mple.com",
    "x@ab--cd.com",
    "x@xn--bcher-kva.example",
    "x@XN--BCHER-KVA.example",
    "x@xn--.example",
    "x@example..com",
    "x@.example.com",
    "x@example.com.",
    ".x@example.com",
    "x.@example.com",
    "x..y@example.com",
    "x@@example.com",
    "@example.com",
    "x@",
    "x",
    "",
    "x y@example.com",
    '"x y"@example.com',
    '"xy"@example.com',
    "Hanako <hanako@example.com>",
    "<hanako@example.com>",
    "x@[127.0.0.1]",
    "x@example_domain.com",
    "花子@example.jp",
    "hanako@例え.jp",
    "hanako@ＥＸＡＭＰＬＥ.jp",
    "hanako@example。jp",
    "hanako\u200b@example.jp",
    "hanako@example.jp\u3000",
    "info@example.com",
    "INFO@Example.com",
    "Postmaster@EXAMPLE.com",
    "a!#$%&'*+/=?^_`{|}~-b@example.com",
    "x@" + "a" * 63 + ".com",
    "x@" + "a" * 64 + ".com",
    "x@example." + "c" * 63,
    "x@example." + "c" * 64,
    "x@" + ".".join(["a" * 49] * 5) + ".com",  # domain of 253 characters
    "x@" + ".".join(["a" * 49] * 5) + ".comm",  # 254
    "a" * 64 + "@example.com",
    "a" * 65 + "@example.com",
    "a" * 241 + "@example.com",  # 253 in all
    "a" * 242 + "@example.com",  # 254
    "a" * 243 + "@example.com",  # 255
    "x@example.com\n",
    "x@exam\nple.com",
]


def test_plain_emails_take_the_fast_path_with_the_same_result() -> None:
    assert _plain_email("c12@example.com") == "c12@example.com"
    assert _plain_email("Hanako.Yamada@Example.CO.JP") == "hanako.yamada@example.co.jp"
    accepted = [value for value in TRICKY_EMAILS if same_email(value)]
    assert "hanako@example.com" in accepted and "x@example.test" not in accepted
    assert "x@xn--bcher-kva.example" not in accepted  # Punycode: left to the library


def test_special_use_domains_follow_the_library_list(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _plain_email("x@example.test") is None
    monkeypatch.setattr(validation.email_validator, "TEST_ENVIRONMENT", True)
    assert _plain_email("x@example.com") is None  # non-default settings: library only


_ATEXT_CHARS = string.ascii_letters + string.digits + "!#$%&'*+/=?^_`{|}~-."
_LOCAL_CHARS = _ATEXT_CHARS + '"@<> \\(),:;[]é花'
_DOMAIN_CHARS = string.ascii_letters + string.digits + "-._" + "éー例。．"
_TLDS = ["com", "jp", "co.jp", "test", "local", "localhost", "arpa", "x1", "1x", "123", "xn--p1ai"]


@st.composite
def emails(draw: st.DrawFn) -> str:
    local = draw(st.text(alphabet=_LOCAL_CHARS, min_size=0, max_size=12))
    labels = draw(
        st.lists(st.text(alphabet=_DOMAIN_CHARS, min_size=0, max_size=8), min_size=0, max_size=3)
    )
    tld = draw(st.sampled_from(_TLDS) | st.text(alphabet=_DOMAIN_CHARS, min_size=0, max_size=4))
    at = draw(st.sampled_from(["@", "@", "@", "", "@@", "＠"]))
    return local + at + ".".join([*labels, tld])


@PROPERTY
@given(emails())
def test_generated_emails_match_the_library(value: str) -> None:
    same_email(value)


@PROPERTY
@given(
    st.from_regex(
        r"[A-Za-z0-9._%+-]{1,20}@(?:[A-Za-z0-9-]{1,12}\.){1,3}[A-Za-z0-9-]{1,6}", fullmatch=True
    )
)
def test_generated_plain_looking_emails_match_the_library(value: str) -> None:
    same_email(value)


def test_many_plain_looking_emails_match_the_library() -> None:
    """Addresses built from the pieces that decide the outcome: atext and dots in the local
    part, letters, digits and hyphens in labels, TLDs of every kind, lengths at the limits."""
    rng = random.Random(20260402)
    pieces = string.ascii_letters + string.digits + "-" * 6 + "." * 4
    accepted = 0
    for _ in range(20_000):
        local = "".join(rng.choice(_ATEXT_CHARS) for _ in range(rng.choice([1, 5, 20, 64])))
        labels = [
            "".join(rng.choice(pieces) for _ in range(rng.choice([1, 2, 4, 10, 62, 63, 64])))
            for _ in range(rng.randint(1, 4))
        ]
        value = local + "@" + ".".join([*labels, rng.choice([*_TLDS, "C", "Jp", "a-b", "b-"])])
        accepted += same_email(value)
    assert accepted > 1_000


# --- phone numbers ------------------------------------------------------------------------

TRICKY_PHONES = [
    "090-1234-5678",
    "09012345678",
    "080 1234 5678",
    "070-1234-5678",
    "060-1234-5678",
    "03-1234-5678",
    "0312345678",
    "03(1234)5678",
    "(03)1234-5678",
    "(03) 1234-5678",
    "06-6123-4567",
    "011-123-4567",
    "0120-123-456",
    "0800-123-4567",
    "0570-123-456",
    "0990-123-456",
    "050-1234-5678",
    "020-1234-5678",
    "+81 90-1234-5678",
    "+819012345678",
    "+81-3-1234-5678",
    "+81 (0)90-1234-5678",
    "+81 090-1234-5678",
    "+81(90)1234-5678",
    "+1 415 555 2671",
    "+44 20 7946 0958",
    "010-1-415-555-2671",  # the international prefix from Japan
    "010 44 20 7946 0958",
    "0090-1234-5678",
    "00-1234-5678",
    "000-1234-5678",
    "0003-123456",
    "0037-68-123456",
    "81-90-1234-5678",
    "819012345678",
    "9012345678",
    "090-1234-567",
    "090-1234-56789",
    "090-0234-5678",
    "090--1234-5678",
    "090 - 1234 - 5678",
    "090-1234-5678 ext. 12",
    "090-1234-5678#12",
    "090-1234-5678 x12",
    "03)1234(5678",
    "((03))1234-5678",
    "０９０－１２３４－５６７８",
    "０３（１２３４）５６７８",
    "090ー1234ー5678",  # katakana long vowel marks, not hyphens
    "090.1234.5678",
    "090/1234/5678",
    "tel:+81-90-1234-5678",
    "TEL 090-1234-5678",
    "090-CALL-NOW",
    "+",
    "0",
    "",
    "-",
    "0" * 40,
    "09012345678" + " " * 240 + "1",
]


def test_plain_japanese_numbers_take_the_fast_path_with_the_same_result() -> None:
    assert _plain_jp_phone("090-1234-5678") == "+819012345678"
    assert _plain_jp_phone("03(1234)5678") == "+81312345678"
    assert _plain_jp_phone("+81 90-1234-5678") == "+819012345678"
    accepted = [value for value in TRICKY_PHONES if same_phone(value)]
    assert {"09012345678", "03-1234-5678", "0120-123-456"} <= set(accepted)
    assert "010-1-415-555-2671" not in accepted and "+1 415 555 2671" not in accepted


def _grouped(digits: str, rng: random.Random) -> str:
    """`digits` in one of the ways people write Japanese numbers."""
    style = rng.randrange(6)
    if style == 0:
        return digits
    cut1 = rng.randint(2, 5)
    cut2 = rng.randint(cut1 + 1, max(cut1 + 1, len(digits) - 3))
    a, b, c = digits[:cut1], digits[cut1:cut2], digits[cut2:]
    if style == 1:
        return f"{a}-{b}-{c}"
    if style == 2:
        return f"{a} {b} {c}"
    if style == 3:
        return f"{a}({b}){c}"
    if style == 4:
        return f"({a}) {b}-{c}"
    return f"+81 {a[1:]}-{b}-{c}" if a.startswith("0") else f"+81-{a}-{b}-{c}"


def test_every_japanese_prefix_and_length_matches_the_library() -> None:
    """Every 0 + four-digit prefix (all area codes, mobile, IP, toll-free and premium
    ranges), national numbers of 8 to 11 digits, written in the usual styles."""
    rng = random.Random(20260401)
    valid = taken = 0
    for prefix in range(10_000):
        for length in (8, 9, 10, 11):
            rest = "".join(rng.choice(string.digits) for _ in range(length - 4))
            value = _grouped(f"0{prefix:04d}{rest}", rng)
            taken += same_phone(value)
            valid += not reference_phone(value).startswith("error")
    assert taken > 0.9 * valid  # nearly every valid one is plain and takes the fast path


_PHONE_CHARS = "0123456789" * 3 + "+-() " + "０９（）－＋" + "x#.,;/ー"


@PROPERTY
@given(st.text(alphabet=_PHONE_CHARS, min_size=0, max_size=22))
def test_generated_phone_strings_match_the_library(value: str) -> None:
    same_phone(value)


@PROPERTY
@given(
    st.from_regex(
        r"(\+81[- ]?)?\(?0?[1-9][0-9]{0,3}\)?[- ]?\(?[0-9]{1,5}\)?[- ]?[0-9]{2,5}", fullmatch=True
    )
)
def test_generated_plain_looking_numbers_match_the_library(value: str) -> None:
    same_phone(value)


def test_numbers_of_other_regions_still_go_through_the_library() -> None:
    assert normalize_phone("(415) 555-2671", region="US") == "+14155552671"
    with pytest.raises(ValueError, match="valid phone number"):
        normalize_phone("090-1234-567")
    with pytest.raises(ValueError, match="valid email address"):
        normalize_email("x@example.test")
