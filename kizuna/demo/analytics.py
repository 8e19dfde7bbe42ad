"""Customer insight for the demo business: scoring runs at the last month end and now
(so the KPI page has a CLV trend and the timeline shows customers who became at risk), and a
few KPI goals for the PDCA view."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from kizuna.analytics import services
from kizuna.analytics.models import Kpi, RunTrigger, ScoringRun
from kizuna.core.timeutil import business_zone, now

PAST_RUNS = 1


def _month_ends(count: int, until: datetime) -> list[datetime]:
    """The last `count` local month ends before `until`, oldest first."""
    zone = business_zone()
    local = until.astimezone(zone)
    ends = []
    first = date(local.year, local.month, 1)
    for _ in range(count):
        ends.append(
            datetime(first.year, first.month, first.day, tzinfo=zone) - timedelta(seconds=1)
        )
        first = (first - timedelta(days=1)).replace(day=1)
    return list(reversed(ends))


def load() -> ScoringRun:
    moment = now()
    for as_of in _month_ends(PAST_RUNS, moment):
        services.scoring_run_now(trigger=RunTrigger.DEMO, as_of=as_of)
    run = services.scoring_run_now(trigger=RunTrigger.DEMO, as_of=moment)
    goals_month = (
        moment.astimezone(business_zone()).date().replace(day=1) + timedelta(days=95)
    ).replace(day=1)
    for kpi, target, note in (
        (Kpi.REPEAT_RATE, 0.85, "リピート率 85% / repeat rate 85%"),
        (Kpi.CHURN_RATE, 0.08, "離脱率 8% 以下 / churn under 8%"),
        (Kpi.AOV, 1500, "客単価 1,500円 / AOV ¥1,500"),
    ):
        services.kpi_goal_set(kpi=kpi, target=target, due=goals_month, note=note)
    return run
