"""Writes of recommendations: training runs (read the interactions, evaluate every kind on
a time-based holdout, train every kind on all the data, store the new versions and make
them active in one transaction) and the product/category settings."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from kizuna.catalog.models import Category, Product
from kizuna.core.audit import acting_as
from kizuna.core.runs import claim_run
from kizuna.core.timeutil import now
from kizuna.recommendations import data
from kizuna.recommendations.engine import evaluation, training
from kizuna.recommendations.engine import matrix as mx
from kizuna.recommendations.engine import models as engine
from kizuna.recommendations.engine.training import Params
from kizuna.recommendations.models import (
    ItemSetting,
    ModelVersion,
    RunStatus,
    RunTrigger,
    TrainingRun,
    artifact_dir,
)

logger = logging.getLogger(__name__)

KEEP_VERSIONS = 3  # per kind: older versions' files are removed after a successful run

Progress = Callable[[str, int], None]


def default_params() -> Params:
    """Parameters from settings.KIZUNA_RECOMMENDATIONS_PARAMS (a dict of Params fields)."""
    overrides = getattr(settings, "KIZUNA_RECOMMENDATIONS_PARAMS", {}) or {}
    return replace(Params(), **overrides)


def holdout_weeks() -> int:
    return int(getattr(settings, "KIZUNA_RECOMMENDATIONS_HOLDOUT_WEEKS", 8))


def evaluation_k() -> int:
    return int(getattr(settings, "KIZUNA_RECOMMENDATIONS_EVAL_K", 10))


def _check(params: Params, trigger: str) -> None:
    errors: dict[str, list[str]] = {k: [v] for k, v in params.check().items()}
    if trigger not in RunTrigger.values:
        errors["trigger"] = [_("Unknown trigger.")]
    if errors:
        raise ValidationError(errors)


def _create(trigger: str, actor: AbstractBaseUser | None, params: Params) -> TrainingRun:
    _check(params, trigger)
    with acting_as(actor):
        return TrainingRun.objects.create(
            trigger=trigger,
            requested_by_id=actor.pk if actor is not None and actor.is_authenticated else None,
            params=params.as_dict(),
        )


@transaction.atomic
def training_run_request(
    *, trigger: str, actor: AbstractBaseUser | None = None, params: Params | None = None
) -> TrainingRun:
    """Queue a training run (the worker executes it, see tasks.py)."""
    run = _create(trigger, actor, params or default_params())
    from kizuna.recommendations.tasks import training_run_task

    transaction.on_commit(lambda: training_run_task(run.pk))
    return run


def training_run_now(
    *,
    trigger: str,
    actor: AbstractBaseUser | None = None,
    params: Params | None = None,
    as_of: datetime | None = None,
    progress: Progress | None = None,
    evaluate: bool = True,
) -> TrainingRun:
    """Create a run and execute it in this process (CLI, demo, nightly task)."""
    run = _create(trigger, actor, params or default_params())
    return training_run_execute(run=run, as_of=as_of, progress=progress, evaluate=evaluate)


def _claim(run: TrainingRun) -> bool:
    return claim_run(
        run, refused_message=_("Another training run was in progress; this one was not started.")
    )


def train_all(
    matrix: mx.Matrix, params: Params, groups: np.ndarray | None, timings: dict[str, float]
) -> dict[str, engine.Trained]:
    trained = {}
    for kind in engine.KINDS:
        started = time.perf_counter()
        trained[kind] = engine.train(kind, matrix, params, groups)
        timings[kind] = round(time.perf_counter() - started, 4)
    return trained


def evaluate_all(
    interactions: mx.Interactions,
    *,
    products: np.ndarray,
    cutoff: datetime,
    params: Params,
    k: int,
) -> dict[str, Any]:
    """Train every kind on the interactions before `cutoff` and score it on the purchases
    after (see engine/evaluation.py)."""
    matrix, holdout = evaluation.split(
        interactions, int(cutoff.timestamp()), lambda rows: mx.build(rows, products)
    )
    result: dict[str, Any] = {
        "k": k,
        "cutoff": cutoff.isoformat(),
        "test_customers": len(holdout.truth),
        "train_customers": matrix.shape[0],
        "kinds": {},
    }
    for kind in engine.KINDS:
        model = engine.train(kind, matrix, params)
        recs = evaluation.recommend_rows(model, holdout.rows, k)
        result["kinds"][kind] = evaluation.metrics(recs, holdout.truth, k, matrix.shape[1])
    base = result["kinds"][engine.POPULARITY]["map"]
    for values in result["kinds"].values():
        values["map_vs_popularity"] = round(values["map"] / base, 3) if base > 0 else None
    return result


def training_run_execute(
    *,
    run: TrainingRun,
    as_of: datetime | None = None,
    progress: Progress | None = None,
    evaluate: bool = True,
) -> TrainingRun:
    """Train and store every kind (see the module docstring); a failure leaves the active
    versions as they were and the run failed with the reason."""
    if not _claim(run):
        run.refresh_from_db()
        return run
    params = replace(Params(), **{k: v for k, v in run.params.items() if k in Params().as_dict()})
    as_of = as_of or now()
    timings: dict[str, float] = {}

    def stage(name: str, percent: int) -> None:
        TrainingRun.objects.filter(pk=run.pk).update(stage=name, progress=percent)
        if progress is not None:
            progress(name, percent)

    def timed(name: str, work: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        try:
            return work()
        finally:
            timings[name] = round(time.perf_counter() - started, 4)

    try:
        stage("read", 5)
        interactions = timed(
            "read",
            lambda: data.read_interactions(
                until=as_of,
                purchase_weight=float(
                    getattr(settings, "KIZUNA_RECOMMENDATIONS_PURCHASE_WEIGHT", 1.0)
                ),
                view_weight=float(getattr(settings, "KIZUNA_RECOMMENDATIONS_VIEW_WEIGHT", 0.25)),
            ),
        )
        products = data.product_ids()
        if evaluate:
            stage("evaluate", 20)
            run.evaluation = timed(
                "evaluate",
                lambda: evaluate_all(
                    interactions,
                    products=products,
                    cutoff=as_of - timedelta(weeks=holdout_weeks()),
                    params=params,
                    k=evaluation_k(),
                ),
            )
        stage("matrix", 55)
        matrix = timed("matrix", lambda: mx.build(interactions, products))
        groups = timed("groups", lambda: data.groups(matrix.customer_ids))
        stage("train", 60)
        kind_timings: dict[str, float] = {}
        trained = timed("train", lambda: train_all(matrix, params, groups, kind_timings))
        timings.update({f"train.{k}": v for k, v in kind_timings.items()})
        stage("store", 90)
        timed("store", lambda: _store(run, trained, params, as_of))
        run.data = {
            "interactions": len(interactions),
            "purchases": int(interactions.purchase.sum()),
            "customers": matrix.shape[0],
            "products": matrix.shape[1],
            # the size-dependent settings this run used (Params fields left at 0)
            "als_factors": training.als_factors(params, matrix.shape[1]),
            "als_iterations": training.als_iterations(params, matrix.weights.nnz),
            "bpr_iterations": training.bpr_epochs(params, matrix.weights.nnz),
        }
        run.status = RunStatus.SUCCEEDED
        run.stage, run.progress = "done", 100
        run.message = ""
    except Exception as exc:
        logger.exception("training run %s failed", run.pk)
        run.status = RunStatus.FAILED
        run.message = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        run.as_of = as_of
        run.finished_at = now()
        run.timings = {"seconds": timings}
        if run.status == RunStatus.RUNNING:
            run.status = RunStatus.FAILED
        run.save()
    _prune()
    return run


def _store(
    run: TrainingRun, trained: dict[str, engine.Trained], params: Params, as_of: datetime
) -> None:
    """Write each kind's file, then switch the active versions in one transaction."""
    names = {kind: f"{kind}-{run.pk}.npz" for kind in trained}
    for kind, model in trained.items():
        model.save(artifact_dir() / names[kind])
    metrics = (run.evaluation or {}).get("kinds", {})
    with transaction.atomic():
        ModelVersion.objects.filter(kind__in=list(trained), active=True).update(active=False)
        for kind, model in trained.items():
            ModelVersion.objects.create(
                run=run,
                kind=kind,
                trained_at=as_of,
                params=params.as_dict(),
                metrics=metrics.get(kind, {}),
                artifact=names[kind],
                customers=len(model.customer_ids),
                products=len(model.product_ids),
                active=True,
            )


