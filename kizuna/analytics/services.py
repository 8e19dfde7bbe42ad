"""Writes of customer insight: scoring runs (compute and store every customer's scores),
and KPI goals.

A scoring run reads the purchase summary with SQL, fits the models (pure NumPy/SciPy, see
`scoring/`), and replaces the stored scores in one transaction. When the population is too
small or a fit does not converge, the previous scores stay and the run says why.
Customers whose churn risk crosses the threshold get a `customer.at_risk` event.
"""

from __future__ import annotations

import logging
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from kizuna.analytics import sql
from kizuna.analytics.models import (
    Kpi,
    KpiGoal,
    RunStatus,
    RunTrigger,
    ScoringRun,
)
from kizuna.analytics.scoring.population import Outcome, Parameters, score_population
from kizuna.core import events as bus
from kizuna.core.audit import acting_as
from kizuna.core.money import DEFAULT_CURRENCY
from kizuna.core.runs import claim_run
from kizuna.core.timeutil import business_zone, now
from kizuna.customers.bulk import EventRow, events_insert
from kizuna.customers.models import Event

logger = logging.getLogger(__name__)

AT_RISK_EVENT = "customer.at_risk"
# A run still "running" after this long died with its worker: it no longer blocks others.

Progress = Callable[[str], None]


def default_parameters() -> Parameters:
    """The run parameters from settings (KIZUNA_CLV_* and KIZUNA_AT_RISK_THRESHOLD)."""
    return Parameters(
        horizon_months=getattr(settings, "KIZUNA_CLV_HORIZON_MONTHS", 12),
        annual_discount_rate=getattr(settings, "KIZUNA_CLV_DISCOUNT_RATE", 0.10),
        at_risk_threshold=getattr(settings, "KIZUNA_AT_RISK_THRESHOLD", 0.5),
    )


def _check_parameters(parameters: Parameters) -> None:
    errors = parameters.check()
    if errors:
        raise ValidationError({key: [message] for key, message in errors.items()})


@transaction.atomic
def scoring_run_request(
    *,
    trigger: str,
    actor: AbstractBaseUser | None = None,
    parameters: Parameters | None = None,
) -> ScoringRun:
    """Queue a scoring run (the worker executes it, see tasks.py)."""
    if trigger not in RunTrigger.values:
        raise ValidationError({"trigger": [_("Unknown trigger.")]})
    parameters = parameters or default_parameters()
    _check_parameters(parameters)
    with acting_as(actor):
        run = ScoringRun.objects.create(
            trigger=trigger,
            requested_by_id=actor.pk if actor is not None and actor.is_authenticated else None,
            parameters=parameters.as_dict(),
            model_version=parameters.model_version,
        )
    from kizuna.analytics.tasks import scoring_run_task

    transaction.on_commit(lambda: scoring_run_task(run.pk))
    return run


def _parameters_of(run: ScoringRun) -> Parameters:
    known = Parameters().as_dict()
    return replace(Parameters(), **{k: v for k, v in run.parameters.items() if k in known})


def _claim(run: ScoringRun) -> bool:
    return claim_run(
        run, refused_message=_("Another scoring run was in progress; this one was not started.")
    )


def scoring_run_execute(
    *,
    run: ScoringRun,
    as_of: datetime | None = None,
    progress: Progress | None = None,
    measure_memory: bool = False,
) -> ScoringRun:
    """Score every customer and store the scores (or keep the previous ones, saying why).

    Not one transaction from start to end: reading and fitting happen outside, the
    replacement of the scores (and the events of customers newly at risk) in one."""
    if not _claim(run):
        run.refresh_from_db()
        return run
    parameters = _parameters_of(run)
    as_of = as_of or now()
    zone = business_zone()
    timings: dict[str, float] = {}
    peaks: dict[str, float] = {}
    step = progress or (lambda _stage: None)

    def stage(name: str, work: Callable[[], Any]) -> Any:
        step(name)
        if measure_memory:
            tracemalloc.start()
        started = time.perf_counter()
        try:
            return work()
        finally:
            timings[name] = round(time.perf_counter() - started, 4)
            if measure_memory:
                peaks[name] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
                tracemalloc.stop()

    try:
        purchases = stage(
            "read",
            lambda: sql.read_purchases(as_of=as_of, currency=DEFAULT_CURRENCY, zone=zone),
        )
        outcome: Outcome = stage("score", lambda: score_population(purchases, parameters))
        timings.update({f"score.{k}": round(v, 4) for k, v in outcome.timings.items()})
        if outcome.scores is None:
            return _finish(
                run,
                status=RunStatus.KEPT_PREVIOUS,
                as_of=as_of,
                outcome=outcome,
                timings=timings,
                peaks=peaks,
                message=_("Previous scores kept: %(why)s.") % {"why": outcome.message},
            )
        scores = outcome.scores

        def store() -> tuple[int, list[int]]:
            with transaction.atomic():
                sql.stage_scores(scores)
                crossed = sql.newly_at_risk(parameters.at_risk_threshold)
                stored = sql.replace_scores(
                    run_id=run.pk,
                    model_version=parameters.model_version,
                    scored_at=as_of,
                    currency=DEFAULT_CURRENCY,
                )
                _publish_at_risk(run, crossed, scores, parameters.at_risk_threshold)
                return stored, crossed

        stored, crossed = stage("store", store)
        run.newly_at_risk = len(crossed)
        run.customers_scored = stored
        _finish(
            run,
            status=RunStatus.SUCCEEDED,
            as_of=as_of,
            outcome=outcome,
            timings=timings,
            peaks=peaks,
            message="",
        )
    except Exception as exc:
        logger.exception("scoring run %s failed", run.pk)
        _finish(
            run,
            status=RunStatus.FAILED,
            as_of=as_of,
            outcome=None,
            timings=timings,
            peaks=peaks,
            message=f"{type(exc).__name__}: {exc}",
        )
        raise
    # After the scores are in (the run has succeeded): the KPI and cohort snapshot that the
    # console shows. A failure here leaves the scores and the run as they are.
    try:
        snapshot = stage("kpis", lambda: _insight_snapshot(as_of))
    except Exception:
        logger.exception("scoring run %s: KPI snapshot failed", run.pk)
    else:
        run.insight = snapshot
    run.timings = {"seconds": timings, **({"peak_mib": peaks} if peaks else {})}
    run.save(update_fields=["insight", "timings"])
    return run


