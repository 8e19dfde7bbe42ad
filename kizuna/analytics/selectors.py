"""Reads of customer insight: stored scores, runs, segment summaries, cohort retention,
KPIs over time and KPI goals with their trend."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
from django.core.cache import cache
from django.db.models import Avg, Count, Max, Q, QuerySet, Sum

from kizuna.analytics import sql
from kizuna.analytics.models import (
    CustomerScore,
    Kpi,
    KpiGoal,
    RunStatus,
    ScoringRun,
    Segment,
)
from kizuna.analytics.scoring import kpis
from kizuna.analytics.services import RATE_KPIS
from kizuna.commerce.models import Order
from kizuna.core.errors import NotFound
from kizuna.core.money import DEFAULT_CURRENCY
from kizuna.core.timeutil import business_zone, now
from kizuna.customers.models import Customer
from kizuna.loyalty.models import LedgerEntry, Programme

KPI_CACHE_SECONDS = 600
INSIGHT_MONTHS = 24
LOWER_IS_BETTER = {Kpi.CHURN_RATE}


def customer_score(*, customer: Customer) -> CustomerScore | None:
    return CustomerScore.objects.select_related("run").filter(customer=customer).first()


def customer_score_get(*, customer_id: int) -> CustomerScore:
    score = CustomerScore.objects.filter(customer_id=customer_id).first()
    if score is None:
        raise NotFound("score", customer_id)
    return score


def score_list(
    *, segment: str = "", at_risk: bool | None = None, order: str = "-clv_minor"
) -> QuerySet[CustomerScore]:
    qs = CustomerScore.objects.select_related("customer")
    if segment:
        qs = qs.filter(segment=segment)
    if at_risk is not None:
        qs = qs.filter(at_risk=at_risk)
    return qs.order_by(order, "customer_id")


def at_risk_list(*, limit: int = 100) -> QuerySet[CustomerScore]:
    """At-risk customers, most valuable first: the ones a win-back should reach first."""
    return score_list(at_risk=True, order="-clv_minor")[:limit]


def run_list() -> QuerySet[ScoringRun]:
    return ScoringRun.objects.select_related("requested_by").order_by("-created_at", "-id")


def run_get(*, run_id: int) -> ScoringRun:
    run = ScoringRun.objects.filter(pk=run_id).first()
    if run is None:
        raise NotFound("scoring run", run_id)
    return run


def latest_run() -> ScoringRun | None:
    return run_list().first()


def latest_successful_run() -> ScoringRun | None:
    return run_list().filter(status=RunStatus.SUCCEEDED).first()


def segment_summary() -> list[dict[str, Any]]:
    """Per segment: customers, share, averages of R/F/M inputs, CLV and P(alive)."""
    rows = {
        r["segment"]: r
        for r in CustomerScore.objects.values("segment").annotate(
            customers=Count("customer_id"),
            recency=Avg("recency_days"),
            orders=Avg("orders"),
            spend=Avg("monetary_minor"),
            clv=Avg("clv_minor"),
            total_clv=Sum("clv_minor"),
            p_alive=Avg("p_alive"),
            at_risk=Count("customer_id", filter=Q(at_risk=True)),
        )
    }
    total = sum(r["customers"] for r in rows.values())
    out = []
    for value, label in Segment.choices:
        r = rows.get(value)
        out.append(
            {
                "segment": value,
                "label": str(label),
                "customers": r["customers"] if r else 0,
                "share": (r["customers"] / total) if r and total else 0.0,
                "recency_days": r["recency"] if r else None,
                "orders": r["orders"] if r else None,
                "spend": r["spend"] if r else None,
                "clv": r["clv"] if r else None,
                "total_clv": r["total_clv"] if r else 0,
                "p_alive": r["p_alive"] if r else None,
                "at_risk": r["at_risk"] if r else 0,
            }
        )
    return out


def rfm_grid() -> list[dict[str, Any]]:
    """Customers, average spend and CLV per (R, F) cell."""
    return list(
        CustomerScore.objects.values("r_score", "f_score")
        .annotate(customers=Count("customer_id"), spend=Avg("monetary_minor"), clv=Avg("clv_minor"))
        .order_by("r_score", "f_score")
    )


def clv_distribution() -> list[dict[str, Any]]:
    """The CLV histogram of the last successful run (computed while scoring: reading a
    million values back for a page would take seconds)."""
    run = latest_successful_run()
    histogram = (run.summary if run else {}).get("clv_histogram")
    if not histogram:
        return []
    edges, counts = histogram["edges"], histogram["counts"]
    return [
        {"low": edges[i], "high": edges[i + 1], "customers": counts[i]} for i in range(len(counts))
    ]


# --- cohorts and KPIs ---------------------------------------------------------------------


def _data_version() -> tuple[Any, ...]:
    """Changes whenever orders change (new, refunded) or a run finishes: the cache key."""
    orders = Order.objects.aggregate(n=Count("id"), top=Max("id"), refunded=Sum("refunded_minor"))
    runs = ScoringRun.objects.filter(status=RunStatus.SUCCEEDED).aggregate(top=Max("id"))
    return (orders["n"], orders["top"], orders["refunded"], runs["top"])


@dataclass(frozen=True)
class Insight:
    months: list[date]
    cohorts: dict[str, Any]
    kpis: dict[str, list[float | None]]
    as_of: datetime | None = None  # the scoring run it comes from (None: computed live)

    def as_json(self) -> dict[str, Any]:
        return {
            "months": [m.isoformat() for m in self.months],
            "cohorts": self.cohorts,
            "kpis": self.kpis,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], as_of: datetime | None) -> Insight:
        return cls(
            months=[date.fromisoformat(m) for m in data["months"]],
            cohorts=data["cohorts"],
            kpis=data["kpis"],
            as_of=as_of,
        )


def insight(*, months: int = INSIGHT_MONTHS) -> Insight:
    """Cohort retention and monthly KPIs over the last `months` local months, as of the
    last successful scoring run (which computes them after storing its scores: at ten
    million orders they take as long as the scoring). Before any run, computed live and
    cached until the orders change."""
    run = (
        ScoringRun.objects.filter(status=RunStatus.SUCCEEDED)
        .exclude(insight={})
        .order_by("-as_of", "-id")
        .only("insight", "as_of")
        .first()
    )
    if run is not None and len(run.insight.get("months", [])) == months:
        return Insight.from_json(run.insight, run.as_of)
    version = f"{months}:{now().astimezone(business_zone()).date()}:{_data_version()}"
    key = "analytics:insight:" + hashlib.sha256(version.encode()).hexdigest()
    cached = cache.get(key)
    if cached is None:
        cached = compute_insight(months=months, until=now())
        cache.set(key, cached, KPI_CACHE_SECONDS)
    return cached


def compute_insight(*, months: int, until: datetime) -> Insight:
    zone = business_zone()
    local = until.astimezone(zone)
    last_month = local.year * 12 + local.month - 1
    rows = sql.read_monthly(as_of=until, currency=DEFAULT_CURRENCY, zone=zone)
    first = last_month - months + 1
    created = _customers_created_by_month(first, last_month, zone)
    series = kpis.monthly_kpis(
        rows,
        first_month=first,
        last_month=last_month,
        as_of_day=(local.date() - date(1970, 1, 1)).days,
        customers_created=created,
    )
    series.update(_clv_by_month(first, last_month, zone))
    series.update(_points_by_month(first, last_month, zone))
    return Insight(
        months=[kpis.month_start(m) for m in range(first, last_month + 1)],
        cohorts=kpis.cohort_matrix(rows, first_month=first, last_month=last_month),
        kpis=series,
    )


def _customers_created_by_month(first: int, last: int, zone: Any) -> list[int]:
    """Customers on record at the end of each month (one query)."""
    ends = []
    for month in range(first, last + 1):
        end = kpis.month_start(month + 1)
        ends.append(datetime(end.year, end.month, end.day, tzinfo=zone))
    counts = Customer.objects.aggregate(
        **{f"m{i}": Count("id", filter=Q(created_at__lt=end)) for i, end in enumerate(ends)}
    )
    return [counts[f"m{i}"] for i in range(len(ends))]


def _points_by_month(first: int, last: int, zone: Any) -> dict[str, list[float | None]]:
    """Points outstanding at the end of each month (the ledger's signed sum up to then, one
    query) and their yen value at the programme's point value, gross of breakage: the
    liability's trend; `loyalty.selectors.points_liability` breaks today's down by lot."""
    programme = Programme.objects.order_by("id").first()
    size = last - first + 1
    if programme is None:
        return {Kpi.POINTS_OUTSTANDING: [None] * size, Kpi.POINTS_LIABILITY: [None] * size}
    ends = []
    for month in range(first, last + 1):
        end = kpis.month_start(month + 1)
        ends.append(datetime(end.year, end.month, end.day, tzinfo=zone))
    sums = LedgerEntry.objects.aggregate(
        **{f"m{i}": Sum("points", filter=Q(occurred_at__lt=end)) for i, end in enumerate(ends)}
    )
    outstanding: list[float | None] = [float(sums[f"m{i}"] or 0) for i in range(size)]
    value = float(programme.point_value)
    liability: list[float | None] = [float(round(p * value)) for p in outstanding if p is not None]
    return {Kpi.POINTS_OUTSTANDING: outstanding, Kpi.POINTS_LIABILITY: liability}


def _clv_by_month(first: int, last: int, zone: Any) -> dict[str, list[float | None]]:
    """Average and total CLV of the last successful run of each month."""
    average: list[float | None] = [None] * (last - first + 1)
    total: list[float | None] = [None] * (last - first + 1)
    runs = ScoringRun.objects.filter(status=RunStatus.SUCCEEDED, as_of__isnull=False).order_by(
        "as_of", "id"
    )
    for run in runs.only("as_of", "summary"):
        assert run.as_of is not None
        local = run.as_of.astimezone(zone)
        index = local.year * 12 + local.month - 1 - first
        if 0 <= index < len(average):
            average[index] = run.summary.get("average_clv")
            total[index] = run.summary.get("total_clv")
    return {Kpi.AVERAGE_CLV: average, Kpi.TOTAL_CLV: total}


def kpi_goal_list() -> QuerySet[KpiGoal]:
    return KpiGoal.objects.select_related("created_by").order_by("due", "kpi")


def kpi_goal_get(*, goal_id: int) -> KpiGoal:
    goal = KpiGoal.objects.filter(pk=goal_id).first()
    if goal is None:
        raise NotFound("KPI goal", goal_id)
    return goal


def goal_progress(goal: KpiGoal, data: Insight) -> dict[str, Any]:
    """Where a goal stands: the latest value, the trend (least-squares slope over the last
    six months with a value), the value that trend reaches by the goal's month, and whether
    that meets the target (for churn rate: lower is better)."""
    values = data.kpis.get(goal.kpi, [])
    points = [(i, v) for i, v in enumerate(values) if v is not None][-6:]
    latest = points[-1][1] if points else None
    slope = None
    projected = None
    if len(points) >= 2:
        xs = np.array([p[0] for p in points], dtype=float)
        ys = np.array([p[1] for p in points], dtype=float)
        slope = float(np.polyfit(xs, ys, 1)[0])
        last_index = len(values) - 1
        months_ahead = (goal.due.year * 12 + goal.due.month) - (
            data.months[-1].year * 12 + data.months[-1].month
        )
        projected = float(ys[-1] + slope * (last_index - xs[-1] + max(months_ahead, 0)))
    lower = goal.kpi in LOWER_IS_BETTER
    basis = projected if projected is not None else latest
    on_track = None
    if basis is not None:
        on_track = basis <= goal.target if lower else basis >= goal.target
    return {
        "goal": goal,
        "latest": latest,
        "slope": slope,
        "projected": projected,
        "on_track": on_track,
        "lower_is_better": lower,
        "is_rate": goal.kpi in RATE_KPIS,
    }
