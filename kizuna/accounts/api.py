"""REST API of accounts and deals: accounts (roll-up, contacts, timeline), pipelines,
deals (move between stages), the stage-weighted forecast, activities and tasks, and the
service-level views ("my customers"). Sales staff see their own deals and tasks; holders
of `accounts.view_all_deals` see everyone's."""
# No `from __future__ import annotations`: ninja reads these annotations at import time.

from datetime import date, datetime
from typing import Annotated, Any, ClassVar

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status
from ninja.pagination import paginate

from kizuna.accounts import selectors, services
from kizuna.accounts.models import Account, Activity, Deal, Pipeline, Stage
from kizuna.core.api import InputSchema, PagePagination, responses
from kizuna.core.errors import NotFound
from kizuna.customers.selectors import customer_get
from kizuna.iam.authz import request_actor, require_perm
from kizuna.iam.masking import MaskedForRoles

# A row id: larger numbers cannot name a row (and overflow the integer columns).
RowId = Annotated[int, Field(ge=1, le=2**62)]

router = Router(tags=["accounts"])


class AccountOut(Schema):
    id: int
    name: str
    domain: str
    parent_id: int | None
    owner_id: int | None
    named: bool
    follow_up_days: int | None
    last_contact_at: datetime | None
    next_follow_up_at: datetime | None
    notes: str


class AccountIn(InputSchema):
    name: str = Field(..., min_length=1, max_length=200)
    domain: str = Field("", max_length=200)
    parent: RowId | None = Field(None, description="Parent account id")
    owner: RowId | None = Field(None, description="Owner (active staff user id)")
    named: bool = False
    follow_up_days: int | None = None
    notes: str = ""


class AccountPatch(InputSchema):
    name: str | None = Field(None, min_length=1, max_length=200)
    domain: str | None = Field(None, max_length=200)
    parent: RowId | None = None
    owner: RowId | None = None
    named: bool | None = None
    follow_up_days: int | None = None
    notes: str | None = None


class ContactIn(InputSchema):
    customer_id: RowId
    role: str = Field("other", description="decision_maker, champion, user, billing, other")
    title: str = Field("", max_length=100)


class ContactOut(Schema):
    id: int
    customer_id: int
    role: str
    title: str


class RollupOut(Schema):
    accounts: int
    contacts: int
    orders: int
    revenue_minor: int
    clv_minor: int
    average_p_alive: float | None
    nps: float | None
    nps_responses: int
    open_deals: int
    open_pipeline_yen: int
    won_yen: int


class TimelineOut(Schema, MaskedForRoles):
    free_text_fields: ClassVar[frozenset[str]] = frozenset({"title"})
    customer_field: ClassVar[str | None] = "customer_id"

    at: datetime
    kind: str
    title: str
    customer_id: int | None


class StageOut(Schema):
    id: int
    name: str
    position: int
    probability: int
    outcome: str


class PipelineOut(Schema):
    id: int
    name: str
    stages: list[StageOut]

    @staticmethod
    def resolve_stages(obj: Pipeline) -> list[Stage]:
        return list(obj.stages.all())


class StageIn(InputSchema):
    name: str
    probability: int
    outcome: str = "open"


class PipelineIn(InputSchema):
    name: str = Field(..., min_length=1, max_length=100)
    stages: list[StageIn]


class DealOut(Schema):
    id: int
    title: str
    account_id: int | None
    contact_id: int | None
    pipeline_id: int
    stage_id: int
    amount_yen: int
    expected_close: date | None
    owner_id: int | None
    status: str
    close_reason: str
    closed_at: datetime | None


class DealIn(InputSchema):
    title: str = Field(..., min_length=1, max_length=200)
    stage: RowId = Field(..., description="An open stage; its pipeline is the deal's")
    account: RowId | None = None
    contact: RowId | None = Field(None, description="Contact (customer id)")
    amount_yen: int = 0
    expected_close: date | None = None
    owner: RowId | None = Field(None, description="Default: the caller")


class DealPatch(InputSchema):
    title: str | None = Field(None, min_length=1, max_length=200)
    account: RowId | None = None
    contact: RowId | None = None
    amount_yen: int | None = None
    expected_close: date | None = None
    owner: RowId | None = None


