"""The recommendations console: the report with its charts, train now, product and category
settings, the customer-360 panel, and who may do what."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from kizuna.recommendations import services
from kizuna.recommendations.models import ItemSetting, RunStatus, RunTrigger, TrainingRun
from kizuna.recommendations.tests.conftest import AS_OF, _isolated, shop  # noqa: F401

pytestmark = pytest.mark.django_db


def login(client: Client, make_staff, role: str) -> Client:
    client.force_login(make_staff(role))
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def figures(html: str) -> dict[str, dict]:
    blocks = re.findall(r'<script id="([^"]+)" type="application/json">(.*?)</script>', html, re.S)
    return {key: json.loads(body) for key, body in blocks}


def test_the_report_shows_metrics_charts_and_versions(client, make_staff, shop):  # noqa: F811
    shop()
    services.training_run_now(trigger=RunTrigger.CLI, as_of=AS_OF)
    services.training_run_now(trigger=RunTrigger.CLI, as_of=AS_OF)
    login(client, make_staff, "analyst")
    response = client.get("/recommendations/")
    assert response.status_code == 200
    html = response.content.decode()
    found = figures(html)
    assert {"fig-rec-metrics", "fig-rec-history"} <= set(found)
    bars = found["fig-rec-metrics"]["data"]
    assert len(bars) == 4 and bars[0]["x"][2] == "MAP@10"
    assert "Holdout evaluation" in html and "Train now" in html
    assert "Recommendations</a>" in html  # the nav entry
    assert "Save setting" not in html  # analysts do not manage settings


def test_train_now_queues_a_run(client, make_staff, shop, django_capture_on_commit_callbacks):  # noqa: F811
    shop()
    login(client, make_staff, "marketer")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/recommendations/train/")
    assert response.status_code == 302
    run = TrainingRun.objects.get()
    assert run.trigger == RunTrigger.CONSOLE and run.status == RunStatus.SUCCEEDED


def test_settings_are_saved_checked_and_removed(client, make_staff, shop):  # noqa: F811
    world = shop()
    login(client, make_staff, "marketer")
    response = client.post(
        "/recommendations/settings/", {"target": "coffee", "consumable": "on"}, follow=True
    )
    setting = ItemSetting.objects.get()
    assert setting.category == world.coffee and setting.consumable and not setting.excluded
    assert "Setting saved for coffee." in response.content.decode()
    response = client.post("/recommendations/settings/", {"target": "nothing"}, follow=True)
    assert "No product or category nothing." in response.content.decode()
    assert ItemSetting.objects.count() == 1
    client.post(f"/recommendations/settings/{setting.pk}/delete/")
    assert not ItemSetting.objects.exists()


def test_the_customer_360_shows_recommended_products(client, make_staff, shop):  # noqa: F811
    world = shop()
    login(client, make_staff, "support")
    page = client.get(f"/customers/{world.customers[0]}/").content.decode()
    assert 'id="recommendations"' not in page  # nothing trained yet: no section
    services.training_run_now(trigger=RunTrigger.CLI, as_of=AS_OF, evaluate=False)
    page = client.get(f"/customers/{world.customers[0]}/").content.decode()
    assert 'id="recommendations"' in page and "Recommended products" in page


def test_permissions(client, make_staff, db):
    for path in ("/recommendations/",):
        response = Client().get(path)
        assert response.status_code == 302 and "/login/" in response["Location"]
    for path in ("/recommendations/train/", "/recommendations/settings/"):
        assert Client().post(path).status_code == 302
    login(client, make_staff, "support")
    assert client.get("/recommendations/").status_code == 200
    assert client.post("/recommendations/train/").status_code == 403
    assert client.post("/recommendations/settings/", {"target": "x"}).status_code == 403
    assert not TrainingRun.objects.exists() and not ItemSetting.objects.exists()
