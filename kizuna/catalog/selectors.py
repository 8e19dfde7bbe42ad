from __future__ import annotations

from django.db.models import Q, QuerySet

from kizuna.catalog.models import Category, Product
from kizuna.core.errors import NotFound


def product_list(
    *, search: str = "", category: str = "", active: bool | None = None
) -> QuerySet[Product]:
    qs = Product.objects.select_related("category").order_by("sku")
    if search:
        qs = qs.filter(
            Q(name__icontains=search) | Q(name_en__icontains=search) | Q(sku__icontains=search)
        )
    if category:
        qs = qs.filter(category__slug=category)
    if active is not None:
        qs = qs.filter(active=active)
    return qs


def product_get(*, product_id: int) -> Product:
    try:
        return Product.objects.select_related("category").get(pk=product_id)
    except Product.DoesNotExist as exc:
        raise NotFound("product", product_id) from exc


def category_list() -> QuerySet[Category]:
    return Category.objects.order_by("slug")
