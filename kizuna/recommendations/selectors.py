"""Reads of recommendations: serving (a customer's recommendations, a product's related
products) from the active models held in memory, runs and versions for the console/API.

Serving keeps each kind's active model in memory per process: loaded from its file on first
use and again when the active version changes (an indexed query finds the active version,
at most once per KIZUNA_RECOMMENDATIONS_VERSION_CHECK_SECONDS, 1 s, per kind and process).
The catalogue's state (active products, categories, the consumable and excluded settings,
names and prices) is cached per process for CATALOGUE_TTL seconds. No request reads orders
or events.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from django.conf import settings
from django.db.models import QuerySet

from kizuna.catalog.models import Product
from kizuna.customers.models import Customer
from kizuna.customers.selectors import has_basis
from kizuna.recommendations import data
from kizuna.recommendations.engine import models as engine
from kizuna.recommendations.engine.ranking import rank
from kizuna.recommendations.models import ItemSetting, ModelVersion, TrainingRun

logger = logging.getLogger(__name__)

CATALOGUE_TTL = 30.0
MAX_N = 100

# fallback / reason values of a response
POPULARITY, GROUP_POPULARITY = "popularity", "group_popularity"
NO_HISTORY, NOT_TRAINED, NO_NEIGHBOURS = "no_history", "not_trained", "no_neighbours"
NO_BASIS = "no_basis"  # the customer objected to personalisation: nothing personal is used


def default_kind() -> str:
    return str(getattr(settings, "KIZUNA_RECOMMENDATIONS_MODEL", engine.ALS))


def category_share() -> float:
    return float(getattr(settings, "KIZUNA_RECOMMENDATIONS_CATEGORY_SHARE", 0.5))


@dataclass(frozen=True)
class Item:
    product_id: int
    sku: str
    name: str
    name_en: str
    category: str
    price_minor: int
    currency: str
    score: float


@dataclass(frozen=True)
class ModelInfo:
    kind: str
    version: int
    trained_at: datetime


@dataclass
class Result:
    items: list[Item]
    model: ModelInfo | None
    fallback: str | None = None
    reason: str | None = None


@dataclass
class _Catalogue:
    """The catalogue's state aligned with one model's product columns."""

    loaded_at: float
    blocked: np.ndarray  # inactive, excluded (product or category), or no longer in the catalogue
    consumable: np.ndarray
    categories: np.ndarray  # category id per column, -1 for none
    info: list[tuple[str, str, str, str, int, str] | None] = field(default_factory=list)


@dataclass
class _Loaded:
    version: ModelVersion
    model: engine.Trained
    catalogue: _Catalogue | None = None
    checked_at: float = 0.0


_lock = threading.Lock()
_loaded: dict[str, _Loaded] = {}
_none_checked: dict[str, float] = {}  # kinds found without an active version, and when


def version_check_seconds() -> float:
    return float(getattr(settings, "KIZUNA_RECOMMENDATIONS_VERSION_CHECK_SECONDS", 1.0))


def cache_clear() -> None:
    """Forget the models and catalogue state held in memory (tests, after bulk changes)."""
    with _lock:
        _loaded.clear()
        _none_checked.clear()


def _active(kind: str) -> _Loaded | None:
    ttl = version_check_seconds()
    moment = time.monotonic()
    held = _loaded.get(kind)
    if held is not None and moment - held.checked_at < ttl:
        return held
    if held is None and moment - _none_checked.get(kind, -ttl) < ttl:
        return None
    version = (
        ModelVersion.objects.filter(kind=kind, active=True)
        .only("id", "kind", "trained_at", "artifact")
        .first()
    )
    if version is None:
        _loaded.pop(kind, None)
        _none_checked[kind] = moment
        return None
    if held is not None and held.version.pk == version.pk:
        held.checked_at = moment
        return held
    with _lock:
        held = _loaded.get(kind)
        if held is not None and held.version.pk == version.pk:
            return held
        try:
            model = engine.Trained.load(version.path)
        except (OSError, ValueError, KeyError):
            logger.exception("recommendations: cannot load %s (%s)", version, version.path)
            return None
        for other in _loaded.values():  # the rows are the same for every kind of a run
            if model.share_rows(other.model):
                break
        held = _Loaded(version, model, checked_at=moment)
        _loaded[kind] = held
        return held


def _catalogue(held: _Loaded) -> _Catalogue:
    cat = held.catalogue
    if cat is not None and time.monotonic() - cat.loaded_at < CATALOGUE_TTL:
        return cat
    ids = held.model.product_ids
    n = len(ids)
    blocked = np.ones(n, bool)
    consumable = np.zeros(n, bool)
    categories = np.full(n, -1, np.int64)
    info: list[tuple[str, str, str, str, int, str] | None] = [None] * n
    rows = Product.objects.values_list(
        "pk",
        "sku",
        "name",
        "name_en",
        "category_id",
        "category__slug",
        "price_minor",
        "currency",
        "active",
    )
    by_category: dict[int, ItemSetting] = {}
    by_product: dict[int, ItemSetting] = {}
    for s in ItemSetting.objects.all():
        if s.product_id is not None:
            by_product[s.product_id] = s
        elif s.category_id is not None:
            by_category[s.category_id] = s
    for pk, sku, name, name_en, category_id, slug, price, currency, active in rows:
        column = held.model.column_of(pk)
        if column is None:
            continue
        setting = by_product.get(pk) or by_category.get(category_id or -1)
        excluded = bool(setting and setting.excluded)
        blocked[column] = not active or excluded
        consumable[column] = bool(setting and setting.consumable)
        categories[column] = category_id if category_id is not None else -1
        info[column] = (sku, name, name_en, slug or "", int(price), currency)
    cat = _Catalogue(time.monotonic(), blocked, consumable, categories, info)
    held.catalogue = cat
    return cat


def _items(held: _Loaded, cat: _Catalogue, columns: list[int], scores: np.ndarray) -> list[Item]:
    out = []
    for column in columns:
        row = cat.info[column]
        if row is None:
            continue
        sku, name, name_en, category, price, currency = row
        out.append(
            Item(
                product_id=int(held.model.product_ids[column]),
                sku=sku,
                name=name,
                name_en=name_en,
                category=category,
                price_minor=price,
                currency=currency,
                score=round(float(scores[column]), 6),
            )
        )
    return out


def _info(held: _Loaded) -> ModelInfo:
    return ModelInfo(held.version.kind, held.version.pk, held.version.trained_at)


def _per_category(n: int) -> int:
    return max(1, math.ceil(n * category_share()))


def recommendations_for(*, customer: Customer, n: int = 10, kind: str | None = None) -> Result:
    """Up to `n` products for `customer` from the active model of `kind` (settings'
    KIZUNA_RECOMMENDATIONS_MODEL by default), excluding inactive and excluded products and
    what the customer bought (unless consumable), at most ceil(n * category share) per
    category. A customer unknown to the model (no history when it was trained) gets the
    popularity of their group, or overall (`fallback`, `reason` say so); with no trained
    model, an empty list and `model` None."""
    n = max(0, min(int(n), MAX_N))
    if not has_basis(customer=customer, purpose="personalisation"):
        # No basis for personalisation (an objection): the overall popularity, nothing
        # taken from the customer's history or profile.
        held = _active(engine.POPULARITY)
        if held is None:
            return Result([], None, None, NO_BASIS)
        cat = _catalogue(held)
        scores = held.model.scores(None, None)
        columns = rank(
            scores,
            n=n,
            blocked=cat.blocked,
            categories=cat.categories,
            per_category=_per_category(n),
        )
        return Result(_items(held, cat, columns, scores), _info(held), POPULARITY, NO_BASIS)
    held = _active(kind or default_kind())
    row = held.model.row_of(customer.pk) if held is not None else None
    fallback = reason = None
    if held is None or row is None:
        reason = NOT_TRAINED if held is None else NO_HISTORY
        held = _active(engine.POPULARITY)
        if held is None:
            return Result([], None, None, NOT_TRAINED)
        group = data.group_of(customer)
        fallback = GROUP_POPULARITY if group in held.model.popularity.groups else POPULARITY  # type: ignore[union-attr]
        scores = held.model.scores(None, group)
        row = held.model.row_of(customer.pk)
    else:
        scores = held.model.scores(row)
    cat = _catalogue(held)
    blocked = cat.blocked.copy()
    if row is not None:
        seen = held.model.bought_columns(row)
        blocked[seen[~cat.consumable[seen]]] = True
    columns = rank(
        scores, n=n, blocked=blocked, categories=cat.categories, per_category=_per_category(n)
    )
    return Result(_items(held, cat, columns, scores), _info(held), fallback, reason)


def related_to(*, product: Product, n: int = 10) -> Result:
    """Up to `n` products frequently bought with `product` (the active co-purchase model);
    a product without co-purchases gets the most popular products (`fallback`); with no
    trained model, an empty list and `model` None."""
    n = max(0, min(int(n), MAX_N))
    held = _active(engine.COOCCURRENCE)
    column = held.model.column_of(product.pk) if held is not None else None
    if held is not None and column is not None and held.model.copurchase is not None:
        neighbours, values = held.model.copurchase.related(column)
        if len(neighbours):
            scores = np.full(held.model.n_items, -np.inf, np.float32)
            scores[neighbours] = values
            cat = _catalogue(held)
            blocked = cat.blocked.copy()
            blocked[column] = True
            columns = rank(scores, n=n, blocked=blocked)
            if columns:
                return Result(_items(held, cat, columns, scores), _info(held))
    reason = NOT_TRAINED if held is None else NO_NEIGHBOURS
    popular = _active(engine.POPULARITY)
    if popular is None:
        return Result([], None, None, NOT_TRAINED)
    scores = popular.model.scores(None)
    cat = _catalogue(popular)
    blocked = cat.blocked.copy()
    own = popular.model.column_of(product.pk)
    if own is not None:
        blocked[own] = True
    columns = rank(
        scores, n=n, blocked=blocked, categories=cat.categories, per_category=_per_category(n)
    )
    return Result(_items(popular, cat, columns, scores), _info(popular), POPULARITY, reason)


# --- runs and versions ---------------------------------------------------------------------


def run_list() -> QuerySet[TrainingRun]:
    return TrainingRun.objects.order_by("-created_at", "-id")


def run_get(*, run_id: int) -> TrainingRun:
    from kizuna.core.errors import NotFound

    try:
        return TrainingRun.objects.get(pk=run_id)
    except TrainingRun.DoesNotExist as exc:
        raise NotFound("training run", run_id) from exc


def active_versions() -> dict[str, ModelVersion]:
    return {v.kind: v for v in ModelVersion.objects.filter(active=True)}


def latest_evaluation() -> TrainingRun | None:
    return (
        TrainingRun.objects.filter(status="succeeded")
        .exclude(evaluation={})
        .order_by("-finished_at", "-id")
        .first()
    )


def evaluation_history(limit: int = 20) -> list[dict[str, Any]]:
    runs = (
        TrainingRun.objects.filter(status="succeeded")
        .exclude(evaluation={})
        .order_by("-finished_at", "-id")[:limit]
    )
    return [
        {
            "run": r.pk,
            "at": r.finished_at,
            **{k: v.get("map") for k, v in r.evaluation.get("kinds", {}).items()},
        }
        for r in reversed(list(runs))
    ]
