"""The community pages of the console: events with registrations and check-in, the idea
board with status and comment moderation, and who may do what."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

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
