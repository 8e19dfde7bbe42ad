"""REST API of recommendations: a customer's recommended products, a product's related
("frequently bought together") products, training runs (list, read, request one) and the
active model versions.

Defined responses: an unknown customer or product is 404; a customer the model does not
know (no history when it was trained) gets popular products, with `fallback` and `reason`
saying so; before any training, and for an empty catalogue, `items` is empty (200, with
`model: null` when nothing is trained). See docs/recommendations.md."""
# No `from __future__ import annotations`: ninja reads these annotations at import time.

from datetime import datetime
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status
from ninja.pagination import paginate

from kizuna.catalog.selectors import product_get
from kizuna.core.api import InputSchema, PagePagination, responses
from kizuna.customers.selectors import customer_get
from kizuna.iam.authz import request_actor, require_perm
from kizuna.recommendations import selectors, services
from kizuna.recommendations.models import Kind, ModelVersion, RunTrigger, TrainingRun

router = Router(tags=["recommendations"])


class ItemOut(Schema):
    product_id: int
    sku: str
    name: str
    name_en: str
    category: str = Field(..., description="The category's slug, empty when it has none")
    price_minor: int
    currency: str
    score: float = Field(..., description="The model's score (comparable within one list)")


class ModelOut(Schema):
    kind: Kind
    version: int = Field(..., description="The model version's id")
    trained_at: datetime


class RecommendationsOut(Schema):
    model: ModelOut | None = Field(
        ..., description="The model version that made the list; null when none is trained"
    )
    fallback: Literal["popularity", "group_popularity"] | None = Field(
        None,
        description="Set when the list is not personal: the popularity overall or in the "
        "customer's group (prefecture)",
    )
    reason: Literal["no_history", "not_trained", "no_neighbours", "no_basis"] | None = Field(
        None,
        description="Why the fallback was used (no_basis: the customer objected to "
        "personalisation)",
    )
    items: list[ItemOut]


class CustomerRecommendationsOut(RecommendationsOut):
    customer_id: int


class RelatedOut(RecommendationsOut):
    product_id: int


class CustomerQuery(Schema):
    n: int = Field(10, ge=1, le=selectors.MAX_N, description="How many products")
    model: Kind | None = Field(
        None, description="Which kind of model (default: the installation's, ALS)"
    )


class RelatedQuery(Schema):
    n: int = Field(10, ge=1, le=selectors.MAX_N, description="How many products")


class RunOut(Schema):
    id: int
    status: str
    trigger: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    as_of: datetime | None
    stage: str
    progress: int = Field(..., description="Percent done")
    params: dict[str, Any]
    evaluation: dict[str, Any] = Field(
        ..., description="Holdout metrics per kind: precision, recall, map, coverage at k"
    )
    data: dict[str, Any]
    timings: dict[str, Any]
    message: str


class VersionOut(Schema):
    id: int
    run_id: int
    kind: Kind
    trained_at: datetime
    customers: int
    products: int
    metrics: dict[str, Any]
    params: dict[str, Any]


class RunIn(InputSchema):
    """Empty: a run uses the installation's parameters (KIZUNA_RECOMMENDATIONS_*)."""


def _out(result: selectors.Result, **key: int) -> dict[str, Any]:
    return {
        **key,
        "model": None
        if result.model is None
        else {
            "kind": result.model.kind,
            "version": result.model.version,
            "trained_at": result.model.trained_at,
        },
        "fallback": result.fallback,
        "reason": result.reason,
        "items": [item.__dict__ for item in result.items],
    }


@router.get(
    "/customers/{customer_id}/recommendations",
    response=responses({200: CustomerRecommendationsOut}, lookup=True),
    auth=require_perm("recommendations.view_modelversion"),
)
def customer_recommendations(
    request: HttpRequest, customer_id: int, query: CustomerQuery = Query(...)
) -> dict[str, Any]:
    """Products recommended to the customer (404 if the customer is unknown)."""
    customer = customer_get(customer_id=customer_id)
    result = selectors.recommendations_for(customer=customer, n=query.n, kind=query.model)
    return _out(result, customer_id=customer.pk)


@router.get(
    "/products/{product_id}/related",
    response=responses({200: RelatedOut}, lookup=True),
    auth=require_perm("recommendations.view_modelversion"),
)
def product_related(
    request: HttpRequest, product_id: int, query: RelatedQuery = Query(...)
) -> dict[str, Any]:
    """Products frequently bought together with the product (404 if it is unknown)."""
    product = product_get(product_id=product_id)
    return _out(selectors.related_to(product=product, n=query.n), product_id=product.pk)


@router.get(
    "/recommendations/versions",
    response=responses({200: list[VersionOut]}),
    auth=require_perm("recommendations.view_modelversion"),
)
def version_list(request: HttpRequest) -> list[ModelVersion]:
    """The active model version of each kind."""
    return list(selectors.active_versions().values())


@router.get(
    "/recommendations/runs",
    response=responses({200: list[RunOut]}, query=True),
    auth=require_perm("recommendations.view_trainingrun"),
)
@paginate(PagePagination)
def run_list(request: HttpRequest) -> Any:
    return selectors.run_list()


@router.get(
    "/recommendations/runs/{run_id}",
    response=responses({200: RunOut}, lookup=True),
    auth=require_perm("recommendations.view_trainingrun"),
)
def run_get(request: HttpRequest, run_id: int) -> TrainingRun:
    return selectors.run_get(run_id=run_id)


@router.post(
    "/recommendations/runs",
    response=responses({202: RunOut}, body=True),
    auth=require_perm("recommendations.add_trainingrun"),
)
def run_request(request: HttpRequest, payload: RunIn) -> Status[TrainingRun]:
    """Queue a training run; the worker executes it (poll the run for its progress)."""
    run = services.training_run_request(trigger=RunTrigger.API, actor=request_actor(request))
    return Status(202, run)