class MoveIn(InputSchema):
    stage: RowId
    reason: str = Field("", max_length=200, description="Won/lost reason (required if lost)")


class DealFilters(Schema):
    pipeline_id: RowId | None = None
    stage_id: RowId | None = None
    status: str | None = None
    account_id: RowId | None = None
    q: str = ""


class ForecastRowOut(Schema):
    stage_id: int
    stage: str
    probability: int
    count: int
    amount_yen: int
    weighted_yen: int


class ForecastOut(Schema):
    pipeline_id: int
    total_yen: int
    weighted_yen: int
    won_yen: int
    stages: list[ForecastRowOut]


class ActivityOut(Schema, MaskedForRoles):
    # Contact details in notes masked.
    free_text_fields: ClassVar[frozenset[str]] = frozenset({"subject", "body"})
    customer_field: ClassVar[str | None] = "customer_id"

    id: int
    kind: str
    subject: str
    body: str
    account_id: int | None
    customer_id: int | None
    deal_id: int | None
    assigned_to_id: int | None
    occurred_at: datetime
    due_at: datetime | None
    remind_at: datetime | None
    done_at: datetime | None


class ActivityIn(InputSchema):
    kind: str = Field(..., description="call, meeting, task or note")
    subject: str = Field(..., min_length=1, max_length=200)
    body: str = ""
    account: RowId | None = None
    customer: RowId | None = None
    deal: RowId | None = None
    assigned_to: RowId | None = Field(None, description="Tasks only; default: the caller")
    occurred_at: datetime | None = None
    due_at: datetime | None = Field(None, description="Required for a task")
    remind_at: datetime | None = None


class CareOut(Schema, MaskedForRoles):
    customer_id: int
    display_name: str
    level: str
    reason: str
    cadence_days: int
    last_contact_at: datetime | None
    next_follow_up_at: datetime | None
    overdue: bool
    p_alive: float | None
    clv_minor: int | None
    signals: list[str]


def _principal(request: HttpRequest) -> Any:
    return request.auth  # type: ignore[attr-defined]


# --- accounts ------------------------------------------------------------------------------


@router.get(
    "/accounts",
    response=responses({200: list[AccountOut]}, query=True),
    auth=require_perm("accounts.view_account"),
)
@paginate(PagePagination)
def account_list(request: HttpRequest, q: str = "", owner_id: RowId | None = None) -> Any:
    return selectors.account_list(q=q, owner_id=owner_id)


@router.post(
    "/accounts",
    response=responses({201: AccountOut}, body=True),
    auth=require_perm("accounts.add_account"),
)
def account_create(request: HttpRequest, payload: AccountIn) -> Status[Account]:
    account = services.account_create(data=payload.model_dump(), actor=request_actor(request))
    return Status(201, account)


@router.get(
    "/accounts/{account_id}",
    response=responses({200: AccountOut}, lookup=True),
    auth=require_perm("accounts.view_account"),
)
def account_get(request: HttpRequest, account_id: int) -> Account:
    return selectors.account_get(account_id=account_id)


@router.patch(
    "/accounts/{account_id}",
    response=responses({200: AccountOut}, lookup=True, body=True),
    auth=require_perm("accounts.change_account"),
)
def account_update(request: HttpRequest, account_id: int, payload: AccountPatch) -> Account:
    """A parent that is the account itself or one of its subsidiaries is a 422 on `parent`."""
    account = selectors.account_get(account_id=account_id)
    data = payload.model_dump(exclude_unset=True)
    return services.account_update(account=account, data=data, actor=request_actor(request))


@router.get(
    "/accounts/{account_id}/contacts",
    response=responses({200: list[ContactOut]}, lookup=True),
    auth=require_perm("accounts.view_accountcontact"),
)
def contact_list(request: HttpRequest, account_id: int) -> Any:
    return list(selectors.contact_list(account=selectors.account_get(account_id=account_id)))


@router.post(
    "/accounts/{account_id}/contacts",
    response=responses({201: ContactOut}, lookup=True, body=True),
    auth=require_perm("accounts.add_accountcontact"),
)
def contact_add(request: HttpRequest, account_id: int, payload: ContactIn) -> Status[Any]:
    contact = services.contact_add(
        account=selectors.account_get(account_id=account_id),
        customer=customer_get(customer_id=payload.customer_id),
        role=payload.role,
        title=payload.title,
        actor=request_actor(request),
    )
    return Status(201, contact)


