"""Reads of accounts, deals, activities and service levels: lists, the account roll-up and
timeline, the kanban board, the stage-weighted forecast, "my tasks" and "my customers".

Ownership: a principal with `accounts.view_all_deals` (a manager) sees every deal and task;
anyone else sees the deals they own and the tasks assigned to them.

Optional roll-ups read the surveys (NPS) and support (open inquiries) apps through the app
registry when they are installed; without them those figures are None.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.apps import apps
from django.db.models import (
    Avg,
    BigIntegerField,
    Case,
    Count,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from kizuna.accounts.models import (
    Account,
    AccountContact,
    Activity,
    ActivityKind,
    CustomerCare,
    Deal,
    Outcome,
    Pipeline,
    ServiceLevel,
    Stage,
)
from kizuna.analytics.models import CustomerScore
from kizuna.commerce.models import Order
from kizuna.core.errors import NotFound
from kizuna.core.timeutil import now
from kizuna.customers.models import Event
from kizuna.iam.selectors import Principal, principal_has_perm

MANAGER_PERM = "accounts.view_all_deals"
# A fall in P(alive) of at least this much between two service-level evaluations is a risk.
P_ALIVE_FALL = 0.1
DETRACTOR_MAX = 6  # NPS 0-6


def _optional_model(app_label: str, model: str) -> Any:
    try:
        return apps.get_model(app_label, model)
    except LookupError:
        return None


def is_manager(principal: Principal) -> bool:
    return principal_has_perm(principal, MANAGER_PERM)


def _user_id(principal: Principal) -> int | None:
    user = getattr(principal, "created_by", principal)  # an API key acts as its creator
    return getattr(user, "pk", None)


# --- accounts ------------------------------------------------------------------------------


def account_list(*, q: str = "", owner_id: int | None = None) -> QuerySet[Account]:
    accounts = Account.objects.select_related("owner", "parent").annotate(
        contact_count=Count("contacts", distinct=True)
    )
    if q:
        accounts = accounts.filter(Q(name__icontains=q) | Q(domain__icontains=q))
    if owner_id:
        accounts = accounts.filter(owner_id=owner_id)
    return accounts.order_by("name", "id")


def _valid_id(value: int | None) -> bool:
    return value is not None and 0 < value < 2**62


def account_get(*, account_id: int) -> Account:
    if not _valid_id(account_id):
        raise NotFound("account", account_id)
    account = Account.objects.select_related("owner", "parent").filter(pk=account_id).first()
    if account is None:
        raise NotFound("account", account_id)
    return account


def descendant_ids(account: Account) -> list[int]:
    """The account and every account below it (one query per level)."""
    ids, frontier = [account.pk], [account.pk]
    for _level in range(20):
        frontier = list(Account.objects.filter(parent_id__in=frontier).values_list("pk", flat=True))
        if not frontier:
            break
        ids.extend(frontier)
    return ids


def ancestors(account: Account) -> list[Account]:
    chain: list[Account] = []
    node = account.parent
    while node is not None and len(chain) < 20:
        chain.append(node)
        node = node.parent
    return list(reversed(chain))


def contact_list(*, account: Account) -> QuerySet[AccountContact]:
    return account.contacts.select_related("customer", "customer__score").order_by("role", "id")


@dataclass(frozen=True)
class Rollup:
    accounts: int
    contacts: int
    orders: int
    revenue_minor: int
    clv_minor: int
    average_p_alive: float | None
    nps: float | None  # promoters% - detractors% of the contacts' answers; None: no answers
    nps_responses: int
    open_deals: int
    open_pipeline_yen: int
    won_yen: int


def account_rollup(*, account: Account, include_children: bool = True) -> Rollup:
    """Orders, CLV and NPS of the account's contacts (and those of its subsidiaries), with
    its deals."""
    ids = descendant_ids(account) if include_children else [account.pk]
    contacts = AccountContact.objects.filter(account_id__in=ids).values("customer_id")
    orders = Order.objects.filter(customer_id__in=contacts).aggregate(
        n=Count("id"), total=Coalesce(Sum("total_minor"), 0)
    )
    scores = CustomerScore.objects.filter(customer_id__in=contacts).aggregate(
        clv=Coalesce(Sum("clv_minor"), 0), p=Avg("p_alive")
    )
    deals = Deal.objects.filter(account_id__in=ids).aggregate(
        open_n=Count("id", filter=Q(status=Outcome.OPEN)),
        open_sum=Coalesce(Sum("amount_yen", filter=Q(status=Outcome.OPEN)), 0),
        won=Coalesce(Sum("amount_yen", filter=Q(status=Outcome.WON)), 0),
    )
    nps, answered = None, 0
    response = _optional_model("surveys", "Response")
    if response is not None:
        agg = response.objects.filter(customer_id__in=contacts, nps__isnull=False).aggregate(
            n=Count("id"),
            promoters=Count("id", filter=Q(nps__gte=9)),
            detractors=Count("id", filter=Q(nps__lte=DETRACTOR_MAX)),
        )
        answered = agg["n"]
        if answered:
            nps = round(100 * (agg["promoters"] - agg["detractors"]) / answered, 1)
    return Rollup(
        accounts=len(ids),
        contacts=AccountContact.objects.filter(account_id__in=ids)
        .values("customer_id")
        .distinct()
        .count(),
        orders=orders["n"],
        revenue_minor=orders["total"],
        clv_minor=scores["clv"],
        average_p_alive=scores["p"],
        nps=nps,
        nps_responses=answered,
        open_deals=deals["open_n"],
        open_pipeline_yen=deals["open_sum"],
        won_yen=deals["won"],
    )


@dataclass(frozen=True)
class TimelineItem:
    at: datetime
    kind: str  # "event" or "activity"
    title: str
    customer_id: int | None
    item: Any = field(compare=False)


def account_timeline(*, account: Account, limit: int = 50) -> list[TimelineItem]:
    """The newest `limit` items of the contacts' event streams and the activities on the
    account and its deals, merged by time (two queries)."""
    contacts = AccountContact.objects.filter(account=account).values("customer_id")
    events = (
        Event.objects.filter(customer_id__in=contacts)
        .select_related("customer")
        .order_by("-occurred_at", "-id")[:limit]
    )
    activities = (
        Activity.objects.filter(Q(account=account) | Q(deal__account=account))
        .select_related("assigned_to", "created_by", "customer", "deal")
        .order_by("-occurred_at", "-id")[:limit]
    )
    items = [TimelineItem(e.occurred_at, "event", e.type, e.customer_id, e) for e in events]
    items += [
        TimelineItem(a.occurred_at, "activity", a.subject, a.customer_id, a) for a in activities
    ]
    items.sort(key=lambda i: i.at, reverse=True)
    return items[:limit]


def activity_list(
    *,
    account: Account | None = None,
    customer_id: int | None = None,
    deal: Deal | None = None,
) -> QuerySet[Activity]:
    acts = Activity.objects.select_related("assigned_to", "created_by", "account", "deal")
    if account is not None:
        acts = acts.filter(account=account)
    if customer_id is not None:
        acts = acts.filter(customer_id=customer_id)
    if deal is not None:
        acts = acts.filter(deal=deal)
    return acts.order_by("-occurred_at", "-id")


def activities_visible(*, principal: Principal) -> QuerySet[Activity]:
    """Every activity for a manager; for anyone else the ones they created or were given."""
    acts = Activity.objects.select_related("assigned_to", "account", "deal", "customer")
    if not is_manager(principal):
        uid = _user_id(principal)
        acts = acts.filter(Q(assigned_to_id=uid) | Q(created_by_id=uid))
    return acts.order_by("-occurred_at", "-id")


def activity_visible(*, principal: Principal, activity_id: int) -> Activity | None:
    if not _valid_id(activity_id):
        return None
    return activities_visible(principal=principal).filter(pk=activity_id).first()


# --- deals ---------------------------------------------------------------------------------


def pipeline_list() -> QuerySet[Pipeline]:
    return Pipeline.objects.prefetch_related("stages").order_by("position", "id")


def pipeline_get(*, pipeline_id: int | None = None) -> Pipeline:
    pipelines = Pipeline.objects.order_by("position", "id")
    if pipeline_id is not None and not _valid_id(pipeline_id):
        raise NotFound("pipeline", pipeline_id)
    pipeline = pipelines.filter(pk=pipeline_id).first() if pipeline_id else pipelines.first()
    if pipeline is None:
        raise NotFound("pipeline", pipeline_id)
    return pipeline


def stage_list(*, pipeline: Pipeline) -> list[Stage]:
    return list(pipeline.stages.order_by("position", "id"))


def deals_visible(*, principal: Principal) -> QuerySet[Deal]:
    deals = Deal.objects.select_related("account", "contact", "owner", "stage", "pipeline")
    if not is_manager(principal):
        deals = deals.filter(owner_id=_user_id(principal))
    return deals


def deal_list(
    *,
    principal: Principal,
    pipeline_id: int | None = None,
    stage_id: int | None = None,
    status: str | None = None,
    account_id: int | None = None,
    q: str = "",
) -> QuerySet[Deal]:
    deals = deals_visible(principal=principal)
    if pipeline_id:
        deals = deals.filter(pipeline_id=pipeline_id)
    if stage_id:
        deals = deals.filter(stage_id=stage_id)
    if status:
        deals = deals.filter(status=status)
    if account_id:
        deals = deals.filter(account_id=account_id)
    if q:
        deals = deals.filter(Q(title__icontains=q) | Q(account__name__icontains=q))
    return deals.order_by(F("expected_close").asc(nulls_last=True), "-id")


def access_deal(*, principal: Principal, deal_id: int) -> Deal:
    """The deal if the principal may see it; NotFound for missing and forbidden alike."""
    if not _valid_id(deal_id):
        raise NotFound("deal", deal_id)
    deal = deals_visible(principal=principal).filter(pk=deal_id).first()
    if deal is None:
        raise NotFound("deal", deal_id)
    return deal


def _weighted() -> ExpressionWrapper:
    return ExpressionWrapper(
        F("amount_yen") * F("stage__probability") / Value(100), output_field=BigIntegerField()
    )


# A card of the board is a dict of these values (no model instances: the board renders
# hundreds of them).
CARD_FIELDS = (
    "id",
    "title",
    "amount_yen",
    "expected_close",
    "stage_id",
    "account__name",
    "owner__username",
)


@dataclass
class Column:
    stage: Stage
    count: int = 0
    amount_yen: int = 0
    weighted_yen: int = 0
    cards: list[dict[str, Any]] = field(default_factory=list)
    more: bool = False  # there are cards after the last one shown

    @property
    def hidden(self) -> int:
        return max(0, self.count - len(self.cards))

    @property
    def cursor(self) -> str:
        return card_cursor(self.cards[-1]) if self.cards else ""


def card_cursor(card: dict[str, Any]) -> str:
    """Where a column continues after `card` ("2026-12-01.42"; "-.42" without a date)."""
    close = card["expected_close"]
    return f"{close.isoformat() if close else '-'}.{card['id']}"


def parse_cursor(raw: str) -> tuple[date | None, int]:
    """The (expected close, id) of a card cursor; ValueError when it is not one."""
    close, _dot, pk = raw.partition(".")
    if not pk.isdigit() or not _valid_id(int(pk)):
        raise ValueError(raw)
    return (None if close == "-" else date.fromisoformat(close)), int(pk)


def _open_deals(principal: Principal, pipeline: Pipeline) -> QuerySet[Deal]:
    deals = Deal.objects.filter(pipeline=pipeline, status=Outcome.OPEN)
    if not is_manager(principal):
        deals = deals.filter(owner_id=_user_id(principal))
    return deals


def column_cards(
    *,
    principal: Principal,
    stage: Stage,
    after: tuple[date | None, int] | None = None,
    limit: int = 20,
) -> tuple[list[dict[str, Any]], bool]:
    """The visible open deals of a stage as card values, by expected close (undated last)
    then id, from after the `after` cursor (keyset: an index range scan wherever the column
    continues); and whether more follow."""
    deals = _open_deals(principal, stage.pipeline).filter(stage=stage)
    if after is not None:
        close, pk = after
        if close is None:
            deals = deals.filter(expected_close__isnull=True, id__gt=pk)
        else:
            deals = deals.filter(
                Q(expected_close__gt=close)
                | Q(expected_close=close, id__gt=pk)
                | Q(expected_close__isnull=True)
            )
    order = [F("expected_close").asc(nulls_last=True), F("id").asc()]
    rows = list(deals.order_by(*order).values(*CARD_FIELDS)[: limit + 1])
    return rows[:limit], len(rows) > limit


def kanban(
    *,
    principal: Principal,
    pipeline: Pipeline,
    per_column: int = 20,
    stages: list[Stage] | None = None,
) -> list[Column]:
    """The board of a pipeline's open stages: per stage the count and sums of the visible
    open deals (one GROUP BY over the deals alone: the stage's probability comes in as a
    CASE of the few stages, not a join) and the first `per_column` cards by expected close
    (one LIMITed index scan per stage), so the page costs the same queries for 100 or
    100,000 deals. The rest of a column comes `per_column` at a time from `column_cards`."""
    stages = [s for s in (stages or stage_list(pipeline=pipeline)) if s.outcome == Outcome.OPEN]
    columns = {s.pk: Column(stage=s) for s in stages}
    if not stages:
        return []
    probability = Case(
        *[When(stage_id=s.pk, then=Value(s.probability)) for s in stages],
        default=Value(0),
        output_field=IntegerField(),
    )
    weighted = ExpressionWrapper(
        F("amount_yen") * probability / Value(100), output_field=BigIntegerField()
    )
    totals = (
        _open_deals(principal, pipeline)
        .filter(stage_id__in=list(columns))
        .order_by()
        .values("stage_id")
        .annotate(n=Count("id"), amount=Coalesce(Sum("amount_yen"), 0), weighted=Sum(weighted))
    )
    for row in totals:
        column = columns[row["stage_id"]]
        column.count, column.amount_yen = row["n"], row["amount"]
        column.weighted_yen = int(row["weighted"] or 0)
    for stage in stages:
        column = columns[stage.pk]
        if column.count:
            stage.pipeline = pipeline  # no query for it in column_cards
            column.cards, column.more = column_cards(
                principal=principal, stage=stage, limit=per_column
            )
    return [columns[s.pk] for s in stages]


@dataclass(frozen=True)
class ForecastRow:
    stage: Stage
    count: int
    amount_yen: int
    weighted_yen: int


@dataclass(frozen=True)
class Forecast:
    rows: list[ForecastRow]
    by_month: list[dict[str, Any]]
    total_yen: int
    weighted_yen: int
    won_yen: int


def forecast(*, principal: Principal, pipeline: Pipeline) -> Forecast:
    """Open amount per stage weighted by the stage's probability, in total and by month of
    expected close; won amount beside it."""
    deals = deals_visible(principal=principal).filter(pipeline=pipeline)
    per_stage = {
        r["stage_id"]: r
        for r in deals.filter(status=Outcome.OPEN)
        .order_by()
        .values("stage_id")
        .annotate(n=Count("id"), amount=Coalesce(Sum("amount_yen"), 0), weighted=Sum(_weighted()))
    }
    rows = [
        ForecastRow(
            stage=s,
            count=per_stage.get(s.pk, {}).get("n", 0),
            amount_yen=per_stage.get(s.pk, {}).get("amount", 0),
            weighted_yen=int(per_stage.get(s.pk, {}).get("weighted") or 0),
        )
        for s in stage_list(pipeline=pipeline)
        if s.outcome == Outcome.OPEN
    ]
    from django.db.models.functions import TruncMonth

    by_month = list(
        deals.filter(status=Outcome.OPEN, expected_close__isnull=False)
        .annotate(month=TruncMonth("expected_close"))
        .order_by("month")
        .values("month")
        .annotate(amount=Coalesce(Sum("amount_yen"), 0), weighted=Sum(_weighted()), n=Count("id"))
    )
    for row in by_month:
        row["weighted"] = int(row["weighted"] or 0)
    won = deals.filter(status=Outcome.WON).aggregate(s=Coalesce(Sum("amount_yen"), 0))["s"]
    return Forecast(
        rows=rows,
        by_month=by_month,
        total_yen=sum(r.amount_yen for r in rows),
        weighted_yen=sum(r.weighted_yen for r in rows),
        won_yen=won,
    )


# --- my tasks, my customers ----------------------------------------------------------------


def my_tasks(*, user: Any, include_done: bool = False) -> QuerySet[Activity]:
    """The tasks assigned to `user`, open ones first by due date; `overdue` annotated."""
    tasks = Activity.objects.filter(kind=ActivityKind.TASK, assigned_to=user).select_related(
        "account", "deal", "customer"
    )
    if not include_done:
        tasks = tasks.filter(done_at__isnull=True)
    return tasks.annotate(
        overdue=Case(
            When(Q(done_at__isnull=True) & Q(due_at__lt=now()), then=Value(1)),
            default=Value(0),
            output_field=IntegerField(),
        )
    ).order_by(F("done_at").asc(nulls_first=True), "due_at", "id")


@dataclass(frozen=True)
class CareSummary:
    customers: int
    overdue: int
    at_risk: int


def _care_rows(owner_id: int | None) -> QuerySet[CustomerCare]:
    return CustomerCare.objects.filter(owner_id=owner_id, level=ServiceLevel.HIGH)


def _risk_q() -> Q:
    # A semi-join on the scores (not customer -> score joins) for the summary's count.
    at_risk = CustomerScore.objects.filter(at_risk=True).values("customer_id")
    return Q(customer_id__in=at_risk) | Q(
        p_alive_previous__isnull=False,
        p_alive_current__lte=F("p_alive_previous") - Value(P_ALIVE_FALL),
    )


def my_customers(*, owner: Any, risk_only: bool = False) -> QuerySet[CustomerCare]:
    """The high-touch customers `owner` looks after, overdue follow-ups first, each with
    their score (P(alive), CLV), latest NPS answer and open inquiries when those apps are
    installed. Annotations are subqueries: one query per page whatever the page size."""
    rows = _care_rows(getattr(owner, "pk", owner)).select_related("customer", "customer__score")
    if risk_only:
        rows = rows.filter(_risk_q())
    response = _optional_model("surveys", "Response")
    if response is not None:
        latest = response.objects.filter(customer_id=OuterRef("customer_id"), nps__isnull=False)
        rows = rows.annotate(
            last_nps=Subquery(latest.order_by("-submitted_at", "-id").values("nps")[:1])
        )
    inquiry = _optional_model("support", "Inquiry")
    if inquiry is not None:
        open_inquiries = (
            inquiry.objects.filter(
                customer_id=OuterRef("customer_id"), status__in=["open", "pending"]
            )
            .order_by()
            .values("customer_id")
            .annotate(n=Count("id"))
            .values("n")
        )
        rows = rows.annotate(open_inquiries=Coalesce(Subquery(open_inquiries), 0))
    return rows.order_by(F("next_follow_up_at").asc(nulls_last=True), "customer_id")


def care_summary(*, owner: Any) -> CareSummary:
    rows = _care_rows(getattr(owner, "pk", owner))
    agg = rows.aggregate(
        n=Count("customer_id"),
        overdue=Count("customer_id", filter=Q(next_follow_up_at__lt=now())),
        risk=Count("customer_id", filter=_risk_q()),
    )
    return CareSummary(customers=agg["n"], overdue=agg["overdue"], at_risk=agg["risk"])


def risk_signals(care: CustomerCare) -> list[str]:
    """The at-risk signals of one row of `my_customers` (codes; the page translates)."""
    signals = []
    score = getattr(care.customer, "score", None) if hasattr(care.customer, "score") else None
    if score is not None and score.at_risk:
        signals.append("at_risk")
    if (
        care.p_alive_previous is not None
        and care.p_alive_current is not None
        and care.p_alive_current <= care.p_alive_previous - P_ALIVE_FALL
    ):
        signals.append("p_alive_falling")
    nps = getattr(care, "last_nps", None)
    if nps is not None and nps <= DETRACTOR_MAX:
        signals.append("detractor")
    if getattr(care, "open_inquiries", 0):
        signals.append("open_inquiries")
    return signals


def overdue_accounts(*, owner: Any | None = None) -> QuerySet[Account]:
    accounts = Account.objects.filter(next_follow_up_at__lt=now())
    if owner is not None:
        accounts = accounts.filter(owner=owner)
    return accounts.order_by("next_follow_up_at")


@dataclass(frozen=True)
class CareRow:
    care: CustomerCare
    p_alive: float | None
    clv_minor: int | None
    overdue: bool
    signals: list[str]


def care_rows(rows: Any) -> list[CareRow]:
    """One page of `my_customers` as display rows (no further queries)."""
    at = now()
    out = []
    for care in rows:
        score = getattr(care.customer, "score", None)
        out.append(
            CareRow(
                care=care,
                p_alive=score.p_alive if score else None,
                clv_minor=score.clv_minor if score else None,
                overdue=bool(care.next_follow_up_at and care.next_follow_up_at < at),
                signals=risk_signals(care),
            )
        )
    return out
