from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from kizuna.catalog import selectors, services
from kizuna.catalog.models import Product

pytestmark = pytest.mark.django_db


def test_product_create_and_update() -> None:
    services.category_create(slug="beans", name="豆", name_en="Beans")
    product = services.product_create(
        data={"sku": "B-1", "name": "エチオピア", "price_minor": 1800, "category": "beans"}
    )
    assert product.category is not None and product.category.slug == "beans"
    services.product_update(product=product, data={"price_minor": 1900, "active": False})
    product.refresh_from_db()
    assert (product.price_minor, product.active) == (1900, False)
    assert list(selectors.product_list(active=False)) == [product]
    assert list(selectors.product_list(search="エチオ")) == [product]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"sku": "X", "name": "x", "price_minor": -1}, "price_minor"),
        ({"sku": "X", "name": "x", "price_minor": 1.5}, "price_minor"),
        ({"sku": "X", "name": "x", "price_minor": 100, "currency": "ABC"}, "currency"),
        ({"sku": "X", "name": "x", "price_minor": 100, "category": "nope"}, "category"),
        ({"sku": "X", "name": "x", "price_minor": 100, "colour": "red"}, "colour"),
        ({"name": "x", "price_minor": 100}, "sku"),
    ],
)
def test_bad_product_input_names_the_field_and_writes_nothing(data: dict, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        services.product_create(data=data)
    assert field in info.value.message_dict
    assert Product.objects.count() == 0


def test_duplicate_sku_is_rejected() -> None:
    services.product_create(data={"sku": "DUP", "name": "a", "price_minor": 1})
    with pytest.raises(ValidationError) as info:
        services.product_create(data={"sku": "DUP", "name": "b", "price_minor": 2})
    assert list(info.value.message_dict) == ["sku"]
