"""The demo's voice-of-the-customer step on a small population."""

from __future__ import annotations

from typing import Any

import pytest

from kizuna.community.models import CommunityEvent, Idea, Registration
from kizuna.customers.services import customer_create
from kizuna.demo import surveys as demo_surveys
from kizuna.loyalty.models import Programme
from kizuna.surveys import selectors
from kizuna.surveys.models import Response, Survey

pytestmark = pytest.mark.django_db


def test_demo_surveys_load(monkeypatch: Any) -> None:
    monkeypatch.setattr(demo_surveys, "INVITED", 60)
    monkeypatch.setattr(demo_surveys, "ANSWERED", 40)
    Programme.objects.create(name="Demo", event_points={"Store Checked In": 5})
    for n in range(60):
        customer_create(data={"email": f"d{n}@example.jp", "locale": "en" if n % 5 else "ja"})
    demo_surveys.load()
    survey = Survey.objects.get(slug="nps-2026")
    assert Response.objects.filter(survey=survey).count() == 40
    summary = selectors.nps_summary(survey=survey)
    assert summary.n == 40 and summary.ci_low is not None
    assert len(selectors.nps_trend(survey=survey)) >= 3  # spread over months
    assert selectors.keyword_frequency(survey=survey, category="detractor")
    assert Programme.objects.get().event_points["survey.answered"] == 30
    assert Registration.objects.filter(event=CommunityEvent.objects.get()).count() == 15
    assert Idea.objects.count() == 4
    demo_surveys.load()  # a second run changes nothing
    assert Response.objects.count() == 40
