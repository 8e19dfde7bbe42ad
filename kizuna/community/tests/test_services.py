from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from kizuna.community import personal_data, services
from kizuna.community.models import (
    CommunityEvent,
    Idea,
    IdeaComment,
    IdeaStatus,
    IdeaVote,
    Registration,
    RegistrationStatus,
)
from kizuna.core import events as bus
from kizuna.core.timeutil import now
from kizuna.customers.models import Event
from kizuna.customers.services import customer_create

from .conftest import make_event

pytestmark = pytest.mark.django_db


def _capture(event_type: str) -> list[bus.DomainEvent]:
    seen: list[bus.DomainEvent] = []
    bus.subscribe(event_type, seen.append)
    return seen


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"capacity": 0}, "capacity"),
        ({"capacity": "10"}, "capacity"),
        ({"kind": "party"}, "kind"),
        ({"ends_at": "2020-01-01T00:00:00+09:00"}, "ends_at"),
        ({"starts_at": "tomorrow"}, "starts_at"),
        ({"online_url": "http://insecure.example"}, "online_url"),
        ({"slug": "Bad Slug"}, "slug"),
        ({"bogus": 1}, "bogus"),
    ],
)
def test_bad_events_are_refused(data: dict[str, Any], field: str) -> None:
    start = now() + timedelta(days=1)
    base = {
        "slug": "e",
        "title": "E",
        "kind": "seminar",
        "starts_at": start,
        "ends_at": start + timedelta(hours=1),
        "capacity": 10,
    }
    with pytest.raises(ValidationError) as exc:
        services.event_create(data={**base, **data})
    assert field in exc.value.message_dict
    assert not CommunityEvent.objects.exists()