def _insight_snapshot(as_of: datetime) -> dict[str, Any]:
    from kizuna.analytics.selectors import INSIGHT_MONTHS, compute_insight

    return compute_insight(months=INSIGHT_MONTHS, until=as_of).as_json()


def _finish(
    run: ScoringRun,
    *,
    status: str,
    as_of: datetime,
    outcome: Outcome | None,
    timings: dict[str, float],
    peaks: dict[str, float],
    message: str,
) -> ScoringRun:
    run.status = status
    run.as_of = as_of
    run.finished_at = now()
    run.timings = {"seconds": timings, **({"peak_mib": peaks} if peaks else {})}
    run.message = message
    if outcome is not None:
        run.fit = outcome.fits
        run.summary = {**outcome.summary, "reason": outcome.reason}
        run.diagnostics = outcome.diagnostics
    run.save()
    return run


def _publish_at_risk(run: ScoringRun, crossed: list[int], scores: Any, threshold: float) -> None:
    """Record and publish `customer.at_risk` for each customer that crossed the threshold
    (inside the storing transaction: delivered to subscribers once it commits)."""
    if not crossed:
        return
    import numpy as np

    index = np.searchsorted(scores.customer_id, crossed)
    at = now()
    prefix = f"{AT_RISK_EVENT}:{run.pk}:"
    rows = []
    for customer_id, i in zip(crossed, index.tolist(), strict=True):
        rows.append(
            EventRow(
                type=AT_RISK_EVENT,
                customer_id=customer_id,
                occurred_at=at,
                source="analytics",
                message_id=f"{prefix}{customer_id}",
                properties={
                    "churn_risk": round(1.0 - float(scores.p_alive[i]), 4),
                    "threshold": threshold,
                    "clv": round(float(scores.clv[i])),
                    "days_overdue": int(scores.days_overdue[i]),
                    "run_id": run.pk,
                },
            )
        )
    events_insert(rows)
    # The run's events share their time: the (type, occurred_at) index finds them.
    stored = Event.objects.filter(
        type=AT_RISK_EVENT, occurred_at=at, message_id__startswith=prefix
    ).values_list("pk", "customer_id", "properties")
    for event_id, customer_id, properties in stored.iterator(chunk_size=2000):
        bus.publish(
            bus.DomainEvent(
                type=AT_RISK_EVENT,
                occurred_at=at,
                customer_id=customer_id,
                event_id=event_id,
                properties=properties,
                source="analytics",
            )
        )


def scoring_run_now(
    *,
    trigger: str,
    actor: AbstractBaseUser | None = None,
    parameters: Parameters | None = None,
    as_of: datetime | None = None,
    progress: Progress | None = None,
    measure_memory: bool = False,
) -> ScoringRun:
    """Create a run and execute it in this process (the CLI, the demo, the nightly task)."""
    parameters = parameters or default_parameters()
    _check_parameters(parameters)
    if trigger not in RunTrigger.values:
        raise ValidationError({"trigger": [_("Unknown trigger.")]})
    with acting_as(actor):
        run = ScoringRun.objects.create(
            trigger=trigger,
            requested_by_id=actor.pk if actor is not None and actor.is_authenticated else None,
            parameters=parameters.as_dict(),
            model_version=parameters.model_version,
        )
    return scoring_run_execute(
        run=run, as_of=as_of, progress=progress, measure_memory=measure_memory
    )


# --- KPI goals ----------------------------------------------------------------------------


@transaction.atomic
def kpi_goal_set(
    *,
    kpi: str,
    target: float,
    due: date,
    note: str = "",
    actor: AbstractBaseUser | None = None,
) -> KpiGoal:
    """Set the target of a KPI for a month (replacing that month's target if there is one)."""
    errors: dict[str, list[str]] = {}
    if kpi not in Kpi.values:
        errors["kpi"] = [_("Unknown KPI.")]
    if not isinstance(target, int | float) or isinstance(target, bool) or target != target:
        errors["target"] = [_("A number is required.")]
    elif target < 0:
        errors["target"] = [_("A target cannot be negative.")]
    elif kpi in RATE_KPIS and target > 1:
        errors["target"] = [_("A rate is between 0 and 1 (0.4 = 40%).")]
    if not isinstance(due, date):
        errors["due"] = [_("A month is required.")]
    if len(note) > 200:
        errors["note"] = [_("At most 200 characters.")]
    if errors:
        raise ValidationError(errors)
    month = due.replace(day=1)
    with acting_as(actor):
        goal, _created = KpiGoal.objects.update_or_create(
            kpi=kpi,
            due=month,
            defaults={
                "target": float(target),
                "note": note,
                "created_by": actor if actor is not None and actor.is_authenticated else None,
            },
        )
    return goal


@transaction.atomic
def kpi_goal_delete(*, goal: KpiGoal, actor: AbstractBaseUser | None = None) -> None:
    with acting_as(actor):
        goal.delete()


RATE_KPIS = {Kpi.REPEAT_RATE, Kpi.CHURN_RATE}
