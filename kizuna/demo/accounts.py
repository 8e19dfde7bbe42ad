"""The demo business's B2B side and subscriptions: office-coffee accounts (a group with a
subsidiary, a named account) with contacts, a sales pipeline with deals and activities, the
service-level rule applied over the demo scores, and coffee subscription plans with a
history of subscriptions (started over the last 18 months, some paused, past due or
cancelled with reasons). Seeded, so every demo load is the same."""

from __future__ import annotations

import random
import secrets
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from kizuna.accounts import services as accounts
from kizuna.accounts.models import Account
from kizuna.core.timeutil import now
from kizuna.customers.models import Customer
from kizuna.iam.services import staff_user_create
from kizuna.subscriptions import services as subscriptions
from kizuna.subscriptions.models import EventKind, Status, Subscription, SubscriptionEvent
from kizuna.subscriptions.periods import add_interval

DEMO_OWNER = "demo"  # the demo admin login (kizuna.demo.load.DEMO_USERNAME)
COMPANIES = [
    # name, domain, parent index, named
    ("山田ホールディングス株式会社", "yamada-hd.example.jp", None, True),
    ("山田商事株式会社", "yamada-shoji.example.jp", 0, False),
    ("株式会社さくらデザイン", "sakura-design.example.jp", None, False),
    ("Tokyo Bay Logistics K.K.", "tokyobay-logistics.example.com", None, False),
    ("みなと法律事務所", "minato-law.example.jp", None, False),
]
STAGES = [
    {"name": "リード / Lead", "probability": 10},
    {"name": "試飲提案 / Tasting", "probability": 30},
    {"name": "見積提示 / Quote", "probability": 60},
    {"name": "交渉 / Negotiation", "probability": 80},
    {"name": "受注 / Won", "probability": 100, "outcome": "won"},
    {"name": "失注 / Lost", "probability": 0, "outcome": "lost"},
]
DEALS = [
    ("オフィスコーヒー導入 (本社)", 0, 2, 1_200_000),
    ("オフィスコーヒー導入 (大阪支店)", 1, 1, 480_000),
    ("来客用ドリップバッグ", 2, 0, 96_000),
    ("Warehouse break-room coffee", 3, 3, 720_000),
    ("年間契約更新", 4, 2, 360_000),
    ("周年記念ギフト", 0, 0, 250_000),
    ("Barista event for staff", 3, 1, 180_000),
]
PLANS = [
    {"code": "beans-monthly", "name": "豆の定期便 (月1回) / Monthly beans", "price_yen": 3000},
    {
        "code": "drip-weekly",
        "name": "ドリップバッグ週便 / Weekly drip bags",
        "price_yen": 900,
        "interval": "week",
    },
    {
        "code": "club-yearly",
        "name": "絆コーヒークラブ年会員 / Kizuna Coffee Club (yearly)",
        "price_yen": 12000,
        "interval": "year",
        "trial_days": 14,
    },
]
CANCEL_REASONS = [
    "飲み切れない / too much coffee",
    "価格 / price",
    "引っ越し / moving",
    "味の好み / taste",
]


def _owner() -> AbstractBaseUser:
    """The demo admin (the demo command resets its password to the printed one after the
    load), created now when it does not exist yet, so it owns the demo's accounts."""
    user = get_user_model().objects.filter(username=DEMO_OWNER).first()
    if user is None:
        user = staff_user_create(
            username=DEMO_OWNER, password=secrets.token_urlsafe(24), role="admin"
        )
    return user


