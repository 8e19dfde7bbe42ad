"""The survey pages of the console: list, builder (errors on their rows), results with
charts, keywords, breakdowns (segment, tier, RFM segment, product), CSV export, status, the
customer-360 panel, and who may do what. (The survey domain is tested in kizuna/surveys.)"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from kizuna.commerce.services import order_place
from kizuna.console.tests.conftest import Shop
from kizuna.customers.services import customer_create
from kizuna.segments.services import segment_refresh, segment_save
from kizuna.surveys import services
from kizuna.surveys.models import Question, Survey, SurveyStatus
from kizuna.surveys.tests.conftest import NPS_QUESTIONS

pytestmark = pytest.mark.django_db


@pytest.fixture
def survey(db: None) -> Survey:
    survey = services.survey_create(
        data={"slug": "nps", "title": "顧客満足度調査", "questions": NPS_QUESTIONS}
    )
    return services.survey_set_status(survey=survey, status=SurveyStatus.OPEN)


@pytest.fixture
def answered(survey: Survey, shop: Shop) -> Survey:
    services.response_submit(
        survey=survey,
        customer=shop.customer,
        answers={"nps": 3, "why": "<b>配送</b>が遅くて残念でした"},
    )
    other = customer_create(data={"email": "other@example.com", "prefecture": "JP-27"})
    order_place(customer=other, number="WEB-2", lines=[{"sku": "BEAN-1", "quantity": 1}])
    services.response_submit(
        survey=survey, customer=other, answers={"nps": 10, "why": "Great coffee, friendly staff"}
    )
    segment = segment_save(
        data={
            "name": "東京",
            "slug": "tokyo",
            "kind": "dynamic",
            "rules": {
                "version": 1,
                "match": "all",
                "conditions": [{"field": "profile.prefecture", "op": "eq", "value": "JP-13"}],
            },
        }
    )
    segment_refresh(segment=segment)
    return survey


def test_results_page_with_charts_keywords_and_breakdowns(
    client: Client, login_as: Callable[[str], Any], answered: Survey
) -> None:
    login_as("analyst")
    page = client.get(
        reverse("console:survey_detail", args=[answered.pk]), HTTP_ACCEPT_LANGUAGE="en"
    )
    assert page.status_code == 200
    body = page.content.decode()
    assert 'id="fig-nps-trend"' in body and 'id="fig-words"' in body
    assert "配送" in body and "coffee" in body
    # Free text is escaped where it is shown.
    assert "<b>配送</b>" not in body and "&lt;b&gt;配送&lt;/b&gt;" in body
    assert "Segment" in body and "東京" in body  # breakdown by segment
    assert "Product bought" in body and "深煎りブレンド" in body
    assert "95% interval" in body
    assert "{{ surveys[&quot;nps&quot;] }}" in body  # how a template reaches the link
    listing = client.get(reverse("console:survey_list"), HTTP_ACCEPT_LANGUAGE="en")
    assert listing.status_code == 200 and "顧客満足度調査" in listing.content.decode()


def test_csv_export(client: Client, login_as: Callable[[str], Any], answered: Survey) -> None:
    login_as("analyst")
    response = client.get(reverse("console:survey_export", args=[answered.pk]))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["response_id", "submitted_at", "customer_id"]
    assert len(rows) == 3 and {r[6] for r in rows[1:]} == {"detractor", "promoter"}


def test_builder_creates_and_shows_errors_on_rows(
    client: Client, login_as: Callable[[str], Any]
) -> None:
    login_as("marketer")
    url = reverse("console:survey_new")
    assert client.get(url).status_code == 200
    post = {
        "rows": "3",
        "slug": "csat",
        "title": "満足度",
        "q-0-key": "sat",
        "q-0-kind": "csat",
        "q-0-text": "満足度は？",
        "q-0-required": "on",
        "q-1-key": "drink",
        "q-1-kind": "single",
        "q-1-text": "飲み物",
        "q-1-choices": "coffee | コーヒー | Coffee",  # one choice only: refused
        "q-2-key": "",
        "q-2-text": "",
    }
    bad = client.post(url, post, HTTP_ACCEPT_LANGUAGE="en")
    assert bad.status_code == 400
    assert "at least two choices" in bad.content.decode()
    assert not Survey.objects.exists()
    post["q-1-choices"] = "coffee | コーヒー | Coffee\ntea | 紅茶 | Tea"
    post["q-1-show_if_question"] = "sat"
    post["q-1-show_if_op"] = "gte"
    post["q-1-show_if_value"] = "4"
    done = client.post(url, post)
    assert done.status_code == 302
    survey = Survey.objects.get()
    drink = Question.objects.get(survey=survey, key="drink")
    assert drink.choices[1] == {"value": "tea", "label": "紅茶", "label_en": "Tea"}
    assert drink.show_if == {"question": "sat", "op": "gte", "value": 4}
    edit = client.get(reverse("console:survey_edit", args=[survey.pk]))
    assert edit.status_code == 200 and "tea | 紅茶 | Tea" in edit.content.decode()
    status = client.post(reverse("console:survey_status", args=[survey.pk]), {"status": "open"})
    assert status.status_code == 302
    survey.refresh_from_db()
    assert survey.status == SurveyStatus.OPEN


def test_customer_panel_shows_the_answers(
    client: Client, login_as: Callable[[str], Any], answered: Survey, shop: Shop
) -> None:
    login_as("support")
    page = client.get(reverse("console:customer_detail", args=[shop.customer.pk]))
    body = page.content.decode()
    assert 'id="surveys"' in body and "NPS 3" in body
    assert "&lt;b&gt;配送&lt;/b&gt;" in body and "<b>配送</b>" not in body


def test_permissions(
    client: Client, login_as: Callable[[str], Any], survey: Survey, django_user_model: Any
) -> None:
    pages = [
        reverse("console:survey_list"),
        reverse("console:survey_detail", args=[survey.pk]),
        reverse("console:survey_export", args=[survey.pk]),
        reverse("console:survey_new"),
        reverse("console:survey_edit", args=[survey.pk]),
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"], url
    assert (
        client.post(
            reverse("console:survey_status", args=[survey.pk]), {"status": "closed"}
        ).status_code
        == 302
    )
    nobody = django_user_model.objects.create_user(username="nobody", password="x-Pass-123!")
    client.force_login(nobody)
    for url in pages:
        assert client.get(url).status_code == 403, url
    login_as("analyst")
    assert client.get(pages[0]).status_code == 200
    assert client.get(reverse("console:survey_new")).status_code == 403
    assert (
        client.post(
            reverse("console:survey_status", args=[survey.pk]), {"status": "closed"}
        ).status_code
        == 403
    )
    survey.refresh_from_db()
    assert survey.status == SurveyStatus.OPEN
