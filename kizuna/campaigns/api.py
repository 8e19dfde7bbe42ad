"""REST API of campaigns: create a draft, submit it for approval, schedule (or approve) it,
pause or cancel it, read its results."""
# No `from __future__ import annotations`: ninja reads these annotations at import time.

from datetime import datetime
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from ninja import Field, Router, Schema, Status
from ninja.errors import HttpError
from ninja.pagination import paginate
from pydantic import StrictInt

from kizuna.campaigns import selectors, services
from kizuna.campaigns.models import Campaign
from kizuna.core.api import InputSchema, PagePagination, responses
from kizuna.iam.authz import request_actor, require_perm

router = Router(tags=["campaigns"])


class VariantIn(InputSchema):
    name: str = Field("", max_length=100)
    email_template: StrictInt | None = Field(None, description="Id of an email template.")
    line_template: StrictInt | None = Field(None, description="Id of a LINE template.")
    subject: str = Field("", max_length=300, description="Replaces the template's subject.")
    send_hour: int | None = Field(None, ge=0, le=23, description="Send in this local hour.")
    weight: int = Field(1, ge=1, le=100, description="Share of the split (relative).")


class CampaignIn(InputSchema):
    name: str = Field(..., min_length=1, max_length=150)
    include_segments: list[StrictInt] = Field(..., description="Segment ids (any of them).")
    exclude_segments: list[StrictInt] = Field(default_factory=list)
    channel_mode: str = Field("email", description="email, line, or line_email (LINE if linked).")
    email_channel: StrictInt | None = None
    line_channel: StrictInt | None = None
    schedule: str = Field("now", description="now, at (send_at), or best_hour.")
    send_at: datetime | None = None
    default_hour: int = Field(10, ge=0, le=23)
    throttle_per_minute: int | None = Field(None, ge=1)
    holdout_percent: int = Field(0, ge=0, le=50)
    test_percent: int = Field(100, ge=1, le=100)
    test_hours: int = Field(4, ge=1, le=168)
    metric: str = Field("open", description="open, click or conversion: how the winner is chosen.")
    attribution_days: int = Field(7, ge=1, le=90)
    attribution_model: str = Field("last_touch", description="last_touch or any_touch.")
    variants: list[VariantIn] = Field(..., min_length=1, max_length=5)


class VariantOut(Schema):
    key: str
    name: str
    email_template: int | None
    line_template: int | None
    subject: str
    send_hour: int | None
    weight: int


class CampaignOut(Schema):
    id: int
    name: str
    status: str
    channel_mode: str
    email_channel: int | None
    line_channel: int | None
    include_segments: list[int]
    exclude_segments: list[int]
    schedule: str
    send_at: datetime | None
    start_at: datetime | None
    launched_at: datetime | None
    test_ends_at: datetime | None
    audience_size: int
    holdout_percent: int
    test_percent: int
    metric: str
    winner: str | None
    note: str
    variants: list[VariantOut]


class RejectIn(InputSchema):
    note: str = Field("", max_length=500)


class RowOut(Schema):
    recipients: int
    sent: int
    delivered: int
    opened: int = Field(description="Opened by people (machine opens classified out).")
    clicked: int = Field(description="Clicked by people (scanners classified out).")
    opened_raw: int = Field(description="Opened, people and machines (Apple MPP, proxies).")
    clicked_raw: int = Field(description="Clicked, people and machines (link scanners).")
    unsubscribed: int
    bounced: int
    complained: int
    refused: int
    failed: int
    queued: int
    conversions: int
    orders: int
    revenue: int
    delivery_rate: float
    open_rate: float
    click_rate: float
    open_rate_raw: float
    click_rate_raw: float
    conversion_rate: float
    unsubscribe_rate: float


class VariantRowOut(RowOut):
    key: str
    name: str


class SegmentRowOut(RowOut):
    segment_id: int | None
    name: str


class ResultsOut(Schema):
    campaign_id: int
    status: str
    audience: int
    metric: str
    attribution_model: str
    attribution_days: int
    variants: list[VariantRowOut]
    segments: list[SegmentRowOut]
    holdout: dict[str, Any] | None = Field(
        None, description="Treated against holdout: conversion rates, lift, z, p-value, CI."
    )
    test: dict[str, Any] | None = Field(
        None, description="The A/B test so far: leader, runner-up, p-value, CI."
    )
    winner: dict[str, Any] | None = Field(None, description="The recorded winner decision.")


def _out(campaign: Campaign) -> dict[str, Any]:
    return {
        **{
            f: getattr(campaign, f)
            for f in CampaignOut.model_fields
            if f not in ("email_channel", "line_channel", "include_segments", "exclude_segments")
            and f not in ("winner", "variants")
        },
        "email_channel": campaign.email_channel_id,
        "line_channel": campaign.line_channel_id,
        "include_segments": [s.pk for s in campaign.include_segments.all()],
        "exclude_segments": [s.pk for s in campaign.exclude_segments.all()],
        "winner": campaign.winner.key if campaign.winner else None,
        "variants": [
            {
                "key": v.key,
                "name": v.name,
                "email_template": v.email_template_id,
                "line_template": v.line_template_id,
                "subject": v.subject,
                "send_hour": v.send_hour,
                "weight": v.weight,
            }
            for v in campaign.variants.all()
        ],
    }