def _prune() -> None:
    """Remove the files of all but the newest KEEP_VERSIONS versions of each kind."""
    for kind in engine.KINDS:
        old = ModelVersion.objects.filter(kind=kind, active=False).order_by("-trained_at", "-id")[
            KEEP_VERSIONS - 1 :
        ]
        for version in old:
            try:
                version.path.unlink(missing_ok=True)
            except OSError:
                logger.warning("could not remove %s", version.path)


# --- settings of products and categories -------------------------------------------------


@transaction.atomic
def item_setting_save(
    *,
    product: Product | None = None,
    category: Category | None = None,
    consumable: bool = False,
    excluded: bool = False,
    actor: AbstractBaseUser | None = None,
) -> ItemSetting:
    """Set how recommendations treat a product or a category (exactly one of them)."""
    if (product is None) == (category is None):
        raise ValidationError({"product": [_("Choose either a product or a category.")]})
    with acting_as(actor):
        setting, _created = ItemSetting.objects.update_or_create(
            product=product,
            category=category,
            defaults={"consumable": consumable, "excluded": excluded},
        )
    return setting


@transaction.atomic
def item_setting_delete(*, setting: ItemSetting, actor: AbstractBaseUser | None = None) -> None:
    with acting_as(actor):
        setting.delete()
