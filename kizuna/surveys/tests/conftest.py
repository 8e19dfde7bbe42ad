from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from kizuna.customers.services import customer_create
from kizuna.surveys import services
from kizuna.surveys.models import Survey, SurveyStatus


@pytest.fixture(autouse=True)
def _english() -> Iterator[None]:
    """Messages are asserted in English (the installation's default language is Japanese)."""
    from django.utils import translation

    with translation.override("en"):
        yield


NPS_QUESTIONS: list[dict[str, Any]] = [
    {
        "key": "nps",
        "kind": "nps",
        "text": "友人にすすめる可能性は？",
        "text_en": "How likely are you to recommend us?",
        "required": True,
    },
    {"key": "why", "kind": "text", "text": "その理由は？", "text_en": "Why?"},
    {
        "key": "fix",
        "kind": "multiple",
        "text": "改善してほしい点は？",
        "text_en": "What should we improve?",
        "choices": [
            {"value": "delivery", "label": "配送", "label_en": "Delivery"},
            {"value": "price", "label": "価格", "label_en": "Price"},
            {"value": "staff", "label": "接客", "label_en": "Staff"},
        ],
        "show_if": {"question": "nps", "op": "lte", "value": 6},
    },
    {
        "key": "drink",
        "kind": "single",
        "text": "よく飲むものは？",
        "text_en": "What do you drink most?",
        "choices": [
            {"value": "coffee", "label": "コーヒー", "label_en": "Coffee"},
            {"value": "tea", "label": "紅茶", "label_en": "Tea"},
        ],
    },
]


@pytest.fixture
def survey(db: None) -> Survey:
    survey = services.survey_create(
        data={
            "slug": "nps-2026",
            "title": "顧客満足度調査",
            "title_en": "Customer survey",
            "questions": NPS_QUESTIONS,
        }
    )
    return services.survey_set_status(survey=survey, status=SurveyStatus.OPEN)


@pytest.fixture
def customer(db: None) -> Any:
    return customer_create(
        data={"family_name": "山田", "given_name": "花子", "email": "hanako@example.jp"}
    )


@pytest.fixture
def other_customer(db: None) -> Any:
    return customer_create(
        data={"family_name": "Smith", "email": "smith@example.com", "locale": "en"}
    )
