from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from kizuna.catalog.models import Category, Product
from kizuna.core.audit import acting_as
from kizuna.core.money import CURRENCY_EXPONENTS

PRODUCT_FIELDS = {
    "sku",
    "name",
    "name_en",
    "description",
    "category",
    "price_minor",
    "currency",
    "active",
}


def _clean_product(data: dict[str, Any], *, creating: bool) -> tuple[dict[str, Any], dict]:
    errors: dict[str, list[str]] = {}
    clean: dict[str, Any] = {}
    for field, value in data.items():
        if field not in PRODUCT_FIELDS:
            errors.setdefault(field, []).append(_("Unknown field %(f)s.") % {"f": field})
        elif field == "price_minor":
            if isinstance(value, bool) or not isinstance(value, int):
                errors.setdefault(field, []).append(_("Expected a whole number of minor units."))
            elif value < 0:
                errors.setdefault(field, []).append(_("A price cannot be negative."))
            else:
                clean[field] = value
        elif field == "currency":
            if value not in CURRENCY_EXPONENTS:
                errors.setdefault(field, []).append(_("Unsupported currency."))
            else:
                clean[field] = value
        elif field == "category":
            if value in (None, ""):
                clean[field] = None
            else:
                category = Category.objects.filter(slug=value).first()
                if category is None:
                    errors.setdefault(field, []).append(_("Unknown category %(c)s.") % {"c": value})
                clean[field] = category
        elif field == "active":
            if not isinstance(value, bool):
                errors.setdefault(field, []).append(_("Expected true or false."))
            else:
                clean[field] = value
        else:
            if not isinstance(value, str):
                errors.setdefault(field, []).append(_("Expected text."))
            else:
                clean[field] = value.strip()
    if creating:
        for required in ("sku", "name", "price_minor"):
            if required not in data:
                errors.setdefault(required, []).append(_("This field is required."))
    return clean, errors


@transaction.atomic
def product_create(*, data: dict[str, Any], actor: AbstractBaseUser | None = None) -> Product:
    clean, errors = _clean_product(data, creating=True)
    if clean.get("sku") and Product.objects.filter(sku=clean["sku"]).exists():
        errors.setdefault("sku", []).append(_("A product with this SKU already exists."))
    if errors:
        raise ValidationError(errors)
    product = Product(**clean)
    product.full_clean()
    with acting_as(actor):
        product.save()
    return product


@transaction.atomic
def product_update(
    *, product: Product, data: dict[str, Any], actor: AbstractBaseUser | None = None
) -> Product:
    clean, errors = _clean_product(data, creating=False)
    if (
        clean.get("sku")
        and Product.objects.filter(sku=clean["sku"]).exclude(pk=product.pk).exists()
    ):
        errors.setdefault("sku", []).append(_("A product with this SKU already exists."))
    if errors:
        raise ValidationError(errors)
    for field, value in clean.items():
        setattr(product, field, value)
    product.full_clean()
    with acting_as(actor):
        product.save()
    return product


def category_create(
    *, slug: str, name: str, name_en: str = "", parent: Category | None = None
) -> Category:
    category = Category(slug=slug, name=name, name_en=name_en, parent=parent)
    category.full_clean()
    category.save()
    return category
