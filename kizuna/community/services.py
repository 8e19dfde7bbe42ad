"""Writes of the community: events and registrations (race-safe capacity: the event row is
locked while a seat is taken, so concurrent registrations never exceed it; the rest go on the
waitlist, promoted in order when a seat frees up), QR check-in (a signed token per
registration; attendance is published as `community.event_attended`, which the loyalty
programme turns into points when its `event_points` name it), reminders (published as
`community.event_reminder_due` for messaging/journeys to send: this layer cannot send), and
the idea board (one vote per customer, comments, staff status published as
`community.idea_status_changed` so the author can be notified)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from kizuna.community.models import (
    CommunityEvent,
    EventKind,
    EventStatus,
    Idea,
    IdeaComment,
    IdeaStatus,
    IdeaVote,
    Registration,
    RegistrationStatus,
)
from kizuna.core.audit import acting_as
from kizuna.core.timeutil import now
from kizuna.customers.models import Customer
from kizuna.customers.services import event_record

CHECK_IN_SALT = "kizuna.community.check-in"
CHECK_IN_EARLY = timedelta(hours=2)  # check-in opens this long before the start
CHECK_IN_LATE = timedelta(hours=2)  # and closes this long after the end
MAX_TITLE = 120
MAX_BODY = 5000
MAX_COMMENT = 2000
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,59}$")


class Errors(dict[str, list[str]]):
    def add(self, field: str, message: str) -> None:
        self.setdefault(field, []).append(message)

    def raise_if_any(self) -> None:
        if self:
            raise ValidationError(dict(self))


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        parsed = parse_datetime(value)
        if parsed is not None and parsed.tzinfo is not None:
            return parsed
    return None


# --- events ---------------------------------------------------------------------------------

EVENT_FIELDS = (
    "slug",
    "title",
    "title_en",
    "description",
    "description_en",
    "kind",
    "starts_at",
    "ends_at",
    "venue",
    "online_url",
    "capacity",
    "reminder_hours",
)


def _clean_event(data: dict[str, Any], event: CommunityEvent | None) -> dict[str, Any]:
    errors = Errors()
    for field in sorted(set(data) - set(EVENT_FIELDS)):
        errors.add(field, _("Unknown field."))
    clean: dict[str, Any] = {}
    merged = {f: getattr(event, f) for f in EVENT_FIELDS} if event else {}
    merged.update(data)
    slug = merged.get("slug") or ""
    if not isinstance(slug, str) or not SLUG_RE.match(slug):
        errors.add("slug", _("Use lower-case letters, digits, - and _ (up to 60)."))
    elif CommunityEvent.objects.filter(slug=slug).exclude(pk=event.pk if event else 0).exists():
        errors.add("slug", _("An event with this slug already exists."))
    title = merged.get("title") or ""
    if not isinstance(title, str) or not title.strip() or len(title) > 200:
        errors.add("title", _("A title of 1 to 200 characters is required."))
    if merged.get("kind") not in EventKind.values:
        errors.add("kind", _("Choose one of: %(c)s.") % {"c": ", ".join(EventKind.values)})
    starts, ends = _when(merged.get("starts_at")), _when(merged.get("ends_at"))
    if starts is None:
        errors.add("starts_at", _("A start time with a time zone is required."))
    if ends is None:
        errors.add("ends_at", _("An end time with a time zone is required."))
    elif starts is not None and ends < starts:
        errors.add("ends_at", _("The event cannot end before it starts."))
    capacity = merged.get("capacity")
    if not isinstance(capacity, int) or isinstance(capacity, bool) or not 1 <= capacity <= 100_000:
        errors.add("capacity", _("The capacity is a whole number from 1 to 100,000."))
    elif (
        event is not None
        and capacity < event.registrations.filter(status=RegistrationStatus.REGISTERED).count()
    ):
        errors.add("capacity", _("More people are already registered than this capacity."))
    hours = merged.get("reminder_hours", 24)
    if not isinstance(hours, int) or isinstance(hours, bool) or not 0 <= hours <= 24 * 14:
        errors.add("reminder_hours", _("Reminder hours are 0 to 336."))
    url = merged.get("online_url") or ""
    if url and (not isinstance(url, str) or not url.startswith("https://")):
        errors.add("online_url", _("An online event's link must start with https://."))
    errors.raise_if_any()
    for field in EVENT_FIELDS:
        if field in data or event is None:
            value = merged.get(field)
            if field in ("starts_at", "ends_at"):
                value = _when(value)
            elif value is None:
                value = 24 if field == "reminder_hours" else ""
            clean[field] = value.strip() if isinstance(value, str) else value
    return clean


@transaction.atomic
def event_create(*, data: dict[str, Any], actor: AbstractBaseUser | None = None) -> CommunityEvent:
    clean = _clean_event(data, None)
    with acting_as(actor):
        return CommunityEvent.objects.create(**clean)


@transaction.atomic
def event_update(
    *, event: CommunityEvent, data: dict[str, Any], actor: AbstractBaseUser | None = None
) -> CommunityEvent:
    event = CommunityEvent.objects.select_for_update().get(pk=event.pk)
    clean = _clean_event(data, event)
    with acting_as(actor):
        for field, value in clean.items():
            setattr(event, field, value)
        event.save()
    return event


@transaction.atomic
def event_set_status(
    *, event: CommunityEvent, status: str, actor: AbstractBaseUser | None = None
) -> CommunityEvent:
    if status not in EventStatus.values:
        raise ValidationError(
            {"status": [_("Choose one of: %(c)s.") % {"c": ", ".join(EventStatus.values)}]}
        )
    event = CommunityEvent.objects.select_for_update().get(pk=event.pk)
    with acting_as(actor):
        event.status = status
        event.save(update_fields=["status"])
    return event


def _publish(type: str, customer_id: int, key: str, properties: dict[str, Any]) -> None:
    event_record(
        type=type,
        customer=Customer.objects.get(pk=customer_id),
        properties=properties,
        source="community",
        message_id=f"{type}:{key}",
    )


@transaction.atomic
def register(*, event: CommunityEvent, customer: Customer) -> Registration:
    """A seat if one is free, else a place on the waitlist. Registering again returns the
    existing registration. The event row is locked: concurrent registrations are counted
    one after the other."""
    event = CommunityEvent.objects.select_for_update().get(pk=event.pk)
    if event.status != EventStatus.PUBLISHED:
        raise ValidationError({"event": [_("This event is not open for registration.")]})
    if event.starts_at <= now():
        raise ValidationError({"event": [_("This event has already started.")]})
    existing = Registration.objects.filter(event=event, customer=customer).first()
    if existing is not None and existing.status != RegistrationStatus.CANCELLED:
        return existing
    taken = Registration.objects.filter(event=event, status=RegistrationStatus.REGISTERED).count()
    status = (
        RegistrationStatus.REGISTERED if taken < event.capacity else RegistrationStatus.WAITLISTED
    )
    at = now()
    if existing is not None:
        existing.status, existing.registered_at, existing.checked_in_at = status, at, None
        existing.save(update_fields=["status", "registered_at", "checked_in_at"])
        registration = existing
    else:
        registration = Registration.objects.create(
            event=event, customer=customer, status=status, registered_at=at
        )
    _publish(
        f"community.{status}",
        customer.pk,
        f"{registration.pk}:{at.timestamp()}",
        {"event_id": event.pk, "event_slug": event.slug, "registration_id": registration.pk},
    )
    return registration


@transaction.atomic
def registration_cancel(*, registration: Registration) -> Registration | None:
    """Cancel; a freed seat goes to the first on the waitlist (returned, or None)."""
    event = CommunityEvent.objects.select_for_update().get(pk=registration.event_id)
    registration = Registration.objects.select_for_update().get(pk=registration.pk)
    if registration.status == RegistrationStatus.CANCELLED:
        return None
    if registration.checked_in_at is not None:
        raise ValidationError(
            {"registration": [_("An attended registration cannot be cancelled.")]}
        )
    freed = registration.status == RegistrationStatus.REGISTERED
    registration.status = RegistrationStatus.CANCELLED
    registration.save(update_fields=["status"])
    if not freed:
        return None
    promoted = (
        Registration.objects.select_for_update()
        .filter(event=event, status=RegistrationStatus.WAITLISTED)
        .order_by("registered_at", "id")
        .first()
    )
    if promoted is None:
        return None
    promoted.status = RegistrationStatus.REGISTERED
    promoted.save(update_fields=["status"])
    _publish(
        "community.waitlist_promoted",
        promoted.customer_id,
        str(promoted.pk) + f":{now().timestamp()}",
        {"event_id": event.pk, "event_slug": event.slug, "registration_id": promoted.pk},
    )
    return promoted


def check_in_token(registration: Registration) -> str:
    return signing.dumps({"r": registration.pk, "e": registration.event_id}, salt=CHECK_IN_SALT)


def registration_from_token(token: str) -> Registration | None:
    try:
        data = signing.loads(token, salt=CHECK_IN_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("r"), int):
        return None
    return (
        Registration.objects.select_related("event", "customer")
        .filter(pk=data["r"], event_id=data.get("e"))
        .first()
    )


@transaction.atomic
def check_in(*, token: str, actor: AbstractBaseUser | None = None) -> Registration:
    """Check a guest in from the QR code on their ticket. Publishes
    `community.event_attended` once (loyalty awards its points)."""
    found = registration_from_token(token)
    if found is None:
        raise ValidationError({"token": [_("This code is not a valid ticket.")]})
    registration = Registration.objects.select_for_update().get(pk=found.pk)
    event = found.event
    if registration.status != RegistrationStatus.REGISTERED:
        raise ValidationError(
            {
                "token": [
                    _("This ticket is not a confirmed seat (%(s)s).")
                    % {"s": registration.get_status_display()}
                ]
            }
        )
    if event.status == EventStatus.CANCELLED:
        raise ValidationError({"token": [_("This event was cancelled.")]})
    at = now()
    if not event.starts_at - CHECK_IN_EARLY <= at <= event.ends_at + CHECK_IN_LATE:
        raise ValidationError({"token": [_("Check-in is open only around the event's time.")]})
    if registration.checked_in_at is not None:
        raise ValidationError(
            {
                "token": [
                    _("Already checked in at %(t)s.")
                    % {"t": registration.checked_in_at.strftime("%H:%M")}
                ]
            }
        )
    with acting_as(actor):
        registration.checked_in_at = at
        registration.save(update_fields=["checked_in_at"])
    _publish(
        "community.event_attended",
        registration.customer_id,
        str(registration.pk),
        {
            "event_id": event.pk,
            "event_slug": event.slug,
            "event_kind": event.kind,
            "registration_id": registration.pk,
        },
    )
    return registration


def reminders_publish(*, at: datetime | None = None) -> int:
    """Publish `community.event_reminder_due` for every confirmed guest of the published
    events starting within their reminder window, once per event. Returns the number of
    reminders published."""
    at = at or now()
    published = 0
    candidates = CommunityEvent.objects.filter(
        status=EventStatus.PUBLISHED, reminded_at__isnull=True, starts_at__gt=at
    )
    for event in candidates:
        if event.starts_at - timedelta(hours=event.reminder_hours) > at:
            continue
        with transaction.atomic():
            locked = CommunityEvent.objects.select_for_update().get(pk=event.pk)
            if locked.reminded_at is not None:
                continue
            guests = Registration.objects.filter(
                event=locked, status=RegistrationStatus.REGISTERED
            ).values_list("pk", "customer_id")
            for registration_id, customer_id in guests:
                _publish(
                    "community.event_reminder_due",
                    customer_id,
                    str(registration_id),
                    {
                        "event_id": locked.pk,
                        "event_slug": locked.slug,
                        "event_title": locked.title,
                        "starts_at": locked.starts_at.isoformat(),
                        "registration_id": registration_id,
                    },
                )
                published += 1
            CommunityEvent.objects.filter(pk=locked.pk).update(reminded_at=at)
    return published


# --- ideas ----------------------------------------------------------------------------------


def _text(value: Any, field: str, limit: int, errors: Errors, label: str) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        errors.add(field, label)
    elif len(text) > limit:
        errors.add(field, _("At most %(n)d characters, please.") % {"n": limit})
    return text


@transaction.atomic
def idea_post(*, customer: Customer, title: Any, body: Any) -> Idea:
    errors = Errors()
    title = _text(title, "title", MAX_TITLE, errors, _("Give your idea a title."))
    body = _text(body, "body", MAX_BODY, errors, _("Describe your idea."))
    errors.raise_if_any()
    return Idea.objects.create(author=customer, title=title, body=body)


def idea_vote(*, idea: Idea, customer: Customer) -> bool:
    """One vote per customer (a unique constraint): True when counted, False when this
    customer had already voted."""
    try:
        with transaction.atomic():
            IdeaVote.objects.create(idea=idea, customer=customer)
            Idea.objects.filter(pk=idea.pk).update(vote_count=F("vote_count") + 1)
    except IntegrityError:
        return False
    return True


@transaction.atomic
def idea_unvote(*, idea: Idea, customer: Customer) -> bool:
    deleted, _rows = IdeaVote.objects.filter(idea=idea, customer=customer).delete()
    if deleted:
        Idea.objects.filter(pk=idea.pk).update(vote_count=F("vote_count") - 1)
    return bool(deleted)


@transaction.atomic
def idea_comment(
    *,
    idea: Idea,
    body: Any,
    customer: Customer | None = None,
    staff: AbstractBaseUser | None = None,
) -> IdeaComment:
    errors = Errors()
    text = _text(body, "body", MAX_COMMENT, errors, _("Write a comment."))
    if customer is None and staff is None:
        errors.add("author", _("A comment needs an author."))
    errors.raise_if_any()
    return IdeaComment.objects.create(
        idea=idea, body=text, customer=customer, staff_id=getattr(staff, "pk", None)
    )


@transaction.atomic
def comment_hide(
    *, comment: IdeaComment, hidden: bool = True, actor: AbstractBaseUser | None = None
) -> IdeaComment:
    with acting_as(actor):
        comment.hidden = hidden
        comment.save(update_fields=["hidden"])
    return comment


@transaction.atomic
def idea_set_status(
    *, idea: Idea, status: str, note: str = "", actor: AbstractBaseUser | None = None
) -> Idea:
    """Staff move an idea along (under review → adopted → released, or declined); the
    author is told through `community.idea_status_changed`."""
    if status not in IdeaStatus.values:
        raise ValidationError(
            {"status": [_("Choose one of: %(c)s.") % {"c": ", ".join(IdeaStatus.values)}]}
        )
    if len(note) > MAX_BODY:
        raise ValidationError({"note": [_("At most %(n)d characters, please.") % {"n": MAX_BODY}]})
    idea = Idea.objects.select_for_update().get(pk=idea.pk)
    old = idea.status
    if old == status and note == idea.staff_note:
        return idea
    at = now()
    with acting_as(actor):
        idea.status, idea.staff_note, idea.status_changed_at = status, note.strip(), at
        idea.save(update_fields=["status", "staff_note", "status_changed_at"])
    if idea.author_id is not None and old != status:
        _publish(
            "community.idea_status_changed",
            idea.author_id,
            f"{idea.pk}:{status}:{at.timestamp()}",
            {
                "idea_id": idea.pk,
                "title": idea.title,
                "old_status": old,
                "status": status,
                "note": idea.staff_note[:500],
            },
        )
    return idea
