"""REST API of customer insight: a customer's scores, score lists by segment or risk, and
scoring runs (list, read, request one)."""
# No `from __future__ import annotations`: ninja reads these annotations at import time.

from datetime import date, datetime
from typing import Any

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status
from ninja.pagination import paginate

from kizuna.analytics import selectors, services
from kizuna.analytics.models import CustomerScore, RunTrigger, ScoringRun, Segment
from kizuna.core.api import InputSchema, PagePagination, responses
from kizuna.customers.selectors import customer_get
from kizuna.iam.authz import request_actor, require_perm

router = Router(tags=["insight"])


class ScoreOut(Schema):
    customer_id: int
    model_version: str = Field(..., description="Models and algorithm that made the scores")
    scored_at: datetime = Field(..., description="The as-of instant of the scoring run")
    run_id: int
    currency: str
    orders: int
    frequency: int = Field(..., description="Repeat purchase days (purchase days - 1)")
    recency_days: int = Field(..., description="Days since the last purchase")
    age_days: int = Field(..., description="Days since the first purchase")
    first_purchase: date
    last_purchase: date
    monetary_minor: int = Field(..., description="Net spend (total less refunds)")
    r_score: int
    f_score: int
    m_score: int
    segment: Segment
    p_alive: float = Field(..., description="Probability the customer is still active")
    churn_risk: float = Field(..., description="1 - p_alive")
    at_risk: bool
    days_overdue: int = Field(..., description="Days past the expected next purchase")
    expected_gap_days: float
    expected_purchases_30d: float
    expected_purchases: float = Field(..., description="Expected purchases over the horizon")
    expected_aov_minor: int
    clv_minor: int = Field(..., description="Discounted lifetime value over the horizon")


class ScoreFilters(Schema):
    segment: Segment | None = None
    at_risk: bool | None = None


class RunOut(Schema):
    id: int
    status: str
    trigger: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    as_of: datetime | None
    parameters: dict[str, Any]
    model_version: str
    customers_scored: int
    newly_at_risk: int
    fit: dict[str, Any]
    summary: dict[str, Any]
    timings: dict[str, Any]
    message: str


class RunIn(InputSchema):
    """Empty: a run uses the installation's parameters (KIZUNA_CLV_*, KIZUNA_AT_RISK_*)."""


@router.get(
    "/customers/{customer_id}/scores",
    response=responses({200: ScoreOut}, lookup=True),
    auth=require_perm("analytics.view_customerscore"),
)
def customer_scores(request: HttpRequest, customer_id: int) -> CustomerScore:
    """The customer's current scores; 404 if the customer is unknown or not scored yet
    (customers are scored once they have a purchase, at the next run)."""
    customer_get(customer_id=customer_id)
    return selectors.customer_score_get(customer_id=customer_id)


@router.get(
    "/insight/scores",
    response=responses({200: list[ScoreOut]}, query=True),
    auth=require_perm("analytics.view_customerscore"),
)
@paginate(PagePagination)
def score_list(request: HttpRequest, filters: ScoreFilters = Query(...)) -> Any:
    """Scores, highest CLV first, optionally of one segment or only those at risk."""
    return selectors.score_list(segment=filters.segment or "", at_risk=filters.at_risk)


@router.get(
    "/insight/runs",
    response=responses({200: list[RunOut]}, query=True),
    auth=require_perm("analytics.view_scoringrun"),
)
@paginate(PagePagination)
def run_list(request: HttpRequest) -> Any:
    return selectors.run_list()


@router.get(
    "/insight/runs/{run_id}",
    response=responses({200: RunOut}, lookup=True),
    auth=require_perm("analytics.view_scoringrun"),
)
def run_get(request: HttpRequest, run_id: int) -> ScoringRun:
    return selectors.run_get(run_id=run_id)


@router.post(
    "/insight/runs",
    response=responses({202: RunOut}, body=True),
    auth=require_perm("analytics.add_scoringrun"),
)
def run_request(request: HttpRequest, payload: RunIn) -> Status[ScoringRun]:
    """Queue a scoring run; the worker executes it (poll the run for its status)."""
    run = services.scoring_run_request(trigger=RunTrigger.API, actor=request_actor(request))
    return Status(202, run)
