"""Events ingested through the Segment-compatible API earn the loyalty programme's engagement
points, once per message however often the batch is retried (tracking → bus → loyalty)."""

from __future__ import annotations

import base64
import json

import pytest
from django.test import Client

from kizuna.customers.models import Event, Identity
from kizuna.loyalty import services as loyalty
from kizuna.loyalty.models import Account, LedgerEntry, Programme
from kizuna.tracking.services import source_create

pytestmark = pytest.mark.django_db(transaction=True)  # after-commit subscribers run


@pytest.fixture(autouse=True)
def _fresh_event_points() -> None:
    loyalty._forget_event_points()


def test_ingested_check_ins_earn_points_once_per_message() -> None:
    Programme.objects.create(name="Kizuna Coffee", event_points={"Store Checked In": 5})
    key = source_create(name="App").write_key
    batch = {
        "batch": [
            {
                "type": "identify",
                "userId": "u-7",
                "messageId": "i-7",
                "traits": {"email": "c@example.com"},
            },
            {"type": "track", "userId": "u-7", "event": "Store Checked In", "messageId": "c-1"},
            {"type": "track", "userId": "u-7", "event": "Store Checked In", "messageId": "c-2"},
            {"type": "track", "userId": "u-7", "event": "Product Viewed", "messageId": "v-1"},
        ]
    }
    auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    for _ in range(2):  # a retried batch
        response = Client().post(
            "/v1/batch",
            data=json.dumps(batch),
            content_type="application/json",
            HTTP_AUTHORIZATION=auth,
        )
        assert response.status_code == 200
    customer = Identity.objects.get(kind="external", value="u-7").customer
    account = Account.objects.get(customer=customer)
    assert account.balance == 10
    # The bus events of ingested rows carry the row's id, which keys the award.
    check_ins = Event.objects.filter(message_id__in=["c-1", "c-2"]).order_by("message_id")
    assert sorted(LedgerEntry.objects.values_list("idempotency_key", flat=True)) == sorted(
        f"event:{event.pk}" for event in check_ins
    )
