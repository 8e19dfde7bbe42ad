"""Japanese details: width/kana normalisation before matching, honorifics, postal codes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.template import Context, Template
from django.utils import translation
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kizuna.customers import selectors, services
from kizuna.customers.identity_resolution import Subject, subjects_resolve
from kizuna.customers.japanese import (
    fill_address_from_postal_code,
    fold_kana,
    format_address,
    honorific_name,
    postal_lookup,
)
from kizuna.customers.models import Customer, Identity
from kizuna.customers.validation import normalize_email, normalize_phone

AT = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def _wide(ch: str) -> str:
    """The full-width form of a printable ASCII character."""
    return chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch


@st.composite
def width_variants(draw: st.DrawFn, text: str) -> str:
    """`text` with each character in ASCII or full width, letters in either case."""
    out = []
    for ch in text:
        if ch.isalpha():
            ch = draw(st.sampled_from([ch.lower(), ch.upper()]))
        out.append(draw(st.sampled_from([ch, _wide(ch)])))
    return "".join(out)


@st.composite
def phone_variants(draw: st.DrawFn) -> str:
    """090-1234-5678 as people type it: full- or half-width digits, any common separator."""
    sep = draw(st.sampled_from(["-", "－", "ー", "‐", " ", "　", ""]))
    groups = [
        "".join(draw(st.sampled_from([d, _wide(d)])) for d in g) for g in ("090", "1234", "5678")
    ]
    return sep.join(groups)


@given(width_variants("Hanako.Yamada+news@Example.co.jp"))
def test_email_width_variants_normalise_to_one_address(variant: str) -> None:
    assert normalize_email(variant) == "hanako.yamada+news@example.co.jp"


@given(phone_variants())
def test_phone_width_variants_normalise_to_one_number(variant: str) -> None:
    assert normalize_phone(variant) == "+819012345678"


@pytest.mark.django_db
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(email=width_variants("taro@example.jp"), phone=phone_variants())
def test_width_differences_never_create_a_duplicate_customer(email: str, phone: str) -> None:
    """Whichever width the email and phone are typed in, there is one customer: a second
    create is refused (keyed by field) and identity resolution finds the first one."""
    existing = Customer.objects.filter(email="taro@example.jp").first()
    if existing is None:
        existing = services.customer_create(data={"email": email, "phone": phone})
    else:
        with pytest.raises(ValidationError) as exc:
            services.customer_create(data={"email": email, "phone": phone})
        assert set(exc.value.message_dict) == {"email", "phone"}
    resolution = subjects_resolve(
        [Subject(traits={"email": email}), Subject(traits={"phone": phone})],
        source="test",
        at=AT,
    )
    assert resolution.customer_ids == [existing.pk, existing.pk]
    assert resolution.created == 0
    assert Customer.objects.count() == 1
    assert Identity.objects.filter(kind="email").count() == 1


@pytest.mark.django_db
def test_identify_traits_in_half_width_kana_and_full_width_letters_are_normalised() -> None:
    resolution = subjects_resolve(
        [
            Subject(
                user_id="u-1",
                traits={
                    "email": "ＳＡＫＵＲＡ＠ＥＸＡＭＰＬＥ．ＪＰ",
                    "lastName": "ｻｸﾗ",
                    "firstName": "Ｈａｎａ",
                    "lastNameKana": "ｻｸﾗ",
                    "firstNameKana": "はな",
                },
            )
        ],
        source="test",
        at=AT,
    )
    customer_id = resolution.customer_ids[0]
    assert customer_id is not None
    customer = Customer.objects.get(pk=customer_id)
    assert customer.email == "sakura@example.jp"
    assert (customer.family_name, customer.given_name) == ("サクラ", "Hana")
    assert (customer.family_name_kana, customer.given_name_kana) == ("サクラ", "ハナ")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "field", "needle"),
    [
        ({"email": "hanako＠＠example.jp"}, "email", "@"),
        ({"email": "はなこ@"}, "email", ""),
        ({"phone": "０９０－１２３"}, "phone", ""),
        ({"postal_code": "〒12-34567"}, "postal_code", "123-4567"),
        ({"postal_code": "ｱｲｳ-ｴｵｶｷ"}, "postal_code", "123-4567"),
    ],
)
def test_bad_japanese_input_is_refused_by_field_and_nothing_written(
    data: dict[str, str], field: str, needle: str
) -> None:
    with translation.override("en"), pytest.raises(ValidationError) as exc:
        services.customer_create(data={"family_name": "山田", **data})
    assert list(exc.value.message_dict) == [field]
    assert needle in exc.value.message_dict[field][0]
    assert Customer.objects.count() == 0


@pytest.mark.django_db
def test_kana_insensitive_search() -> None:
    yamada = services.customer_create(
        data={"family_name": "山田", "family_name_kana": "ﾔﾏﾀﾞ", "given_name_kana": "たろう"}
    )
    sakura = services.customer_create(data={"family_name": "さくら", "given_name": "ミキ"})
    services.customer_create(data={"family_name": "鈴木", "family_name_kana": "スズキ"})

    def found(term: str) -> list[int]:
        return list(selectors.customer_list(search=term).values_list("pk", flat=True))

    assert yamada.family_name_kana == "ヤマダ"
    assert found("やまだ") == [yamada.pk]
    assert found("ﾔﾏﾀﾞ") == [yamada.pk]
    assert found("ヤマダ タロウ") == [yamada.pk]
    assert found("サクラ") == [sakura.pk]
    assert found("みき") == [sakura.pk]


def test_fold_kana_is_one_key_for_every_script_and_width() -> None:
    assert fold_kana("ﾔﾏﾀﾞ ﾀﾛｳ") == fold_kana("やまだ　たろう") == fold_kana("ヤマダタロウ")
    assert fold_kana("ＡＢＣ") == "abc"
    assert fold_kana("ヤマダ") != fold_kana("ヤマザ")


def test_honorific() -> None:
    assert honorific_name("山田 太郎", language="ja") == "山田 太郎 様"
    assert honorific_name("Taro Yamada", language="en") == "Taro Yamada"
    assert honorific_name("  ", language="ja") == ""


@pytest.mark.django_db
def test_template_filters_honorific_and_address() -> None:
    customer = services.customer_create(
        data={
            "family_name": "山田",
            "given_name": "太郎",
            "postal_code": "１００００１３",
            "address_line": "１－１ 霞が関ビル 3F",
        }
    )
    template = Template("{% load customers_ja %}{{ c|honorific }}|{{ c|address }}")
    with translation.override("ja"):
        assert template.render(Context({"c": customer})) == (
            "山田 太郎 様|〒100-0013 東京都 千代田区霞が関 1-1 霞が関ビル 3F"
        )
    with translation.override("en"):
        assert template.render(Context({"c": customer})) == (
            "山田 太郎|1-1 霞が関ビル 3F, 千代田区霞が関, Tokyo 100-0013, Japan"
        )


def test_postal_lookup_reads_japan_posts_data() -> None:
    area = postal_lookup("〒１００－０００１")
    assert area is not None
    assert (area.prefecture, area.prefecture_name, area.city, area.town) == (
        "JP-13",
        "東京都",
        "千代田区",
        "千代田",
    )
    sapporo = postal_lookup("0600000")
    assert sapporo is not None and sapporo.prefecture == "JP-01" and sapporo.town == ""
    assert postal_lookup("999-9999") is None
    with pytest.raises(ValueError, match="123-4567"):
        postal_lookup("12-345")


@pytest.mark.django_db
def test_postal_code_fills_prefecture_and_city_but_never_overwrites() -> None:
    customer = services.customer_create(data={"postal_code": "530-0001"})
    assert (customer.prefecture, customer.city) == ("JP-27", "大阪市北区梅田")
    kept = services.customer_create(
        data={"postal_code": "530-0001", "prefecture": "JP-13", "city": "港区"}
    )
    assert (kept.prefecture, kept.city) == ("JP-13", "港区")
    unknown = services.customer_create(data={"postal_code": "999-9999"})
    assert (unknown.prefecture, unknown.city) == ("", "")
    moved = services.customer_update(customer=unknown, data={"postal_code": "100-0001"})
    assert moved.prefecture == "JP-13"
    assert fill_address_from_postal_code({}) == {}


def test_format_address_parts_are_optional() -> None:
    assert format_address(prefecture="JP-47", city="那覇市", language="ja") == "沖縄県 那覇市"
    assert format_address(language="ja") == ""
    assert format_address(postal_code="900-0001", language="en") == "900-0001, Japan"


@pytest.mark.django_db
def test_customer_360_shows_the_japanese_address(make_staff: Any) -> None:
    from django.test import Client

    customer = services.customer_create(
        data={"family_name": "山田", "postal_code": "100-0001", "address_line": "1-1"}
    )
    client = Client()
    client.force_login(make_staff("marketer"))  # analysts see the address masked
    page = client.get(f"/customers/{customer.pk}/", HTTP_ACCEPT_LANGUAGE="ja").content.decode()
    assert "〒100-0001 東京都 千代田区千代田 1-1" in page
    assert "山田 様" in page
    assert Client().get(f"/customers/{customer.pk}/").status_code == 302


@pytest.mark.django_db
def test_postal_code_api(make_staff: Any) -> None:
    from django.test import Client

    from kizuna.iam.services import api_key_create

    key = api_key_create(name="a", role="analyst", created_by=make_staff("analyst"))
    client = Client()
    headers = {"Authorization": f"Bearer {key.secret}", "Accept-Language": "en"}
    found = client.get("/api/v1/customers/postal-codes/〒１００－０００１", headers=headers)
    assert found.status_code == 200
    assert found.json()["prefecture"] == "JP-13" and found.json()["city"] == "千代田区"
    assert client.get("/api/v1/customers/postal-codes/999-9999", headers=headers).status_code == 404
    bad = client.get("/api/v1/customers/postal-codes/12-34", headers=headers)
    assert bad.status_code == 422 and "123-4567" in bad.content.decode()
    assert Client().get("/api/v1/customers/postal-codes/100-0001").status_code == 401


@pytest.mark.parametrize(
    "typed",
    ["〒１５０ー０００１", "150ｰ0001", "１５０‐０００１", "150−0001", "150―0001", "1500001"],
)
def test_postal_codes_typed_with_an_ime_dash(typed: str) -> None:
    from kizuna.customers.validation import normalize_postal_code

    assert normalize_postal_code(typed) == "150-0001"


@pytest.mark.parametrize("typed", ["150ー00011", "15ー00001", "150ーー0001", "abc-defg"])
def test_malformed_postal_codes_are_still_refused(typed: str) -> None:
    from kizuna.customers.validation import normalize_postal_code

    with pytest.raises(ValueError, match="123-4567"):
        normalize_postal_code(typed)
