from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from kizuna.customers.models import Customer
from kizuna.iam.services import api_key_create
from kizuna.surveys.models import Invitation, Response, Survey

from .conftest import NPS_QUESTIONS

pytestmark = pytest.mark.django_db


@pytest.fixture
def call(make_staff: Any) -> Any:
    def make(role: str = "admin") -> Any:
        key = api_key_create(name=role, role=role, created_by=make_staff(role))
        client = Client()

        def send(method: str, path: str, body: Any = None) -> Any:
            headers = {"Authorization": f"Bearer {key.secret}", "Accept-Language": "en"}
            if method == "GET":
                return client.get(path, headers=headers)
            return client.generic(
                method,
                path,
                json.dumps(body or {}),
                content_type="application/json",
                headers=headers,
            )

        return send

    return make


def test_build_open_link_answer_and_results(call: Any, customer: Customer) -> None:
    api = call("marketer")
    created = api(
        "POST", "/api/v1/surveys", {"slug": "csat-1", "title": "満足度", "questions": NPS_QUESTIONS}
    )
    assert created.status_code == 201, created.content
    survey_id = created.json()["id"]
    assert [q["key"] for q in created.json()["questions"]] == ["nps", "why", "fix", "drink"]
    assert (
        api("POST", f"/api/v1/surveys/{survey_id}/status", {"status": "open"}).json()["status"]
        == "open"
    )
    link = api("POST", f"/api/v1/surveys/{survey_id}/links", {"customer_id": customer.pk})
    assert link.status_code == 200 and "/m/s/" in link.json()["url"]
    answered = api(
        "POST",
        f"/api/v1/surveys/{survey_id}/responses",
        {"customer_id": customer.pk, "answers": {"nps": 10, "why": "Great coffee"}},
    )
    assert answered.status_code == 201, answered.content
    assert answered.json()["nps"] == 10
    results = api("GET", f"/api/v1/surveys/{survey_id}/results").json()
    assert results["nps"]["score"] == 100.0 and results["nps"]["n"] == 1
    assert results["response_rate"]["invited"] == 1
    assert {t["term"] for t in results["keywords"]["promoter"]} >= {"coffee"}
    listed = api("GET", f"/api/v1/surveys/{survey_id}/responses").json()
    assert listed["count"] == 1 and listed["items"][0]["answers"][0]["question"] == "nps"
    assert api("GET", "/api/v1/surveys").json()["count"] == 1


def test_bad_input_is_a_422_naming_the_field(call: Any, survey: Survey, customer: Customer) -> None:
    api = call("admin")
    bad = api(
        "POST",
        "/api/v1/surveys",
        {"slug": "x", "title": "x", "questions": [{"kind": "nps", "text": ""}]},
    )
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["field"] == "questions.0.text"
    score = api(
        "POST",
        f"/api/v1/surveys/{survey.pk}/responses",
        {"customer_id": customer.pk, "answers": {"nps": 11}},
    )
    assert score.status_code == 422 and score.json()["detail"][0]["field"] == "answers.nps"
    assert not Response.objects.exists()
    unknown = api(
        "POST", "/api/v1/surveys", {"slug": "y", "title": "y", "questions": [], "extra": 1}
    )
    assert unknown.status_code == 422
    assert api("GET", "/api/v1/surveys/999999").status_code == 404
    patched = api("PATCH", f"/api/v1/surveys/{survey.pk}", {"title": "新しい"})
    assert patched.status_code == 200 and patched.json()["title"] == "新しい"


def test_permissions(call: Any, survey: Survey, customer: Customer) -> None:
    assert Client().get("/api/v1/surveys").status_code == 401
    analyst = call("analyst")
    assert analyst("GET", "/api/v1/surveys").status_code == 200
    assert analyst("GET", f"/api/v1/surveys/{survey.pk}/results").status_code == 200
    assert (
        analyst(
            "POST", "/api/v1/surveys", {"slug": "z", "title": "z", "questions": NPS_QUESTIONS}
        ).status_code
        == 403
    )
    support = call("support")
    assert (
        support(
            "POST", f"/api/v1/surveys/{survey.pk}/links", {"customer_id": customer.pk}
        ).status_code
        == 403
    )
    assert (
        support(
            "POST", f"/api/v1/surveys/{survey.pk}/responses", {"answers": {"nps": 1}}
        ).status_code
        == 403
    )
    assert not Invitation.objects.exists() and not Response.objects.exists()
