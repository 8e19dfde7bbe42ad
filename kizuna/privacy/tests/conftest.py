"""A customer with personal data in every kind the apps hold (made through the services
where they exist), and a second customer who must be left untouched by an erasure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from kizuna.analytics.models import CustomerScore, RunStatus, RunTrigger, ScoringRun
from kizuna.catalog.services import product_create
from kizuna.commerce.services import order_place, refund_create
from kizuna.core.timeutil import local_date, now
from kizuna.customers.models import Customer
from kizuna.customers.services import (
    consent_record,
    customer_create,
    customer_update,
    event_record,
    identity_add,
)
from kizuna.loyalty.models import Programme
from kizuna.loyalty.services import points_adjust
from kizuna.messaging.models import Channel, Delivery, DeliveryStatus, LineContact, Template
from kizuna.segments.models import Segment, SegmentMembership

NAME = ("山田", "花子")
EMAIL = "hanako.yamada@example.jp"
PHONE = "09012345678"
LINE_ID = "U" + "ab12" * 8
EXTERNAL = "crm-77881"


@dataclass
class World:
    subject: Customer
    other: Customer
    merged: Customer

    @property
    def needles(self) -> list[str]:
        # The phone is stored normalised (+81…): its national digits are the needle.
        return [NAME[0], NAME[1], "ヤマダ", "ハナコ", EMAIL, PHONE[1:], LINE_ID, EXTERNAL, "Hanako"]


@pytest.fixture(autouse=True)
def _english() -> Any:
    from django.utils import translation

    with translation.override("en"):
        yield


@pytest.fixture
def world(db: None, django_user_model: Any) -> World:
    t = now()
    staff = django_user_model.objects.create_user("clerk", is_staff=True)
    subject = customer_create(
        data={
            "family_name": NAME[0],
            "given_name": NAME[1],
            "family_name_kana": "ヤマダ",
            "given_name_kana": "ハナコ",
            "email": EMAIL,
            "phone": PHONE,
            "prefecture": "JP-13",
            "city": "渋谷区",
            "address_line": "神宮前1-2-3",
            "birthday": "1990-05-10",
        },
        actor=staff,
    )
    customer_update(customer=subject, data={"city": "港区"}, actor=staff)
    identity_add(customer=subject, kind="line", value=LINE_ID, actor=staff)
    identity_add(customer=subject, kind="external", value=EXTERNAL, actor=staff)
    merged = customer_create(data={"given_name": "Hanako", "email": "old-" + EMAIL})
    Customer.objects.filter(pk=merged.pk).update(merged_into=subject)
    other = customer_create(data={"family_name": "佐藤", "email": "sato@example.jp"})

    consent_record(
        customer=subject,
        purpose="marketing",
        channel="email",
        status="granted",
        source="portal",
        evidence={"form": "signup", "email": EMAIL},
    )
    event_record(
        type="Form Submitted",
        customer=subject,
        properties={"email": EMAIL, "name": f"{NAME[0]} {NAME[1]}"},
        context={"ip": "192.0.2.1"},
    )
    event_record(type="Form Submitted", customer=other, properties={"email": "sato@example.jp"})

    product_create(data={"sku": "TEA", "name": "お茶", "price_minor": 1200})
    order = order_place(
        customer=subject, number="S1", lines=[{"sku": "TEA", "quantity": 2}], placed_at=t
    )
    order_place(customer=other, number="O1", lines=[{"sku": "TEA"}], placed_at=t)
    refund_create(
        order=order, amount_minor=1200, idempotency_key="r-s1", reason=f"{NAME[0]}様 破損"
    )

    Programme.objects.get_or_create(pk=1, defaults={"name": "P"})
    points_adjust(
        customer=subject,
        points=300,
        idempotency_key="adj-1",
        reason=f"{NAME[0]} {NAME[1]}様へのお詫び",
        actor=staff,
    )
    points_adjust(
        customer=other, points=50, idempotency_key="adj-2", reason="goodwill", actor=staff
    )

    channel = Channel.objects.create(kind="email", name="Mail")
    line = Channel.objects.create(kind="line", name="LINE")
    template = Template.objects.create(
        slug="hello", name="Hello", channel_kind="email", purpose="marketing", body_format="text"
    )
    for customer, address, key in ((subject, EMAIL, "d1"), (other, "sato@example.jp", "d2")):
        delivery = Delivery.objects.create(
            idempotency_key=key,
            source="campaign:1",
            customer=customer,
            channel=channel,
            template=template,
            purpose="marketing",
            to_address=address,
            status="opened",
            rendered={"subject": "こんにちは", "text": f"{customer.family_name}様 {address}"},
            sent_at=t,
        )
        DeliveryStatus.objects.create(
            delivery=delivery, status="sent", detail={"to": address}, at=t
        )
        DeliveryStatus.objects.create(delivery=delivery, status="opened", at=t)
    LineContact.objects.create(channel=line, line_user_id=LINE_ID, customer=subject)

    segment = Segment.objects.create(name="All", slug="all", kind="static")
    SegmentMembership.objects.create(segment=segment, customer=subject, entered_at=t)
    SegmentMembership.objects.create(segment=segment, customer=other, entered_at=t)

    run = ScoringRun.objects.create(status=RunStatus.SUCCEEDED, trigger=RunTrigger.CLI)
    today = local_date(t)
    for customer in (subject, other):
        CustomerScore.objects.create(
            customer=customer,
            run=run,
            model_version="test",
            scored_at=t,
            orders=1,
            frequency=0,
            recency_days=1,
            age_days=1,
            first_purchase=today - timedelta(days=1),
            last_purchase=today,
            monetary_minor=2400,
            r_score=3,
            f_score=3,
            m_score=3,
            expected_purchases_30d=0.1,
            expected_purchases=1.0,
            expected_aov_minor=1200,
            expected_gap_days=30.0,
            days_overdue=0,
            segment="new",
            clv_minor=1000,
            p_alive=0.5,
            at_risk=False,
        )
    subject.refresh_from_db()
    return World(subject=subject, other=other, merged=merged)
