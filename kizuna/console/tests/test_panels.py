from __future__ import annotations

import pytest

from kizuna.console import panels
from kizuna.customers.services import customer_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def restore_panels():
    panels.contributed_panels_load()  # first: restored with the contributed ones
    saved = dict(panels._panels)
    yield
    panels._panels.clear()
    panels._panels.update(saved)


def test_registered_panels_render_on_the_customer_360_by_permission(
    client, make_staff, restore_panels, tmp_path, settings
) -> None:
    (tmp_path / "panel_test.html").write_text('<section id="p-{{ panel.word }}">x</section>')
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [str(tmp_path)]}]
    panels.register_customer_panel(
        panels.CustomerPanel("shown", "panel_test.html", lambda r, c: {"word": f"s{c.pk}"})
    )
    panels.register_customer_panel(
        panels.CustomerPanel("hidden", "panel_test.html", lambda r, c: None)
    )
    panels.register_customer_panel(
        panels.CustomerPanel(
            "admins",
            "panel_test.html",
            lambda r, c: {"word": "admin"},
            permission="iam.add_apikey",
        )
    )
    customer = customer_create(data={"family_name": "林"})
    client.force_login(make_staff("analyst"))
    page = client.get(f"/customers/{customer.pk}/").content.decode()
    assert f'id="p-s{customer.pk}"' in page
    assert 'id="p-admin"' not in page
    assert page.count('<section id="p-') == 1
    client.force_login(make_staff("admin"))
    page = client.get(f"/customers/{customer.pk}/").content.decode()
    assert 'id="p-admin"' in page


def test_every_contributing_module_registers_its_panel_when_first_needed() -> None:
    panels.contributed_panels_load()
    panels.contributed_panels_load()  # once: the second call finds them loaded
    assert set(panels._panels) >= {
        "accounts",
        "analytics.scores",
        "loyalty",
        "messaging",
        "privacy",
        "recommendations.products",
        "segments",
        "subscriptions",
        "support",
        "surveys",
    }
