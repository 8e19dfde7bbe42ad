"""The demo's journeys load: three live journeys from templates, buyers enrolled, first
steps run (with a switched-off email channel: nothing can leave the machine)."""

from __future__ import annotations

from kizuna.commerce.models import Order
from kizuna.core.timeutil import now
from kizuna.demo import journeys as demo_journeys
from kizuna.journeys.models import Enrolment, Journey, StepExecution
from kizuna.journeys.tests.conftest import make_customer
from kizuna.messaging.models import Channel


def test_demo_journeys_load(db: None) -> None:
    for i in range(5):
        customer = make_customer(f"d{i}@example.jp")
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


def test_personal_data_export_and_erase(db: None) -> None:
    from kizuna.core.personal_data import handlers

    customer = make_customer("p@example.jp")
    Order.objects.create(
        number="P1", customer=customer, placed_at=now(), subtotal_minor=1000, total_minor=1000
    )
    demo_journeys.load()
    Enrolment.objects.update(context={"note": "電話してほしい"})
    by_name = {h.name: h for h in handlers()}
    exported = list(by_name["journeys.enrolment"].export(customer.pk))
    assert exported[0]["context"] == {"note": "電話してほしい"}
    assert list(by_name["journeys.stepexecution"].export(customer.pk))
    assert by_name["journeys.enrolment"].erase(customer.pk, pseudonym="erased-x") == 1
    assert by_name["journeys.stepexecution"].erase(customer.pk, pseudonym="erased-x") >= 1
    assert Enrolment.objects.get().context == {}
    assert all(d == {} for d in StepExecution.objects.values_list("detail", flat=True))
