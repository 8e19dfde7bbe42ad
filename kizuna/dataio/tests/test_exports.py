"""The per-customer privacy export: the profile's data plus every app's registered part."""

from __future__ import annotations

import pytest
from django.test import Client

from kizuna.catalog.services import product_create
from kizuna.commerce.services import order_place
from kizuna.customers import export_providers, services
from kizuna.customers.models import Customer
from kizuna.loyalty.services import points_award

pytestmark = pytest.mark.django_db


def test_export_includes_orders_and_loyalty_through_the_api(make_staff) -> None:
    product_create(data={"sku": "TEA", "name": "緑茶", "price_minor": 1000})
    customer = services.customer_create(data={"family_name": "山田", "email": "y@example.com"})
    order_place(customer=customer, number="O-1", lines=[{"sku": "TEA", "quantity": 2}])
    points_award(customer=customer, points=120, idempotency_key="t-1", reason="welcome")
    client = Client()
    client.force_login(make_staff("analyst"))
    assert client.get(f"/api/v1/customers/{customer.pk}/export").status_code == 403
    client.force_login(make_staff("admin"))
    data = client.get(f"/api/v1/customers/{customer.pk}/export").json()
    assert data["customer"]["email"] == "y@example.com"
    assert [(o["number"], o["lines"][0]["quantity"]) for o in data["orders"]] == [("O-1", 2)]
    loyalty = data["loyalty"]
    assert loyalty["account"]["balance"] == 120
    assert [(e["kind"], e["points"], e["reason"]) for e in loyalty["entries"]] == [
        ("earn", 120, "welcome")
    ]
    assert [lot["remaining"] for lot in loyalty["lots"]] == [120]
    other = services.customer_create(data={"email": "o@example.com"})
    empty = client.get(f"/api/v1/customers/{other.pk}/export").json()
    assert empty["orders"] == [] and empty["loyalty"]["account"] is None


def test_export_provider_registry_rules() -> None:
    customer = services.customer_create(data={"email": "r@example.com"})

    def extra(c: Customer) -> dict[str, int]:
        return {"id": c.pk}

    export_providers.register_export_provider("zz_extra", extra)
    try:
        export_providers.register_export_provider("zz_extra", extra)  # idempotent
        assert export_providers.export_sections(customer)["zz_extra"] == {"id": customer.pk}
        with pytest.raises(ValueError, match="already provided"):
            export_providers.register_export_provider("zz_extra", lambda c: None)
        with pytest.raises(ValueError, match="reserved"):
            export_providers.register_export_provider("events", extra)
    finally:
        export_providers.unregister_export_provider("zz_extra")
    assert "zz_extra" not in export_providers.export_sections(customer)
