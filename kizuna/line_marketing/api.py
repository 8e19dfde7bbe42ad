"""REST API of LINE marketing: audiences uploaded from segments (and LINE's status of them),
and narrowcasts to them (and LINE's progress of each send)."""
# No `from __future__ import annotations`: ninja reads these annotations at import time.

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, Header, Router, Schema, Status
from pydantic import StrictInt

from kizuna.core.api import InputSchema, responses
from kizuna.core.errors import NotFound
from kizuna.iam.authz import request_actor, require_perm
from kizuna.line_marketing import services
from kizuna.line_marketing.models import LineAudience, Narrowcast
from kizuna.messaging.models import Channel
from kizuna.segments.models import Segment

router = Router(tags=["line"])


class AudienceIn(InputSchema):
    channel: StrictInt = Field(..., description="Id of a LINE channel (messaging).")
    segment: StrictInt = Field(..., description="Id of the segment to upload.")
    description: str = Field("", max_length=120, description="Default: the segment's name.")


class AudienceOut(Schema):
    id: int
    channel_id: int
    segment_id: int
    description: str
    audience_group_id: int
    size: int
    status: str = Field(..., description="LINE's status: IN_PROGRESS, READY, FAILED, EXPIRED...")
    line_count: int | None
    checked_at: datetime | None
    created_at: datetime


class NarrowcastIn(InputSchema):
    messages: list[dict[str, Any]] = Field(
        ..., description="1 to 5 LINE message objects (text, flex, image, ...)."
    )


class NarrowcastOut(Schema):
    id: int
    audience_id: int
    request_id: str
    status: str = Field(
        ..., description="sent, then LINE's phase: waiting, sending, succeeded, failed"
    )
    target_count: int | None
    success_count: int | None
    failure_count: int | None
    error: str
    checked_at: datetime | None
    created_at: datetime


def _get(model: Any, pk: int, field: str) -> Any:
    obj = model.objects.filter(pk=pk).first()
    if obj is None:
        raise ValidationError({field: [_("Nothing with id %(id)s.") % {"id": pk}]})
    return obj


@router.get(
    "/line/audiences",
    response=responses({200: list[AudienceOut]}),
    auth=require_perm("line_marketing.view_lineaudience"),
)
def audience_list(request: HttpRequest) -> Any:
    return list(LineAudience.objects.order_by("-created_at", "-id")[:200])


@router.post(
    "/line/audiences",
    response=responses({201: AudienceOut}, body=True),
    auth=require_perm("line_marketing.add_lineaudience"),
)
def audience_create(request: HttpRequest, payload: AudienceIn) -> Status[LineAudience]:
    """Upload the segment's members who follow the LINE account as a LINE audience."""
    audience = services.audience_upload(
        channel=_get(Channel, payload.channel, "channel"),
        segment=_get(Segment, payload.segment, "segment"),
        description=payload.description,
        actor=request_actor(request),
    )
    return Status(201, audience)


@router.post(
    "/line/audiences/{audience_id}/narrowcasts",
    response=responses({200: NarrowcastOut, 201: NarrowcastOut}, lookup=True, body=True),
    auth=require_perm("line_marketing.add_narrowcast"),
)
def narrowcast_create(
    request: HttpRequest,
    audience_id: int,
    payload: NarrowcastIn,
    idempotency_key: str = Header(..., alias="Idempotency-Key", min_length=1, max_length=120),
) -> Any:
    """Narrowcast to the audience; the same Idempotency-Key answers 200 with the first send."""
    audience = LineAudience.objects.select_related("channel").filter(pk=audience_id).first()
    if audience is None:
        raise NotFound("audience", audience_id)
    existed = Narrowcast.objects.filter(idempotency_key=idempotency_key).exists()
    sent = services.narrowcast_send(
        audience=audience, messages=payload.messages, idempotency_key=idempotency_key
    )
    return Status(200 if existed else 201, sent)


@router.post(
    "/line/audiences/{audience_id}/status",
    response=responses({200: AudienceOut}, lookup=True, body=True),
    auth=require_perm("line_marketing.view_lineaudience"),
)
def audience_status(request: HttpRequest, audience_id: int) -> Any:
    """Ask LINE for the audience's status and matched count, store and return them."""
    audience = LineAudience.objects.select_related("channel").filter(pk=audience_id).first()
    if audience is None:
        raise NotFound("audience", audience_id)
    return services.audience_refresh(audience=audience)


@router.get(
    "/line/narrowcasts",
    response=responses({200: list[NarrowcastOut]}),
    auth=require_perm("line_marketing.view_narrowcast"),
)
def narrowcast_list(request: HttpRequest) -> Any:
    return list(Narrowcast.objects.order_by("-created_at", "-id")[:200])


@router.post(
    "/line/narrowcasts/{narrowcast_id}/progress",
    response=responses({200: NarrowcastOut}, lookup=True, body=True),
    auth=require_perm("line_marketing.view_narrowcast"),
)
def narrowcast_progress(request: HttpRequest, narrowcast_id: int) -> Any:
    """Ask LINE's progress API how far the send is (phase, targets, delivered, failed)."""
    sent = Narrowcast.objects.select_related("audience__channel").filter(pk=narrowcast_id).first()
    if sent is None:
        raise NotFound("narrowcast", narrowcast_id)
    return services.narrowcast_refresh(narrowcast=sent)
