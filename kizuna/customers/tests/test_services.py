from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from kizuna.core import events as bus
from kizuna.customers import selectors, services
from kizuna.customers.models import ConsentEntry, Customer, Event, Identity

# After-commit subscribers run as in production (commit_like_autocommit, conftest.py): no
# other thread or process reads here, so no real commit and flush (transaction=True) needed.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("commit_like_autocommit")]


def test_customer_create_normalises_and_links_identities() -> None:
    customer = services.customer_create(
        data={
            "family_name": "山田",
            "given_name": "花子",
            "family_name_kana": "ﾔﾏﾀﾞ",
            "email": "Hanako@Example.JP",
            "phone": "090-1234-5678",
            "postal_code": "１５０-０００１",
            "birthday": "1990-04-01",
            "prefecture": "JP-13",
        },
    )
    assert customer.email == "hanako@example.jp"
    assert customer.phone == "+819012345678"
    assert customer.postal_code == "150-0001"
    assert customer.family_name_kana == "ヤマダ"
    kinds = dict(Identity.objects.filter(customer=customer).values_list("kind", "value"))
    assert kinds == {"email": "hanako@example.jp", "phone": "+819012345678"}
    assert list(Event.objects.filter(customer=customer).values_list("type", flat=True)) == [
        "customer.created"
    ]
    updated = services.customer_update(customer=customer, data={"given_name_kana": "はなこ"})
    assert updated.given_name_kana == "ハナコ"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"phone": "12"}, "phone"),
        ({"birthday": "2999-01-01"}, "birthday"),
        ({"birthday": "31/02/1990"}, "birthday"),
        ({"traits": {"favourite_drink": "latte"}}, "traits.favourite_drink"),
        ({"shoe_size": 27}, "shoe_size"),
        ({"prefecture": "Tokyo"}, "prefecture"),
        ({"family_name": "x" * 101}, "family_name"),
    ],
)
def test_customer_create_rejects_bad_input_and_writes_nothing(data: dict, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        services.customer_create(data=data)
    assert field in info.value.message_dict
    assert Customer.objects.count() == 0
    assert Event.objects.count() == 0


def test_duplicate_email_is_rejected_naming_the_field() -> None:
    services.customer_create(data={"email": "a@example.com"})
    with pytest.raises(ValidationError) as info:
        services.customer_create(data={"email": "A@example.com", "family_name": "二郎"})
    assert list(info.value.message_dict) == ["email"]
    assert Customer.objects.count() == 1


def test_declared_traits_are_type_checked_and_merged() -> None:
    services.trait_definition_create(
        key="favourite_drink", label="好きな飲み物", type="choice", choices=["latte", "drip"]
    )
    services.trait_definition_create(key="cups_per_day", label="Cups", type="integer")
    customer = services.customer_create(data={"traits": {"favourite_drink": "latte"}})
    with pytest.raises(ValidationError) as info:
        services.customer_update(customer=customer, data={"traits": {"cups_per_day": "two"}})
    assert "traits.cups_per_day" in info.value.message_dict
    customer = services.customer_update(customer=customer, data={"traits": {"cups_per_day": 2}})
    assert customer.traits == {"favourite_drink": "latte", "cups_per_day": 2}
    customer = services.customer_update(
        customer=customer, data={"traits": {"favourite_drink": None}}
    )
    assert Customer.objects.get(pk=customer.pk).traits == {"cups_per_day": 2}


def test_consent_ledger_is_append_only_and_latest_entry_wins() -> None:
    customer = services.customer_create(data={"email": "c@example.com"})
    services.consent_record(
        customer=customer,
        purpose="marketing",
        channel="email",
        status="granted",
        source="signup_form",
        notice_version="2026-04",
    )
    assert selectors.has_consent(customer=customer, purpose="marketing", channel="email")
    services.consent_record(
        customer=customer,
        purpose="marketing",
        channel="email",
        status="withdrawn",
        source="unsubscribe_link",
    )
    assert not selectors.has_consent(customer=customer, purpose="marketing", channel="email")
    assert ConsentEntry.objects.filter(customer=customer).count() == 2
    state = selectors.consent_state(customer=customer)
    assert [(e.purpose, e.channel, e.status) for e in state] == [
        ("marketing", "email", "withdrawn")
    ]


def test_event_record_is_idempotent_on_message_id_and_publishes_after_commit() -> None:
    seen: list[str] = []
    bus.subscribe("product.viewed", lambda e: seen.append(e.properties["sku"]))
    customer = services.customer_create(data={})
    first, created = services.event_record(
        type="product.viewed", customer=customer, message_id="m-1", properties={"sku": "BEAN-1"}
    )
    again, created_again = services.event_record(
        type="product.viewed", customer=customer, message_id="m-1", properties={"sku": "BEAN-1"}
    )
    assert (created, created_again) == (True, False)
    assert first.pk == again.pk
    assert seen == ["BEAN-1"]


def test_kana_search_ignores_hiragana_katakana_difference() -> None:
    services.customer_create(data={"family_name": "佐藤", "family_name_kana": "サトウ"})
    services.customer_create(data={"family_name": "鈴木", "family_name_kana": "スズキ"})
    names = [c.family_name for c in selectors.customer_list(search="さとう")]
    assert names == ["佐藤"]
