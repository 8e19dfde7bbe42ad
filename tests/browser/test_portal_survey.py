"""A customer answers a conditional survey in headless Chromium, with JavaScript on and off:
the server shows the follow-up question only after the answer it depends on."""

from __future__ import annotations

import pytest

from kizuna.customers.services import customer_create
from kizuna.surveys import links, services
from kizuna.surveys.models import Response, SurveyStatus
from kizuna.surveys.tests.conftest import NPS_QUESTIONS
from tests.browser.test_console_login import CHROMIUM, CHROMIUM_ARGS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("javascript", [True, False])
def test_detractor_gets_the_follow_up_page(live_server, monkeypatch, javascript: bool) -> None:
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    survey = services.survey_create(
        data={"slug": "nps-web", "title": "満足度調査", "questions": NPS_QUESTIONS}
    )
    services.survey_set_status(survey=survey, status=SurveyStatus.OPEN)
    customer = customer_create(data={"family_name": "山田", "email": "web@example.jp"})
    url = live_server.url + links.survey_path(survey, customer) + "?lang=en"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        context = browser.new_context(
            java_script_enabled=javascript, viewport={"width": 390, "height": 844}
        )
        page = context.new_page()
        page.goto(url)
        assert page.get_by_text("What should we improve?").count() == 0
        page.locator('input[name="nps"][value="3"]').check()
        page.fill('textarea[name="why"]', "Too slow")
        page.get_by_role("button", name="Next").click()
        page.get_by_text("What should we improve?").wait_for()
        page.locator('input[name="fix"][value="delivery"]').check()
        page.locator('input[name="drink"][value="tea"]').check()
        page.get_by_role("button", name="Send answers").click()
        page.get_by_text("Thank you").first.wait_for()
        browser.close()
    response = Response.objects.get()
    keys = set(response.answers.values_list("question__key", flat=True))
    assert response.nps == 3 and keys == {"nps", "why", "fix", "drink"}