@router.get(
    "/accounts/{account_id}/rollup",
    response=responses({200: RollupOut}, lookup=True, query=True),
    auth=require_perm("accounts.view_account"),
)
def account_rollup(request: HttpRequest, account_id: int, include_children: bool = True) -> Any:
    """Orders, CLV and NPS of the contacts, with the account's deals (and its subsidiaries')."""
    account = selectors.account_get(account_id=account_id)
    return selectors.account_rollup(account=account, include_children=include_children)


@router.get(
    "/accounts/{account_id}/timeline",
    response=responses({200: list[TimelineOut]}, lookup=True),
    auth=require_perm("accounts.view_account"),
)
def account_timeline(request: HttpRequest, account_id: int) -> Any:
    return selectors.account_timeline(account=selectors.account_get(account_id=account_id))


# --- pipelines, deals, forecast ------------------------------------------------------------


@router.get(
    "/pipelines",
    response=responses({200: list[PipelineOut]}),
    auth=require_perm("accounts.view_pipeline"),
)
def pipeline_list(request: HttpRequest) -> Any:
    return list(selectors.pipeline_list())


@router.post(
    "/pipelines",
    response=responses({201: PipelineOut}, body=True),
    auth=require_perm("accounts.add_pipeline"),
)
def pipeline_create(request: HttpRequest, payload: PipelineIn) -> Status[Pipeline]:
    pipeline = services.pipeline_create(
        name=payload.name,
        stages=[s.model_dump() for s in payload.stages],
        actor=request_actor(request),
    )
    return Status(201, pipeline)


@router.put(
    "/pipelines/{pipeline_id}",
    response=responses({200: PipelineOut}, lookup=True, body=True),
    auth=require_perm("accounts.change_pipeline"),
)
def pipeline_update(request: HttpRequest, pipeline_id: int, payload: PipelineIn) -> Pipeline:
    """Rename and restage a pipeline: a stage keeps its deals while its name stays; leaving
    out (or renaming) a stage that holds deals, or changing its outcome, is a 422 on `stages`."""
    pipeline = selectors.pipeline_get(pipeline_id=pipeline_id)
    return services.pipeline_update(
        pipeline=pipeline,
        name=payload.name,
        stages=[s.model_dump() for s in payload.stages],
        actor=request_actor(request),
    )


@router.get(
    "/deals",
    response=responses({200: list[DealOut]}, query=True),
    auth=require_perm("accounts.view_deal"),
)
@paginate(PagePagination)
def deal_list(request: HttpRequest, filters: DealFilters = Query(...)) -> Any:
    """The caller's own deals, or everyone's with `accounts.view_all_deals`."""
    return selectors.deal_list(principal=_principal(request), **filters.model_dump())


@router.post(
    "/deals",
    response=responses({201: DealOut}, body=True),
    auth=require_perm("accounts.add_deal"),
)
def deal_create(request: HttpRequest, payload: DealIn) -> Status[Deal]:
    data = payload.model_dump(exclude_unset=True)
    return Status(201, services.deal_create(data=data, actor=request_actor(request)))


@router.get(
    "/deals/{deal_id}",
    response=responses({200: DealOut}, lookup=True),
    auth=require_perm("accounts.view_deal"),
)
def deal_get(request: HttpRequest, deal_id: int) -> Deal:
    return selectors.access_deal(principal=_principal(request), deal_id=deal_id)


@router.patch(
    "/deals/{deal_id}",
    response=responses({200: DealOut}, lookup=True, body=True),
    auth=require_perm("accounts.change_deal"),
)
def deal_update(request: HttpRequest, deal_id: int, payload: DealPatch) -> Deal:
    deal = selectors.access_deal(principal=_principal(request), deal_id=deal_id)
    data = payload.model_dump(exclude_unset=True)
    return services.deal_update(deal=deal, data=data, actor=request_actor(request))


