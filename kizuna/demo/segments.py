"""Audiences of the demo business: a few dynamic segments over scores, consent, purchases and
identities, materialised once the scores exist (so the segment pages and the customer 360's
panel show members, and their timelines show `segment.entered`)."""

from __future__ import annotations

from typing import Any

from kizuna.segments.models import Segment
from kizuna.segments.services import segment_refresh, segment_save

SEGMENTS: list[dict[str, Any]] = [
    {
        "name": "常連のお客様 / Champions and loyal",
        "slug": "champions-loyal",
        "description": "RFM: チャンピオンとロイヤル顧客 / RFM champions and loyal customers",
        "rules": {
            "version": 1,
            "match": "all",
            "conditions": [
                {"field": "score.rfm_segment", "op": "in", "value": ["champions", "loyal"]}
            ],
        },
    },
    {
        "name": "離反しそうな優良顧客 / Valuable customers slipping away",
        "slug": "valuable-at-risk",
        "description": "累計 ¥20,000 以上・離反リスク 50% 超 / spent ¥20,000+, churn risk over 50%",
        "rules": {
            "version": 1,
            "match": "all",
            "conditions": [
                {"field": "order.total_spend", "op": "gte", "value": 20000},
                {"field": "score.churn_risk", "op": "gt", "value": 0.5},
            ],
        },
    },
    {
        "name": "首都圏・メール配信可 / Greater Tokyo, email allowed",
        "slug": "tokyo-email",
        "description": "東京・神奈川・埼玉・千葉でメールのマーケティング同意あり",
        "rules": {
            "version": 1,
            "match": "all",
            "conditions": [
                {
                    "field": "profile.prefecture",
                    "op": "in",
                    "value": ["JP-11", "JP-12", "JP-13", "JP-14"],
                },
                {
                    "field": "consent",
                    "purpose": "marketing",
                    "channel": "email",
                    "op": "is",
                    "value": True,
                },
            ],
        },
    },
    {
        "name": "豆を買う LINE 友だち / LINE friends who buy beans",
        "slug": "line-beans",
        "description": "LINE 連携済みで直近 180 日にコーヒー豆を購入",
        "rules": {
            "version": 1,
            "match": "all",
            "conditions": [
                {"field": "identity", "op": "includes", "value": "line"},
                {
                    "field": "order.bought_category",
                    "op": "includes",
                    "value": "beans",
                    "within_days": 180,
                },
            ],
        },
    },
]


def load() -> list[Segment]:
    segments = [segment_save(data=dict(spec)) for spec in SEGMENTS]
    for segment in segments:
        segment_refresh(segment=segment)
    return segments
