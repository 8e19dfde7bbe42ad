"""A person's path through the console in headless Chromium (Debian's, driven by Playwright)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kizuna.catalog.services import product_create
from kizuna.commerce.services import order_place
from kizuna.customers.services import consent_record, customer_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# The probe's flags: this machine has no outside network, so Chromium must not try.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser_page(monkeypatch: pytest.MonkeyPatch):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls in the test
    # itself are still plain synchronous code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        context = browser.new_context(locale="ja-JP", viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        messages: list[str] = []
        page.on("console", lambda msg: messages.append(f"{msg.type}: {msg.text}"))
        page.console_messages = messages  # type: ignore[attr-defined]
        yield page
        browser.close()


def test_staff_logs_in_and_opens_a_customer_360(live_server, make_staff, browser_page) -> None:
    make_staff("marketer", username="hanako", password="Kizuna-demo-2026")
    product_create(data={"sku": "LATTE-T", "name": "カフェラテ", "price_minor": 520})
    customer = customer_create(
        data={
            "family_name": "山田",
            "given_name": "太郎",
            "family_name_kana": "ヤマダ",
            "given_name_kana": "タロウ",
            "email": "taro@example.jp",
            "prefecture": "JP-13",
        }
    )
    consent_record(
        customer=customer,
        purpose="marketing",
        channel="email",
        status="granted",
        source="signup_form",
    )
    order_place(customer=customer, number="B-1001", lines=[{"sku": "LATTE-T", "quantity": 3}])

    page = browser_page
    page.goto(f"{live_server.url}/customers/{customer.pk}/")
    # Not logged in: sent to the login page.
    assert "/login" in page.url
    page.fill("input[name=username]", "hanako")
    page.fill("input[name=password]", "Kizuna-demo-2026")
    with page.expect_navigation():
        page.click("form:has(input[name=password]) button[type=submit]")
    assert page.url == f"{live_server.url}/customers/{customer.pk}/", page.inner_text("body")
    body = page.inner_text("body")
    assert "山田" in body and "太郎" in body
    assert "ヤマダ" in body
    assert "taro@example.jp" in body
    assert "B-1001" in body
    assert "¥1,560" in body
    csp_errors = [m for m in page.console_messages if "Content Security Policy" in m]
    assert csp_errors == []
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "customer-360.png"), full_page=True)


def test_wrong_password_stays_on_login(live_server, make_staff, browser_page) -> None:
    make_staff("analyst", username="ken", password="Kizuna-demo-2026")
    page = browser_page
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", "ken")
    page.fill("input[name=password]", "wrong-password")
    with page.expect_navigation():
        page.click("form:has(input[name=password]) button[type=submit]")
    assert "/login" in page.url
    assert page.locator("input[name=password]").count() == 1
    # Django's own Japanese message for a failed login.
    assert "正しい" in page.inner_text("body")
    page.goto(f"{live_server.url}/customers/")
    assert "/login" in page.url