def _fresh(campaign_id: int) -> dict[str, Any]:
    return _out(selectors.campaign_get(campaign_id=campaign_id))


@router.post(
    "/campaigns",
    response=responses({201: CampaignOut}, body=True),
    auth=require_perm("campaigns.add_campaign"),
)
def campaign_create(request: HttpRequest, payload: CampaignIn) -> Any:
    """Create a draft. Bad input is a 422 naming the field (`variants[1].email_template`)."""
    campaign = services.campaign_save(
        data=payload.model_dump(exclude_unset=False), actor=request_actor(request)
    )
    return Status(201, _fresh(campaign.pk))


@router.get(
    "/campaigns",
    response=responses({200: list[CampaignOut]}, query=True),
    auth=require_perm("campaigns.view_campaign"),
)
@paginate(PagePagination)
def campaign_list(request: HttpRequest, status: str | None = None) -> Any:
    return _Lazy(selectors.campaign_list(status=status).prefetch_related("variants"))


class _Lazy:
    def __init__(self, qs: Any) -> None:
        self.qs = qs

    def __getitem__(self, item: slice) -> list[dict[str, Any]]:
        return [_out(c) for c in self.qs[item]]

    def count(self) -> int:
        return int(self.qs.count())

    def __len__(self) -> int:
        return self.count()


@router.get(
    "/campaigns/{campaign_id}",
    response=responses({200: CampaignOut}, lookup=True),
    auth=require_perm("campaigns.view_campaign"),
)
def campaign_detail(request: HttpRequest, campaign_id: int) -> dict[str, Any]:
    return _fresh(campaign_id)


def _act(request: HttpRequest, campaign_id: int, action: Any, **kwargs: Any) -> dict[str, Any]:
    campaign = selectors.campaign_get(campaign_id=campaign_id)
    try:
        action(campaign=campaign, actor=request_actor(request), **kwargs)
    except PermissionDenied as exc:
        raise HttpError(403, str(exc)) from exc
    return _fresh(campaign_id)


@router.post(
    "/campaigns/{campaign_id}/submit",
    response=responses({200: CampaignOut}, lookup=True, body=True),
    auth=require_perm("campaigns.change_campaign"),
)
def campaign_submit(request: HttpRequest, campaign_id: int) -> dict[str, Any]:
    """Ask for approval (roles without the send permission)."""
    return _act(request, campaign_id, services.campaign_submit)


@router.post(
    "/campaigns/{campaign_id}/schedule",
    response=responses({200: CampaignOut}, lookup=True, body=True),
    auth=require_perm("campaigns.send_campaign"),
)
def campaign_schedule(request: HttpRequest, campaign_id: int) -> dict[str, Any]:
    """Schedule a draft, or approve a submitted campaign: it starts now or at its send time.
    An empty audience, or one where nobody consented, is a 422 and nothing is sent."""
    return _act(request, campaign_id, services.campaign_schedule)


@router.post(
    "/campaigns/{campaign_id}/reject",
    response=responses({200: CampaignOut}, lookup=True, body=True),
    auth=require_perm("campaigns.send_campaign"),
)
def campaign_reject(request: HttpRequest, campaign_id: int, payload: RejectIn) -> dict[str, Any]:
    return _act(request, campaign_id, services.campaign_reject, note=payload.note)


@router.post(
    "/campaigns/{campaign_id}/pause",
    response=responses({200: CampaignOut}, lookup=True, body=True),
    auth=require_perm("campaigns.change_campaign"),
)
def campaign_pause(request: HttpRequest, campaign_id: int) -> dict[str, Any]:
    return _act(request, campaign_id, services.campaign_pause)


@router.post(
    "/campaigns/{campaign_id}/resume",
    response=responses({200: CampaignOut}, lookup=True, body=True),
    auth=require_perm("campaigns.send_campaign"),
)
def campaign_resume(request: HttpRequest, campaign_id: int) -> dict[str, Any]:
    return _act(request, campaign_id, services.campaign_resume)


@router.post(
    "/campaigns/{campaign_id}/cancel",
    response=responses({200: CampaignOut}, lookup=True, body=True),
    auth=require_perm("campaigns.change_campaign"),
)
def campaign_cancel(request: HttpRequest, campaign_id: int) -> dict[str, Any]:
    return _act(request, campaign_id, services.campaign_cancel)


@router.get(
    "/campaigns/{campaign_id}/results",
    response=responses({200: ResultsOut}, lookup=True),
    auth=require_perm("campaigns.view_campaign"),
)
def campaign_results(request: HttpRequest, campaign_id: int) -> dict[str, Any]:
    """Sent, delivered, opened, clicked, unsubscribed, bounced, complained, conversions and
    revenue (attribution model and window of the campaign), per variant and per segment;
    the holdout comparison and the A/B test with its p-value and confidence interval."""
    return selectors.campaign_results(campaign=selectors.campaign_get(campaign_id=campaign_id))
