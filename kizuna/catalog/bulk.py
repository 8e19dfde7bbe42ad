"""Bulk loading of the catalogue: categories and products for imports and the demo.

Rows are checked with the same rules as `product_create` (the same cleaning function);
all rows are checked before anything is written, in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from kizuna.catalog.models import Category, Product
from kizuna.catalog.services import _clean_product


@dataclass(frozen=True)
class CategoryRow:
    slug: str
    name: str
    name_en: str = ""
    parent_slug: str = ""


def catalog_bulk_load(
    *, categories: Sequence[CategoryRow], products: Sequence[dict[str, Any]]
) -> dict[str, int]:
    """Create categories (parents before children) and products; returns product ids by SKU.

    Products name their category by slug, as `product_create` takes it.
    """
    errors: dict[str, list[str]] = {}
    with transaction.atomic():
        by_slug: dict[str, Category] = {c.slug: c for c in Category.objects.all()}
        for i, row in enumerate(categories):
            if row.slug in by_slug:
                errors[f"categories[{i}].slug"] = [_("A category with this slug already exists.")]
                continue
            parent = by_slug.get(row.parent_slug) if row.parent_slug else None
            if row.parent_slug and parent is None:
                errors[f"categories[{i}].parent"] = [
                    _("Unknown category %(c)s.") % {"c": row.parent_slug}
                ]
                continue
            category = Category(slug=row.slug, name=row.name, name_en=row.name_en, parent=parent)
            try:
                category.full_clean()
            except ValidationError as exc:
                for name, messages in exc.message_dict.items():
                    errors[f"categories[{i}].{name}"] = messages
                continue
            category.save()
            by_slug[row.slug] = category
        if errors:
            raise ValidationError(errors)
        existing = set(Product.objects.values_list("sku", flat=True))
        built: list[Product] = []
        for i, data in enumerate(products):
            clean, row_errors = _clean_product(
                {k: v for k, v in data.items() if k != "category"}, creating=True
            )
            slug = data.get("category")
            if slug:
                clean["category"] = by_slug.get(slug)
                if clean["category"] is None:
                    row_errors.setdefault("category", []).append(
                        _("Unknown category %(c)s.") % {"c": slug}
                    )
            if clean.get("sku") in existing:
                row_errors.setdefault("sku", []).append(
                    _("A product with this SKU already exists.")
                )
            existing.add(clean.get("sku", ""))
            for name, messages in row_errors.items():
                errors[f"products[{i}].{name}"] = messages
            built.append(Product(**clean))
        if errors:
            raise ValidationError(errors)
        created = Product.objects.bulk_create(built)
    return {product.sku: product.pk for product in created}
