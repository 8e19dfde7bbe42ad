"""Voice of the customer in the demo business: an NPS survey (open) answered by a few hundred
customers in Japanese or English over the last six months through their personal links (so
the results page has a trend, keywords by category, sentiment and breakdowns), an upcoming
tasting with registrations and a waitlist, and a few ideas with votes and comments.

The loyalty programme is told to give points for `survey.answered` and
`community.event_attended` (its event points), as a business would set it up."""

from __future__ import annotations

import random
from datetime import timedelta

from django.db import transaction

from kizuna.community import services as community
from kizuna.community.models import EventStatus, IdeaStatus
from kizuna.core.timeutil import now
from kizuna.customers.models import Customer
from kizuna.loyalty.models import Programme
from kizuna.surveys import links
from kizuna.surveys import services as surveys
from kizuna.surveys.models import Response, Survey, SurveyStatus

SEED = 9
INVITED = 500
ANSWERED = 250

QUESTIONS = [
    {
        "key": "nps",
        "kind": "nps",
        "required": True,
        "text": "kizuna珈琲を友人や知人にすすめる可能性はどのくらいありますか？",
        "text_en": "How likely are you to recommend kizuna coffee to a friend?",
    },
    {
        "key": "why",
        "kind": "text",
        "text": "その点数の一番の理由を教えてください。",
        "text_en": "What is the main reason for your score?",
    },
    {
        "key": "improve",
        "kind": "multiple",
        "text": "改善してほしい点はどれですか？",
        "text_en": "What should we improve?",
        "choices": [
            {"value": "delivery", "label": "配送", "label_en": "Delivery"},
            {"value": "price", "label": "価格", "label_en": "Price"},
            {"value": "staff", "label": "接客", "label_en": "Staff"},
            {"value": "app", "label": "アプリ", "label_en": "App"},
        ],
        "show_if": {"question": "nps", "op": "lte", "value": 8},
    },
    {
        "key": "visit",
        "kind": "single",
        "text": "主なご利用方法は？",
        "text_en": "How do you mostly buy?",
        "choices": [
            {"value": "store", "label": "店舗", "label_en": "In store"},
            {"value": "online", "label": "オンライン", "label_en": "Online"},
        ],
    },
]

COMMENTS = {
    "promoter": {
        "ja": [
            "スタッフの対応がとても丁寧で満足です",
            "コーヒーがおいしくて毎朝の楽しみです",
            "アプリが使いやすいのでポイントが貯まりやすい",
            "新鮮な豆の香りが最高です",
            "店舗の雰囲気が素敵で、また行きたいです",
            "季節限定のラテが気に入りました",
        ],
        "en": [
            "Great coffee and friendly staff",
            "Fresh beans, fast delivery, love it",
            "The app is easy to use and the points are great",
            "Best latte in Tokyo",
        ],
    },
    "passive": {
        "ja": [
            "おいしいけれど価格が少し高い",
            "味は良いが店内が混んでいる",
            "アプリは便利だが通知が多い",
            "悪くないですが特別感はないです",
        ],
        "en": [
            "Good coffee but a bit expensive",
            "Nice, but the store is often crowded",
            "Not bad, delivery could be faster",
        ],
    },
    "detractor": {
        "ja": [
            "配送が遅くて残念でした",
            "注文した豆が届かず問い合わせも返事が遅い",
            "レジの待ち時間が長くて困りました",
            "価格が高いのに味が落ちた気がする",
            "アプリが分かりにくい、ログインできない",
            "店員の対応が失礼でした",
        ],
        "en": [
            "Delivery was late and the box was damaged",
            "Rude staff at the counter",
            "The app keeps crashing, very annoying",
            "Too expensive for the quality",
        ],
    },
}


def _score(rng: random.Random) -> int:
    roll = rng.random()
    if roll < 0.45:
        return rng.choice([9, 10])
    if roll < 0.75:
        return rng.choice([7, 8])
    return rng.choice([0, 2, 3, 4, 5, 6])


