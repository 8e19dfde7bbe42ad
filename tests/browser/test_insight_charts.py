"""The customer-insight pages in headless Chromium: every Plotly chart is drawn from its JSON
data block by plotly.js from the installed package, and the strict CSP reports nothing."""

from __future__ import annotations

import pytest

from kizuna.analytics import services
from kizuna.analytics.models import Kpi, RunStatus, RunTrigger
from kizuna.analytics.tests.conftest import AS_OF, history, small_parameters  # noqa: F401
from tests.browser.test_console_login import browser_page  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CSP_PROBE = """document.addEventListener('securitypolicyviolation', e =>
  console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI))"""


def test_insight_charts_draw_under_the_csp(live_server, make_staff, request) -> None:
    request.getfixturevalue("history")(150)
    result = services.scoring_run_now(
        trigger=RunTrigger.CLI,
        parameters=request.getfixturevalue("small_parameters"),
        as_of=AS_OF,
    )
    assert result.status == RunStatus.SUCCEEDED
    make_staff("analyst", username="aiko", password="Kizuna-insight-2026")
    page = request.getfixturevalue("browser_page")
    page.add_init_script(CSP_PROBE)
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", "aiko")
    page.fill("input[name=password]", "Kizuna-insight-2026")
    with page.expect_navigation():
        page.click("form:has(input[name=password]) button[type=submit]")
    expected = {
        "/insight/": 3,
        "/insight/cohorts/": 1,
        "/insight/kpis/": len(Kpi.choices),
        "/insight/models/": 2,
    }
    for path, charts in expected.items():
        page.console_messages.clear()
        page.goto(f"{live_server.url}{path}")
        page.wait_for_function(
            f"document.querySelectorAll('[data-drawn=true]').length === {charts}", timeout=30_000
        )
        # plotly.js drew real SVG for each figure
        assert page.locator(".chart-plot .main-svg").count() >= charts, path
        errors = [m for m in page.console_messages if m.startswith("error")]
        assert errors == [], (path, errors)
