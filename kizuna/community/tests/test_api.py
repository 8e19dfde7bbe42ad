from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client

from kizuna.community import services
from kizuna.community.models import CommunityEvent, Registration
from kizuna.core.timeutil import now
from kizuna.iam.services import api_key_create

from .conftest import make_event

pytestmark = pytest.mark.django_db


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


def test_events_registrations_and_check_in(call: Any, people: list) -> None:
    api = call("marketer")
    start = now() + timedelta(minutes=30)
    created = api(
        "POST",
        "/api/v1/community/events",
        {
            "slug": "seminar-1",
            "title": "コーヒー講座",
            "kind": "seminar",
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(hours=1)).isoformat(),
            "capacity": 1,
        },
    )
    assert created.status_code == 201, created.content
    event_id = created.json()["id"]
    assert (
        api("POST", f"/api/v1/community/events/{event_id}/status", {"status": "published"}).json()[
            "status"
        ]
        == "published"
    )
    support = call("support")
    first = support(
        "POST", f"/api/v1/community/events/{event_id}/registrations", {"customer_id": people[0].pk}
    )
    second = support(
        "POST", f"/api/v1/community/events/{event_id}/registrations", {"customer_id": people[1].pk}
    )
    assert first.json()["status"] == "registered" and second.json()["status"] == "waitlisted"
    listed = support("GET", f"/api/v1/community/events/{event_id}/registrations").json()
    assert listed["count"] == 2
    token = services.check_in_token(Registration.objects.get(pk=first.json()["id"]))
    checked = support("POST", "/api/v1/community/check-ins", {"token": token})
    assert checked.status_code == 200 and checked.json()["checked_in_at"]
    again = support("POST", "/api/v1/community/check-ins", {"token": token})
    assert again.status_code == 422 and again.json()["detail"][0]["field"] == "token"
    events = api("GET", "/api/v1/community/events").json()
    assert events["items"][0]["registered"] == 1 and events["items"][0]["waitlisted"] == 1


def test_bad_event_is_422_and_permissions(call: Any, people: list) -> None:
    api = call("admin")
    start = now() + timedelta(days=1)
    bad = api(
        "POST",
        "/api/v1/community/events",
        {
            "slug": "x",
            "title": "x",
            "kind": "seminar",
            "starts_at": start.isoformat(),
            "ends_at": (start - timedelta(hours=1)).isoformat(),
            "capacity": 5,
        },
    )
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "ends_at"
    assert not CommunityEvent.objects.exists()
    assert Client().get("/api/v1/community/events").status_code == 401
    analyst = call("analyst")
    assert analyst("GET", "/api/v1/community/ideas").status_code == 200
    event = make_event()
    assert (
        analyst(
            "POST",
            f"/api/v1/community/events/{event.pk}/registrations",
            {"customer_id": people[0].pk},
        ).status_code
        == 403
    )
    idea = services.idea_post(customer=people[0], title="案", body="本文")
    assert (
        analyst(
            "POST", f"/api/v1/community/ideas/{idea.pk}/status", {"status": "adopted"}
        ).status_code
        == 403
    )
    ok = api("POST", f"/api/v1/community/ideas/{idea.pk}/status", {"status": "under_review"})
    assert ok.status_code == 200 and ok.json()["status"] == "under_review"
    assert not Registration.objects.exists()
