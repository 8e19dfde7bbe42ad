"""REST API of audiences: create and read segments, live counts (also of unsaved rules for
a builder), members (paged), refresh, static lists."""
# No `from __future__ import annotations`: ninja reads these annotations at import time.

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status
from ninja.pagination import paginate

from kizuna.core.api import InputSchema, PagePagination, responses
from kizuna.iam.authz import request_actor, require_perm
from kizuna.iam.masking import MaskedForRoles
from kizuna.segments import selectors, services
from kizuna.segments.models import Segment

router = Router(tags=["segments"])


class SegmentOut(Schema):
    id: int
    name: str
    slug: str
    kind: str
    rules: dict[str, Any]
    description: str
    member_count: int = Field(..., description="Members at the last refresh")
    refreshed_at: datetime | None
    created_at: datetime
    updated_at: datetime


class SegmentIn(InputSchema):
    name: str = Field(..., min_length=1, max_length=100)
    slug: str = Field("", max_length=100, description="Generated from the name when empty")
    kind: str = Field("dynamic", description='"dynamic" (rules) or "static" (uploaded list)')
    rules: dict[str, Any] | None = Field(None, description="Rule document (docs/segments.md)")
    description: str = Field("", max_length=2000)


class SegmentPatch(InputSchema):
    name: str | None = Field(None, min_length=1, max_length=100)
    slug: str | None = Field(None, max_length=100)
    rules: dict[str, Any] | None = None
    description: str | None = Field(None, max_length=2000)


class RulesIn(InputSchema):
    rules: dict[str, Any]


class CountOut(Schema):
    count: int
    segment_id: int | None = None


class MemberOut(Schema, MaskedForRoles):
    id: int
    display_name: str
    email: str
    prefecture: str


class RefreshOut(Schema):
    segment_id: int
    size: int
    entered: int
    left: int
    at: datetime


class ListIn(InputSchema):
    csv: str = Field(..., min_length=1, max_length=20_000_000, description="CSV text")
    key: str | None = Field(None, description="email, external_id or customer_id (no header)")
    replace: bool = True
    skip_unknown: bool = False


class ListOut(Schema):
    matched: int
    entered: int
    left: int
    unknown: list[str]


@router.get(
    "/segments",
    response=responses({200: list[SegmentOut]}, query=True),
    auth=require_perm("segments.view_segment"),
)
@paginate(PagePagination)
def segment_list(request: HttpRequest) -> Any:
    return selectors.segment_list()


@router.post(
    "/segments",
    response=responses({201: SegmentOut}, body=True),
    auth=require_perm("segments.add_segment"),
)
def segment_create(request: HttpRequest, payload: SegmentIn) -> Status[Segment]:
    """Create a segment. Bad rules are a 422 naming each condition's path
    (`conditions[2].field`), a cycle of segments included; nothing is saved then."""
    data = payload.model_dump(exclude_none=True)
    if not data.get("slug"):
        data.pop("slug", None)
    segment = services.segment_save(data=data, actor=request_actor(request))
    return Status(201, segment)


@router.post(
    "/segments/count",
    response=responses({200: CountOut}, body=True),
    auth=require_perm("segments.view_segment"),
)
def rules_count(request: HttpRequest, payload: RulesIn) -> dict[str, Any]:
    """How many customers unsaved rules select (a builder's live count); nothing is saved.
    (Declared before `/segments/{segment_id}` so that "count" is not read as an id.)"""
    return {"count": selectors.rules_preview(rules=payload.rules).count()}


@router.get(
    "/segments/{segment_id}",
    response=responses({200: SegmentOut}, lookup=True),
    auth=require_perm("segments.view_segment"),
)
def segment_get(request: HttpRequest, segment_id: int) -> Segment:
    return selectors.segment_get(segment_id=segment_id)


@router.patch(
    "/segments/{segment_id}",
    response=responses({200: SegmentOut}, lookup=True, body=True),
    auth=require_perm("segments.change_segment"),
)
def segment_update(request: HttpRequest, segment_id: int, payload: SegmentPatch) -> Segment:
    segment = selectors.segment_get(segment_id=segment_id)
    data = payload.model_dump(exclude_unset=True)
    return services.segment_save(segment=segment, data=data, actor=request_actor(request))


@router.get(
    "/segments/{segment_id}/count",
    response=responses({200: CountOut}, lookup=True),
    auth=require_perm("segments.view_segment"),
)
def segment_count(request: HttpRequest, segment_id: int) -> dict[str, Any]:
    """The number of members now (live evaluation of the rules, not the last refresh)."""
    segment = selectors.segment_get(segment_id=segment_id)
    return {"count": selectors.segment_customers(segment=segment).count(), "segment_id": segment.pk}


@router.get(
    "/segments/{segment_id}/members",
    response=responses({200: list[MemberOut]}, lookup=True, query=True),
    auth=require_perm("segments.view_segment"),
)
@paginate(PagePagination)
def segment_members(request: HttpRequest, segment_id: int) -> Any:
    """The members now (live evaluation), by customer id, newest first."""
    segment = selectors.segment_get(segment_id=segment_id)
    return selectors.segment_customers(segment=segment).order_by("-pk")


@router.post(
    "/segments/{segment_id}/refresh",
    response=responses({200: RefreshOut}, lookup=True, body=True),
    auth=require_perm("segments.change_segment"),
)
def segment_refresh(request: HttpRequest, segment_id: int) -> Any:
    """Materialise the membership now, recording who entered and left."""
    segment = selectors.segment_get(segment_id=segment_id)
    return services.segment_refresh(segment=segment)


@router.post(
    "/segments/{segment_id}/list",
    response=responses({200: ListOut}, lookup=True, body=True),
    auth=require_perm("segments.change_segment"),
)
def segment_list_upload(request: HttpRequest, segment_id: int, payload: ListIn) -> Any:
    """Set or extend a static segment's list from CSV of emails, external ids or customer
    ids; unknown rows are a 422 keyed `rows[<line>]` unless `skip_unknown`."""
    segment = selectors.segment_get(segment_id=segment_id)
    return services.segment_upload_static(
        segment=segment,
        text=payload.csv,
        key=payload.key,
        replace=payload.replace,
        skip_unknown=payload.skip_unknown,
        actor=request_actor(request),
    )
