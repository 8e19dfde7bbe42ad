"""The journeys API: permissions, create/validate with the step at fault named, publish,
pause/resume, stats, simulate, templates."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from kizuna.iam.services import api_key_create
from kizuna.journeys.models import Journey
from kizuna.journeys.tests.conftest import graph
from kizuna.messaging.models import Channel, Template


@pytest.fixture
def call(make_staff: Any) -> Any:
    def make(role: str = "admin") -> Any:
        key = api_key_create(name=role, role=role, created_by=make_staff(role))
        client = Client()

        def send(method: str, path: str, body: Any = None) -> Any:
            headers = {"Authorization": f"Bearer {key.secret}", "Accept-Language": "en"}
            if method == "GET":
                return client.get(path, headers=headers)
            return client.generic(
                method,
                path,
                json.dumps(body or {}),
                content_type="application/json",
                headers=headers,
            )

        return send

    return make


def test_anonymous_and_underprivileged_are_refused(
    call: Any, mail: Channel, thanks: Template
) -> None:
    assert Client().get("/api/v1/journeys").status_code == 401
    support = call("support")
    assert support("GET", "/api/v1/journeys").status_code == 200  # everyone may read
    refused = support("POST", "/api/v1/journeys", {"name": "x", "graph": graph(mail)})
    assert refused.status_code == 403
    analyst = call("analyst")
    assert (
        analyst("POST", "/api/v1/journeys", {"name": "x", "graph": graph(mail)}).status_code == 403
    )
    assert not Journey.objects.exists()


def test_create_publish_pause_resume_stats(call: Any, mail: Channel, thanks: Template) -> None:
    api = call("marketer")
    bad = graph(mail)
    bad["nodes"][0]["template"] = "missing"
    response = api("POST", "/api/v1/journeys", {"name": "Thanks", "graph": bad})
    assert response.status_code == 422
    assert {
        "field": "nodes.send",
        "message": "There is no message template missing.",
    } in response.json()["detail"]
    assert not Journey.objects.exists()

    check = api("POST", "/api/v1/journeys/validate", {"graph": bad}).json()
    assert check["valid"] is False and list(check["errors"]) == ["nodes.send"]

    created = api("POST", "/api/v1/journeys", {"name": "Thanks", "graph": graph(mail)})
    assert created.status_code == 201
    jid = created.json()["id"]
    published = api("POST", f"/api/v1/journeys/{jid}/publish").json()
    assert (published["status"], published["live_version"]) == ("live", 1)
    assert api("POST", f"/api/v1/journeys/{jid}/pause").json()["status"] == "paused"
    again = api("POST", f"/api/v1/journeys/{jid}/pause")
    assert again.status_code == 422
    assert api("POST", f"/api/v1/journeys/{jid}/resume").json()["status"] == "live"
    stats = api("GET", f"/api/v1/journeys/{jid}/stats").json()
    assert [s["node"] for s in stats["steps"]] == ["send", "wait", "points", "done"]
    assert stats["enrolled"] == 0
    edited = api("PUT", f"/api/v1/journeys/{jid}", {"name": "Thanks v2"}).json()
    assert edited["name"] == "Thanks v2"
    listed = api("GET", "/api/v1/journeys").json()
    assert [j["id"] for j in listed["items"]] == [jid]
    assert api("GET", "/api/v1/journeys/999999").status_code == 404


def test_templates_and_create_from_one(call: Any, mail: Channel) -> None:
    api = call("admin")
    keys = [t["key"] for t in api("GET", "/api/v1/journeys/templates").json()]
    assert len(keys) == 8 and "win_back" in keys
    created = api("POST", "/api/v1/journeys", {"template": "win_back", "email_channel": mail.pk})
    assert created.status_code == 201 and created.json()["template_key"] == "win_back"


def test_simulate(call: Any, mail: Channel, thanks: Template) -> None:
    api = call("analyst")
    result = api("POST", "/api/v1/journeys/simulate", {"graph": graph(mail), "days": 7})
    assert result.status_code == 200 and result.json()["entrants"] == 0
    bad = api("POST", "/api/v1/journeys/simulate", {"graph": {"nodes": []}, "days": 7})
    assert bad.status_code == 422
