"""The portal's community pages: events (register, waitlist, cancel, QR ticket) and the idea
board (post, vote once, comment), escaped text, CSRF and rate limits."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.core.signing import dumps
from django.test import Client

from kizuna.community.models import CommunityEvent, Idea, IdeaComment, Registration
from kizuna.core.timeutil import now

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


def _token(customer: Any) -> str:
    # The member portal's signed link (kizuna.portal.links: same salt and shape).
    return dumps({"c": customer.pk}, salt="kizuna.portal.member", compress=True)


def test_register_waitlist_ticket_and_cancel(
    people: list, django_capture_on_commit_callbacks: Any
) -> None:
    event = CommunityEvent.objects.create(
        slug="x",
        title="<i>試飲会</i>",
        kind="tasting",
        status="published",
        starts_at=now() + timedelta(days=2),
        ends_at=now() + timedelta(days=2, hours=1),
        capacity=1,
    )
    first, second = Client(), Client()
    url0, url1 = f"/m/events/{_token(people[0])}/", f"/m/events/{_token(people[1])}/"
    page = first.get(url0 + "?lang=en")
    assert page.status_code == 200 and "1 seat left" in page.content.decode()
    assert "<i>試飲会</i>" not in page.content.decode()  # escaped
    assert first.post(url0, {"event": event.pk, "action": "register"}).status_code == 302
    assert second.post(url1, {"event": event.pk, "action": "register"}).status_code == 302
    statuses = dict(Registration.objects.values_list("customer_id", "status"))
    assert statuses == {people[0].pk: "registered", people[1].pk: "waitlisted"}
    mine = first.get(url0 + "?lang=en").content.decode()
    seat = Registration.objects.get(customer=people[0])
    assert f"/ticket/{seat.pk}.svg" in mine
    qr = first.get(f"/m/events/{_token(people[0])}/ticket/{seat.pk}.svg")
    assert qr.status_code == 200 and qr["Content-Type"] == "image/svg+xml"
    # Another member cannot fetch that ticket.
    assert second.get(f"/m/events/{_token(people[1])}/ticket/{seat.pk}.svg").status_code == 404
    assert "waitlist" in second.get(url1 + "?lang=en").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        first.post(url0, {"event": event.pk, "action": "cancel"})
    assert Registration.objects.get(customer=people[1]).status == "registered"


def test_ideas_post_vote_once_and_comment(people: list) -> None:
    client = Client()
    url = f"/m/ideas/{_token(people[0])}/?lang=en"
    bad = client.post(url, {"action": "post", "title": "", "body": "x"})
    assert bad.status_code == 400 and 'id="err-title"' in bad.content.decode()
    assert (
        client.post(
            url, {"action": "post", "title": "抹茶", "body": "<script>alert(1)</script>"}
        ).status_code
        == 302
    )
    idea = Idea.objects.get()
    voter = Client()
    vurl = f"/m/ideas/{_token(people[1])}/"
    voter.post(vurl, {"action": "vote", "idea": idea.pk})
    voter.post(vurl, {"action": "vote", "idea": idea.pk})
    idea.refresh_from_db()
    assert idea.vote_count == 1
    voter.post(vurl, {"action": "comment", "idea": idea.pk, "body": "<b>いいね</b>"})
    assert IdeaComment.objects.get().body == "<b>いいね</b>"
    body = voter.get(vurl).content.decode()
    assert "<script>alert(1)</script>" not in body and "&lt;script&gt;" in body
    assert "<b>いいね</b>" not in body and "&lt;b&gt;いいね&lt;/b&gt;" in body
    assert 'aria-pressed="true"' in body


@pytest.mark.usefixtures("ratelimit_clock_pinned")
def test_bad_token_csrf_and_rate_limit(people: list) -> None:
    assert Client().get("/m/ideas/garbage/").status_code == 404
    strict = Client(enforce_csrf_checks=True)
    url = f"/m/ideas/{_token(people[0])}/"
    assert strict.post(url, {"action": "post", "title": "a", "body": "b"}).status_code == 403
    client = Client()
    codes = [
        client.post(url, {"action": "post", "title": "", "body": ""}).status_code for _ in range(12)
    ]
    assert codes[:10] == [400] * 10 and codes[10] in (403, 429)
    assert not Idea.objects.exists()
