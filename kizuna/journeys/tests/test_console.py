"""Console pages of journeys: each page renders for staff with the permission, refuses the
anonymous and the under-privileged, and writes through the services."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from kizuna.journeys import services
from kizuna.journeys.models import Journey
from kizuna.journeys.services import Entrant
from kizuna.journeys.tests.conftest import graph, live, make_customer
from kizuna.messaging.models import Channel, Template

EN = {"HTTP_ACCEPT_LANGUAGE": "en"}


@pytest.fixture
def browser(make_staff: Any) -> Any:
    def make(role: str = "marketer") -> Client:
        client = Client()
        client.force_login(make_staff(role))
        return client

    return make


def test_anonymous_and_underprivileged_are_refused(
    browser: Any, mail: Channel, thanks: Template
) -> None:
    journey = live(graph(mail))
    anonymous = Client()
    for path in (
        "/journeys/",
        f"/journeys/{journey.pk}/",
        "/journeys/templates/",
    ):
        response = anonymous.get(path)
        assert response.status_code == 302 and "/login/" in response["Location"]
    nobody = Client()
    nobody.force_login(
        get_user_model().objects.create_user(username="nobody", password="x-Pass-123!")
    )
    assert nobody.get("/journeys/").status_code == 403
    support = browser("support")
    assert support.get("/journeys/").status_code == 200
    assert support.get(f"/journeys/{journey.pk}/edit/").status_code == 403
    assert support.post(f"/journeys/{journey.pk}/pause/").status_code == 403
    assert support.post("/journeys/templates/use/", {"template": "welcome"}).status_code == 403
    journey.refresh_from_db()
    assert journey.status == "live"


def test_list_detail_chart_counts_and_actions(
    browser: Any, mail: Channel, thanks: Template
) -> None:
    journey = live(graph(mail), name="Thank-you")
    services.enrol_many(journey=journey, entrants=[Entrant(make_customer("x@example.jp").pk)])
    services.journeys_run_due()
    client = browser()
    listing = client.get("/journeys/", **EN)
    assert listing.status_code == 200 and "Thank-you" in listing.content.decode()
    page = client.get(f"/journeys/{journey.pk}/", **EN).content.decode()
    assert "<svg" in page and "Send · send" in page and "Award points · points" in page
    assert "1 in · 1 waiting" in page  # the wait step's counts on the chart
    assert "1 done · 0 exited · 0 conv." in page  # the send step moved its customer on
    assert "1 entered, 1 waiting, 0 completed, 0 exited, 0 conversions" in page
    simulated = client.get(f"/journeys/{journey.pk}/?simulate=1&days=7", **EN)
    assert "Would reach" in simulated.content.decode()
    response = client.post(f"/journeys/{journey.pk}/pause/")
    assert response.status_code == 302
    journey.refresh_from_db()
    assert journey.status == "paused"
    client.post(f"/journeys/{journey.pk}/resume/")
    journey.refresh_from_db()
    assert journey.status == "live"
    assert client.post(f"/journeys/{journey.pk}/explode/").status_code == 404


def test_editor_validates_and_names_the_step(browser: Any, mail: Channel, thanks: Template) -> None:
    client = browser()
    assert client.get("/journeys/new/", **EN).status_code == 200
    bad = graph(mail)
    bad["nodes"].append({"id": "orphan", "type": "exit"})
    response = client.post("/journeys/new/", {"name": "X", "graph": json.dumps(bad)}, **EN)
    assert response.status_code == 422
    assert "nodes.orphan" in response.content.decode() and not Journey.objects.exists()
    broken = client.post("/journeys/new/", {"name": "X", "graph": "{nope"}, **EN)
    assert broken.status_code == 422 and "Not valid JSON" in broken.content.decode()
    check = client.post("/journeys/check/", {"graph": json.dumps(bad)}, **EN).content.decode()
    assert "nodes.orphan" in check and "<svg" in check
    ok = client.post("/journeys/check/", {"graph": json.dumps(graph(mail))}, **EN)
    assert "The graph is valid." in ok.content.decode()
    saved = client.post("/journeys/new/", {"name": "Good", "graph": json.dumps(graph(mail))})
    journey = Journey.objects.get()
    assert saved.status_code == 302 and journey.name == "Good" and journey.status == "draft"
    client.post(f"/journeys/{journey.pk}/publish/")
    journey.refresh_from_db()
    assert journey.status == "live" and journey.live_version is not None


def test_gallery_and_use_a_template(browser: Any, mail: Channel) -> None:
    client = browser()
    page = client.get("/journeys/templates/", **EN).content.decode()
    assert page.count("Use this template") == 8 and "Birthday coupon" in page
    ja = client.get("/journeys/templates/", HTTP_ACCEPT_LANGUAGE="ja").content.decode()
    assert "誕生日クーポン" in ja
    response = client.post(
        "/journeys/templates/use/",
        {"template": "birthday_coupon", "email_channel": mail.pk},
    )
    journey = Journey.objects.get()
    assert response.status_code == 302 and journey.template_key == "birthday_coupon"
    refused = client.post(
        "/journeys/templates/use/", {"template": "nope", "email_channel": mail.pk}
    )
    assert refused.status_code == 302 and Journey.objects.count() == 1
