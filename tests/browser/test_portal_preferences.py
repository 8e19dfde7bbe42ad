"""A customer saves the preference centre in headless Chromium: the form posts through
Django's CSRF check as a real browser sends it (with an Origin header, which a
`Referrer-Policy: no-referrer` page would make `null` and the check refuse)."""

from __future__ import annotations

import pytest

from kizuna.customers import services as customer_services
from kizuna.messaging import links
from kizuna.messaging.models import Preference
from tests.browser.test_console_login import CHROMIUM, CHROMIUM_ARGS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_preference_centre_saves_in_a_real_browser(live_server, monkeypatch) -> None:
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    customer = customer_services.customer_create(
        data={"family_name": "山田", "email": "prefs@example.jp"}
    )
    customer_services.consent_record(
        customer=customer, purpose="marketing", channel="email", status="granted", source="t"
    )
    url = f"{live_server.url}/m/p/{links.preferences_token(customer.pk)}/?lang=en"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        page = browser.new_page()
        page.goto(url)
        page.check('input[name="frequency"][value="weekly"]')
        with page.expect_response(lambda r: r.request.method == "POST") as posted:
            page.get_by_role("button", name="Save").click()
        status = posted.value.status
        browser.close()
    assert status == 200  # 403 is the CSRF refusal
    assert Preference.objects.get(customer=customer).frequency == "weekly"
