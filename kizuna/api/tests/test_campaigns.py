# ruff: noqa: F811  (fixtures imported from the campaigns and messaging test modules)
"""Campaigns API: create (errors name the field), the approval step through permissions,
schedule → real SMTP on loopback, results; refusals before anything is sent."""

from __future__ import annotations

from typing import Any

import pytest

from kizuna.api.tests.helpers import fields
from kizuna.campaigns.models import Campaign
from kizuna.campaigns.tests.conftest import (  # noqa: F401  (fixtures)
    _english,
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


def _body(segments: list[Any], channel: Any, template: Any, **extra: Any) -> dict[str, Any]:
    return {
        "name": "冬のセール",
        "include_segments": [s.pk for s in segments],
        "email_channel": channel.pk,
        "variants": [{"email_template": template.pk}],
        **extra,
    }


def test_create_schedule_and_results(
    api_as, commit, smtp_server, email_channel, newsletter, tokyo
) -> None:
    make_customer("hanako@example.jp")
    make_customer("taro@example.jp", opt_in=False)
    marketer, admin = api_as("marketer"), api_as("admin")
    created = marketer.post("/api/v1/campaigns", _body([tokyo], email_channel, newsletter))
    assert created.status_code == 201, created.content
    campaign = created.json()
    assert campaign["status"] == "draft" and campaign["variants"][0]["key"] == "A"
    assert campaign["include_segments"] == [tokyo.pk]
    # A marketer may not schedule: the route needs the send permission.
    path = f"/api/v1/campaigns/{campaign['id']}"
    assert marketer.post(f"{path}/schedule").status_code == 403
    submitted = marketer.post(f"{path}/submit")
    assert submitted.status_code == 200 and submitted.json()["status"] == "pending_approval"
    assert Delivery.objects.count() == 0
    approved = commit(admin.post, f"{path}/schedule")
    assert approved.status_code == 200, approved.content
    assert admin.get(path).json()["status"] == "completed"
    assert [m.recipients for m in smtp_server[1].messages] == [["hanako@example.jp"]]
    results = marketer.get(f"{path}/results")
    assert results.status_code == 200
    (row,) = results.json()["variants"]
    assert (row["recipients"], row["sent"], row["refused"]) == (2, 1, 1)
    assert results.json()["holdout"] is None
    listed = admin.get("/api/v1/campaigns", status="completed").json()
    assert listed["count"] == 1 and listed["items"][0]["id"] == campaign["id"]
    assert api_as("support").post("/api/v1/campaigns", {}).status_code == 403


def test_bad_input_and_empty_audience(api_as, email_channel, newsletter, osaka) -> None:
    admin = api_as("admin")
    bad = admin.post(
        "/api/v1/campaigns",
        _body([osaka], email_channel, newsletter, holdout_percent=70, colour="red"),
    )
    assert bad.status_code == 422
    assert set(fields(bad)) == {"holdout_percent", "colour"}
    wrong = admin.post(
        "/api/v1/campaigns",
        {**_body([osaka], email_channel, newsletter), "variants": [{"email_template": 99999}]},
    )
    assert wrong.status_code == 422 and fields(wrong) == ["variants[0].email_template"]
    assert not Campaign.objects.exists()
    created = admin.post("/api/v1/campaigns", _body([osaka], email_channel, newsletter)).json()
    refused = admin.post(
        f"/api/v1/campaigns/{created['id']}/schedule", headers={"Accept-Language": "en"}
    )
    assert refused.status_code == 422
    assert refused.json()["detail"] == [
        {
            "field": "include_segments",
            "message": "The audience is empty: no customer is in these segments.",
        }
    ]
    assert admin.get(f"/api/v1/campaigns/{created['id']}").json()["status"] == "draft"
    assert admin.get("/api/v1/campaigns/424242").status_code == 404
    assert Delivery.objects.count() == 0
