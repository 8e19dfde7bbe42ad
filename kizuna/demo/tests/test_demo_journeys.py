"""The demo's journeys load: three live journeys from templates, buyers enrolled, first
steps run (with a switched-off email channel: nothing can leave the machine)."""

from __future__ import annotations

from kizuna.commerce.models import Order
from kizuna.core.timeutil import now
from kizuna.customers.services import customer_create
from kizuna.demo import journeys as demo_journeys
from kizuna.journeys.models import Enrolment, Journey, StepExecution
from kizuna.messaging.models import Channel


def test_demo_journeys_load(db: None) -> None:
    for i in range(5):
        customer = customer_create(data={"family_name": "山田", "email": f"d{i}@example.jp"})
        Order.objects.create(
            number=f"D{i}",
            customer=customer,
            placed_at=now(),
            subtotal_minor=3000,
            total_minor=3000,
        )
    demo_journeys.load()
    assert set(Journey.objects.values_list("template_key", "status")) == {
        ("post_purchase", "live"),
        ("birthday_coupon", "live"),
        ("win_back", "live"),
    }
    assert Enrolment.objects.filter(journey__template_key="post_purchase").count() == 5
    assert StepExecution.objects.filter(node="thanks").count() == 5
    assert Channel.objects.get(kind="email").active is False
