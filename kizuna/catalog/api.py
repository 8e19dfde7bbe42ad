"""REST API of the catalog: products and categories."""
# No `from __future__ import annotations`: ninja reads these annotations at import time,
# through the pagination wrapper, whose module cannot resolve names of this one.

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status
from ninja.pagination import paginate
from pydantic import StrictBool, StrictInt

from kizuna.catalog import selectors, services
from kizuna.catalog.models import Category, Product
from kizuna.core.api import InputSchema, PagePagination, responses
from kizuna.core.money import DEFAULT_CURRENCY
from kizuna.iam.authz import request_actor, require_perm

router = Router(tags=["catalog"])


class ProductOut(Schema):
    id: int
    sku: str
    name: str
    name_en: str
    description: str
    category: str | None = Field(None, description="Category slug")
    price_minor: int = Field(..., description="Integer minor units of `currency` (yen: 1)")
    currency: str
    active: bool
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_category(obj: Product) -> str | None:
        return obj.category.slug if obj.category_id else None  # type: ignore[union-attr]


class ProductIn(InputSchema):
    sku: str = Field(..., min_length=1, max_length=64)
    name: str = Field(..., min_length=1, max_length=200)
    name_en: str = Field("", max_length=200)
    description: str = ""
    category: str | None = Field(None, description="Category slug")
    price_minor: StrictInt = Field(..., ge=0, description="Integer minor units of `currency`")
    currency: str = Field(DEFAULT_CURRENCY, description="ISO 4217 code")
    active: StrictBool = True


class ProductPatch(InputSchema):
    sku: str | None = Field(None, min_length=1, max_length=64)
    name: str | None = Field(None, min_length=1, max_length=200)
    name_en: str | None = Field(None, max_length=200)
    description: str | None = None
    category: str | None = Field(None, description="Category slug; null removes it")
    price_minor: StrictInt | None = Field(None, ge=0)
    currency: str | None = None
    active: StrictBool | None = None


class CategoryOut(Schema):
    id: int
    slug: str
    name: str
    name_en: str
    parent: str | None = Field(None, description="Parent category slug")

    @staticmethod
    def resolve_parent(obj: Category) -> str | None:
        return obj.parent.slug if obj.parent_id else None  # type: ignore[union-attr]


class ProductFilters(Schema):
    search: str = Field("", max_length=200, description="Name or SKU")
    category: str = Field("", max_length=100, description="Category slug")
    active: bool | None = None


def _not_null(data: dict[str, Any], nullable: set[str]) -> dict[str, Any]:
    """PATCH fields sent as null mean "no change" except where null has a meaning."""
    return {k: v for k, v in data.items() if v is not None or k in nullable}


@router.get(
    "/products",
    response=responses({200: list[ProductOut]}, query=True),
    auth=require_perm("catalog.view_product"),
)
@paginate(PagePagination)
def product_list(request: HttpRequest, filters: ProductFilters = Query(...)) -> Any:
    return selectors.product_list(
        search=filters.search, category=filters.category, active=filters.active
    )


@router.get(
    "/products/{product_id}",
    response=responses({200: ProductOut}, lookup=True),
    auth=require_perm("catalog.view_product"),
)
def product_get(request: HttpRequest, product_id: int) -> Product:
    return selectors.product_get(product_id=product_id)


@router.post(
    "/products",
    response=responses({201: ProductOut}, body=True),
    auth=require_perm("catalog.add_product"),
)
def product_create(request: HttpRequest, payload: ProductIn) -> Status[Product]:
    product = services.product_create(
        data=payload.model_dump(exclude_unset=True), actor=request_actor(request)
    )
    return Status(201, product)


@router.patch(
    "/products/{product_id}",
    response=responses({200: ProductOut}, lookup=True, body=True),
    auth=require_perm("catalog.change_product"),
)
def product_update(request: HttpRequest, product_id: int, payload: ProductPatch) -> Product:
    product = selectors.product_get(product_id=product_id)
    data = _not_null(payload.model_dump(exclude_unset=True), nullable={"category"})
    return services.product_update(product=product, data=data, actor=request_actor(request))


@router.get(
    "/categories",
    response=responses({200: list[CategoryOut]}, query=True),
    auth=require_perm("catalog.view_category"),
)
@paginate(PagePagination)
def category_list(request: HttpRequest) -> Any:
    return selectors.category_list().select_related("parent")
