"""The community pages of the console: events with registrations and check-in, the idea
board with status and comment moderation, and who may do what."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils.timezone import localtime

from kizuna.community import services
from kizuna.community.models import IdeaComment, Registration
from kizuna.community.tests.conftest import make_event
from kizuna.customers.services import customer_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def guest(db: None) -> Any:
    return customer_create(data={"email": "guest@example.jp", "family_name": "来場"})


def test_check_in_from_the_event_page(
    client: Client, login_as: Callable[[str], Any], guest: Any
) -> None:
    event = make_event(slug="soon", starts_in=timedelta(minutes=20))
    registration = services.register(event=event, customer=guest)
    login_as("support")
    page = client.get(reverse("console:community_event", args=[event.pk]))
    assert page.status_code == 200 and "来場" in page.content.decode()
    url = reverse("console:community_check_in", args=[event.pk])
    client.post(url, {"token": services.check_in_token(registration)})
    registration.refresh_from_db()
    assert registration.checked_in_at is not None
    again = client.post(
        url,
        {"token": services.check_in_token(registration)},
        follow=True,
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert "Already checked in" in again.content.decode()
    assert client.get(reverse("console:community_events")).status_code == 200
    # Support checks in but does not run events.
    status = client.post(
        reverse("console:community_event_status", args=[event.pk]), {"status": "cancelled"}
    )
    assert status.status_code == 403


def test_idea_status_and_moderation(
    client: Client, login_as: Callable[[str], Any], guest: Any
) -> None:
    idea = services.idea_post(customer=guest, title="<b>新商品</b>", body="ほうじ茶ラテ")
    comment = services.idea_comment(idea=idea, customer=guest, body="spam spam")
    login_as("marketer")
    page = client.get(reverse("console:community_ideas"))
    body = page.content.decode()
    assert page.status_code == 200 and "&lt;b&gt;新商品&lt;/b&gt;" in body
    client.post(
        reverse("console:community_idea_status", args=[idea.pk]),
        {"status": "adopted", "note": "来月発売"},
    )
    idea.refresh_from_db()
    assert idea.status == "adopted" and idea.staff_note == "来月発売"
    client.post(reverse("console:community_comment_hide", args=[comment.pk]), {"hidden": "1"})
    assert IdeaComment.objects.get().hidden is True


def test_permissions(client: Client, login_as: Callable[[str], Any], guest: Any) -> None:
    event = make_event()
    idea = services.idea_post(customer=guest, title="案", body="本文")
    pages = [
        reverse("console:community_events"),
        reverse("console:community_event", args=[event.pk]),
        reverse("console:community_ideas"),
    ]
    for url in pages:
        assert client.get(url)["Location"].startswith(reverse("console:login"))
    login_as("analyst")
    for url in pages:
        assert client.get(url).status_code == 200
    assert (
        client.post(
            reverse("console:community_idea_status", args=[idea.pk]), {"status": "adopted"}
        ).status_code
        == 403
    )
    registration = services.register(event=event, customer=guest)
    assert (
        client.post(
            reverse("console:community_check_in", args=[event.pk]),
            {"token": services.check_in_token(registration)},
        ).status_code
        == 403
    )
    assert Registration.objects.get().checked_in_at is None
    idea.refresh_from_db()
    assert idea.status == "open"


def _event_post(**overrides: Any) -> dict[str, Any]:
    data = {
        "slug": "autumn-tasting",
        "title": "秋の試飲会",
        "title_en": "Autumn tasting",
        "kind": "tasting",
        "starts_at": "2031-10-04T14:00",
        "ends_at": "2031-10-04T16:00",
        "venue": "渋谷店",
        "online_url": "",
        "capacity": "12",
        "reminder_hours": "24",
        "description": "新豆を飲み比べます。",
        "description_en": "",
    }
    data.update(overrides)
    return data


def test_create_and_edit_an_event_in_japan_time(
    client: Client, login_as: Callable[[str], Any]
) -> None:
    from zoneinfo import ZoneInfo

    from kizuna.community.models import CommunityEvent

    login_as("marketer")
    form = client.get(reverse("console:community_event_new"), HTTP_ACCEPT_LANGUAGE="en")
    assert form.status_code == 200 and "Time zone: Asia/Tokyo" in form.content.decode()
    created = client.post(reverse("console:community_event_new"), _event_post())
    event = CommunityEvent.objects.get()
    assert created.status_code == 302
    assert created["Location"] == reverse("console:community_event", args=[event.pk])
    tokyo = ZoneInfo("Asia/Tokyo")
    assert event.starts_at.astimezone(tokyo).strftime("%Y-%m-%d %H:%M") == "2031-10-04 14:00"
    assert event.starts_at.utcoffset() is not None and event.starts_at.hour == 5  # UTC
    assert (event.status, event.capacity, event.title_en) == ("draft", 12, "Autumn tasting")
    # The edit form shows the stored times back in Japan time; slug and kind stay.
    url = reverse("console:community_event_edit", args=[event.pk])
    page = client.get(url).content.decode()
    assert 'value="2031-10-04T14:00"' in page and 'value="2031-10-04T16:00"' in page
    changed = client.post(
        url,
        _event_post(slug="other", kind="online", capacity="30", ends_at="2031-10-04T17:30"),
    )
    assert changed.status_code == 302
    event.refresh_from_db()
    assert (event.slug, event.kind, event.capacity) == ("autumn-tasting", "tasting", 30)
    assert event.ends_at.astimezone(tokyo).strftime("%H:%M") == "17:30"


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"capacity": "-1"}, "capacity", "greater than or equal to 1"),
        ({"capacity": "0"}, "capacity", "greater than or equal to 1"),
        ({"capacity": "many"}, "capacity", "Enter a whole number"),
        ({"ends_at": "2031-10-04T13:00"}, "ends_at", "must end after it starts"),
        ({"ends_at": "2031-10-04T14:00"}, "ends_at", "must end after it starts"),
        ({"starts_at": "next week"}, "starts_at", "Enter a valid date/time"),
        ({"kind": "party"}, "kind", "Select a valid choice"),
        ({"title": ""}, "title", "This field is required"),
        ({"slug": "秋"}, "slug", "Enter a valid “slug”"),
        ({"reminder_hours": "400"}, "reminder_hours", "less than or equal to 336"),
        ({"online_url": "http://zoom.example/x"}, "online_url", "must start with https://"),
    ],
)
def test_bad_event_input_names_the_field_and_writes_nothing(
    client: Client, login_as: Callable[[str], Any], overrides: dict, field: str, message: str
) -> None:
    from kizuna.community.models import CommunityEvent

    login_as("marketer")
    response = client.post(
        reverse("console:community_event_new"), _event_post(**overrides), HTTP_ACCEPT_LANGUAGE="en"
    )
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert list(errors) == [field], errors
    assert message in " ".join(errors[field])
    assert message in response.content.decode().replace("&quot;", '"')
    assert CommunityEvent.objects.count() == 0


def test_edit_refuses_a_capacity_below_the_seats_taken(
    client: Client, login_as: Callable[[str], Any], guest: Any
) -> None:
    event = make_event(capacity=3)
    other = customer_create(data={"email": "two@example.jp", "family_name": "二人目"})
    services.register(event=event, customer=guest)
    services.register(event=event, customer=other)
    login_as("marketer")
    url = reverse("console:community_event_edit", args=[event.pk])
    response = client.post(
        url,
        _event_post(
            capacity="1",
            starts_at=localtime(event.starts_at).strftime("%Y-%m-%dT%H:%M"),
            ends_at=localtime(event.ends_at).strftime("%Y-%m-%dT%H:%M"),
        ),
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert list(errors) == ["capacity"]
    assert "More people are already registered" in " ".join(errors["capacity"])
    event.refresh_from_db()
    assert event.capacity == 3


def test_event_forms_are_refused_to_anonymous_and_under_privileged(
    client: Client, login_as: Callable[[str], Any]
) -> None:
    from kizuna.community.models import CommunityEvent

    event = make_event()
    new, edit = (
        reverse("console:community_event_new"),
        reverse("console:community_event_edit", args=[event.pk]),
    )
    for url in (new, edit):
        assert client.get(url)["Location"].startswith(reverse("console:login"))
        assert client.post(url, _event_post(slug="x1"))["Location"].startswith(
            reverse("console:login")
        )
    for role in ("analyst", "support"):
        login_as(role)
        for url in (new, edit):
            assert client.get(url).status_code == 403
            assert client.post(url, _event_post(slug="x2", capacity="99")).status_code == 403
    assert CommunityEvent.objects.count() == 1
    event.refresh_from_db()
    assert event.capacity == 2
