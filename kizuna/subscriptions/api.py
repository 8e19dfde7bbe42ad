"""REST API of subscriptions: plans, subscriptions and their actions (renew, pause,
resume, payment_failed, cancel), recurring revenue (MRR/ARR), churn, cohorts, CSV import."""
# No `from __future__ import annotations`: ninja reads these annotations at import time.

from datetime import date, datetime
from typing import Annotated, Any

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status
from ninja.pagination import paginate

from kizuna.core.api import InputSchema, PagePagination, responses
from kizuna.customers.selectors import customer_get
from kizuna.iam.authz import request_actor, require_perm
from kizuna.subscriptions import selectors, services
from kizuna.subscriptions.models import Plan, Subscription

# A row id: larger numbers cannot name a row (and overflow the integer columns).
RowId = Annotated[int, Field(ge=1, le=2**62)]

router = Router(tags=["subscriptions"])


class PlanOut(Schema):
    id: int
    code: str
    name: str
    price_yen: int
    interval: str
    trial_days: int
    active: bool


class PlanIn(InputSchema):
    code: str = Field("", max_length=50, description="Generated from the name when empty")
    name: str = Field(..., min_length=1, max_length=100)
    price_yen: int = Field(..., description="Whole yen per interval, >= 0")
    interval: str = Field("month", description="week, month or year")
    trial_days: int = 0
    active: bool = True


class SubscriptionOut(Schema):
    id: int
    customer_id: int
    plan_id: int
    plan_code: str = Field(..., alias="plan.code")
    status: str
    started_at: datetime
    trial_ends_at: datetime | None
    current_period_start: datetime
    current_period_end: datetime
    ended_at: datetime | None
    cancel_reason: str
    external_id: str | None


class SubscriptionIn(InputSchema):
    customer_id: RowId
    plan_id: RowId
    started_at: datetime | None = None
    external_id: str | None = Field(None, max_length=100)


class ActionIn(InputSchema):
    action: str = Field(..., description="renew, pause, resume, payment_failed or cancel")
    reason: str = Field("", max_length=200, description="Required to cancel")
    at: datetime | None = Field(None, description="When it happened (default: now)")


class EventOut(Schema):
    id: int
    kind: str
    occurred_at: datetime
    reason: str
    amount_yen: int
    period_end: datetime | None


class PlanRevenueOut(Schema):
    plan_id: int
    code: str
    name: str
    interval: str
    subscriptions: int
    mrr_yen: int


class RevenueOut(Schema):
    mrr_yen: int
    arr_yen: int
    paying: int
    by_status: dict[str, int]
    by_plan: list[PlanRevenueOut]


class ChurnOut(Schema):
    month: date
    active_at_start: int
    cancelled: int
    rate: float | None


class CohortOut(Schema):
    cohort: date
    size: int
    retained: list[float]


class ImportIn(InputSchema):
    csv: str = Field(..., min_length=1, max_length=20_000_000, description="CSV text")


class ImportOut(Schema):
    rows: int
    created: int
    unchanged: int


class SubscriptionFilters(Schema):
    status: str | None = None
    plan_id: RowId | None = None
    customer_id: RowId | None = None


@router.get(
    "/plans",
    response=responses({200: list[PlanOut]}),
    auth=require_perm("subscriptions.view_plan"),
)
def plan_list(request: HttpRequest) -> Any:
    return list(selectors.plan_list())


@router.post(
    "/plans",
    response=responses({201: PlanOut}, body=True),
    auth=require_perm("subscriptions.add_plan"),
)
def plan_create(request: HttpRequest, payload: PlanIn) -> Status[Plan]:
    """Create a plan. A negative price is a 422 on `price_yen`."""
    data = payload.model_dump()
    if not data["code"]:
        data.pop("code")
    return Status(201, services.plan_create(data=data, actor=request_actor(request)))


@router.get(
    "/subscriptions",
    response=responses({200: list[SubscriptionOut]}, query=True),
    auth=require_perm("subscriptions.view_subscription"),
)
@paginate(PagePagination)
def subscription_list(request: HttpRequest, filters: SubscriptionFilters = Query(...)) -> Any:
    return selectors.subscription_list(**filters.model_dump())


@router.post(
    "/subscriptions",
    response=responses({201: SubscriptionOut}, body=True),
    auth=require_perm("subscriptions.add_subscription"),
)
def subscription_create(request: HttpRequest, payload: SubscriptionIn) -> Status[Subscription]:
    sub = services.subscription_start(
        customer=customer_get(customer_id=payload.customer_id),
        plan=selectors.plan_get(plan_id=payload.plan_id),
        started_at=payload.started_at,
        external_id=payload.external_id,
        actor=request_actor(request),
    )
    return Status(201, sub)


@router.get(
    "/subscriptions/mrr",
    response=responses({200: RevenueOut}),
    auth=require_perm("subscriptions.view_subscription"),
)
def revenue(request: HttpRequest) -> Any:
    """MRR and ARR now (active and past-due subscriptions; weekly x 52/12, yearly / 12).
    (Declared before `/subscriptions/{id}` so that "mrr" is not read as an id.)"""
    return selectors.revenue()


@router.get(
    "/subscriptions/churn",
    response=responses({200: list[ChurnOut]}, query=True),
    auth=require_perm("subscriptions.view_subscription"),
)
def churn(request: HttpRequest, months: int = Query(12, ge=1, le=60)) -> Any:
    return selectors.churn_by_month(months=months)


@router.get(
    "/subscriptions/cohorts",
    response=responses({200: list[CohortOut]}, query=True),
    auth=require_perm("subscriptions.view_subscription"),
)
def cohorts(request: HttpRequest, max_months: int = Query(12, ge=1, le=60)) -> Any:
    return selectors.retention_by_cohort(max_months=max_months)


@router.post(
    "/subscriptions/import",
    response=responses({200: ImportOut}, body=True),
    auth=require_perm("subscriptions.add_subscription"),
)
def subscription_import(request: HttpRequest, payload: ImportIn) -> Any:
    """All or nothing: a bad row is a 422 naming `rows[<n>].<field>`."""
    return services.subscriptions_import(text=payload.csv, actor=request_actor(request))


@router.get(
    "/subscriptions/{subscription_id}",
    response=responses({200: SubscriptionOut}, lookup=True),
    auth=require_perm("subscriptions.view_subscription"),
)
def subscription_get(request: HttpRequest, subscription_id: int) -> Subscription:
    return selectors.subscription_get(subscription_id=subscription_id)


@router.get(
    "/subscriptions/{subscription_id}/events",
    response=responses({200: list[EventOut]}, lookup=True),
    auth=require_perm("subscriptions.view_subscription"),
)
def subscription_events(request: HttpRequest, subscription_id: int) -> Any:
    sub = selectors.subscription_get(subscription_id=subscription_id)
    return list(selectors.event_list(subscription=sub))


@router.post(
    "/subscriptions/{subscription_id}/actions",
    response=responses({200: SubscriptionOut}, lookup=True, body=True),
    auth=require_perm("subscriptions.change_subscription"),
)
def subscription_action(
    request: HttpRequest, subscription_id: int, payload: ActionIn
) -> Subscription:
    sub = selectors.subscription_get(subscription_id=subscription_id)
    return services.subscription_act(
        subscription=sub,
        action=payload.action,
        reason=payload.reason,
        at=payload.at,
        actor=request_actor(request),
    )