@transaction.atomic
def load(*, seed: int = 14, subscribers: int = 400) -> None:
    rng = random.Random(seed)
    owner = _owner()
    at = now()
    people = list(Customer.objects.filter(merged_into__isnull=True).order_by("pk")[:2000])
    if not people:
        return

    # --- B2B accounts, pipeline, deals, activities
    created: list[Account] = []
    for name, domain, parent, named in COMPANIES:
        created.append(
            accounts.account_create(
                data={
                    "name": name,
                    "domain": domain,
                    "parent": created[parent] if parent is not None else None,
                    "owner": owner,
                    "named": named,
                    "follow_up_days": 14 if named else 30,
                },
                actor=owner,
            )
        )
    roles = ["decision_maker", "champion", "user", "billing"]
    for i, account in enumerate(created):
        for k in range(3):
            accounts.contact_add(
                account=account, customer=people[i * 3 + k], role=roles[k % len(roles)], actor=owner
            )
    pipeline = accounts.pipeline_create(name="法人営業 / Office coffee", stages=STAGES, actor=owner)
    stages = list(pipeline.stages.order_by("position"))
    for title, account_index, stage_index, amount in DEALS:
        accounts.deal_create(
            data={
                "title": title,
                "account": created[account_index],
                "contact": people[account_index * 3],
                "stage": stages[stage_index].pk,
                "amount_yen": amount,
                "expected_close": (at + timedelta(days=rng.randrange(10, 120))).date(),
            },
            actor=owner,
        )
    lost = accounts.deal_create(
        data={
            "title": "給茶機の入れ替え",
            "account": created[2],
            "stage": stages[0].pk,
            "amount_yen": 150_000,
        },
        actor=owner,
    )
    accounts.deal_close(
        deal=lost, won=False, reason="他社の給茶機リースに決定 / chose a leasing rival", actor=owner
    )
    accounts.activity_log(
        data={
            "kind": "meeting",
            "subject": "試飲会 / Tasting session",
            "body": "総務部 5名参加。深煎りが好評。",
            "account": created[0].pk,
            "occurred_at": at - timedelta(days=20),
        },
        actor=owner,
    )
    accounts.activity_log(
        data={"kind": "call", "subject": "見積の確認 / Quote follow-up", "account": created[2].pk},
        actor=owner,
    )
    accounts.activity_log(
        data={
            "kind": "task",
            "subject": "契約書ドラフト送付 / Send the draft contract",
            "account": created[0].pk,
            "due_at": at - timedelta(days=1),
        },
        actor=owner,
    )
    accounts.activity_log(
        data={
            "kind": "task",
            "subject": "導入後フォロー電話 / Follow-up call",
            "customer": people[0].pk,
            "due_at": at + timedelta(days=3),
            "remind_at": at + timedelta(days=2),
        },
        actor=owner,
    )
    accounts.rule_update(
        data={"top_clv_percent": "5", "cadence_days": 30, "default_owner": owner.pk}
    )
    accounts.service_levels_apply()

    # --- subscriptions (history written in bulk: past events, no journey triggers)
    plans = [subscriptions.plan_create(data=p) for p in PLANS]
    subs: list[Subscription] = []
    histories: list[list[tuple[str, datetime, str]]] = []
    for person in rng.sample(people, min(subscribers, len(people))):
        plan = plans[rng.choices(range(len(plans)), weights=[6, 2, 2])[0]]
        start = at - timedelta(days=rng.randrange(5, 540), hours=rng.randrange(24))
        period_start = start
        period_end = add_interval(start, plan.interval)
        history: list[tuple[str, datetime, str]] = [(EventKind.STARTED, start, "")]
        while period_end < at:
            history.append((EventKind.RENEWED, period_end, ""))
            period_start, period_end = period_end, add_interval(period_end, plan.interval)
        status, ended, reason = Status.ACTIVE, None, ""
        roll = rng.random()
        if roll < 0.3 and period_start > start:
            status, ended = Status.CANCELLED, period_start
            reason = rng.choice(CANCEL_REASONS)
            history = [h for h in history if h[1] <= period_start]
            history.append((EventKind.CANCELLED, ended, reason))
            period_end = ended
        elif roll < 0.35:
            status = Status.PAST_DUE
            history.append(
                (EventKind.PAYMENT_FAILED, period_start, "カード決済失敗 / card declined")
            )
        elif roll < 0.4:
            status = Status.PAUSED
            history.append((EventKind.PAUSED, period_start, "長期不在 / away"))
        subs.append(
            Subscription(
                customer=person,
                plan=plan,
                status=status,
                started_at=start,
                current_period_start=min(period_start, period_end),
                current_period_end=period_end,
                ended_at=ended,
                cancel_reason=reason,
            )
        )
        histories.append(history)
    Subscription.objects.bulk_create(subs, batch_size=1000)
    SubscriptionEvent.objects.bulk_create(
        (
            SubscriptionEvent(
                subscription=sub,
                kind=kind,
                occurred_at=when,
                reason=why,
                amount_yen=sub.plan.price_yen
                if kind in (EventKind.STARTED, EventKind.RENEWED)
                else 0,
            )
            for sub, history in zip(subs, histories, strict=True)
            for kind, when, why in history
        ),
        batch_size=2000,
    )
