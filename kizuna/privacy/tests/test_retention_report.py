"""Retention reported (docs/privacy.md, "Retention"): every run records what each policy did,
how long it took and any policy that failed (rolled back, the others still ran); the console
page /privacy/retention/ and GET /api/v1/privacy/retention-runs show the runs and the
configured policies to holders of privacy.view_retentionrun only."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from kizuna.core.timeutil import now
from kizuna.customers.models import Event
from kizuna.customers.services import event_record
from kizuna.iam.services import api_key_create
from kizuna.privacy import retention
from kizuna.privacy.models import RetentionRun
from kizuna.privacy.tests.conftest import World


def _old_events(world: World) -> None:
    old = now() - timedelta(days=800)
    for _ in range(3):
        event_record(type="Page Viewed", customer=world.subject, occurred_at=old)


def test_run_records_rows_duration_and_trigger(world: World) -> None:
    _old_events(world)
    run = retention.run(trigger="worker")
    run.refresh_from_db()
    assert run.trigger == "worker" and run.errors == {} and not run.dry_run
    assert run.finished_at is not None and run.finished_at >= run.started_at
    assert run.duration_seconds is not None and run.duration_seconds >= 0
    events = run.report["events"]
    assert events["rows"] == 3 and events["aggregates"] == 1 and events["seconds"] >= 0
    assert set(run.report) == {"events", "delivery_bodies", "inbox", "inquiries", "survey_text"}


def test_a_failing_policy_is_rolled_back_and_recorded(
    world: World, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    _old_events(world)
    before = Event.objects.count()

    def broken(cutoff: Any, dry_run: bool) -> dict[str, Any]:
        Event.objects.all().delete()  # partly done, then it fails: must be rolled back
        raise RuntimeError("disk full")

    policies = [
        (k, n, d, u, broken if k == "events" else f) for k, n, d, u, f in retention.POLICIES
    ]
    monkeypatch.setattr(retention, "POLICIES", policies)
    out = StringIO()
    with pytest.raises(CommandError, match="events"):
        call_command("privacy", "retention", stdout=out)
    run = RetentionRun.objects.get()
    assert run.errors == {"events": "RuntimeError: disk full"}
    assert run.trigger == "command" and run.finished_at is not None
    assert Event.objects.count() == before  # rolled back
    assert "delivery_bodies" in run.report  # the others still ran
    assert '"errors"' in out.getvalue()


def test_policies_follow_the_settings(settings: Any) -> None:
    settings.PRIVACY_RETAIN_INBOX_DAYS = 0
    settings.PRIVACY_RETAIN_EVENTS_MONTHS = 13
    by_key = {p["key"]: p for p in retention.policies()}
    assert by_key["inbox"]["period"] == 0
    assert by_key["events"] == {
        "key": "events",
        "setting": "PRIVACY_RETAIN_EVENTS_MONTHS",
        "period": 13,
        "unit": "months",
    }


def test_console_page_lists_runs_and_policies(world: World, make_staff: Any) -> None:
    _old_events(world)
    retention.run(trigger="worker")
    failed = retention.run(dry_run=True, trigger="command")
    RetentionRun.objects.filter(pk=failed.pk).update(errors={"inbox": "OperationalError: x"})
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(make_staff("admin"))
    response = client.get("/privacy/retention/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "PRIVACY_RETAIN_EVENTS_MONTHS" in page and "Raw events" in page
    assert "worker" in page and "dry run" in page and "OperationalError: x" in page
    assert "1 aggregates" in page
    assert 'href="/privacy/retention/"' in page  # in the privacy section's navigation


@pytest.mark.parametrize("role", ["support", "analyst", "marketer"])
def test_console_page_refuses_anonymous_and_underprivileged(
    db: None, make_staff: Any, role: str
) -> None:
    client = Client()
    assert client.get("/privacy/retention/").status_code == 302  # to the login
    client.force_login(make_staff(role))
    assert client.get("/privacy/retention/").status_code == 403


def test_api_lists_runs_and_policies(world: World, django_user_model: Any) -> None:
    _old_events(world)
    retention.run(trigger="worker")
    retention.run(dry_run=True)
    owner = django_user_model.objects.create_user("owner", is_staff=True)
    secret = api_key_create(name="a", role="admin", created_by=owner).secret
    admin = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    body = admin.get("/api/v1/privacy/retention-runs").json()
    assert body["count"] == 2
    newest, older = body["items"]
    assert newest["dry_run"] is True and older["trigger"] == "worker"
    assert older["report"]["events"]["rows"] == 3 and older["errors"] == {}
    assert older["duration_seconds"] is not None and older["finished_at"]
    only = admin.get("/api/v1/privacy/retention-runs", {"dry_run": "false"}).json()
    assert only["count"] == 1
    policies = admin.get("/api/v1/privacy/retention-policies").json()
    assert {p["key"] for p in policies} >= {"events", "inquiries", "survey_text"}

    assert Client().get("/api/v1/privacy/retention-runs").status_code == 401
    for role in ("support", "analyst"):
        key = api_key_create(name=role, role=role, created_by=owner).secret
        client = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
        assert client.get("/api/v1/privacy/retention-runs").status_code == 403
        assert client.get("/api/v1/privacy/retention-policies").status_code == 403
