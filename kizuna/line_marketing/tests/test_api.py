from __future__ import annotations

import json

import pytest
from django.test import Client

from kizuna.iam.services import api_key_create
from kizuna.line_marketing.models import LineAudience

pytestmark = pytest.mark.django_db


@pytest.fixture
def call(make_staff):
    def make(role: str = "marketer"):
        key = api_key_create(name=role, role=role, created_by=make_staff(role))
        client = Client()

        def send(method: str, path: str, body=None, **headers: str):
            headers = {"Authorization": f"Bearer {key.secret}", "Accept-Language": "en", **headers}
            if method == "GET":
                return client.get(path, headers=headers)
            return client.post(
                path, json.dumps(body or {}), content_type="application/json", headers=headers
            )

        return send

    return make


def test_upload_and_narrowcast_through_the_api(call, channel, tokyo, line_server) -> None:
    api = call("marketer")
    created = api("POST", "/api/v1/line/audiences", {"channel": channel.pk, "segment": tokyo.pk})
    assert created.status_code == 201, created.content
    audience = created.json()
    assert audience["size"] == 3
    assert [a["id"] for a in api("GET", "/api/v1/line/audiences").json()] == [audience["id"]]
    body = {"messages": [{"type": "text", "text": "冬のセールのお知らせ"}]}
    path = f"/api/v1/line/audiences/{audience['id']}/narrowcasts"
    first = api("POST", path, body, **{"Idempotency-Key": "winter-1"})
    again = api("POST", path, body, **{"Idempotency-Key": "winter-1"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"] and len(line_server.narrowcasts) == 1
    assert api("POST", path, body).status_code == 422  # the key is required
    bad = api("POST", path, {"messages": [{"type": "bogus"}]}, **{"Idempotency-Key": "b"})
    assert bad.status_code == 422
    assert (
        api(
            "POST", "/api/v1/line/audiences/999/narrowcasts", body, **{"Idempotency-Key": "x"}
        ).status_code
        == 404
    )


def test_unknown_segment_is_a_field_error(call, channel, line_server) -> None:
    r = call("admin")("POST", "/api/v1/line/audiences", {"channel": channel.pk, "segment": 999})
    assert r.status_code == 422 and "segment" in r.content.decode()
    assert LineAudience.objects.count() == 0


def test_permissions(call, channel, tokyo, line_server) -> None:
    analyst = call("analyst")
    assert analyst("GET", "/api/v1/line/audiences").status_code == 200
    refused = analyst(
        "POST", "/api/v1/line/audiences", {"channel": channel.pk, "segment": tokyo.pk}
    )
    assert refused.status_code == 403
    support = call("support")
    assert support("GET", "/api/v1/line/audiences").status_code == 403
    assert Client().get("/api/v1/line/audiences").status_code == 401
    assert line_server.requests == []


def test_status_and_progress_through_the_api(call, channel, tokyo, line_server) -> None:
    api = call("marketer")
    audience = api("POST", "/api/v1/line/audiences", {"channel": channel.pk, "segment": tokyo.pk})
    audience_id = audience.json()["id"]
    assert audience.json()["status"] == "IN_PROGRESS"
    status = api("POST", f"/api/v1/line/audiences/{audience_id}/status")
    assert status.status_code == 200 and (status.json()["status"], status.json()["line_count"]) == (
        "READY",
        3,
    )
    body = {"messages": [{"type": "text", "text": "お知らせ"}]}
    sent = api(
        "POST",
        f"/api/v1/line/audiences/{audience_id}/narrowcasts",
        body,
        **{"Idempotency-Key": "k"},
    ).json()
    analyst = call("analyst")  # reading LINE's progress is a view
    progress = analyst("POST", f"/api/v1/line/narrowcasts/{sent['id']}/progress")
    assert progress.status_code == 200
    assert (progress.json()["status"], progress.json()["success_count"]) == ("succeeded", 3)
    assert [n["id"] for n in analyst("GET", "/api/v1/line/narrowcasts").json()] == [sent["id"]]
    assert analyst("POST", "/api/v1/line/narrowcasts/999/progress").status_code == 404
    assert (
        call("support")("POST", f"/api/v1/line/narrowcasts/{sent['id']}/progress").status_code
        == 403
    )
    assert Client().post(f"/api/v1/line/audiences/{audience_id}/status").status_code == 401
