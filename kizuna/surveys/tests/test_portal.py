"""The portal's survey pages: signed personal links, the public link, replay, closed surveys,
validation errors tied to inputs, escaping, CSRF and rate limiting."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.cache import cache
from django.test import Client

from kizuna.customers.models import Customer
from kizuna.surveys import links, services
from kizuna.surveys.models import Response, Survey, SurveyStatus

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


def _path(survey: Survey, customer: Customer) -> str:
    return links.survey_path(survey, customer)


def test_personal_link_page_in_the_customers_language(survey: Survey, customer: Customer) -> None:
    page = Client().get(_path(survey, customer))
    assert page.status_code == 200 and page["Content-Language"] == "ja"
    body = page.content.decode()
    assert "顧客満足度調査" in body and 'name="nps"' in body and "<fieldset" in body
    assert page["Referrer-Policy"] == "same-origin"
    english = Client().get(_path(survey, customer) + "?lang=en").content.decode()
    assert "Customer survey" in english and "How likely are you to recommend us?" in english


def test_answer_then_replay_is_refused_clearly(survey: Survey, customer: Customer) -> None:
    path = _path(survey, customer) + "?lang=en"
    done = Client().post(path, {"nps": "9", "why": "Great coffee", "drink": "tea"})
    assert done.status_code == 200 and "Thank you" in done.content.decode()
    response = Response.objects.get()
    assert response.customer_id == customer.pk and response.nps == 9
    replay = Client().post(path, {"nps": "0"})
    assert replay.status_code == 409
    assert "already been used" in replay.content.decode()
    assert Response.objects.count() == 1 and Response.objects.get().nps == 9
    assert Client().get(path).status_code == 409


def test_out_of_range_score_shows_the_error_on_its_input(
    survey: Survey, customer: Customer
) -> None:
    page = Client().post(_path(survey, customer) + "?lang=en", {"nps": "11"})
    assert page.status_code == 400
    body = page.content.decode()
    assert 'id="err-nps"' in body and 'aria-describedby="err-nps"' in body
    assert "from 0 to 10" in body and 'aria-invalid="true"' in body
    assert not Response.objects.exists()


def test_free_text_is_escaped_when_shown_again(survey: Survey, customer: Customer) -> None:
    page = Client().post(
        _path(survey, customer) + "?lang=en", {"nps": "", "why": "<script>alert(1)</script>"}
    )
    assert page.status_code == 400  # nps is required: the form is shown again with the text
    body = page.content.decode()
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body


def test_closed_survey_page(survey: Survey, customer: Customer) -> None:
    path = _path(survey, customer) + "?lang=en"
    services.survey_set_status(survey=survey, status=SurveyStatus.CLOSED)
    page = Client().post(path, {"nps": "9"})
    assert page.status_code == 410 and "closed" in page.content.decode()
    assert not Response.objects.exists()


def test_bad_or_tampered_token_is_404(survey: Survey, customer: Customer) -> None:
    path = _path(survey, customer)
    assert Client().get(path[:-3] + "xx/").status_code == 404
    assert Client().get("/m/s/nonsense/").status_code == 404


def test_public_link_only_for_anonymous_surveys(survey: Survey) -> None:
    assert Client().get("/m/survey/nps-2026/").status_code == 404
    services.survey_update(survey=survey, data={"allow_anonymous": True})
    page = Client().get("/m/survey/nps-2026/?lang=en")
    assert page.status_code == 200
    done = Client().post("/m/survey/nps-2026/?lang=en", {"nps": "4", "fix": ["price", "staff"]})
    assert done.status_code == 200
    response = Response.objects.get()
    assert response.customer_id is None and response.nps == 4
    assert sorted(response.answers.get(question__key="fix").choices) == ["price", "staff"]


def test_csrf_is_enforced(survey: Survey, customer: Customer) -> None:
    client = Client(enforce_csrf_checks=True)
    assert client.post(_path(survey, customer), {"nps": "9"}).status_code == 403
    assert not Response.objects.exists()


@pytest.mark.usefixtures("ratelimit_clock_pinned")
def test_submissions_are_rate_limited(survey: Survey) -> None:
    services.survey_update(survey=survey, data={"allow_anonymous": True})
    codes = [Client().post("/m/survey/nps-2026/", {"nps": "x"}).status_code for _ in range(12)]
    assert codes[:10] == [400] * 10
    assert codes[10] in (403, 429)


def _inputs(body: str) -> set[str]:
    import re

    found = re.findall(r'<(?:input|textarea|select)\b[^>]*\bname="([a-z_]+)"', body)
    return set(found) - {"csrfmiddlewaretoken", "step"}


def test_without_script_conditional_questions_follow_the_answers(
    survey: Survey, customer: Customer
) -> None:
    """A browser without JavaScript: page 1 asks what the condition depends on; the next
    page shows the improvement question only to a detractor."""
    path = _path(survey, customer) + "?lang=en"
    first = Client().get(path).content.decode()
    assert _inputs(first) == {"nps", "why"}  # "fix" (only if nps <= 6) is not on the page
    assert 'name="step" value="1"' in first and ">Next<" in first
    # A detractor: the second page asks what to improve, with page 1's answers carried.
    second = Client().post(path, {"step": "1", "nps": "3", "why": "遅い"})
    body = second.content.decode()
    assert second.status_code == 200 and _inputs(body) >= {"fix", "drink"}
    assert 'type="hidden" name="nps" value="3"' in body
    assert "What should we improve?" in body and ">Send answers<" in body
    assert not Response.objects.exists()
    done = Client().post(
        path, {"step": "2", "nps": "3", "why": "遅い", "fix": ["price"], "drink": "tea"}
    )
    assert done.status_code == 200 and "Thank you" in done.content.decode()
    response = Response.objects.get()
    answers = {a.question.key: a for a in response.answers.select_related("question")}
    assert response.nps == 3 and answers["fix"].choices == ["price"]


def test_a_promoter_never_sees_the_detractor_question_and_its_answer_is_ignored(
    survey: Survey, customer: Customer
) -> None:
    path = _path(survey, customer) + "?lang=en"
    second = Client().post(path, {"step": "1", "nps": "10"}).content.decode()
    assert "What should we improve?" not in second, second
    assert _inputs(second) == {"nps", "drink"}
    # A forged answer to the hidden question is not read; the response is stored without it.
    done = Client().post(path, {"step": "2", "nps": "10", "fix": ["price"], "drink": "coffee"})
    assert "Thank you" in done.content.decode()
    keys = set(Response.objects.get().answers.values_list("question__key", flat=True))
    assert keys == {"nps", "drink"}


def test_paged_errors_back_and_tampered_earlier_answers(survey: Survey, customer: Customer) -> None:
    path = _path(survey, customer) + "?lang=en"
    # Page 1 without its required answer stays on page 1 with the error on its input.
    missing = Client().post(path, {"step": "1", "why": "x"})
    assert missing.status_code == 400 and 'id="err-nps"' in missing.content.decode()
    # An earlier answer changed in the hidden inputs is validated again: back to page 1.
    forged = Client().post(path, {"step": "2", "nps": "99", "drink": "tea"})
    body = forged.content.decode()
    assert forged.status_code == 400 and 'id="err-nps"' in body and "from 0 to 10" in body
    assert _inputs(body) == {"nps", "why"}
    # Back from page 2 shows page 1 with the answers given.
    back = Client().post(path, {"step": "2", "nps": "5", "why": "高い", "back": "1"})
    body = back.content.decode()
    assert _inputs(body) == {"nps", "why"} and 'value="5" checked' in body and "高い" in body
    assert not Response.objects.exists()
