"""The live send panel: per lane and per campaign, behind login and permissions; pausing a
lane needs the channel-admin permission and holds its queued deliveries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client

from kizuna.core.timeutil import now
from kizuna.messaging import selectors, services
from kizuna.messaging.models import Delivery, SendHold
from kizuna.messaging.tests.conftest import make_customer

pytestmark = pytest.mark.django_db


@pytest.fixture
def login(make_staff):
    def make(role: str = "admin") -> Client:
        client = Client()
        client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
        client.force_login(make_staff(role))
        return client

    return make


def test_panel_figures(commit, smtp_server, email_channel, newsletter) -> None:
    ids = [make_customer(f"p{i}@example.jp").pk for i in range(4)]
    services.send_hold(key="lane:bulk")
    commit(
        services.delivery_enqueue_many,
        source="campaign:5:a",
        customer_ids=ids,
        channel=email_channel,
        template=newsletter,
    )
    panel = selectors.send_panel(lane="bulk")
    assert panel["backlog"] == 4 and panel["held"] and panel["eta_seconds"] is None
    commit(services.send_release, key="lane:bulk")
    first = Delivery.objects.order_by("id").values_list("pk", flat=True)[0]
    Delivery.objects.filter(pk=first).update(
        status="failed", reason="550 5.7.1 rejected", sent_at=None
    )
    panel = selectors.send_panel(source_prefix="campaign:5:")
    assert panel["final"]["sent"] == 3 and panel["final"]["failed"] == 1
    assert panel["throughput"] == pytest.approx(3 / selectors.PANEL_WINDOW)
    assert panel["errors"] == [{"status": "failed", "reason": "550 5.7.1 rejected", "n": 1}]
    Delivery.objects.update(sent_at=now() - timedelta(hours=1))
    assert selectors.send_panel(lane="bulk")["throughput"] == 0


def test_lane_panel_pages_and_controls(login, email_channel) -> None:
    assert Client().get("/messaging/sending/").status_code == 302
    analyst = login("analyst")
    page = analyst.get("/messaging/sending/")
    assert page.status_code == 200 and b"every 3s" in page.content
    fragment = analyst.get("/messaging/sending/", HTTP_HX_REQUEST="true")
    assert fragment.status_code == 200 and b"<html" not in fragment.content
    assert b"transactional" in fragment.content
    refused = analyst.post("/messaging/sending/control/", {"action": "pause", "lane": "bulk"})
    assert refused.status_code == 403 and not SendHold.objects.exists()
    admin = login("admin")
    paused = admin.post("/messaging/sending/control/", {"action": "pause", "lane": "bulk"})
    assert paused.status_code == 302
    assert SendHold.objects.filter(key="lane:bulk").exists()
    assert b"paused" in admin.get("/messaging/sending/").content
    admin.post("/messaging/sending/control/", {"action": "resume", "lane": "bulk"})
    assert not SendHold.objects.exists()
    admin.post("/messaging/sending/control/", {"action": "pause", "lane": "nonsense"})
    assert not SendHold.objects.exists()
