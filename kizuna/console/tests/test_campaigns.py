# ruff: noqa: F811  (fixtures imported from the campaigns and messaging test modules)
"""Console pages of campaigns: permissions, the editor (errors on the right field), the
approval flow through the buttons, results with charts, the CSV export."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.test import Client

from kizuna.campaigns import services
from kizuna.campaigns.models import Campaign
from kizuna.campaigns.tests.conftest import (  # noqa: F401  (fixtures)
    _english,
    campaign_data,
    make_customer,
    osaka,
    tokyo,
)
from kizuna.messaging.models import Delivery
from kizuna.messaging.tests.conftest import (  # noqa: F401  (fixtures)
    _daytime,
    commit,
    dkim_key,
    email_channel,
    newsletter,
    smtp_server,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def login(make_staff: Any) -> Any:
    def make(role: str = "admin") -> Client:
        client = Client(HTTP_ACCEPT_LANGUAGE="en")
        client.force_login(make_staff(role))
        return client

    return make


def _form(tokyo: Any, channel: Any, template: Any, **extra: Any) -> dict[str, Any]:
    data = {
        "name": "秋のセール",
        "include_segments": [tokyo.pk],
        "channel_mode": "email",
        "email_channel": channel.pk,
        "schedule": "now",
        "default_hour": 10,
        "holdout_percent": 0,
        "test_percent": 100,
        "test_hours": 4,
        "metric": "open",
        "attribution_days": 7,
        "attribution_model": "last_touch",
        "v0_email_template": template.pk,
        "v0_weight": 1,
    }
    data.update(extra)
    return data


def test_pages_need_login_and_permission(login, email_channel, newsletter, tokyo) -> None:
    campaign = services.campaign_save(data=campaign_data([tokyo], email_channel, newsletter))
    anonymous = Client()
    assert anonymous.get("/campaigns/").status_code == 302
    support = login("support")
    assert support.get("/campaigns/").status_code == 200  # may look
    assert support.get(f"/campaigns/{campaign.pk}/").status_code == 200
    assert anonymous.get(f"/campaigns/{campaign.pk}/send-panel/").status_code == 302
    panel = support.get(f"/campaigns/{campaign.pk}/send-panel/")
    assert panel.status_code == 200 and b"<html" not in panel.content  # the polled fragment
    assert support.post("/campaigns/new/", {}).status_code == 403
    assert support.post(f"/campaigns/{campaign.pk}/cancel/").status_code == 403
    assert support.post(f"/campaigns/{campaign.pk}/test/", {}).status_code == 403
    marketer = login("marketer")
    assert marketer.post(f"/campaigns/{campaign.pk}/schedule/").status_code == 403
    page = marketer.get("/campaigns/").content.decode()
    assert "秋のセール" in page and 'href="/campaigns/"' in page  # nav entry
    campaign.refresh_from_db()
    assert campaign.status == "draft"


def test_editor_saves_and_names_the_field(login, email_channel, newsletter, tokyo) -> None:
    client = login("marketer")
    assert client.get("/campaigns/new/").status_code == 200
    bad = client.post("/campaigns/new/", _form(tokyo, email_channel, newsletter, test_percent=50))
    assert bad.status_code == 200
    assert "A test with a rest that gets the winner needs two variants." in bad.content.decode()
    assert bad.context["form"].errors["test_percent"]
    assert not Campaign.objects.exists()
    good = client.post(
        "/campaigns/new/",
        _form(
            tokyo,
            email_channel,
            newsletter,
            test_percent=50,
            v1_email_template=newsletter.pk,
            v1_subject="{{ customer.name }}様へ",
        ),
    )
    campaign = Campaign.objects.get()
    assert good.status_code == 302 and good["Location"] == f"/campaigns/{campaign.pk}/"
    assert [v.key for v in campaign.variants.order_by("key")] == ["A", "B"]
    assert campaign.variants.get(key="B").subject == "{{ customer.name }}様へ"
    edit = client.get(f"/campaigns/{campaign.pk}/edit/")
    assert edit.status_code == 200 and edit.context["form"].initial["test_percent"] == 50


def test_approval_send_results_and_csv(
    login, commit, smtp_server, email_channel, newsletter, tokyo
) -> None:
    make_customer("hanako@example.jp")
    make_customer("taro@example.jp")
    marketer, admin = login("marketer"), login("admin")
    campaign = services.campaign_save(data=campaign_data([tokyo], email_channel, newsletter))
    detail = marketer.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert "Submit for approval" in detail and "2 customers, 2 of them may be messaged" in detail
    marketer.post(f"/campaigns/{campaign.pk}/submit/")
    campaign.refresh_from_db()
    assert campaign.status == "pending_approval" and Delivery.objects.count() == 0
    assert "Approve and send" in admin.get(f"/campaigns/{campaign.pk}/").content.decode()
    response = commit(admin.post, f"/campaigns/{campaign.pk}/schedule/")
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == "completed" and len(smtp_server[1].messages) == 2
    page = admin.get(f"/campaigns/{campaign.pk}/")
    html = page.content.decode()
    assert page.context["results"]["variants"][0]["sent"] == 2
    assert 'id="fig-rates"' in html and 'id="fig-funnel"' in html and "<script" in html
    exported = admin.get(f"/campaigns/{campaign.pk}/results.csv")
    assert exported["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert rows[0][:5] == ["breakdown", "key", "name", "recipients", "sent"]
    assert rows[1][:5] == ["variant", "A", "", "2", "2"]
    assert rows[2][0] == "segment" and rows[2][2] == "Tokyo"


def test_an_empty_audience_is_refused_with_a_message(
    login, smtp_server, email_channel, newsletter, osaka
) -> None:
    make_customer("hanako@example.jp")  # Tokyo
    campaign = services.campaign_save(data=campaign_data([osaka], email_channel, newsletter))
    response = login("admin").post(f"/campaigns/{campaign.pk}/schedule/", follow=True)
    assert "The audience is empty: no customer is in these segments." in response.content.decode()
    campaign.refresh_from_db()
    assert campaign.status == "draft" and smtp_server[1].messages == []