def _programme_points() -> None:
    programme = Programme.objects.order_by("id").first()
    if programme is None:
        return
    points = dict(programme.event_points or {})
    points.setdefault("survey.answered", 30)
    points.setdefault("community.event_attended", 50)
    programme.event_points = points
    programme.save(update_fields=["event_points"])


def load() -> None:
    if Survey.objects.filter(slug="nps-2026").exists():
        return
    rng = random.Random(SEED)
    _programme_points()
    survey = surveys.survey_create(
        data={
            "slug": "nps-2026",
            "title": "お客様満足度調査 2026",
            "title_en": "Customer survey 2026",
            "description": "1分で終わるアンケートです。",
            "description_en": "One minute, four questions.",
            "allow_anonymous": True,
            "questions": QUESTIONS,
        }
    )
    surveys.survey_set_status(survey=survey, status=SurveyStatus.OPEN)
    customers = list(Customer.objects.filter(merged_into__isnull=True).order_by("id")[:INVITED])
    rng.shuffle(customers)
    invitations = [
        links.invitation_for(survey=survey, customer=c, channel="email") for c in customers
    ]
    moment = now()
    for n, invitation in enumerate(invitations[:ANSWERED]):
        score = _score(rng)
        category = surveys.nps_category(score) or "passive"
        customer = customers[n]
        language = "en" if customer.locale == "en" or rng.random() < 0.15 else "ja"
        answers: dict = {"nps": score, "visit": rng.choice(["store", "online"])}
        if rng.random() < 0.8:
            answers["why"] = rng.choice(COMMENTS[category][language])
        if score <= 8 and rng.random() < 0.7:
            answers["improve"] = rng.sample(
                ["delivery", "price", "staff", "app"], rng.randint(1, 2)
            )
        response = surveys.response_submit(
            survey=survey, invitation=invitation, answers=answers, language=language
        )
        # Spread the answers over six months, so the trend has points.
        at = moment - timedelta(days=rng.uniform(0, 180))
        Response.objects.filter(pk=response.pk).update(submitted_at=at)
    _community()


@transaction.atomic
def _community() -> None:
    start = now() + timedelta(days=10)
    event = community.event_create(
        data={
            "slug": "autumn-tasting",
            "title": "秋の新豆テイスティング会",
            "title_en": "Autumn beans tasting",
            "description": "焙煎士と一緒に新豆3種を飲み比べます。",
            "kind": "tasting",
            "starts_at": start,
            "ends_at": start + timedelta(hours=2),
            "venue": "渋谷本店",
            "capacity": 12,
        }
    )
    community.event_set_status(event=event, status=EventStatus.PUBLISHED)
    people = list(Customer.objects.filter(merged_into__isnull=True).order_by("-id")[:40])
    for customer in people[:15]:
        community.register(event=event, customer=customer)
    ideas = [
        ("ほうじ茶ラテを定番に", "季節限定ではなく一年中飲みたいです。", IdeaStatus.UNDER_REVIEW),
        (
            "Oat milk for every drink",
            "Please offer oat milk at no extra charge.",
            IdeaStatus.ADOPTED,
        ),
        ("マイボトル割引の拡大", "タンブラー持参で50円引きにしてほしい。", IdeaStatus.OPEN),
        ("豆の定期便", "毎月好みの豆が届くサブスクがあると嬉しい。", IdeaStatus.RELEASED),
    ]
    for n, (title, body, status) in enumerate(ideas):
        idea = community.idea_post(customer=people[n], title=title, body=body)
        for voter in people[5 : 5 + 3 * (len(ideas) - n) + 2]:
            community.idea_vote(idea=idea, customer=voter)
        community.idea_comment(idea=idea, customer=people[n + 10], body="賛成です！")
        if status != IdeaStatus.OPEN:
            community.idea_set_status(idea=idea, status=status, note="ご意見ありがとうございます。")