@router.post(
    "/deals/{deal_id}/move",
    response=responses({200: DealOut}, lookup=True, body=True),
    auth=require_perm("accounts.change_deal"),
)
def deal_move(request: HttpRequest, deal_id: int, payload: MoveIn) -> Deal:
    """Move to another stage of the deal's pipeline (a stage of another pipeline is a 422
    on `stage`); a lost stage needs `reason`."""
    deal = selectors.access_deal(principal=_principal(request), deal_id=deal_id)
    stage = Stage.objects.select_related("pipeline").filter(pk=payload.stage).first()
    if stage is None:
        raise NotFound("stage", payload.stage)
    return services.deal_move(
        deal=deal, stage=stage, reason=payload.reason, actor=request_actor(request)
    )


@router.get(
    "/forecast",
    response=responses({200: ForecastOut}, query=True),
    auth=require_perm("accounts.view_deal"),
)
def forecast(request: HttpRequest, pipeline_id: RowId | None = None) -> Any:
    """Open amount per stage and weighted by its probability (the caller's deals, or all)."""
    pipeline = selectors.pipeline_get(pipeline_id=pipeline_id)
    result = selectors.forecast(principal=_principal(request), pipeline=pipeline)
    return {
        "pipeline_id": pipeline.pk,
        "total_yen": result.total_yen,
        "weighted_yen": result.weighted_yen,
        "won_yen": result.won_yen,
        "stages": [
            {
                "stage_id": r.stage.pk,
                "stage": r.stage.name,
                "probability": r.stage.probability,
                "count": r.count,
                "amount_yen": r.amount_yen,
                "weighted_yen": r.weighted_yen,
            }
            for r in result.rows
        ],
    }


# --- activities ----------------------------------------------------------------------------


@router.get(
    "/activities",
    response=responses({200: list[ActivityOut]}, query=True),
    auth=require_perm("accounts.view_activity"),
)
@paginate(PagePagination)
def activity_list(request: HttpRequest, mine: bool = False, open_tasks: bool = False) -> Any:
    """Activities the caller may see; `mine` + `open_tasks`: the caller's task queue."""
    if mine or open_tasks:
        user = request_actor(request)
        return selectors.my_tasks(user=user, include_done=not open_tasks)
    return selectors.activities_visible(principal=_principal(request))


@router.post(
    "/activities",
    response=responses({201: ActivityOut}, body=True),
    auth=require_perm("accounts.add_activity"),
)
def activity_create(request: HttpRequest, payload: ActivityIn) -> Status[Activity]:
    """Log a call, meeting or note, or create a task (due date required; a deactivated
    assignee is a 422 on `assigned_to`)."""
    data = payload.model_dump(exclude_unset=True)
    return Status(201, services.activity_log(data=data, actor=request_actor(request)))


@router.post(
    "/activities/{activity_id}/complete",
    response=responses({200: ActivityOut}, lookup=True, body=True),
    auth=require_perm("accounts.change_activity"),
)
def task_complete(request: HttpRequest, activity_id: int) -> Activity:
    task = selectors.activity_visible(principal=_principal(request), activity_id=activity_id)
    if task is None:
        raise NotFound("activity", activity_id)
    return services.task_complete(activity=task, actor=request_actor(request))


@router.get(
    "/my-customers",
    response=responses({200: list[CareOut]}, query=True),
    auth=require_perm("accounts.view_customercare"),
)
@paginate(PagePagination)
def my_customers(request: HttpRequest, risk_only: bool = False) -> Any:
    """The caller's high-touch customers, overdue follow-ups first, with at-risk signals."""
    return _CarePage(selectors.my_customers(owner=request_actor(request), risk_only=risk_only))


class _CarePage:
    """`my_customers` rows shaped for CareOut, one page at a time."""

    def __init__(self, rows: Any) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return int(self.rows.count())

    def __getitem__(self, item: slice) -> list[dict[str, Any]]:
        return [
            {
                "customer_id": row.care.customer_id,
                "display_name": row.care.customer.display_name,
                "level": row.care.level,
                "reason": row.care.reason,
                "cadence_days": row.care.cadence_days,
                "last_contact_at": row.care.last_contact_at,
                "next_follow_up_at": row.care.next_follow_up_at,
                "overdue": row.overdue,
                "p_alive": row.p_alive,
                "clv_minor": row.clv_minor,
                "signals": row.signals,
            }
            for row in selectors.care_rows(self.rows[item])
        ]