def test_capacity_waitlist_and_promotion(
    event: CommunityEvent, people: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    promoted_events = _capture("community.waitlist_promoted")
    with django_capture_on_commit_callbacks(execute=True):
        regs = [services.register(event=event, customer=p) for p in people[:3]]
    assert [r.status for r in regs] == ["registered", "registered", "waitlisted"]
    # Registering again is idempotent.
    assert services.register(event=event, customer=people[0]).pk == regs[0].pk
    with django_capture_on_commit_callbacks(execute=True):
        promoted = services.registration_cancel(registration=regs[1])
    assert promoted is not None and promoted.pk == regs[2].pk
    assert promoted.status == RegistrationStatus.REGISTERED
    assert [e.customer_id for e in promoted_events] == [people[2].pk]
    assert Registration.objects.filter(status="registered").count() == 2
    # Cancelling a waitlisted place frees nothing.
    waiting = services.register(event=event, customer=people[3])
    assert waiting.status == "waitlisted"
    assert services.registration_cancel(registration=waiting) is None
    assert Event.objects.filter(type="community.registered").count() == 2


def test_capacity_cannot_drop_below_the_registered(event: CommunityEvent, people: list) -> None:
    services.register(event=event, customer=people[0])
    services.register(event=event, customer=people[1])
    with pytest.raises(ValidationError) as exc:
        services.event_update(event=event, data={"capacity": 1})
    assert "capacity" in exc.value.message_dict


def test_unpublished_or_started_events_refuse_registration(people: list) -> None:
    started = make_event(slug="live", starts_in=timedelta(minutes=-10))
    with pytest.raises(ValidationError) as exc:
        services.register(event=started, customer=people[0])
    assert "already started" in exc.value.message_dict["event"][0]
    draft = make_event(slug="draft")
    services.event_set_status(event=draft, status="draft")
    with pytest.raises(ValidationError):
        services.register(event=draft, customer=people[0])
    assert not Registration.objects.exists()


def test_check_in_by_signed_token_once(
    people: list, django_capture_on_commit_callbacks: Any
) -> None:
    attended = _capture("community.event_attended")
    soon = make_event(slug="soon", starts_in=timedelta(minutes=30))
    registration = services.register(event=soon, customer=people[0])
    token = services.check_in_token(registration)
    with pytest.raises(ValidationError) as exc:
        services.check_in(token=token[:-3] + "abc")
    assert "not a valid ticket" in exc.value.message_dict["token"][0]
    with django_capture_on_commit_callbacks(execute=True):
        done = services.check_in(token=token)
    assert done.checked_in_at is not None
    assert len(attended) == 1 and attended[0].event_id is not None  # loyalty keys on it
    assert attended[0].properties["event_kind"] == "tasting"
    with pytest.raises(ValidationError) as exc:
        services.check_in(token=token)
    assert "Already checked in" in exc.value.message_dict["token"][0]
    assert Event.objects.filter(type="community.event_attended").count() == 1


def test_check_in_refused_for_waitlisted_and_out_of_window(people: list) -> None:
    far = make_event(slug="far", capacity=1, starts_in=timedelta(days=5))
    seat = services.register(event=far, customer=people[0])
    waiting = services.register(event=far, customer=people[1])
    with pytest.raises(ValidationError) as exc:
        services.check_in(token=services.check_in_token(waiting))
    assert "not a confirmed seat" in exc.value.message_dict["token"][0]
    with pytest.raises(ValidationError) as exc:
        services.check_in(token=services.check_in_token(seat))
    assert "around the event" in exc.value.message_dict["token"][0]


def test_reminders_published_once_per_event(
    people: list, django_capture_on_commit_callbacks: Any
) -> None:
    due = _capture("community.event_reminder_due")
    soon = make_event(slug="soon", starts_in=timedelta(hours=5))
    later = make_event(slug="later", starts_in=timedelta(days=5))
    services.register(event=soon, customer=people[0])
    services.register(event=soon, customer=people[1])
    services.register(event=later, customer=people[2])
    with django_capture_on_commit_callbacks(execute=True):
        assert services.reminders_publish() == 2
    assert sorted(e.customer_id or 0 for e in due) == sorted([people[0].pk, people[1].pk])
    assert services.reminders_publish() == 0
    with django_capture_on_commit_callbacks(execute=True):
        assert services.reminders_publish(at=now() + timedelta(days=4, hours=1)) == 1


def test_ideas_vote_once_comment_and_status(
    people: list, django_capture_on_commit_callbacks: Any
) -> None:
    changed = _capture("community.idea_status_changed")
    idea = services.idea_post(customer=people[0], title="抹茶ラテを", body="期間限定で")
    assert services.idea_vote(idea=idea, customer=people[1]) is True
    assert services.idea_vote(idea=idea, customer=people[1]) is False
    assert services.idea_vote(idea=idea, customer=people[2]) is True
    idea.refresh_from_db()
    assert idea.vote_count == 2 and IdeaVote.objects.count() == 2
    assert services.idea_unvote(idea=idea, customer=people[2]) is True
    idea.refresh_from_db()
    assert idea.vote_count == 1
    comment = services.idea_comment(idea=idea, customer=people[1], body="ぜひ！")
    assert comment.body == "ぜひ！"
    with django_capture_on_commit_callbacks(execute=True):
        services.idea_set_status(idea=idea, status=IdeaStatus.ADOPTED, note="来春発売予定")
    assert len(changed) == 1
    assert changed[0].customer_id == people[0].pk
    assert changed[0].properties["status"] == "adopted"
    assert changed[0].properties["old_status"] == "open"
    with pytest.raises(ValidationError):
        services.idea_set_status(idea=idea, status="shipped")


@pytest.mark.parametrize(
    ("title", "body", "field"),
    [("", "x", "title"), ("x" * 121, "x", "title"), ("x", "", "body"), ("x", "y" * 5001, "body")],
)
def test_bad_ideas_are_refused(people: list, title: str, body: str, field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        services.idea_post(customer=people[0], title=title, body=body)
    assert field in exc.value.message_dict
    assert not Idea.objects.exists()


def test_personal_data_export_and_erase(event: CommunityEvent, people: list) -> None:
    services.register(event=event, customer=people[0])
    idea = services.idea_post(customer=people[0], title="私のアイデア", body="山田より")
    services.idea_vote(idea=idea, customer=people[0])
    services.idea_comment(idea=idea, customer=people[0], body="電話 090-0000-0000")
    cid = people[0].pk
    assert next(iter(personal_data._ideas_export(cid)))["body"] == "山田より"
    assert personal_data._registrations_erase(cid, pseudonym="erased-1") == 1
    assert personal_data._ideas_erase(cid, pseudonym="erased-1") == 1
    assert personal_data._votes_erase(cid, pseudonym="erased-1") == 1
    assert personal_data._comments_erase(cid, pseudonym="erased-1") == 1
    idea.refresh_from_db()
    assert idea.author_id is None and idea.body == "" and idea.vote_count == 1
    assert IdeaComment.objects.get().body == ""
    assert list(personal_data._comments_export(cid)) == []


@pytest.mark.django_db(transaction=True)
def test_concurrent_registrations_never_exceed_capacity() -> None:
    """Twenty customers register at once for five seats: exactly five get one."""
    event = make_event(slug="race", capacity=5)
    customers = [customer_create(data={"email": f"r{n}@example.jp"}) for n in range(20)]
    barrier = threading.Barrier(len(customers))
    errors: list[BaseException] = []

    def run(customer: Any) -> None:
        try:
            barrier.wait(timeout=20)
            services.register(event=event, customer=customer)
        except BaseException as exc:  # pragma: no cover - reported by the assertion
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(c,)) for c in customers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    statuses = list(Registration.objects.filter(event=event).values_list("status", flat=True))
    assert len(statuses) == 20
    assert statuses.count("registered") == 5 and statuses.count("waitlisted") == 15
