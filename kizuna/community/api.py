"""REST API of the community: events (create, change, publish/cancel, registrations on a
customer's behalf), check-in by ticket token, and the idea board's staff side."""
# No `from __future__ import annotations`: ninja reads these annotations at import time.

from datetime import datetime
from typing import Any, ClassVar

from django.http import Http404, HttpRequest
from ninja import Field, Router, Schema, Status
from ninja.pagination import paginate

from kizuna.community import services
from kizuna.community.models import CommunityEvent, Idea, Registration
from kizuna.core.api import InputSchema, PagePagination, responses
from kizuna.customers.selectors import customer_get
from kizuna.iam.authz import request_actor, require_perm
from kizuna.iam.masking import MaskedForRoles

router = Router(tags=["community"])


class EventOut(Schema):
    id: int
    slug: str
    title: str
    title_en: str
    kind: str
    status: str
    starts_at: datetime
    ends_at: datetime
    venue: str
    online_url: str
    capacity: int
    reminder_hours: int
    registered: int
    waitlisted: int

    @staticmethod
    def resolve_registered(obj: CommunityEvent) -> int:
        return obj.registrations.filter(status="registered").count()

    @staticmethod
    def resolve_waitlisted(obj: CommunityEvent) -> int:
        return obj.registrations.filter(status="waitlisted").count()


class EventIn(InputSchema):
    slug: str = Field(..., min_length=1, max_length=60)
    title: str = Field(..., min_length=1, max_length=200)
    title_en: str = Field("", max_length=200)
    description: str = Field("", max_length=10000)
    description_en: str = Field("", max_length=10000)
    kind: str
    starts_at: datetime
    ends_at: datetime
    venue: str = Field("", max_length=200)
    online_url: str = Field("", max_length=200)
    capacity: int
    reminder_hours: int = 24


class EventPatch(InputSchema):
    title: str | None = Field(None, min_length=1, max_length=200)
    title_en: str | None = Field(None, max_length=200)
    description: str | None = Field(None, max_length=10000)
    description_en: str | None = Field(None, max_length=10000)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    venue: str | None = Field(None, max_length=200)
    online_url: str | None = Field(None, max_length=200)
    capacity: int | None = None
    reminder_hours: int | None = None


class StatusIn(InputSchema):
    status: str


class RegistrationIn(InputSchema):
    customer_id: int


class RegistrationOut(Schema):
    id: int
    event_id: int
    customer_id: int
    status: str
    registered_at: datetime
    checked_in_at: datetime | None


class CheckInIn(InputSchema):
    token: str = Field(..., min_length=1, max_length=500)


class IdeaOut(Schema, MaskedForRoles):
    # Contact details in posts masked.
    free_text_fields: ClassVar[frozenset[str]] = frozenset({"title", "body"})

    id: int
    author_id: int | None
    title: str
    body: str
    status: str
    staff_note: str
    vote_count: int
    created_at: datetime


class IdeaStatusIn(InputSchema):
    status: str
    note: str = Field("", max_length=5000)


def _event(event_id: int) -> CommunityEvent:
    event = CommunityEvent.objects.filter(pk=event_id).first()
    if event is None:
        raise Http404
    return event


def _idea(idea_id: int) -> Idea:
    idea = Idea.objects.filter(pk=idea_id).first()
    if idea is None:
        raise Http404
    return idea


@router.get(
    "/community/events",
    response=responses({200: list[EventOut]}, query=True),
    auth=require_perm("community.view_communityevent"),
)
@paginate(PagePagination)
def event_list(request: HttpRequest) -> Any:
    return CommunityEvent.objects.order_by("-starts_at", "-id")


@router.post(
    "/community/events",
    response=responses({201: EventOut}, body=True),
    auth=require_perm("community.add_communityevent"),
)
def event_create(request: HttpRequest, payload: EventIn) -> Any:
    event = services.event_create(data=payload.model_dump(), actor=request_actor(request))
    return Status(201, event)


@router.patch(
    "/community/events/{event_id}",
    response=responses({200: EventOut}, lookup=True, body=True),
    auth=require_perm("community.change_communityevent"),
)
def event_patch(request: HttpRequest, event_id: int, payload: EventPatch) -> Any:
    return services.event_update(
        event=_event(event_id),
        data=payload.model_dump(exclude_unset=True),
        actor=request_actor(request),
    )


@router.post(
    "/community/events/{event_id}/status",
    response=responses({200: EventOut}, lookup=True, body=True),
    auth=require_perm("community.change_communityevent"),
)
def event_status(request: HttpRequest, event_id: int, payload: StatusIn) -> Any:
    return services.event_set_status(
        event=_event(event_id), status=payload.status, actor=request_actor(request)
    )


@router.get(
    "/community/events/{event_id}/registrations",
    response=responses({200: list[RegistrationOut]}, lookup=True, query=True),
    auth=require_perm("community.view_registration"),
)
@paginate(PagePagination)
def registration_list(request: HttpRequest, event_id: int) -> Any:
    return Registration.objects.filter(event=_event(event_id)).order_by("registered_at", "id")


@router.post(
    "/community/events/{event_id}/registrations",
    response=responses({200: RegistrationOut}, lookup=True, body=True),
    auth=require_perm("community.change_registration"),
)
def registration_create(request: HttpRequest, event_id: int, payload: RegistrationIn) -> Any:
    """Register a customer (a seat, or the waitlist when full); again: the same one."""
    return services.register(
        event=_event(event_id), customer=customer_get(customer_id=payload.customer_id)
    )


@router.post(
    "/community/check-ins",
    response=responses({200: RegistrationOut}, body=True),
    auth=require_perm("community.change_registration"),
)
def check_in(request: HttpRequest, payload: CheckInIn) -> Any:
    """Check a guest in with the token of the QR code on their ticket."""
    return services.check_in(token=payload.token, actor=request_actor(request))


@router.get(
    "/community/ideas",
    response=responses({200: list[IdeaOut]}, query=True),
    auth=require_perm("community.view_idea"),
)
@paginate(PagePagination)
def idea_list(request: HttpRequest) -> Any:
    return Idea.objects.order_by("-vote_count", "-id")


@router.post(
    "/community/ideas/{idea_id}/status",
    response=responses({200: IdeaOut}, lookup=True, body=True),
    auth=require_perm("community.change_idea"),
)
def idea_status(request: HttpRequest, idea_id: int, payload: IdeaStatusIn) -> Any:
    return services.idea_set_status(
        idea=_idea(idea_id), status=payload.status, note=payload.note, actor=request_actor(request)
    )
