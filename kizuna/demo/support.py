"""Support in the demo business: the FAQ knowledge base of the labelled evaluation set (30
articles in Japanese and English), a few canned answers, and a handful of inquiries from the
demo customers (different origins, priorities and states, two past their SLA)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from kizuna.core.timeutil import now
from kizuna.customers.models import Customer
from kizuna.support import services
from kizuna.support.choices import InquiryStatus, Origin
from kizuna.support.models import Inquiry

FIXTURE = Path(__file__).resolve().parent.parent / "support" / "fixtures" / "faq_eval.json"

CANNED = [
    (
        "お問い合わせのお礼 / Thanks for asking",
        "お問い合わせいただきありがとうございます。確認のうえ、改めてご連絡いたします。",
        "Thank you for your message. We are looking into it and will get back to you.",
    ),
    (
        "配送遅延のお詫び / Delivery delay",
        "お届けが遅れており申し訳ございません。配送業者に確認し、本日中にご連絡いたします。",
        "We are sorry your order is late. We are checking with the carrier and will reply today.",
    ),
]

# (subject, message, origin, priority, status, hours ago)
INQUIRIES = [
    (
        "豆が届きません",
        "1週間前に注文したエチオピアの豆がまだ届きません。",
        Origin.EMAIL,
        "high",
        "open",
        30,
    ),
    (
        "ポイントが付いていない",
        "昨日の渋谷店でのお買い物のポイントが反映されていません。",
        Origin.LINE,
        "normal",
        "open",
        10,
    ),
    ("Decaf beans?", "Do you sell decaf beans online?", Origin.PORTAL, "low", "pending", 5),
    (
        "店員さんへのお礼",
        "新宿店のスタッフの方がとても親切でした。",
        Origin.PORTAL,
        "low",
        "resolved",
        50,
    ),
    ("定期便の解約", "来月から定期便を止めたいです。", Origin.CONSOLE, "normal", "open", 2),
    (
        "Wrong size cup",
        "I got a small instead of a large latte this morning.",
        Origin.EMAIL,
        "urgent",
        "open",
        3,
    ),
]


def load() -> None:
    data = json.loads(FIXTURE.read_text())
    for a in data["articles"]:
        services.faq_article_save(
            key=a["key"], locale=a["locale"], title=a["title"], body=a["body"], tags=a["tags"]
        )
    for title, ja, en in CANNED:
        services.canned_answer_save(title=title, body_ja=ja, body_en=en)
    customers = list(Customer.objects.order_by("pk")[: len(INQUIRIES)])
    for customer, (subject, body, origin, priority, status, hours) in zip(
        customers, INQUIRIES, strict=False
    ):
        inquiry, _created = services.inquiry_open(
            subject=subject,
            body=body,
            origin=origin,
            customer=customer,
            priority=priority,
            locale="en" if subject.isascii() else "ja",
        )
        opened = now() - timedelta(hours=hours)
        first_due, resolution_due = services.sla_due(priority, opened)
        Inquiry.objects.filter(pk=inquiry.pk).update(
            created_at=opened, first_response_due=first_due, resolution_due=resolution_due
        )
        inquiry.refresh_from_db()
        if status != InquiryStatus.OPEN:
            services.note_add(inquiry=inquiry, body="デモ: 対応済み / demo: handled")
            services.inquiry_update(inquiry=inquiry, data={"status": status})
